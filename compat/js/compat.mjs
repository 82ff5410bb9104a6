// compat.mjs drives the official GREEN-API JavaScript SDKs against a server
// that speaks the GREEN-API wire (portrait) and prints ONE JSON document on
// stdout with what each SDK returned. It asserts nothing: the Go side
// (package compat) does. It exits non-zero only when something unexpected
// happens outside an SDK call (missing settings, an SDK that cannot be
// loaded).
//
// Settings come from the environment:
//
//   PORTRAIT_API_URL   base URL (apiUrl); a trailing slash is stripped for the
//                      main calls and added back for the *TrailingSlash calls
//   PORTRAIT_ID        idInstance
//   PORTRAIT_TOKEN     apiTokenInstance (never printed: it is redacted from
//                      everything the SDKs log and from the result)
//   CHAT_WITH_PICTURE  a chat whose avatar is visible
//   CHAT_HIDDEN        a chat whose avatar is hidden by privacy
//   CHAT_NO_PICTURE    a chat without an avatar
//   GROUP_ADMIN        a group whose picture this account may change
//   PICTURE_PATH       a JPEG or PNG file to upload
//   COMPAT_RETRY_429   "0" turns off the retry of calls answered 429
//                      (default: up to 3 retries, waiting Retry-After)
//
// Result shape (see compat/README.md and compat/compat.go):
//
//   {"<npm package name>": {
//      "version": "x.y.z",
//      "getAvatar": {"CHAT_WITH_PICTURE": Outcome, "CHAT_HIDDEN": Outcome, "CHAT_NO_PICTURE": Outcome},
//      "getAvatarPhoneNumber": Outcome,     // only SDKs that can send {"phoneNumber": <number>}
//      "getAvatarTrailingSlash": Outcome,   // CHAT_WITH_PICTURE with apiUrl + "/"
//      "setProfilePicture": Outcome,
//      "setGroupPicture": Outcome}}
//
//   Outcome = {"data": <what the SDK returned>}
//           | {"error": {"status": <HTTP status, 0 if none>, "body": <response body>, "message": "..."}}
//           | {"skipped": "<why>"}
//   plus "wire": {"method", "path", "contentType", "status"} of the last HTTP
//   exchange of the call (token replaced by {apiTokenInstance}) and
//   "attempts" when a 429 was retried.

import { createRequire } from 'node:module';
import fs from 'node:fs';
import util from 'node:util';

const require = createRequire(import.meta.url);

const TOKEN_PLACEHOLDER = '{apiTokenInstance}';
const token = process.env.PORTRAIT_TOKEN ?? '';

/** redact replaces the token in s with a placeholder. */
function redact(s) {
  return token ? String(s).split(token).join(TOKEN_PLACEHOLDER) : String(s);
}

/** redactValue redacts the token in every string inside a JSON-like value. */
function redactValue(v) {
  if (typeof v === 'string') return redact(v);
  if (Array.isArray(v)) return v.map(redactValue);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redactValue(x)]));
  }
  return v;
}

// stdout carries the result only. The v2 SDK logs every request with
// console.log (request URLs included, so the token too): send all console
// output to stderr, redacted.
for (const name of ['log', 'info', 'debug', 'warn', 'error', 'trace']) {
  console[name] = (...args) => process.stderr.write(redact(util.format(...args)) + '\n');
}

const REQUIRED = [
  'PORTRAIT_API_URL', 'PORTRAIT_ID', 'PORTRAIT_TOKEN',
  'CHAT_WITH_PICTURE', 'CHAT_HIDDEN', 'CHAT_NO_PICTURE', 'GROUP_ADMIN', 'PICTURE_PATH',
];
const CHATS = ['CHAT_WITH_PICTURE', 'CHAT_HIDDEN', 'CHAT_NO_PICTURE'];
const MAX_ATTEMPTS = process.env.COMPAT_RETRY_429 === '0' ? 1 : 4;
const REQUEST_TIMEOUT_MS = 60_000;

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** requestInfo describes the HTTP request node actually sent. */
function requestInfo(req) {
  if (!req) return {};
  const info = {};
  if (req.method) info.method = req.method;
  if (typeof req.path === 'string') info.path = redact(req.path);
  if (typeof req.getHeader === 'function') {
    const ct = req.getHeader('content-type');
    if (ct !== undefined) info.contentType = String(ct);
  }
  return info;
}

/**
 * instrument records the last HTTP exchange made through an axios instance
 * into sink.last, so that outcomes carry the status and body even when an SDK
 * rethrows a plain Error (v2 does) and the wire facts (path, content type).
 */
function instrument(axiosInstance, sink) {
  axiosInstance.defaults.timeout = REQUEST_TIMEOUT_MS;
  axiosInstance.interceptors.response.use(
    (res) => {
      sink.last = { status: res.status, headers: res.headers ?? {}, body: res.data, request: requestInfo(res.request) };
      return res;
    },
    (err) => {
      const res = err?.response;
      sink.last = res
        ? { status: res.status, headers: res.headers ?? {}, body: res.data, request: requestInfo(res.request) }
        : { status: 0, headers: {}, body: null, request: requestInfo(err?.request), transport: err?.code ?? String(err?.message ?? err) };
      return Promise.reject(err);
    },
  );
}

function retryAfterMs(exchange) {
  const h = exchange?.headers?.['retry-after'];
  const secs = Number(h);
  if (Number.isFinite(secs) && secs >= 0) return Math.min(Math.max(secs * 1000, 200), 15_000);
  return 1000;
}

/** call runs one SDK call and turns whatever happens into an Outcome. */
async function call(sink, fn) {
  for (let attempt = 1; ; attempt++) {
    sink.last = null;
    let outcome;
    try {
      const data = await fn();
      outcome = { data: data === undefined ? null : redactValue(data) };
    } catch (err) {
      const ex = sink.last;
      const error = { status: ex?.status ?? 0, message: redact(err?.message ?? err) };
      if (ex && ex.status) error.body = redactValue(ex.body ?? null);
      if (ex?.transport) error.transport = redact(ex.transport);
      outcome = { error };
    }
    const ex = sink.last;
    if (ex?.request?.path) outcome.wire = { ...ex.request, status: ex.status };
    if (attempt > 1) outcome.attempts = attempt;
    if (outcome.error?.status === 429 && attempt < MAX_ATTEMPTS) {
      await sleep(retryAfterMs(ex));
      continue;
    }
    return outcome;
  }
}

function packageVersion(name) {
  return require(`${name}/package.json`).version;
}

/** pictureBlob reads the picture the way a Node user of the v2 SDK would. */
async function pictureBlob(path) {
  if (typeof fs.openAsBlob === 'function') return fs.openAsBlob(path); // type "" → sent as application/octet-stream, filename "blob"
  return new Blob([fs.readFileSync(path)]);
}

// ---------------------------------------------------------------------------
// @green-api/whatsapp-api-client (0.4.x): whatsAppClient.restAPI({host, media,
// idInstance, apiTokenInstance}); methods grouped under .instance, .group, …;
// uses the shared default axios instance.

async function runV1(env, base) {
  const name = '@green-api/whatsapp-api-client';
  const sdk = require(name);
  const restAPI = sdk.restAPI ?? sdk.default?.restAPI;
  if (typeof restAPI !== 'function') throw new Error(`${name}: no restAPI factory`);
  const sink = { last: null };
  instrument(require('axios'), sink); // the same CommonJS axios module the SDK requires
  const make = (host) => restAPI({
    host, media: host, idInstance: String(env.PORTRAIT_ID), apiTokenInstance: env.PORTRAIT_TOKEN,
  });
  const api = make(base);
  const find = (obj, method) => ['instance', 'service', 'account', 'group', 'settings']
    .map((k) => obj[k]).find((g) => g && typeof g[method] === 'function');

  const out = { version: packageVersion(name), getAvatar: {} };
  const avatarGroup = find(api, 'getAvatar');
  for (const chat of CHATS) {
    out.getAvatar[chat] = avatarGroup
      ? await call(sink, () => avatarGroup.getAvatar(env[chat]))
      : { skipped: 'the SDK has no getAvatar method' };
  }
  const m = /^(\d+)@c\.us$/.exec(env.CHAT_WITH_PICTURE);
  if (avatarGroup && m && Number.isSafeInteger(Number(m[1]))) {
    // the legacy form: getAvatar(undefined, phoneNumber) sends {"phoneNumber": <number>}
    out.getAvatarPhoneNumber = await call(sink, () => avatarGroup.getAvatar(undefined, Number(m[1])));
  } else {
    out.getAvatarPhoneNumber = { skipped: 'CHAT_WITH_PICTURE is not <digits>@c.us' };
  }
  const slashed = find(make(`${base}/`), 'getAvatar');
  out.getAvatarTrailingSlash = slashed
    ? await call(sink, () => slashed.getAvatar(env.CHAT_WITH_PICTURE))
    : { skipped: 'the SDK has no getAvatar method' };

  const profile = find(api, 'setProfilePicture');
  out.setProfilePicture = profile
    ? await call(sink, () => profile.setProfilePicture(env.PICTURE_PATH))
    : { skipped: 'the SDK has no setProfilePicture method' };
  const group = find(api, 'setGroupPicture');
  out.setGroupPicture = group
    ? await call(sink, () => group.setGroupPicture(env.GROUP_ADMIN, env.PICTURE_PATH))
    : { skipped: 'the SDK has no setGroupPicture method' };
  return [name, out];
}

// ---------------------------------------------------------------------------
// @green-api/whatsapp-api-client-js-v2 (1.0.x): new GreenApiClient({idInstance,
// apiTokenInstance}). 1.0.3 has NO host option: BaseClient.buildUrl() returns
// "https://api.green-api.com/waInstance{id}" and the constructor passes it to
// axios.create({baseURL}). The only way to point it elsewhere is to override
// buildUrl (done here with the SDK's own template, so a trailing slash in the
// base URL gives "//waInstance" as it would for a user doing the same).

async function runV2(env, base) {
  const name = '@green-api/whatsapp-api-client-js-v2';
  const sdk = require(name);
  const GreenApiClient = sdk.GreenApiClient ?? sdk.default?.GreenApiClient;
  if (typeof GreenApiClient !== 'function') throw new Error(`${name}: no GreenApiClient class`);
  const sink = { last: null };
  const make = (host) => {
    const template = (inst) => `${host}/waInstance${inst.idInstance}`;
    class HostClient extends GreenApiClient {
      buildUrl() {
        return template(this.instance);
      }
    }
    const c = new HostClient({ idInstance: Number(env.PORTRAIT_ID), apiTokenInstance: env.PORTRAIT_TOKEN });
    if (!c.client?.interceptors) throw new Error(`${name}: no axios instance at .client`);
    // In case a later version stops calling buildUrl():
    c.client.defaults.baseURL = template({ idInstance: env.PORTRAIT_ID });
    instrument(c.client, sink);
    return c;
  };
  const c = make(base);
  const has = (obj, method) => typeof obj[method] === 'function';

  const out = { version: packageVersion(name), getAvatar: {} };
  for (const chat of CHATS) {
    out.getAvatar[chat] = has(c, 'getAvatar')
      ? await call(sink, () => c.getAvatar({ chatId: env[chat] }))
      : { skipped: 'the SDK has no getAvatar method' };
  }
  out.getAvatarPhoneNumber = { skipped: 'getAvatar takes {chatId} only in this SDK' };
  const slashed = make(`${base}/`);
  out.getAvatarTrailingSlash = has(slashed, 'getAvatar')
    ? await call(sink, () => slashed.getAvatar({ chatId: env.CHAT_WITH_PICTURE }))
    : { skipped: 'the SDK has no getAvatar method' };

  out.setProfilePicture = has(c, 'setProfilePicture')
    ? await call(sink, async () => c.setProfilePicture(await pictureBlob(env.PICTURE_PATH)))
    : { skipped: 'the SDK has no setProfilePicture method' };
  out.setGroupPicture = has(c, 'setGroupPicture')
    ? await call(sink, async () => c.setGroupPicture({ groupId: env.GROUP_ADMIN, file: await pictureBlob(env.PICTURE_PATH) }))
    : { skipped: 'the SDK has no setGroupPicture method' };
  return [name, out];
}

async function main() {
  const missing = REQUIRED.filter((k) => !process.env[k]);
  if (missing.length) throw new Error(`missing environment variables: ${missing.join(', ')}`);
  const env = Object.fromEntries(REQUIRED.map((k) => [k, process.env[k]]));
  if (!fs.existsSync(env.PICTURE_PATH)) throw new Error(`PICTURE_PATH ${env.PICTURE_PATH} does not exist`);
  const base = env.PORTRAIT_API_URL.replace(/\/+$/, '');

  const result = {};
  for (const run of [runV1, runV2]) {
    const [name, out] = await run(env, base);
    result[name] = out;
  }
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
}

main().catch((err) => {
  process.stderr.write(`compat.mjs: ${redact(err?.stack ?? err)}\n`);
  process.exit(1);
});
