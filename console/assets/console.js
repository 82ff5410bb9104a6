// portrait console: lists the instances through the admin API, keeps a
// live QR code on screen for those that are not linked, and uploads new
// profile pictures. No framework; the session cookie authenticates every
// request to /admin/.
'use strict';

(function () {
  const POLL_MS = 2000; // state and QR code, while the page is visible
  const HIDDEN_POLL_MS = 10000; // while the tab is hidden
  const DETAIL_MS = 30000; // own picture of a linked instance

  const STATES = {
    authorized: { icon: '✓', text: 'linked', kind: 'ok' },
    notAuthorized: { icon: '✗', text: 'not linked: scan the QR code', kind: 'warn' },
    starting: { icon: '…', text: 'starting', kind: 'wait' },
    blocked: { icon: '!', text: 'blocked by the messenger', kind: 'bad' },
    suspended: { icon: '!', text: 'suspended by the messenger', kind: 'bad' },
    yellowCard: { icon: '!', text: 'restricted by the messenger (yellow card)', kind: 'bad' },
  };

  const list = document.getElementById('instances');
  const status = document.getElementById('status');
  const updated = document.getElementById('updated');
  const announcer = document.getElementById('announce');
  const template = document.getElementById('instance-template');
  const cards = new Map(); // idInstance (string) → card

  class APIError extends Error {
    constructor(status, body) {
      const msg = body && (body.message || body.description);
      super(`Error ${status}${msg ? ': ' + msg : ''}`);
      this.status = status;
    }
  }

  // api calls the admin API and returns the decoded JSON; a 401 means the
  // session ended, so the page reloads to show the sign-in form.
  async function api(path, init) {
    const resp = await fetch(path, Object.assign({
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { Accept: 'application/json' },
    }, init));
    if (resp.status === 401) {
      location.assign('/console');
      throw new APIError(401, { message: 'signed out' });
    }
    let body = null;
    try {
      body = await resp.json();
    } catch (e) {
      body = null;
    }
    if (!resp.ok) {
      throw new APIError(resp.status, body);
    }
    return body;
  }

  function errorText(err) {
    if (err instanceof APIError) {
      return err.message;
    }
    return 'Error: could not reach portrait (' + (err && err.message ? err.message : err) + ')';
  }

  function say(text) {
    announcer.textContent = '';
    // A new text node makes screen readers announce it again.
    window.setTimeout(() => { announcer.textContent = text; }, 50);
  }

  // setStatus changes the status line (a live region) only when its text
  // changes, so that screen readers are not told the same thing every poll.
  function setStatus(text, isError) {
    if (status.textContent !== text) {
      status.textContent = text;
    }
    status.classList.toggle('error', !!isError);
  }

  function messengerName(type) {
    return type === 'v3' ? 'MAX' : type === 'whatsapp' ? 'WhatsApp' : type;
  }

  function el(tag, props, children) {
    const e = document.createElement(tag);
    Object.assign(e, props || {});
    for (const c of children || []) {
      e.append(c);
    }
    return e;
  }

  // pictures builds the 640 and 96 versions of one own picture, or a note
  // when there is none.
  function pictures(pic, when) {
    if (!pic || !pic.urlAvatar) {
      return [el('p', { className: 'no-picture', textContent: `No picture ${when.toLowerCase()}.` })];
    }
    const out = [];
    for (const [size, url] of [['640', pic.urlAvatar], ['96', pic.previewUrl || '']]) {
      if (!url) {
        continue;
      }
      const img = el('img', {
        src: url, width: Number(size), height: Number(size),
        alt: `${when}: the processed ${size}×${size} picture`,
        className: 'p' + size,
      });
      img.dataset.size = size;
      out.push(el('figure', { className: 'pic pic-' + size }, [
        el('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, [img]),
        el('figcaption', { textContent: `${size}×${size}` }),
      ]));
    }
    return out;
  }

  // Card is one instance on the page.
  class Card {
    constructor(info) {
      this.id = String(info.idInstance);
      this.state = undefined;
      this.qrMessage = '';
      this.detailAt = 0;
      this.busy = false;
      const root = template.content.firstElementChild.cloneNode(true);
      this.root = root;
      root.dataset.instance = this.id;
      const q = (s) => root.querySelector(s);
      this.q = q;
      const base = 'instance-' + this.id;
      q('.title').id = base + '-title';
      root.setAttribute('aria-labelledby', base + '-title');
      q('.file').id = base + '-file';
      q('.file-label').htmlFor = base + '-file';
      q('.upload').setAttribute('aria-labelledby', base + '-upload');
      q('.upload-heading').id = base + '-upload';
      q('.upload').addEventListener('submit', (ev) => {
        ev.preventDefault();
        this.upload();
      });
      list.append(root);
    }

    // update shows the list's facts about the instance.
    update(info) {
      const q = this.q;
      const name = messengerName(info.typeInstance);
      this.name = `${name} ${this.id}`;
      q('.title').textContent = `${name} instance ${this.id}`;
      q('.id').textContent = this.id;
      q('.type').textContent = `${name} (${info.typeInstance})`;
      this.root.dataset.type = info.typeInstance;
      q('.engine').textContent = info.engine;
      q('.wid').textContent = info.wid || '—';
      q('.api-url').textContent = info.apiUrl || '';
      const state = info.stateInstance || '';
      const st = STATES[state] || { icon: '?', text: state ? 'unknown state' : 'unavailable', kind: 'bad' };
      const se = q('.state');
      se.textContent = state || 'unavailable';
      se.dataset.state = state;
      q('.state-icon').textContent = st.icon;
      q('.link-status').textContent = `(${st.text})`;
      this.root.dataset.state = state;
      this.root.dataset.kind = st.kind;
      const errEl = q('.instance-error');
      errEl.hidden = !info.error;
      errEl.textContent = info.error ? 'Error: ' + info.error : '';
      q('.upload').hidden = state !== 'authorized';
      if (state !== 'notAuthorized') {
        this.hideQR();
      }
      if (this.state !== undefined && this.state !== state) {
        say(`${this.name}: ${st.text}.`);
        this.detailAt = 0; // the own picture comes and goes with the link
      }
      this.state = state;
    }

    hideQR() {
      this.q('.qr-box').hidden = true;
      const img = this.q('img.qr');
      img.hidden = true;
      img.removeAttribute('src');
      this.qrMessage = '';
    }

    setAvatar(pic) {
      const q = this.q;
      const link = q('.avatar-link');
      const img = q('img.avatar');
      const none = q('.no-avatar');
      if (pic && pic.urlAvatar) {
        link.href = pic.urlAvatar;
        const src = pic.previewUrl || pic.urlAvatar;
        if (img.getAttribute('src') !== src) {
          img.src = src;
        }
        img.alt = `Own picture of ${this.name} (96×96 preview; the link opens the 640×640 picture)`;
        link.hidden = false;
        none.hidden = true;
      } else {
        link.hidden = true;
        link.removeAttribute('href');
        img.removeAttribute('src');
        none.hidden = false;
        none.textContent = this.state === 'authorized' ? 'No picture' : 'No picture shown while not linked';
      }
    }

    // refresh brings the own picture and the QR code up to date.
    async refresh() {
      const now = Date.now();
      if (now - this.detailAt >= DETAIL_MS) {
        const detail = await api(`/admin/instances/${encodeURIComponent(this.id)}`);
        this.detailAt = Date.now();
        this.update(detail);
        this.setAvatar(detail.avatar);
      }
      if (this.state === 'notAuthorized') {
        await this.refreshQR();
      }
    }

    async refreshQR() {
      const q = this.q;
      const box = q('.qr-box');
      const img = q('img.qr');
      const msg = q('.qr-message');
      let reply;
      try {
        reply = await api(`/admin/instances/${encodeURIComponent(this.id)}/qr`);
      } catch (err) {
        box.hidden = false;
        msg.textContent = errorText(err);
        msg.classList.add('error');
        return;
      }
      box.hidden = false;
      if (reply.type === 'qrCode') {
        if (reply.message !== this.qrMessage) {
          this.qrMessage = reply.message;
          img.src = 'data:image/png;base64,' + reply.message;
          img.alt = `QR code to link ${this.name}: scan it with the messenger on the phone`;
          img.dataset.updated = String(Date.now());
        }
        img.hidden = false;
        msg.classList.remove('error');
        msg.textContent = 'Waiting for the phone to scan the code…';
      } else if (reply.type === 'alreadyLogged') {
        this.hideQR();
        this.detailAt = 0;
      } else {
        img.hidden = true;
        img.removeAttribute('src');
        this.qrMessage = '';
        msg.classList.add('error');
        msg.textContent = 'Error: ' + (reply.message || 'no QR code now');
      }
    }

    // upload sends the chosen file and shows the pictures before and after.
    async upload() {
      const q = this.q;
      const input = q('.file');
      const out = q('.upload-status');
      const button = q('.upload-button');
      if (!input.files || input.files.length === 0) {
        out.textContent = 'Error: choose a picture file first.';
        out.classList.add('error');
        input.focus();
        return;
      }
      const form = new FormData();
      form.append('file', input.files[0]);
      button.disabled = true;
      this.busy = true;
      out.classList.remove('error');
      out.textContent = `Uploading ${input.files[0].name}…`;
      try {
        const reply = await api(`/admin/instances/${encodeURIComponent(this.id)}/profile-picture`, {
          method: 'POST',
          body: form,
        });
        const result = q('.result');
        q('.before .pics').replaceChildren(...pictures(reply.before, 'Before'));
        q('.after .pics').replaceChildren(...pictures(reply.after, 'After'));
        result.hidden = false;
        this.setAvatar(reply.after);
        this.detailAt = Date.now();
        out.textContent = 'Done: the new picture is set. Before and after are shown below.';
        input.value = '';
      } catch (err) {
        out.classList.add('error');
        out.textContent = errorText(err);
      } finally {
        button.disabled = false;
        this.busy = false;
      }
    }

    remove() {
      this.root.remove();
    }
  }

  async function tick() {
    try {
      const infos = await api('/admin/instances');
      const seen = new Set();
      for (const info of infos) {
        const id = String(info.idInstance);
        seen.add(id);
        let card = cards.get(id);
        if (!card) {
          card = new Card(info);
          cards.set(id, card);
        }
        card.update(info);
      }
      for (const [id, card] of cards) {
        if (!seen.has(id)) {
          card.remove();
          cards.delete(id);
        }
      }
      const failures = [];
      await Promise.all([...cards.values()].map((c) => c.refresh().catch((err) => {
        failures.push(`${c.name}: ${errorText(err)}`);
      })));
      const n = infos.length;
      const count = n === 0 ? 'No instances.' : `${n} instance${n === 1 ? '' : 's'}.`;
      if (failures.length) {
        setStatus(`${count} Errors: ${failures.join('; ')}`, true);
      } else {
        setStatus(count, false);
      }
      updated.textContent = `Updated at ${new Date().toLocaleTimeString()}; the page refreshes itself every few seconds.`;
    } catch (err) {
      setStatus(`${errorText(err)}. Trying again…`, true);
    }
    window.setTimeout(tick, document.hidden ? HIDDEN_POLL_MS : POLL_MS);
  }

  tick();
})();
