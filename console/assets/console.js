// portrait console: the operator's page over the admin API. It creates and
// deletes instances, rotates tokens, links accounts (live QR code, pairing
// code, a simulated scan for sandbox instances), edits settings and tests
// the webhook, shows each notification queue, and sets and looks up
// pictures. No framework; the session cookie authenticates every request
// to /admin/.
'use strict';

(function () {
  const POLL_MS = 2000; // state, QR code and open panels, while visible
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

  // The settings the console shows as the main ones; every other setting
  // of getSettings but wid and typeInstance is a stored one.
  const MAIN_SETTINGS = ['webhookUrl', 'webhookUrlToken', 'stateWebhook', 'avatarInfoWebhook', 'avatarChangedWebhook'];
  const READ_ONLY_SETTINGS = ['wid', 'typeInstance'];

  const byId = (id) => document.getElementById(id);
  const list = byId('instances');
  const status = byId('status');
  const updated = byId('updated');
  const announcer = byId('announce');
  const template = byId('instance-template');
  const cards = new Map(); // idInstance (string) → card
  let engines = [];

  class APIError extends Error {
    constructor(status, body) {
      const msg = body && (body.message || body.description);
      super(`Error ${status}${msg ? ': ' + msg : ''}`);
      this.status = status;
    }
  }

  // api calls the admin API and returns the decoded JSON; a 401 means the
  // session ended, so the page reloads to show the sign-in form. A plain
  // object as init.json is sent as a JSON body.
  async function api(path, init) {
    const opts = Object.assign({
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { Accept: 'application/json' },
    }, init || {});
    if (opts.json !== undefined) {
      opts.body = JSON.stringify(opts.json);
      opts.headers = { Accept: 'application/json', 'Content-Type': 'application/json' };
      delete opts.json;
    }
    const resp = await fetch(path, opts);
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

  // report writes a result into a status element, marked as an error or
  // not.
  function report(elem, text, isError) {
    elem.textContent = text;
    elem.classList.toggle('error', !!isError);
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

  function time(iso) {
    return iso ? new Date(iso).toLocaleString() : '';
  }

  // busy disables a button while an action runs.
  async function busy(button, action) {
    button.disabled = true;
    try {
      await action();
    } finally {
      button.disabled = false;
    }
  }

  // pictures builds the 640 and 96 versions of a picture, or a note when
  // there is none.
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
      this.path = `/admin/instances/${encodeURIComponent(this.id)}`;
      this.state = undefined;
      this.qrMessage = '';
      this.detailAt = 0;
      this.settingsLoaded = false;
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
      // Every field gets an id of its own and its label points at it.
      for (const input of root.querySelectorAll('[data-field]')) {
        input.id = `${base}-${input.dataset.field}`;
      }
      for (const label of root.querySelectorAll('label[data-for]')) {
        label.htmlFor = `${base}-${label.dataset.for}`;
      }
      const on = (sel, ev, fn) => q(sel).addEventListener(ev, fn);
      const submit = (sel, fn) => on(sel, 'submit', (e) => { e.preventDefault(); fn(); });
      submit('.upload', () => this.upload());
      submit('.pairing', () => this.pairingCode());
      submit('.credential', () => this.saveCredential());
      submit('.settings', () => this.saveSettings());
      submit('.lookup', () => this.lookup());
      submit('.group-upload', () => this.setGroupPicture());
      on('.rotate-button', 'click', () => this.rotate());
      on('.token-done', 'click', () => this.hideToken());
      on('.logout-button', 'click', () => this.logout());
      on('.scan-button', 'click', () => this.scan());
      on('.delete-button', 'click', () => this.askDelete(true));
      on('.cancel-delete-button', 'click', () => this.askDelete(false));
      on('.confirm-delete-button', 'click', () => this.delete());
      on('.test-webhook', 'click', () => this.testWebhook());
      on('.settings-panel', 'toggle', () => {
        if (q('.settings-panel').open && !this.settingsLoaded) {
          this.loadSettings();
        }
      });
      on('.notifications-panel', 'toggle', () => {
        if (q('.notifications-panel').open) {
          this.refreshNotifications().catch(() => {});
        }
      });
      list.append(root);
    }

    // update shows the list's facts about the instance.
    update(info) {
      const q = this.q;
      const name = messengerName(info.typeInstance);
      this.name = `${name} ${this.id}`;
      this.type = info.typeInstance;
      q('.title').textContent = `${name} instance ${this.id}`;
      q('.id').textContent = this.id;
      q('.type').textContent = `${name} (${info.typeInstance})`;
      this.root.dataset.type = info.typeInstance;
      q('.engine').textContent = info.engine;
      q('.wid').textContent = info.wid || '—';
      q('.api-url').textContent = info.apiUrl || '';
      const state = info.stateInstance || '';
      const st = STATES[state] || { icon: '?', text: state ? 'unknown state' : 'unavailable', kind: 'bad' };
      q('.state').textContent = state || 'unavailable';
      q('.state-icon').textContent = st.icon;
      q('.link-status').textContent = `(${st.text})`;
      this.root.dataset.kind = st.kind;
      const errEl = q('.instance-error');
      errEl.hidden = !info.error;
      errEl.textContent = info.error ? 'Error: ' + info.error : '';
      const linked = state === 'authorized';
      const unlinked = state === 'notAuthorized';
      q('.upload').hidden = !linked;
      q('.logout-button').hidden = !linked;
      q('.scan-button').hidden = !(info.sandbox && unlinked);
      q('.pairing').hidden = !(unlinked && info.typeInstance === 'whatsapp');
      q('.credential').hidden = !info.credential;
      const lookup = q('[data-field="lookup-chat"]');
      const group = q('[data-field="group-id"]');
      if (info.typeInstance === 'v3') {
        lookup.placeholder = '10000001 or -10000000000001';
        group.placeholder = '-10000000000001';
      } else {
        lookup.placeholder = '11001230001@c.us or 120363000000000001@g.us';
        group.placeholder = '120363000000000001@g.us';
      }
      if (!unlinked) {
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

    // refresh brings the own picture, the QR code and the open
    // notification panel up to date.
    async refresh() {
      const now = Date.now();
      if (now - this.detailAt >= DETAIL_MS) {
        const detail = await api(this.path);
        this.detailAt = Date.now();
        this.update(detail);
        this.setAvatar(detail.avatar);
      }
      if (this.state === 'notAuthorized') {
        await this.refreshQR();
      }
      if (this.q('.notifications-panel').open) {
        await this.refreshNotifications();
      }
    }

    async refreshQR() {
      const q = this.q;
      const box = q('.qr-box');
      const img = q('img.qr');
      const msg = q('.qr-message');
      let reply;
      try {
        reply = await api(this.path + '/qr');
      } catch (err) {
        box.hidden = false;
        report(msg, errorText(err), true);
        return;
      }
      box.hidden = false;
      if (reply.type === 'qrCode') {
        if (reply.message !== this.qrMessage) {
          this.qrMessage = reply.message;
          img.src = 'data:image/png;base64,' + reply.message;
          img.alt = `QR code to link ${this.name}: scan it with the messenger on the phone`;
        }
        img.hidden = false;
        report(msg, 'Waiting for the phone to scan the code…', false);
      } else if (reply.type === 'alreadyLogged') {
        this.hideQR();
        this.detailAt = 0;
      } else {
        img.hidden = true;
        img.removeAttribute('src');
        this.qrMessage = '';
        report(msg, 'Error: ' + (reply.message || 'no QR code now'), true);
      }
    }

    // upload sends the chosen file and shows the pictures before and after.
    async upload() {
      const q = this.q;
      const input = q('.file');
      const out = q('.upload-status');
      if (!input.files || input.files.length === 0) {
        report(out, 'Error: choose a picture file first.', true);
        input.focus();
        return;
      }
      const form = new FormData();
      form.append('file', input.files[0]);
      report(out, `Uploading ${input.files[0].name}…`, false);
      await busy(q('.upload-button'), async () => {
        try {
          const reply = await api(this.path + '/profile-picture', { method: 'POST', body: form });
          q('.before .pics').replaceChildren(...pictures(reply.before, 'Before'));
          q('.after .pics').replaceChildren(...pictures(reply.after, 'After'));
          q('.result').hidden = false;
          this.setAvatar(reply.after);
          this.detailAt = Date.now();
          report(out, 'Done: the new picture is set. Before and after are shown below.', false);
          input.value = '';
        } catch (err) {
          report(out, errorText(err), true);
        }
      });
    }

    // rotate gives the instance a new token and shows it once.
    async rotate() {
      const out = this.q('.action-status');
      await busy(this.q('.rotate-button'), async () => {
        try {
          const reply = await api(this.path + '/rotate-token', { method: 'POST' });
          this.q('.token').textContent = reply.apiTokenInstance;
          this.q('.token-box').hidden = false;
          report(out, 'Done: the token was replaced. Copy the new one now: it is shown only once.', false);
        } catch (err) {
          report(out, errorText(err), true);
        }
      });
    }

    hideToken() {
      this.q('.token').textContent = '';
      this.q('.token-box').hidden = true;
      report(this.q('.action-status'), '', false);
      this.q('.rotate-button').focus();
    }

    async logout() {
      const out = this.q('.action-status');
      await busy(this.q('.logout-button'), async () => {
        try {
          await api(this.path + '/logout', { method: 'POST' });
          report(out, 'Done: the account was logged out; link it again with the QR code.', false);
          this.detailAt = 0;
          kick();
        } catch (err) {
          report(out, errorText(err), true);
        }
      });
    }

    async scan() {
      const out = this.q('.action-status');
      await busy(this.q('.scan-button'), async () => {
        try {
          await api(this.path + '/sandbox/scan', { method: 'POST' });
          report(out, 'Done: the sandbox phone scanned the code.', false);
          this.detailAt = 0;
          kick();
        } catch (err) {
          report(out, errorText(err), true);
        }
      });
    }

    askDelete(ask) {
      const box = this.q('.confirm-delete');
      box.hidden = !ask;
      if (ask) {
        this.q('.confirm-text').textContent = `Delete ${this.name}? A linked account is logged out first, and everything portrait stores for it is removed. This cannot be undone.`;
        this.q('.cancel-delete-button').focus();
      } else {
        this.q('.delete-button').focus();
      }
    }

    async delete() {
      const out = this.q('.action-status');
      await busy(this.q('.confirm-delete-button'), async () => {
        try {
          await api(this.path, { method: 'DELETE' });
          say(`${this.name} was deleted.`);
          setStatus(`Deleted ${this.name}.`, false);
          this.remove();
          cards.delete(this.id);
          byId('instances-heading').focus();
        } catch (err) {
          report(out, errorText(err), true);
        }
      });
    }

    async pairingCode() {
      const q = this.q;
      const out = q('.pairing-status');
      const phone = q('[data-field="phone"]').value.trim();
      await busy(q('.pairing-button'), async () => {
        try {
          const reply = await api(this.path + '/pairing-code', { method: 'POST', json: { phoneNumber: phone } });
          if (reply.status) {
            out.replaceChildren('Type this code on the phone (Linked devices → Link with phone number): ', el('strong', { className: 'pairing-code', textContent: reply.code }));
            out.classList.remove('error');
          } else {
            report(out, 'Error: ' + (reply.reason || 'no code'), true);
          }
        } catch (err) {
          report(out, errorText(err), true);
        }
      });
    }

    async saveCredential() {
      const q = this.q;
      const input = q('[data-field="credential"]');
      const out = q('.credential-status');
      await busy(q('.credential-button'), async () => {
        try {
          await api(this.path + '/credential', { method: 'POST', json: { credential: input.value.trim() } });
          input.value = '';
          report(out, 'Saved: the instance uses the bot token now.', false);
          this.detailAt = 0;
        } catch (err) {
          report(out, errorText(err), true);
        }
      });
    }

    // loadSettings fills the settings form from getSettings.
    async loadSettings() {
      const q = this.q;
      const load = q('.settings-load');
      try {
        const st = await api(this.path + '/settings');
        for (const input of q('.main-settings').querySelectorAll('[data-setting]')) {
          const v = st[input.dataset.setting];
          if (input.type === 'checkbox') {
            input.checked = v === 'yes';
          } else {
            input.value = v || '';
          }
        }
        const stored = q('.stored-fields');
        stored.replaceChildren();
        for (const [name, value] of Object.entries(st)) {
          if (MAIN_SETTINGS.includes(name) || READ_ONLY_SETTINGS.includes(name)) {
            continue;
          }
          const id = `instance-${this.id}-setting-${name}`;
          const input = el('input', { id });
          input.dataset.setting = name;
          let row;
          if (value === 'yes' || value === 'no') {
            input.type = 'checkbox';
            input.checked = value === 'yes';
            row = el('div', { className: 'check' }, [input, el('label', { htmlFor: id, textContent: name })]);
          } else {
            if (typeof value === 'number') {
              input.type = 'number';
              input.dataset.number = '1';
            } else {
              input.type = 'text';
            }
            input.value = String(value);
            row = el('div', { className: 'field' }, [el('label', { htmlFor: id, textContent: name }), input]);
          }
          stored.append(row);
        }
        q('.main-settings').disabled = false;
        this.settingsLoaded = true;
        report(load, '', false);
        load.hidden = true;
      } catch (err) {
        report(load, errorText(err), true);
      }
    }

    // settingsBody is the form as setSettings takes it.
    settingsBody() {
      const body = {};
      for (const input of this.q('.settings').querySelectorAll('[data-setting]')) {
        const name = input.dataset.setting;
        if (input.type === 'checkbox') {
          body[name] = input.checked ? 'yes' : 'no';
        } else if (input.dataset.number) {
          body[name] = Number(input.value);
        } else {
          body[name] = input.value.trim();
        }
      }
      return body;
    }

    async saveSettings() {
      const q = this.q;
      const out = q('.settings-status');
      if (!this.settingsLoaded) {
        report(out, 'Error: the settings are not loaded yet.', true);
        return;
      }
      await busy(q('.save-settings'), async () => {
        try {
          await api(this.path + '/settings', { method: 'POST', json: this.settingsBody() });
          report(out, `Saved at ${new Date().toLocaleTimeString()}: the settings apply at once.`, false);
        } catch (err) {
          report(out, errorText(err), true);
        }
      });
    }

    // testWebhook posts a test notification to the webhook in the form
    // (saved or not) and shows the receiver's answer.
    async testWebhook() {
      const q = this.q;
      const out = q('.settings-status');
      const box = q('.test-result');
      const json = this.settingsLoaded ? {
        webhookUrl: q('[data-field="webhook-url"]').value.trim(),
        webhookUrlToken: q('[data-field="webhook-token"]').value.trim(),
      } : {};
      report(out, 'Sending a test notification…', false);
      await busy(q('.test-webhook'), async () => {
        try {
          const r = await api(this.path + '/webhook-test', { method: 'POST', json });
          const answer = r.status ? r.statusText || String(r.status) : '';
          if (r.delivered) {
            q('.test-answer').textContent = `${answer}: delivered`;
          } else if (r.status) {
            q('.test-answer').textContent = `Error: ${r.error}`;
          } else {
            q('.test-answer').textContent = `No answer. Error: ${r.error}`;
          }
          q('.test-answer').classList.toggle('error', !r.delivered);
          q('.test-time').textContent = `${r.tookMs} ms`;
          q('.test-body').textContent = r.body || '(empty)';
          box.hidden = false;
          box.dataset.delivered = r.delivered ? 'yes' : 'no';
          report(out, r.delivered ? 'The receiver accepted the test notification.' : 'The receiver did not accept the test notification: see below.', !r.delivered);
        } catch (err) {
          box.hidden = true;
          report(out, errorText(err), true);
        }
      });
    }

    async refreshNotifications() {
      const q = this.q;
      const out = q('.notifications-status');
      try {
        const n = await api(this.path + '/notifications');
        q('.n-delivery').textContent = n.delivery === 'webhook' ? 'to the webhook (webhookUrl)' : 'by polling (receiveNotification)';
        q('.n-depth').textContent = String(n.depth);
        q('.n-depth').dataset.depth = String(n.depth);
        const a = n.lastAttempt;
        const attempt = q('.n-attempt');
        if (a) {
          let text = `${time(a.at)}: notification ${a.receiptId}, attempt ${a.attempt}: ${a.outcome} (${a.tookMs} ms)`;
          if (a.error) {
            text += `. Error: ${a.error}`;
          }
          if (a.retryAt) {
            text += `. Next attempt at ${time(a.retryAt)}`;
          }
          attempt.textContent = text;
          attempt.dataset.outcome = a.outcome;
          attempt.classList.toggle('error', a.outcome !== 'delivered');
        } else {
          attempt.textContent = 'none since the server started';
          attempt.dataset.outcome = '';
          attempt.classList.remove('error');
        }
        const head = q('.n-head');
        if (n.head) {
          head.textContent = `receipt ${n.head.receiptId}, queued ${time(n.head.createdAt)}\n` + JSON.stringify(n.head.body, null, 2);
        } else {
          head.textContent = 'The queue is empty.';
        }
        report(out, `Updated at ${new Date().toLocaleTimeString()}.`, false);
      } catch (err) {
        report(out, errorText(err), true);
      }
    }

    // lookup shows any chat's avatar: the outcome and both pictures.
    async lookup() {
      const q = this.q;
      const out = q('.lookup-status');
      const pics = q('.lookup-pics');
      const chat = q('[data-field="lookup-chat"]').value.trim();
      pics.replaceChildren();
      report(out, `Looking up ${chat}…`, false);
      await busy(q('.lookup-button'), async () => {
        try {
          const r = await api(this.path + '/avatar', { method: 'POST', json: { chatId: chat } });
          const words = {
            picture: 'has a picture',
            hidden: 'hides its picture (privacy settings): available is false',
            none: 'has no picture (or no account, or no such group)',
          };
          report(out, `${r.chatId} ${words[r.outcome] || r.outcome}.`, false);
          out.dataset.outcome = r.outcome;
          if (r.outcome === 'picture') {
            pics.replaceChildren(...pictures(r, r.chatId));
          }
        } catch (err) {
          out.dataset.outcome = 'error';
          report(out, errorText(err), true);
        }
      });
    }

    async setGroupPicture() {
      const q = this.q;
      const out = q('.group-status');
      const pics = q('.group-pics');
      const file = q('[data-field="group-file"]');
      const group = q('[data-field="group-id"]').value.trim();
      if (!file.files || file.files.length === 0) {
        report(out, 'Error: choose a picture file first.', true);
        file.focus();
        return;
      }
      const form = new FormData();
      form.append('groupId', group);
      form.append('file', file.files[0]);
      pics.replaceChildren();
      report(out, `Uploading ${file.files[0].name}…`, false);
      await busy(q('.group-button'), async () => {
        try {
          const r = await api(this.path + '/group-picture', { method: 'POST', body: form });
          if (r.setGroupPicture) {
            report(out, `Done: the picture of ${group} is set.`, false);
            out.dataset.outcome = 'set';
            pics.replaceChildren(...pictures({ urlAvatar: r.urlAvatar }, 'The group\'s new picture'));
          } else {
            out.dataset.outcome = 'refused';
            report(out, `The messenger refused: ${r.reason}`, true);
          }
        } catch (err) {
          out.dataset.outcome = 'error';
          report(out, errorText(err), true);
        }
      });
    }

    remove() {
      this.root.remove();
    }
  }

  // The new-instance form.
  const createType = byId('create-type');
  const createEngine = byId('create-engine');
  const createStatus = byId('create-status');

  // fillEngines offers the engines that serve the chosen type.
  function fillEngines() {
    const type = createType.value;
    const before = createEngine.value;
    createEngine.replaceChildren();
    for (const e of engines) {
      if (!e.types.includes(type)) {
        continue;
      }
      const note = e.default ? ' (default)' : e.credential ? ' (needs a bot token)' : '';
      const opt = el('option', { value: e.name, textContent: e.name + note });
      createEngine.append(opt);
      if (e.name === before || (!before && e.default)) {
        opt.selected = true;
      }
    }
    showCredentialField();
  }

  function showCredentialField() {
    const e = engines.find((x) => x.name === createEngine.value);
    byId('create-credential-field').hidden = !(e && e.credential);
  }

  async function loadEngines() {
    try {
      engines = await api('/admin/engines');
      fillEngines();
    } catch (err) {
      report(createStatus, errorText(err), true);
    }
  }

  createType.addEventListener('change', fillEngines);
  createEngine.addEventListener('change', showCredentialField);
  byId('create-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { typeInstance: createType.value, engine: createEngine.value };
    const cred = byId('create-credential');
    if (!byId('create-credential-field').hidden && cred.value.trim() !== '') {
      body.credential = cred.value.trim();
    }
    report(createStatus, 'Creating the instance…', false);
    await busy(byId('create-button'), async () => {
      try {
        const r = await api('/admin/instances', { method: 'POST', json: body });
        cred.value = '';
        byId('created-url').textContent = r.apiUrl;
        byId('created-id').textContent = String(r.idInstance);
        byId('created-token').textContent = r.apiTokenInstance;
        byId('created').hidden = false;
        byId('created-heading').focus();
        report(createStatus, `Created ${messengerName(r.typeInstance)} instance ${r.idInstance} on ${r.engine}.`, false);
        say(`Created instance ${r.idInstance}. Its token is shown once, below the form.`);
        kick();
      } catch (err) {
        report(createStatus, errorText(err), true);
      }
    });
  });
  byId('created-done').addEventListener('click', () => {
    byId('created-token').textContent = '';
    byId('created').hidden = true;
    report(createStatus, '', false);
    createType.focus();
  });

  let timer = 0;

  async function tick() {
    window.clearTimeout(timer);
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
    timer = window.setTimeout(tick, document.hidden ? HIDDEN_POLL_MS : POLL_MS);
  }

  // kick refreshes the page soon, after an action changed something.
  function kick() {
    window.clearTimeout(timer);
    timer = window.setTimeout(tick, 200);
  }

  loadEngines();
  tick();
})();
