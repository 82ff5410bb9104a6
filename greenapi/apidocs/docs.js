"use strict";
// Renders /openapi.json as a browsable list of operations.
(async function () {
  const main = document.getElementById("methods");
  const toc = document.getElementById("toc");
  const filter = document.getElementById("filter");
  let doc;
  try {
    const resp = await fetch("/openapi.json");
    doc = await resp.json();
  } catch (e) {
    main.textContent = "The reference could not be loaded: " + e;
    return;
  }
  const resolve = (s) => {
    if (s && s.$ref) {
      const name = s.$ref.split("/").pop();
      return doc.components.schemas[name];
    }
    return s;
  };
  const show = (s, depth) => {
    s = resolve(s) || {};
    const pad = "  ".repeat(depth);
    if (s.anyOf) return s.anyOf.map((x) => show(x, depth)).join(" | ");
    if (s.type === "object" && s.properties) {
      const req = new Set(s.required || []);
      const lines = Object.keys(s.properties).map((k) =>
        pad + "  " + k + (req.has(k) ? "" : "?") + ": " + show(s.properties[k], depth + 1));
      return "{\n" + lines.join(",\n") + "\n" + pad + "}";
    }
    if (s.type === "object" && s.additionalProperties) return "{ [name]: " + show(s.additionalProperties, depth + 1) + " }";
    if (s.type === "array") return show(s.items, depth) + "[]";
    if (s.format === "binary") return "file";
    return s.type || "any";
  };
  main.textContent = "";
  const sections = [];
  for (const path of Object.keys(doc.paths)) {
    const item = doc.paths[path];
    for (const verb of ["get", "post", "delete"]) {
      const op = item[verb];
      if (!op) continue;
      const sec = document.createElement("section");
      sec.className = "op";
      sec.id = op.operationId || (verb + path).replace(/[^A-Za-z0-9]+/g, "-");
      const h = document.createElement("h2");
      const v = document.createElement("span");
      v.className = "verb " + verb;
      v.textContent = verb.toUpperCase();
      h.append(v, document.createTextNode(path));
      const tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = (op.tags || []).join(", ");
      h.append(tag);
      sec.append(h);
      if (op.summary) {
        const p = document.createElement("p");
        p.textContent = op.summary;
        sec.append(p);
      }
      if (op.requestBody) {
        for (const [type, media] of Object.entries(op.requestBody.content)) {
          const h3 = document.createElement("h3");
          h3.textContent = "Request (" + type + ")";
          const pre = document.createElement("pre");
          pre.textContent = show(media.schema, 0);
          sec.append(h3, pre);
        }
      }
      const ok = op.responses && op.responses["200"];
      if (ok) {
        const h3 = document.createElement("h3");
        h3.textContent = "Reply 200";
        const pre = document.createElement("pre");
        const media = ok.content && Object.values(ok.content)[0];
        pre.textContent = media ? show(media.schema, 0) : "(empty body)";
        sec.append(h3, pre);
      }
      const errs = Object.keys(op.responses || {}).filter((c) => c !== "200");
      if (errs.length) {
        const p = document.createElement("p");
        p.textContent = "Errors: " + errs.join(", ") + " (GREEN-API's error shape)";
        sec.append(p);
      }
      main.append(sec);
      sections.push({ sec, text: (path + " " + (op.summary || "")).toLowerCase() });
      if (op.summary && !toc.querySelector('[data-name="' + op.summary + '"]')) {
        const a = document.createElement("a");
        a.href = "#" + sec.id;
        a.dataset.name = op.summary;
        a.textContent = op.summary;
        toc.append(a);
      }
    }
  }
  filter.addEventListener("input", () => {
    const q = filter.value.trim().toLowerCase();
    for (const s of sections) s.sec.hidden = q !== "" && !s.text.includes(q);
  });
})();
