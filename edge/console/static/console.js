// Atrax console: fills the server-rendered pages from the gateway's own
// API, in the browser, with the signed-in token.
//
// The session is a JWT from /auth kept in sessionStorage (this tab only)
// and sent as Authorization: Bearer on every call; nothing is sent by the
// browser on its own (no cookies), so there is nothing to forge across
// sites. Every element is built with textContent and attributes, never
// from HTML strings: data from servers (tool descriptions, errors) cannot
// become markup. The page's Content-Security-Policy allows this file and
// the stylesheet, nothing inline.
'use strict';

(() => {
  const TOKEN_KEY = 'atrax.console.token';
  const STATELESS = '2026-07-28';
  const POLL_MS = 2000;
  const LISTS = {
    tools: {method: 'tools/list', key: 'tools', id: 'name'},
    prompts: {method: 'prompts/list', key: 'prompts', id: 'name'},
    resources: {method: 'resources/list', key: 'resources', id: 'uri'},
    resourceTemplates: {method: 'resources/templates/list', key: 'resourceTemplates', id: 'uriTemplate'},
  };

  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const body = document.body;
  const version = body.dataset.version || 'dev';

  // me is the signed-in principal (/ui/api/session).
  let me = null;

  // ---------------------------------------------------------------- DOM

  // el builds an element: el('a', {href: '/x', text: 'X'}, child, ...).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function show(node, on = true) { if (node) node.hidden = !on; }

  function setText(node, text) { if (node) node.textContent = text; }

  // status writes a message in a role=status line, marked ok or error.
  function status(node, text, ok = true) {
    if (!node) return;
    node.textContent = text;
    node.classList.toggle('status-ok', ok && text !== '');
    node.classList.toggle('status-error', !ok);
  }

  function notice(text, kind = 'ok') {
    const n = $('#notice');
    if (!n) return;
    n.className = 'banner banner-' + kind;
    n.textContent = text;
    show(n, text !== '');
  }

  const STATE_CLASS = {
    running: 'badge-ok', ok: 'badge-ok', connected: 'badge-ok', yes: 'badge-ok',
    failed: 'badge-bad', error: 'badge-bad', denied: 'badge-bad', disconnected: 'badge-bad', revoked: 'badge-bad',
    starting: 'badge-warn', restarting: 'badge-warn',
  };

  function badge(word) {
    return el('span', {class: 'badge ' + (STATE_CLASS[word] || 'badge-idle'), text: word || 'unknown'});
  }

  function fmtTime(s) {
    if (!s) return '';
    const d = new Date(s);
    return isNaN(d) ? s : d.toLocaleString();
  }

  function timeEl(s) {
    return s ? el('time', {datetime: s, text: fmtTime(s)}) : '';
  }

  function fmtDuration(s) {
    if (!s) return '';
    const m = /^(-?[\d.]+)s$/.exec(s);
    if (!m) return s;
    const secs = Number(m[1]);
    return secs < 1 ? Math.round(secs * 1000) + ' ms' : secs.toFixed(secs < 10 ? 2 : 1) + ' s';
  }

  function pretty(v) { return JSON.stringify(v, null, 2); }

  function emptyRow(tbody, cols, text) {
    tbody.replaceChildren(el('tr', {}, el('td', {colspan: cols, text})));
  }

  function serverLink(name) {
    return name ? el('a', {href: '/ui/servers/' + encodeURIComponent(name), text: name}) : '';
  }

  // ---------------------------------------------------------------- API

  const session = {
    get token() { return sessionStorage.getItem(TOKEN_KEY) || ''; },
    set(token) { sessionStorage.setItem(TOKEN_KEY, token); },
    clear() { sessionStorage.removeItem(TOKEN_KEY); },
  };

  // api calls the gateway. It never throws: a failure is {ok: false}.
  async function api(method, path, {body: payload, auth = true, headers = {}} = {}) {
    const h = {Accept: 'application/json', ...headers};
    let data;
    if (payload !== undefined) {
      h['Content-Type'] = 'application/json';
      data = JSON.stringify(payload);
    }
    if (auth && session.token && !h.Authorization) h.Authorization = 'Bearer ' + session.token;
    let res;
    try {
      res = await fetch(path, {method, headers: h, body: data, credentials: 'omit', cache: 'no-store', redirect: 'error'});
    } catch (err) {
      return {status: 0, ok: false, data: {message: 'the gateway could not be reached (' + err.message + ')'}, headers: new Headers()};
    }
    const text = await res.text();
    let parsed = null;
    if (text) {
      try { parsed = JSON.parse(text); } catch { parsed = {message: text.trim()}; }
    }
    if (res.status === 401 && auth && h.Authorization === 'Bearer ' + session.token && session.token) {
      ended();
    }
    return {status: res.status, ok: res.ok, data: parsed, headers: res.headers, text};
  }

  // problem says what went wrong with an API answer, in its own words.
  function problem(r) {
    const d = r.data || {};
    if (d.error_description) return d.error_description;
    if (d.error && typeof d.error === 'object' && d.error.message) return d.error.message;
    if (typeof d.error === 'string') return d.error;
    if (d.message) return d.message;
    return r.status ? 'the gateway answered ' + r.status : 'no answer';
  }

  // ended drops a session the gateway no longer accepts (expired or
  // revoked) and goes to the sign-in page.
  let ending = false;
  function ended() {
    if (ending) return;
    ending = true;
    session.clear();
    location.assign('/ui/login?ended=1&next=' + encodeURIComponent(location.pathname + location.search));
  }

  // headerValue is the header form of a value (MCP's =?base64?...?= for
  // what is not plain ASCII).
  function headerValue(s) {
    s = String(s);
    let needs = /^[ \t]|[ \t]$/.test(s) || /[^\x20-\x7e]/.test(s) || (s.startsWith('=?base64?') && s.endsWith('?='));
    if (!needs) return s;
    const bytes = new TextEncoder().encode(s);
    let bin = '';
    for (const b of bytes) bin += String.fromCharCode(b);
    return '=?base64?' + btoa(bin) + '?=';
  }

  // paramHeaders mirrors the arguments a tool's schema marks with
  // x-mcp-header into Mcp-Param-NAME headers, as the 2026-07-28
  // revision asks.
  function paramHeaders(tool, args) {
    const out = {};
    const walk = (props, path) => {
      for (const [name, p] of Object.entries(props || {})) {
        const at = path.concat(name);
        if (p && typeof p['x-mcp-header'] === 'string' && p['x-mcp-header']) {
          let v = args;
          for (const k of at) v = (v && typeof v === 'object') ? v[k] : undefined;
          if (typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isSafeInteger(v))) {
            out['Mcp-Param-' + p['x-mcp-header']] = headerValue(String(v));
          }
        }
        if (p && p.properties) walk(p.properties, at);
      }
    };
    walk(tool && tool.inputSchema && tool.inputSchema.properties, []);
    return out;
  }

  // mcp sends one stateless MCP request to /mcp and returns its answer:
  // {status, result, error, requestId, raw}, and jsonrpc when the answer
  // was a JSON-RPC response (an error without it is the HTTP answer's).
  let rpcID = 0;
  async function mcp(method, params = {}, extraHeaders = {}) {
    const p = {...params, _meta: {
      ...(params._meta || {}),
      'io.modelcontextprotocol/protocolVersion': STATELESS,
      // A tool may ask its caller to fill in a form (elicitation) or for
      // a model's reply (sampling): the person at the console gives them
      // (inputRequired).
      'io.modelcontextprotocol/clientCapabilities': method === 'tools/call' ? {elicitation: {}, sampling: {}} : {},
      'io.modelcontextprotocol/clientInfo': {name: 'atrax-console', version},
    }};
    const h = {
      'Accept': 'application/json, text/event-stream',
      'Content-Type': 'application/json',
      'MCP-Protocol-Version': STATELESS,
      'Mcp-Method': method,
      ...extraHeaders,
    };
    if (method === 'tools/call' || method === 'prompts/get') h['Mcp-Name'] = headerValue(p.name);
    if (method === 'resources/read') h['Mcp-Name'] = headerValue(p.uri);
    if (session.token) h.Authorization = 'Bearer ' + session.token;
    const id = ++rpcID;
    let res;
    try {
      res = await fetch('/mcp', {method: 'POST', headers: h, body: JSON.stringify({jsonrpc: '2.0', id, method, params: p}),
        credentials: 'omit', cache: 'no-store', redirect: 'error'});
    } catch (err) {
      return {status: 0, error: {code: 0, message: 'the gateway could not be reached (' + err.message + ')'}};
    }
    const text = await res.text();
    const out = {status: res.status, requestId: res.headers.get('X-Request-Id') || '', raw: text};
    if (res.status === 401) {
      if (session.token) ended();
      out.error = {code: 401, message: 'your session is no longer accepted'};
      return out;
    }
    let frames = [text];
    if ((res.headers.get('Content-Type') || '').startsWith('text/event-stream')) {
      frames = [];
      for (const event of text.split(/\r?\n\r?\n/)) {
        const data = event.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, ''));
        if (data.length) frames.push(data.join('\n'));
      }
    }
    for (const f of frames) {
      let m;
      try { m = JSON.parse(f); } catch { continue; }
      if (m && m.id === id) {
        out.jsonrpc = true;
        out.result = m.result;
        out.error = m.error;
        out.raw = pretty(m);
      }
    }
    if (!out.result && !out.error) {
      out.error = {code: res.status, message: text.trim() || 'the gateway answered ' + res.status};
    }
    return out;
  }

  // listAll follows a list's pages. An edge answers a list that none of
  // the token's servers offers with an error: that is an empty list here.
  async function listAll(kind) {
    const {method, key} = LISTS[kind];
    const items = [];
    let cursor;
    for (let page = 0; page < 100; page++) {
      const r = await mcp(method, cursor ? {cursor} : {});
      if (r.error) return {items, error: r.error};
      items.push(...(r.result[key] || []));
      cursor = r.result.nextCursor;
      if (!cursor) break;
    }
    return {items};
  }

  async function owners() {
    const r = await api('GET', '/ui/api/owners');
    return r.ok ? r.data : {tools: {}, prompts: {}, resources: {}, resourceTemplates: {}};
  }

  // poll runs fn now and every POLL_MS after it ends, while the page is
  // visible.
  function poll(fn) {
    const loop = async () => {
      if (!document.hidden) {
        try { await fn(); } catch (err) { console.error(err); }
      }
      setTimeout(loop, POLL_MS);
    };
    loop();
  }

  // ---------------------------------------------------------------- session

  function safeNext(next) {
    return typeof next === 'string' && /^\/ui\/[^/\\]?/.test(next) && !next.startsWith('//') ? next : '/ui/';
  }

  async function whoami() {
    const r = await api('GET', '/ui/api/session');
    if (!r.ok) return null;
    return r.data;
  }

  function showWho() {
    const who = $('#who');
    if (!who || !me) return;
    setText($('#who-name'), me.subject);
    setText($('#who-scope'), me.admin ? 'admin' : 'no admin scope');
    const out = $('#sign-out');
    if (me.kind === 'anonymous' && !session.token) {
      show(out, false);
    } else {
      out.addEventListener('click', signOut);
    }
    show(who);
  }

  async function signOut() {
    // The session's own token is revoked when it may be (admin), so that
    // it is worth nothing even if it was copied from this tab.
    if (me && me.admin && me.tokenId && session.token) {
      await api('POST', '/auth/revoke', {body: {jti: me.tokenId}});
    }
    session.clear();
    location.assign('/ui/login?signedout=1');
  }

  // gateAdmin disables what needs the admin scope, and says why.
  function gateAdmin() {
    if (!me || me.admin) return;
    const note = $('#admin-note');
    if (note) {
      note.textContent = 'You are signed in as ' + me.subject + ', without the admin scope: managing servers, revoking tokens and reading the audit log need it, and are disabled here. Sign in with an admin token to use them.';
      show(note);
    }
    for (const e of $$('[data-admin]')) disableForAdmin(e);
  }

  function disableForAdmin(e) {
    e.disabled = true;
    const ids = (e.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean);
    if (!ids.includes('admin-note')) ids.push('admin-note');
    e.setAttribute('aria-describedby', ids.join(' '));
    if (e.tagName === 'BUTTON') e.title = 'Needs the admin scope';
  }

  function adminButton(attrs, text) {
    const b = el('button', {type: 'button', ...attrs}, text);
    if (me && !me.admin) disableForAdmin(b);
    return b;
  }

  // ---------------------------------------------------------------- sign in

  async function loginPage() {
    const q = new URLSearchParams(location.search);
    const next = safeNext(q.get('next'));
    if (q.get('ended')) notice('Your session ended: it expired or was revoked. Sign in again.', 'warn');
    if (q.get('signedout')) notice('Signed out. The session token was dropped from this tab.', 'ok');

    // A gateway without auth needs no sign-in; a valid session goes on.
    const anon = await api('GET', '/ui/api/session', {auth: false});
    if (anon.ok) {
      show($('#login-none'));
      show($('#login-forms'), false);
      return;
    }
    if (session.token && await whoami()) {
      location.replace(next);
      return;
    }

    const tokenForm = $('#login-token');
    tokenForm.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const input = $('#l-token');
      const tok = input.value.trim();
      const ttl = $('#l-ttl').value.trim();
      const err = $('#l-token-error');
      fieldError(input, err, '');
      if (!tok) return fieldError(input, err, 'Enter a token.', true);
      const extra = ttl ? {ttl} : {};
      busy(tokenForm, true);
      // A static token is exchanged as the body's credential; a JWT (or
      // a static token in "token" mode) as the caller's own token.
      let r = await api('POST', '/auth', {body: {token: tok, ...extra}, auth: false});
      if (r.status === 401) {
        const asCaller = await api('POST', '/auth', {body: extra, auth: false, headers: {Authorization: 'Bearer ' + tok}});
        // Neither way: the first answer says why best ("unknown token").
        if (asCaller.ok || asCaller.status !== 401) r = asCaller;
      }
      busy(tokenForm, false);
      if (!r.ok || !r.data || !r.data.access_token) {
        return fieldError(input, err, 'Not signed in: ' + problem(r) + '.', true);
      }
      input.value = '';
      session.set(r.data.access_token);
      location.assign(next);
    });

    const clientForm = $('#login-client');
    clientForm.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const id = $('#l-client-id');
      const secret = $('#l-client-secret');
      const err = $('#l-client-error');
      fieldError(secret, err, '');
      id.removeAttribute('aria-invalid');
      if (!id.value.trim() || !secret.value) {
        if (!id.value.trim()) id.setAttribute('aria-invalid', 'true');
        return fieldError(id.value.trim() ? secret : id, err, 'Enter the client id and its secret.', true);
      }
      busy(clientForm, true);
      const r = await api('POST', '/auth', {auth: false, body: {grant_type: 'client_credentials', client_id: id.value.trim(), client_secret: secret.value}});
      busy(clientForm, false);
      if (!r.ok || !r.data || !r.data.access_token) {
        return fieldError(secret, err, 'Not signed in: ' + problem(r) + '.', true);
      }
      secret.value = '';
      session.set(r.data.access_token);
      location.assign(next);
    });
  }

  function busy(form, on) {
    for (const b of $$('button[type="submit"]', form)) b.disabled = on;
    form.setAttribute('aria-busy', on ? 'true' : 'false');
  }

  // fieldError shows (or, with '', clears) the error of one input.
  function fieldError(input, errNode, text, focus = false) {
    if (text) {
      input.setAttribute('aria-invalid', 'true');
      errNode.textContent = text;
      show(errNode);
      if (focus) input.focus();
    } else {
      input.removeAttribute('aria-invalid');
      errNode.textContent = '';
      show(errNode, false);
    }
  }

  // ---------------------------------------------------------------- overview

  function upstreamsOf(st, name) {
    const out = [];
    for (const e of st.edges || []) {
      const u = (e.upstreams || []).find((x) => x.name === name);
      if (u) out.push({edge: e, u});
    }
    return out;
  }

  function perEdge(list, many, render) {
    if (!list.length) return el('span', {class: 'muted', text: 'not reported'});
    return list.map(({edge, u}) => el('span', {class: 'state-line'},
      many ? el('span', {class: 'sr-only', text: 'on ' + edge.edgeId + ': '}) : '',
      render(u),
      many ? el('span', {class: 'sub', text: edge.edgeId}) : ''));
  }

  async function overviewPage() {
    let last = '';
    const seen = new Map();
    let first = true;
    poll(async () => {
      const r = await api('GET', '/status', {auth: false});
      const err = $('#poll-error');
      if (!r.ok) {
        err.textContent = 'The status could not be read: ' + problem(r) + '. Trying again every 2 seconds.';
        show(err);
        return;
      }
      show(err, false);
      setText($('#updated'), 'Updated ' + new Date().toLocaleTimeString() + ', every 2 seconds.');
      const sig = JSON.stringify([r.data.servers, (r.data.edges || []).map((e) => [e.edgeId, e.connected, e.snapshotVersion, e.upstreams, e.sessions])]);
      if (sig === last) return;
      last = sig;
      renderOverview(r.data);
      // Changes of state are announced to screen readers.
      const changes = [];
      for (const e of r.data.edges || []) {
        for (const u of e.upstreams || []) {
          const key = e.edgeId + '/' + u.name;
          if (!first && seen.get(key) !== u.state) changes.push(u.name + ' is ' + u.state);
          seen.set(key, u.state);
        }
      }
      first = false;
      if (changes.length) setText($('#announce'), changes.join('. ') + '.');
    });
  }

  function renderOverview(st) {
    const servers = st.servers || [];
    const edges = st.edges || [];
    const many = edges.length > 1;
    const tbody = $('#servers-body');
    if (!servers.length) {
      emptyRow(tbody, 7, 'No servers yet. Add one with "Add a server".');
    } else {
      tbody.replaceChildren(...servers.map((s) => {
        const ups = upstreamsOf(st, s.name);
        const transport = ups.length ? ups[0].u.transportType : s.transportType;
        const proto = ups.length ? ups[0].u.protocolVersion : '';
        return el('tr', {'data-server': s.name},
          el('th', {scope: 'row'}, serverLink(s.name), s.description ? el('span', {class: 'sub', text: s.description}) : ''),
          el('td', {}, transport || '—', proto ? el('span', {class: 'sub', text: 'MCP ' + proto}) : ''),
          el('td', {}, badge(s.state), el('span', {class: 'sub', text: s.source === 'config' ? 'config file' : 'API'})),
          el('td', {'data-col': 'state'}, perEdge(ups, many, (u) => badge(u.state))),
          el('td', {class: 'num', 'data-col': 'tools'}, perEdge(ups, many, (u) => String(u.toolCount || 0))),
          el('td', {class: 'num'}, perEdge(ups, many, (u) => String(u.restarts || 0))),
          el('td', {}, perEdge(ups, many, (u) => u.lastError ? el('span', {class: 'err-text', text: u.lastError}) : '—')));
      }));
    }
    const ebody = $('#edges-body');
    if (!edges.length) {
      emptyRow(ebody, 6, 'No edge has reported yet.');
    } else {
      ebody.replaceChildren(...edges.map((e) => el('tr', {},
        el('th', {scope: 'row', text: e.edgeId}),
        el('td', {text: e.address || ''}),
        el('td', {}, badge(e.connected ? 'connected' : 'disconnected')),
        el('td', {class: 'num', text: String(e.snapshotVersion || 0)}),
        el('td', {text: (e.sessions || []).map((s) => s.transport + ': ' + (s.count || 0)).join(', ') || '0'}),
        el('td', {}, timeEl(e.lastSeenTime)))));
    }
  }

  // ---------------------------------------------------------------- server page

  async function serverPage() {
    const name = body.dataset.server;
    const q = new URLSearchParams(location.search);
    if (q.get('saved') === 'created') notice('Server ' + name + ' added. Its state and tools appear below once it runs.', 'ok');
    if (q.get('saved') === 'updated') notice('Server ' + name + ' saved. Edges restart it with the new definition.', 'ok');

    // Actions.
    const actionStatus = $('#action-status');
    for (const b of $$('[data-action]')) {
      b.addEventListener('click', async () => {
        const action = b.dataset.action;
        b.disabled = true;
        status(actionStatus, 'Asking to ' + action + ' ' + name + '…');
        const r = await api('POST', '/servers/' + encodeURIComponent(name) + '/' + action, {body: {}});
        b.disabled = false;
        if (r.ok) status(actionStatus, {start: 'Start', stop: 'Stop', restart: 'Restart'}[action] + ' requested: every edge applies it.');
        else status(actionStatus, 'Could not ' + action + ' ' + name + ': ' + problem(r) + '.', false);
      });
    }
    const del = $('#delete');
    const confirmBox = $('#delete-confirm');
    del.addEventListener('click', () => { show(confirmBox); $('#delete-no').focus(); });
    $('#delete-no').addEventListener('click', () => { show(confirmBox, false); del.focus(); });
    $('#delete-yes').addEventListener('click', async () => {
      const r = await api('DELETE', '/servers/' + encodeURIComponent(name));
      if (r.ok) {
        location.assign('/ui/?removed=' + encodeURIComponent(name));
      } else {
        show(confirmBox, false);
        status(actionStatus, 'Could not remove ' + name + ': ' + problem(r) + '.', false);
      }
    });

    // The definition, for admins.
    const def = $('#definition');
    if (me.admin) {
      const r = await api('GET', '/servers/' + encodeURIComponent(name));
      if (r.ok) {
        renderDefinition(def, r.data);
        const api_ = r.data.source !== 'config';
        show($('#edit-link'), api_);
        show(del, api_);
        show($('#readonly-note'), !api_);
      } else if (r.status === 404) {
        show($('#server-missing'));
        def.replaceChildren(el('dt', {text: 'Definition'}), el('dd', {text: 'none'}));
      } else {
        def.replaceChildren(el('dt', {text: 'Definition'}), el('dd', {text: 'not read: ' + problem(r)}));
      }
    } else {
      def.replaceChildren(el('dt', {text: 'Definition'}), el('dd', {text: 'Reading a definition needs the admin scope.'}));
    }

    // The state, every 2 seconds; the lists again whenever it changes.
    let sig = null;
    poll(async () => {
      const r = await api('GET', '/status', {auth: false});
      if (!r.ok) return;
      const s = (r.data.servers || []).find((x) => x.name === name);
      show($('#server-missing'), !s);
      const ups = upstreamsOf(r.data, name);
      renderState(s, ups, (r.data.edges || []).length > 1);
      const next = JSON.stringify(ups.map(({u}) => [u.state, u.toolCount, u.promptCount, u.resourceCount, u.sinceTime]));
      if (next !== sig) {
        sig = next;
        loadCatalog(name);
      }
    });

    const refresh = $('#calls-refresh');
    refresh.addEventListener('click', () => loadCalls(name));
    loadCalls(name);
  }

  function renderDefinition(dl, s) {
    const rows = [];
    const add = (k, v) => { if (v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && !v.length)) rows.push(el('dt', {text: k}), el('dd', {}, v)); };
    const code = (v) => el('code', {text: v});
    add('Source', s.source === 'config' ? 'the config file (read-only here)' : 'the API');
    add('Transport', s.transportType || 'inferred');
    add('URL', s.url ? code(s.url) : '');
    add('Headers', s.headers ? Object.keys(s.headers).map((k) => el('span', {class: 'state-line'}, code(k + ': ' + s.headers[k]))) : '');
    add('Command', s.command ? code([s.command].concat(s.args || []).join(' ')) : '');
    add('Environment', s.env ? Object.keys(s.env).map((k) => el('span', {class: 'state-line'}, code(k + '=' + s.env[k]))) : '');
    add('Working directory', s.cwd ? code(s.cwd) : '');
    add('Tags', (s.tags || []).join(', '));
    add('Tools allowed', s.tools && s.tools.allow ? s.tools.allow.join(', ') : '');
    add('Tools denied', s.tools && s.tools.deny ? s.tools.deny.join(', ') : '');
    add('Prefix', s.prefix);
    add('Call timeout', s.timeout);
    add('Isolation', s.isolation);
    add('Pinned tools', s.pinTools ? 'yes' : '');
    add('Disabled', s.disabled ? 'yes' : '');
    add('Created', timeEl(s.createTime));
    add('Changed', timeEl(s.updateTime));
    if (s.description) {
      const d = $('#server-desc');
      d.textContent = s.description;
      show(d);
    }
    dl.replaceChildren(...rows);
  }

  function renderState(s, ups, many) {
    const dl = $('#state');
    if (!s) {
      dl.replaceChildren(el('dt', {text: 'State'}), el('dd', {text: 'no such server'}));
      return;
    }
    const rows = [
      el('dt', {text: 'Desired'}), el('dd', {}, badge(s.state)),
      el('dt', {text: 'State'}), el('dd', {id: 'server-state'}, perEdge(ups, many, (u) => badge(u.state))),
    ];
    if (ups.length) {
      const u = ups[0].u;
      rows.push(el('dt', {text: 'Transport'}), el('dd', {text: (u.transportType || s.transportType || '') + (u.protocolVersion ? ', MCP ' + u.protocolVersion : '')}));
      rows.push(el('dt', {text: 'Offers'}), el('dd', {text: (u.toolCount || 0) + ' tools, ' + (u.promptCount || 0) + ' prompts, ' + (u.resourceCount || 0) + ' resources'}));
      rows.push(el('dt', {text: 'Restarts'}), el('dd', {}, perEdge(ups, many, (x) => String(x.restarts || 0))));
      rows.push(el('dt', {text: 'Since'}), el('dd', {}, perEdge(ups, many, (x) => timeEl(x.sinceTime) || '—')));
      rows.push(el('dt', {text: 'Last error'}), el('dd', {}, perEdge(ups, many, (x) => x.lastError ? el('span', {class: 'err-text', text: x.lastError}) : '—')));
      const pending = ups.flatMap(({u: x}) => x.pendingTools || []);
      if (pending.length) rows.push(el('dt', {text: 'Awaiting approval'}), el('dd', {text: Array.from(new Set(pending)).join(', ')}));
    }
    dl.replaceChildren(...rows);
  }

  let catalogSeq = 0;
  async function loadCatalog(name) {
    const seq = ++catalogSeq;
    const [own, ...lists] = await Promise.all([owners(), ...Object.keys(LISTS).map((k) => listAll(k))]);
    if (seq !== catalogSeq) return;
    const kinds = Object.keys(LISTS);
    const targets = {tools: 'tools', prompts: 'prompts', resources: 'resources', resourceTemplates: 'templates'};
    kinds.forEach((kind, i) => {
      const {items} = lists[i];
      const idKey = LISTS[kind].id;
      const mine = items.filter((it) => (own[kind] || {})[it[idKey]] === name);
      const box = $('#' + targets[kind] + '-list');
      setText($('#' + targets[kind] + '-count'), '(' + mine.length + ')');
      if (!mine.length) {
        box.replaceChildren(el('p', {class: 'muted', text: 'None' + (kind === 'tools' ? ' that your token may see, or the server is not running.' : '.')}));
        return;
      }
      box.replaceChildren(...mine.map((it) => itemDetails(kind, it)));
    });
  }

  function itemDetails(kind, it) {
    const title = kind === 'tools' || kind === 'prompts' ? it.name : (kind === 'resources' ? it.uri : it.uriTemplate);
    const desc = it.description || it.title || (it.name && it.name !== title ? it.name : '');
    const inner = [];
    if (kind === 'tools') {
      inner.push(el('p', {}, el('strong', {text: 'Input schema'})), el('pre', {class: 'code', text: pretty(it.inputSchema || {})}));
      if (it.outputSchema) inner.push(el('p', {}, el('strong', {text: 'Output schema'})), el('pre', {class: 'code', text: pretty(it.outputSchema)}));
      if (it.annotations) inner.push(el('p', {}, el('strong', {text: 'Annotations'})), el('pre', {class: 'code', text: pretty(it.annotations)}));
      inner.push(el('p', {}, el('a', {href: '/ui/try?tool=' + encodeURIComponent(it.name), text: 'Try ' + it.name})));
    } else if (kind === 'prompts') {
      inner.push(el('p', {}, el('strong', {text: 'Arguments'})), el('pre', {class: 'code', text: pretty(it.arguments || [])}));
      inner.push(el('p', {}, el('a', {href: '/ui/try?prompt=' + encodeURIComponent(it.name), text: 'Get ' + it.name})));
    } else {
      const facts = [];
      if (it.name) facts.push(el('dt', {text: 'Name'}), el('dd', {text: it.name}));
      if (it.mimeType) facts.push(el('dt', {text: 'Type'}), el('dd', {text: it.mimeType}));
      inner.push(el('dl', {class: 'facts'}, ...facts));
      inner.push(el('p', {}, kind === 'resources'
        ? el('a', {href: '/ui/try?resource=' + encodeURIComponent(it.uri), text: 'Read ' + it.uri})
        : el('a', {href: '/ui/try?template=' + encodeURIComponent(it.uriTemplate), text: 'Read from ' + it.uriTemplate})));
    }
    return el('details', {'data-item': title},
      el('summary', {}, el('span', {class: 'name', text: title}), desc ? el('span', {class: 'desc', text: ' — ' + desc}) : ''),
      ...inner);
  }

  async function loadCalls(name) {
    const tbody = $('#calls-body');
    if (!me.admin) return emptyRow(tbody, 6, 'Reading the audit log needs the admin scope.');
    const r = await api('GET', '/audit?' + new URLSearchParams({server: name, action: 'tool.call', pageSize: '20'}));
    if (!r.ok) return emptyRow(tbody, 6, 'The audit log could not be read: ' + problem(r) + '.');
    const events = r.data.events || [];
    if (!events.length) return emptyRow(tbody, 6, 'No calls yet.');
    tbody.replaceChildren(...events.map((e) => el('tr', {},
      el('td', {}, timeEl(e.time)),
      el('td', {text: e.actor || ''}),
      el('td', {text: e.tool || ''}),
      el('td', {}, badge(e.outcome)),
      el('td', {class: 'num', text: fmtDuration(e.duration)}),
      el('td', {class: 'err-text', text: e.error || ''}))));
  }

  // ---------------------------------------------------------------- add and edit

  const FIELD_OF = {
    name: 'name', transportType: 'transportType', type: 'transportType', command: 'command', args: 'args',
    env: 'env', cwd: 'cwd', url: 'url', headers: 'headers', description: 'description', tags: 'tags',
    disabled: 'disabled', prefix: 'prefix', timeout: 'timeout', isolation: 'isolation',
    maxSessions: 'maxSessions', pinTools: 'pinTools',
  };

  // inputFor maps an API field path (url, args[0], env.FOO, tools.deny[1],
  // mcpServers.x.url) to the form's input.
  function inputFor(path) {
    let p = String(path || '').replace(/^server\./, '').replace(/^mcpServers(\.[^.[]+|\[[^\]]*\])\./, '');
    const head = p.split(/[.[]/)[0];
    if (head === 'tools') {
      const sub = p.slice(6).split(/[.[]/)[0];
      return $('#f-' + (sub === 'deny' ? 'deny' : 'allow'));
    }
    const f = FIELD_OF[head];
    return f ? $('#f-' + f) : null;
  }

  function lines(v) { return v.split(/\r?\n/).map((l) => l.replace(/\s+$/, '')).filter((l) => l.trim() !== ''); }
  function list(v) { return v.split(/[,\n]/).map((s) => s.trim()).filter(Boolean); }

  // readServerForm turns the form into the API's server object, or says
  // which lines it cannot read.
  function readServerForm() {
    const v = (id) => $('#f-' + id).value;
    const out = {};
    const problems = [];
    const str = (key) => { const s = v(key).trim(); if (s) out[key] = s; };
    str('name'); str('transportType'); str('command'); str('cwd'); str('url');
    str('description'); str('prefix'); str('timeout'); str('isolation');
    const args = lines(v('args'));
    if (args.length) out.args = args;
    const pairs = (key, sep, what) => {
      const m = {};
      lines(v(key)).forEach((l, i) => {
        const at = l.indexOf(sep);
        if (at <= 0) {
          problems.push({field: key, description: 'line ' + (i + 1) + ' is not ' + what});
          return;
        }
        // NAME=value keeps the value as written; a header's value loses
        // the blanks after its colon.
        const val = l.slice(at + 1);
        m[l.slice(0, at).trim()] = sep === ':' ? val.trim() : val;
      });
      if (Object.keys(m).length) out[key] = m;
    };
    pairs('env', '=', 'NAME=value');
    pairs('headers', ':', 'Name: value');
    const tags = list(v('tags'));
    if (tags.length) out.tags = tags;
    const allow = list(v('allow'));
    const deny = list(v('deny'));
    if (allow.length || deny.length) {
      out.tools = {};
      if (allow.length) out.tools.allow = allow;
      if (deny.length) out.tools.deny = deny;
    }
    const ms = v('maxSessions').trim();
    if (ms) {
      if (!/^\d+$/.test(ms)) problems.push({field: 'maxSessions', description: 'must be a whole number'});
      else out.maxSessions = Number(ms);
    }
    if ($('#f-pinTools').checked) out.pinTools = true;
    if ($('#f-disabled').checked) out.disabled = true;
    return {server: out, problems};
  }

  function fillServerForm(s) {
    const set = (id, val) => { $('#f-' + id).value = val || ''; };
    set('name', s.name); set('transportType', s.transportType); set('command', s.command); set('cwd', s.cwd);
    set('url', s.url); set('description', s.description); set('prefix', s.prefix); set('timeout', s.timeout);
    set('isolation', s.isolation === 'shared' ? '' : s.isolation);
    set('args', (s.args || []).join('\n'));
    set('env', Object.entries(s.env || {}).map(([k, val]) => k + '=' + val).join('\n'));
    set('headers', Object.entries(s.headers || {}).map(([k, val]) => k + ': ' + val).join('\n'));
    set('tags', (s.tags || []).join(', '));
    set('allow', ((s.tools || {}).allow || []).join(', '));
    set('deny', ((s.tools || {}).deny || []).join(', '));
    set('maxSessions', s.maxSessions ? String(s.maxSessions) : '');
    $('#f-pinTools').checked = !!s.pinTools;
    $('#f-disabled').checked = !!s.disabled;
  }

  // apiProblems reads the field errors of a refused change: the
  // google.rpc.BadRequest of a rule broken, or the "field: problem" of a
  // value of the wrong type.
  function apiProblems(r) {
    const d = r.data || {};
    const out = [];
    for (const det of d.details || []) {
      if (String(det['@type'] || '').endsWith('google.rpc.BadRequest')) {
        for (const v of det.fieldViolations || []) out.push({field: v.field, description: v.description});
      }
    }
    if (out.length) return out;
    const msg = problem(r);
    if (r.status === 409 && /exist/i.test(msg)) return [{field: 'name', description: msg}];
    const m = /^([A-Za-z][\w.[\]"-]*): (.+)$/.exec(msg);
    if (m && inputFor(m[1])) return [{field: m[1], description: m[2]}];
    if (r.status === 403 && /command/i.test(msg)) return [{field: 'command', description: msg}];
    return [{field: '', description: msg}];
  }

  function clearServerErrors() {
    for (const e of $$('#server-form [aria-invalid]')) e.removeAttribute('aria-invalid');
    for (const e of $$('#server-form .field-error')) { e.textContent = ''; show(e, false); }
    show($('#form-errors'), false);
  }

  function showServerErrors(problems) {
    const list = $('#form-errors-list');
    const items = [];
    const byInput = new Map();
    for (const p of problems) {
      const input = p.field ? inputFor(p.field) : null;
      const text = (p.field ? p.field + ': ' : '') + p.description;
      if (input) {
        input.setAttribute('aria-invalid', 'true');
        const errNode = $('#' + input.id + '-error');
        const prev = byInput.get(input) || [];
        prev.push(text);
        byInput.set(input, prev);
        if (errNode) { errNode.textContent = prev.join('; '); show(errNode); }
        items.push(el('li', {}, el('a', {href: '#' + input.id, onclick: (ev) => { ev.preventDefault(); input.focus(); }, text})));
      } else {
        items.push(el('li', {text}));
      }
    }
    list.replaceChildren(...items);
    const box = $('#form-errors');
    show(box);
    box.focus();
  }

  async function serverFormPage() {
    const form = $('#server-form');
    const edit = form.dataset.edit || '';
    if (edit && me.admin) {
      const r = await api('GET', '/servers/' + encodeURIComponent(edit));
      if (r.ok) {
        fillServerForm(r.data);
        if (r.data.source === 'config') {
          const ro = $('#form-readonly');
          ro.textContent = edit + ' is defined by the config file: change it there. Here it can be started, stopped and restarted.';
          show(ro);
          $('#server-fields').disabled = true;
        }
      } else {
        showServerErrors([{field: '', description: 'The server could not be read: ' + problem(r)}]);
      }
    }
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clearServerErrors();
      const {server, problems} = readServerForm();
      if (!server.name) problems.unshift({field: 'name', description: 'required'});
      if (problems.length) return showServerErrors(problems);
      busy(form, true);
      const r = edit
        ? await api('PUT', '/servers/' + encodeURIComponent(edit), {body: server})
        : await api('POST', '/servers', {body: server});
      busy(form, false);
      if (r.ok) {
        location.assign('/ui/servers/' + encodeURIComponent(server.name) + '?saved=' + (edit ? 'updated' : 'created'));
        return;
      }
      showServerErrors(apiProblems(r));
    });
  }

  // ---------------------------------------------------------------- tokens

  async function tokensPage() {
    const form = $('#issue-form');
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const scope = $('#t-scope');
      const ttl = $('#t-ttl');
      fieldError(scope, $('#t-scope-error'), '');
      fieldError(ttl, $('#t-ttl-error'), '');
      const req = {};
      if (scope.value.trim()) req.scope = scope.value.trim().split(/\s+/).join(' ');
      if (ttl.value.trim()) req.ttl = ttl.value.trim();
      busy(form, true);
      const r = await api('POST', '/auth', {body: req});
      busy(form, false);
      if (!r.ok || !r.data || !r.data.access_token) {
        const msg = problem(r);
        const onTTL = /ttl|lifetime|expired/i.test(msg);
        return fieldError(onTTL ? ttl : scope, $(onTTL ? '#t-ttl-error' : '#t-scope-error'), 'Not issued: ' + msg + '.', true);
      }
      const t = r.data;
      $('#issued-token').value = t.access_token;
      $('#issued-facts').replaceChildren(
        el('dt', {text: 'Token id (jti)'}), el('dd', {}, el('code', {id: 'issued-jti', text: t.jti || ''})),
        el('dt', {text: 'Expires'}), el('dd', {text: 'in ' + fmtSeconds(t.expires_in) + ' (' + new Date(Date.now() + t.expires_in * 1000).toLocaleString() + ')'}),
        el('dt', {text: 'Scope granted'}), el('dd', {text: t.scope || 'everything your session has'}));
      show($('#issued'));
      setText($('#copy-status'), '');
      $('#issued-h').focus();
      loadTokens();
    });
    $('#copy-token').addEventListener('click', async () => {
      const area = $('#issued-token');
      try {
        await navigator.clipboard.writeText(area.value);
        setText($('#copy-status'), 'Copied.');
      } catch {
        area.focus();
        area.select();
        setText($('#copy-status'), 'Selected: press Ctrl+C (or ⌘C) to copy.');
      }
    });
    $('#revoke-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const input = $('#r-jti');
      const jti = input.value.trim();
      fieldError(input, $('#r-jti-error'), '');
      if (!jti) return fieldError(input, $('#r-jti-error'), 'Enter the id (jti) of the token to revoke.', true);
      const ok = await revoke(jti, $('#revoke-status'));
      if (ok) input.value = '';
    });
    loadTokens();
  }

  function fmtSeconds(n) {
    n = Number(n) || 0;
    if (n >= 3600 && n % 3600 === 0) return n / 3600 + ' h';
    if (n >= 60) return Math.round(n / 60) + ' min';
    return n + ' s';
  }

  const revoked = new Set();

  async function revoke(jti, statusNode) {
    const r = await api('POST', '/auth/revoke', {body: {jti}});
    if (!r.ok) {
      status(statusNode, 'Not revoked: ' + problem(r) + '.', false);
      return false;
    }
    revoked.add(jti);
    status(statusNode, 'Token ' + jti + ' revoked: every edge refuses it from now on.');
    for (const row of $$('#tokens-body tr[data-jti]')) {
      if (row.dataset.jti === jti) markRevoked(row);
    }
    return true;
  }

  function markRevoked(row) {
    const b = $('button', row);
    if (b) { b.disabled = true; b.textContent = 'Revoked'; }
    const cell = $('[data-col="outcome"]', row);
    if (cell) cell.replaceChildren(badge('revoked'));
  }

  async function loadTokens() {
    const tbody = $('#tokens-body');
    if (!me.admin) return emptyRow(tbody, 6, 'Listing tokens reads the audit log, which needs the admin scope.');
    const r = await api('GET', '/audit?' + new URLSearchParams({action: 'token.issue', pageSize: '50'}));
    if (!r.ok) return emptyRow(tbody, 6, 'The audit log could not be read: ' + problem(r) + '.');
    const events = r.data.events || [];
    if (!events.length) return emptyRow(tbody, 6, 'No tokens issued yet.');
    // Revocations made anywhere (the CLI, another console) name their jti.
    const rv = await api('GET', '/audit?' + new URLSearchParams({action: 'token.revoke', outcome: 'ok', pageSize: '200'}));
    if (rv.ok) {
      for (const e of rv.data.events || []) {
        if ((e.details || {}).jti) revoked.add(e.details.jti);
      }
    } else {
      status($('#tokens-status'), 'Revocations could not be read, so a revoked token may still show Revoke: ' + problem(rv) + '.', false);
    }
    tbody.replaceChildren(...events.map((e) => {
      const jti = (e.details || {}).jti || '';
      const row = el('tr', jti ? {'data-jti': jti} : {},
        el('td', {}, timeEl(e.time)),
        el('td', {text: e.actor || ''}),
        el('td', {}, (e.details || {}).scope ? el('code', {text: e.details.scope}) : el('span', {class: 'muted', text: 'all'})),
        el('td', {}, jti ? el('code', {text: jti}) : ''),
        el('td', {'data-col': 'outcome'}, badge(e.outcome), e.error ? el('span', {class: 'sub', text: e.error}) : ''),
        el('td', {class: 'act'}, jti ? adminButton({class: 'small danger', 'aria-label': 'Revoke token ' + jti, onclick: () => revoke(jti, $('#tokens-status'))}, 'Revoke') : ''));
      if (revoked.has(jti)) markRevoked(row);
      return row;
    }));
  }

  // ---------------------------------------------------------------- audit

  async function auditPage() {
    const tbody = $('#audit-body');
    if (!me.admin) return emptyRow(tbody, 8, 'Reading the audit log needs the admin scope.');
    const q = new URLSearchParams(location.search);
    const params = new URLSearchParams({pageSize: '50'});
    for (const k of ['actor', 'action', 'server', 'tool', 'outcome']) {
      if (q.get(k)) params.set(k, q.get(k));
    }
    const more = $('#audit-more');
    let count = 0;
    const load = async (token) => {
      if (token) params.set('pageToken', token);
      more.disabled = true;
      const r = await api('GET', '/audit?' + params);
      more.disabled = false;
      if (!r.ok) {
        status($('#audit-status'), 'The audit log could not be read: ' + problem(r) + '.', false);
        if (!token) emptyRow(tbody, 8, 'Nothing to show.');
        return;
      }
      const events = r.data.events || [];
      const rows = events.map(auditRow);
      if (!token) tbody.replaceChildren(...rows); else tbody.append(...rows);
      count += events.length;
      if (!count) emptyRow(tbody, 8, 'No entries match.');
      status($('#audit-status'), count + (count === 1 ? ' entry' : ' entries') + ' shown' + (r.data.nextPageToken ? '; older ones follow.' : '.'));
      show(more, !!r.data.nextPageToken);
      more.onclick = () => load(r.data.nextPageToken);
    };
    load('');
  }

  function auditRow(e) {
    const details = Object.entries(e.details || {}).map(([k, v]) => el('span', {class: 'state-line'}, el('code', {text: k + ': ' + v})));
    if (e.requestId) details.push(el('span', {class: 'state-line'}, el('code', {text: 'request: ' + e.requestId})));
    if (e.edgeId) details.push(el('span', {class: 'state-line'}, el('code', {text: 'edge: ' + e.edgeId})));
    return el('tr', {'data-action': e.action || ''},
      el('td', {}, timeEl(e.time)),
      el('td', {text: e.actor || ''}),
      el('td', {}, el('code', {text: e.action || ''})),
      el('td', {}, serverLink(e.server)),
      el('td', {text: e.tool || ''}),
      el('td', {}, badge(e.outcome), e.error ? el('span', {class: 'sub err-text', text: e.error}) : ''),
      el('td', {class: 'num', text: fmtDuration(e.duration)}),
      el('td', {}, details));
  }

  // ---------------------------------------------------------------- try

  // The try page calls a tool, gets a prompt or reads a resource as a
  // stateless client does, with the session's token; its form says which.
  async function tryPage() {
    const form = $('form[data-kind]');
    const run = form && {tool: tryTool, prompt: tryPrompt, resource: tryResource}[form.dataset.kind];
    if (run) await run();
  }

  // CLIP bounds the text shown of one content, RAW_CLIP that of the
  // JSON-RPC answer: a large resource whole would make the page crawl.
  const CLIP = 64 * 1024;
  const RAW_CLIP = 256 * 1024;

  // groupOptions fills a select with a placeholder and the items, grouped
  // by the server that serves them (ownerOf maps an item's id to it): the
  // merged MCP lists do not say.
  function groupOptions(sel, items, ownerOf, idKey, label, placeholder) {
    const groups = new Map();
    for (const it of items) {
      const server = ownerOf[it[idKey]] || 'other';
      if (!groups.has(server)) groups.set(server, []);
      groups.get(server).push(it);
    }
    sel.replaceChildren(el('option', {value: '', text: placeholder}),
      ...Array.from(groups.entries()).map(([server, its]) => el('optgroup', {label: server},
        ...its.map((it) => el('option', {value: it[idKey], text: label(it)})))));
  }

  // pickList lists kind (a key of LISTS) through /mcp and offers it in
  // sel, grouped by server, selecting the select's data-initial when it is
  // listed. ownP is the promise of owners(). It returns the items by id; a
  // list with nothing in it leaves sel disabled, saying why.
  async function pickList(sel, kind, ownP, noun, label = (it) => it[LISTS[kind].id]) {
    const idKey = LISTS[kind].id;
    const [{items, error}, own] = await Promise.all([listAll(kind), ownP]);
    const byId = new Map(items.map((it) => [it[idKey], it]));
    if (!items.length) {
      sel.replaceChildren(el('option', {value: '', text: error ? 'No ' + noun + 's: ' + error.message : 'No ' + noun + 's that your token may use'}));
      sel.disabled = true;
      return byId;
    }
    groupOptions(sel, items, own[kind] || {}, idKey, label, 'Choose a ' + noun);
    const initial = sel.dataset.initial || '';
    if (initial && byId.has(initial)) sel.value = initial;
    return byId;
  }

  // failure says how a request to /mcp failed: the JSON-RPC error's code
  // and message with the HTTP status, or the HTTP answer that was no
  // JSON-RPC at all.
  function failure(r) {
    const e = r.error || {};
    if (!r.status) return e.message;
    if (!r.jsonrpc) return 'HTTP ' + r.status + ': ' + e.message;
    return 'JSON-RPC error ' + e.code + ': ' + e.message + ' (HTTP ' + r.status + ')';
  }

  // startResult shows the result section with the raw answer (clipped)
  // and returns the nodes a result is written in.
  function startResult(r) {
    show($('#try-result'));
    let raw = r.raw || '';
    if (raw.length > RAW_CLIP) raw = raw.slice(0, RAW_CLIP) + '\n… clipped: the first ' + num(RAW_CLIP) + ' of ' + num(raw.length) + ' characters are shown.';
    $('#result-raw').textContent = raw;
    return {meta: $('#result-meta'), content: $('#result-content')};
  }

  // showFailure writes a failed request in the result section and on the
  // form's status line.
  function showFailure(r, ms) {
    const {meta, content} = startResult(r);
    const text = failure(r);
    meta.replaceChildren(el('span', {class: 'result-error', text}), ' (' + ms + ' ms)');
    content.replaceChildren(r.error && r.error.data !== undefined ? el('pre', {class: 'code', text: pretty(r.error.data)}) : '');
    status($('#try-status'), 'Failed: ' + text, false);
  }

  function requestLine(r) {
    return r.requestId ? el('span', {class: 'sub'}, 'Request id ', el('code', {id: 'result-request', text: r.requestId})) : '';
  }

  function num(n) { return n.toLocaleString('en'); }

  function plural(n, word) { return n + ' ' + word + (n === 1 ? '' : 's'); }

  // base64Bytes is the size of what a base64 text encodes.
  function base64Bytes(s) {
    s = String(s || '').replace(/\s+/g, '');
    const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
    return Math.max(0, Math.floor(s.length * 3 / 4) - pad);
  }

  function fmtBytes(n) {
    if (n < 1024) return plural(n, 'byte');
    const units = ['KiB', 'MiB', 'GiB'];
    let v = n / 1024;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (v < 10 ? Math.round(v * 10) / 10 : Math.round(v)) + ' ' + units[i];
  }

  // binary describes base64 content: its type and size.
  function binary(mimeType, data) {
    return (mimeType || 'of no stated type') + ', ' + fmtBytes(base64Bytes(data));
  }

  // textBlock shows a text, clipped to CLIP characters with a note.
  function textBlock(text) {
    const s = String(text);
    if (s.length <= CLIP) return el('pre', {class: 'code result-text', text: s});
    return el('div', {},
      el('p', {class: 'hint clip-note', text: 'Clipped: the first ' + num(CLIP) + ' of ' + num(s.length) + ' characters are shown.'}),
      el('pre', {class: 'code result-text', text: s.slice(0, CLIP) + '\n…'}));
  }

  // contentItem shows one content block of a tool result or a prompt
  // message: text as text, the rest described.
  function contentItem(c) {
    switch (c && c.type) {
      case 'text':
        return textBlock(c.text);
      case 'image':
        return el('p', {class: 'muted', text: 'An image (' + binary(c.mimeType, c.data) + '): not shown here.'});
      case 'audio':
        return el('p', {class: 'muted', text: 'An audio clip (' + binary(c.mimeType, c.data) + '): not played here.'});
      case 'resource':
        return resourceContents(c.resource || {});
      case 'resource_link':
        return el('p', {}, 'Link to resource ', el('code', {text: c.uri || ''}), c.name ? ' (' + c.name + ')' : '');
      default:
        return el('pre', {class: 'code', text: pretty(c)});
    }
  }

  // resourceContents shows one of a resource's contents (of
  // resources/read, or embedded in a result): its URI and type, its text,
  // or its blob described.
  function resourceContents(rc) {
    const head = el('p', {}, 'Resource ', el('code', {text: rc.uri || '(no URI)'}), rc.mimeType ? ' (' + rc.mimeType + ')' : '');
    let inner;
    if (typeof rc.text === 'string') inner = textBlock(rc.text);
    else if (typeof rc.blob === 'string') inner = el('p', {class: 'muted', text: 'A blob (' + binary(rc.mimeType, rc.blob) + '): not shown here.'});
    else inner = el('p', {class: 'muted', text: 'Neither text nor a blob.'});
    return el('div', {class: 'contents-item', 'data-uri': rc.uri || ''}, head, inner);
  }

  // argsForm builds, in box, an input for each property of a JSON schema
  // (a tool's input schema, or a prompt's arguments as one) and returns
  // them. prefix names their ids; none is said when there are none.
  function argsForm(box, schema, {prefix, none}) {
    const props = schema.properties || {};
    const required = new Set(schema.required || []);
    const names = Object.keys(props);
    if (!names.length) {
      box.replaceChildren(el('p', {class: 'muted', text: none}));
      return [];
    }
    const fields = names.map((name, i) => {
      const p = props[name] || {};
      const id = prefix + '-' + i;
      const types = [].concat(p.type || []);
      const kind = p.enum ? 'enum' : types.includes('boolean') ? 'boolean' : types.includes('integer') ? 'integer'
        : types.includes('number') ? 'number' : types.includes('string') ? 'string' : 'json';
      const hintText = [p.description, kind === 'json' ? 'JSON (' + (types.join(' or ') || 'any value') + ')' : '',
        p.default !== undefined ? 'default ' + JSON.stringify(p.default) : ''].filter(Boolean).join(' · ');
      const describedBy = [hintText ? id + '-hint' : '', id + '-error'].filter(Boolean).join(' ');
      let input;
      if (kind === 'enum' || kind === 'boolean') {
        const opts = kind === 'boolean' ? [true, false] : p.enum;
        input = el('select', {id, name, 'aria-describedby': describedBy, 'aria-required': required.has(name) ? 'true' : null},
          el('option', {value: '', text: required.has(name) ? 'Choose' : '(not set)'}),
          ...opts.map((o) => el('option', {value: JSON.stringify(o), text: String(o)})));
      } else if (kind === 'json') {
        input = el('textarea', {id, name, rows: 3, spellcheck: 'false', 'aria-describedby': describedBy, 'aria-required': required.has(name) ? 'true' : null});
      } else {
        input = el('input', {id, name, type: kind === 'string' ? 'text' : 'number', step: kind === 'integer' ? '1' : kind === 'number' ? 'any' : null,
          autocomplete: 'off', spellcheck: 'false', 'aria-describedby': describedBy, 'aria-required': required.has(name) ? 'true' : null});
      }
      const err = el('p', {class: 'field-error', id: id + '-error', hidden: true});
      const wrap = el('div', {class: 'field'},
        el('label', {for: id}, name, required.has(name) ? el('span', {class: 'optional', text: ' (required)'}) : ''),
        input,
        hintText ? el('p', {class: 'hint', id: id + '-hint', text: hintText}) : '',
        err);
      return {name, kind, input, err, required: required.has(name), wrap};
    });
    box.replaceChildren(...fields.map((f) => f.wrap));
    return fields;
  }

  // readArgs reads a generated form; with check, it marks what it cannot
  // read and focuses the first such field.
  function readArgs(fields, check) {
    const args = {};
    let first = null;
    for (const f of fields) {
      const raw = f.input.value;
      let problemText = '';
      if (raw === '') {
        if (f.required) problemText = f.name + ' is required.';
      } else if (f.kind === 'string') {
        args[f.name] = raw;
      } else if (f.kind === 'integer' || f.kind === 'number') {
        const n = Number(raw);
        if (!isFinite(n) || (f.kind === 'integer' && !Number.isInteger(n))) problemText = f.name + ' must be ' + (f.kind === 'integer' ? 'a whole number.' : 'a number.');
        else args[f.name] = n;
      } else {
        try { args[f.name] = JSON.parse(raw); } catch (e) { problemText = f.name + ' must be JSON: ' + e.message + '.'; }
      }
      if (check) {
        fieldError(f.input, f.err, problemText);
        if (problemText && !first) first = f.input;
      }
    }
    if (first) first.focus();
    return {args, ok: !first};
  }

  function fillArgs(fields, args) {
    for (const f of fields) {
      const v = args[f.name];
      if (v === undefined) { f.input.value = ''; continue; }
      if (f.kind === 'string') f.input.value = typeof v === 'string' ? v : JSON.stringify(v);
      else if (f.kind === 'integer' || f.kind === 'number') f.input.value = String(v);
      else f.input.value = f.kind === 'json' ? pretty(v) : JSON.stringify(v);
    }
  }

  // ---------------------------------------------------------------- try: a tool

  async function tryTool() {
    const sel = $('#try-tool');
    const byName = await pickList(sel, 'tools', owners(), 'tool');
    if (!byName.size) {
      $('#try-call').disabled = true;
      return;
    }

    let fields = [];
    const pick = () => {
      const t = byName.get(sel.value);
      const desc = $('#try-tool-desc');
      desc.textContent = t ? (t.description || 'No description.') : '';
      show($('#try-schema-wrap'), !!t);
      setText($('#try-schema'), t ? pretty(t.inputSchema || {}) : '');
      fields = t ? argsForm($('#args-form'), t.inputSchema || {}, {prefix: 'arg', none: 'This tool takes no arguments.'}) : [];
      if (!t) $('#args-form').replaceChildren(el('p', {class: 'muted', text: 'Pick a tool.'}));
      $('#args-json').value = '{}';
    };
    sel.addEventListener('change', pick);
    pick();

    const modeJSON = $('#mode-json');
    const syncMode = () => {
      const json = modeJSON.checked;
      if (json) {
        const {args} = readArgs(fields, false);
        $('#args-json').value = pretty(args);
      } else {
        try { fillArgs(fields, JSON.parse($('#args-json').value || '{}')); } catch { /* keep the form */ }
      }
      show($('#args-form'), !json);
      show($('#args-json-wrap'), json);
    };
    $('#mode-form').addEventListener('change', syncMode);
    modeJSON.addEventListener('change', syncMode);

    $('#try-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const t = byName.get(sel.value);
      if (!t) {
        status($('#try-status'), 'Choose a tool first.', false);
        sel.focus();
        return;
      }
      let args;
      const jsonBox = $('#args-json');
      fieldError(jsonBox, $('#args-json-error'), '');
      if (modeJSON.checked) {
        try {
          args = JSON.parse(jsonBox.value || '{}');
          if (!args || typeof args !== 'object' || Array.isArray(args)) throw new Error('not an object');
        } catch (err) {
          return fieldError(jsonBox, $('#args-json-error'), 'Arguments must be a JSON object: ' + err.message + '.', true);
        }
      } else {
        const read = readArgs(fields, true);
        if (!read.ok) return;
        args = read.args;
      }
      await callTool(t, args);
    });
  }

  // callTool calls a tool and shows its result; round holds the answers
  // to the tool's input requests (inputResponses, requestState) when the
  // call is retried with them.
  async function callTool(tool, args, round = {}) {
    const btn = $('#try-call');
    btn.disabled = true;
    status($('#try-status'), 'Calling ' + tool.name + '…');
    const t0 = performance.now();
    const r = await mcp('tools/call', {name: tool.name, arguments: args, ...round}, paramHeaders(tool, args));
    const ms = Math.round(performance.now() - t0);
    btn.disabled = false;
    if (r.error) {
      showFailure(r, ms);
    } else {
      const {meta, content} = startResult(r);
      const res = r.result || {};
      meta.replaceChildren(
        res.isError ? el('span', {class: 'result-error', text: 'The tool returned an error result. '}) : el('span', {class: 'status-ok', text: 'The tool answered. '}),
        tool.name + ' in ' + ms + ' ms.');
      if (res.resultType === 'input_required') {
        meta.replaceChildren(el('span', {class: 'status-ok', text: 'The tool asks for input. '}), tool.name + ' in ' + ms + ' ms.');
        content.replaceChildren(inputRequired(tool, args, res));
        status($('#try-status'), 'The tool asks for input: answer below.');
        $('#result-h').focus();
        return;
      }
      const parts = [];
      for (const c of res.content || []) parts.push(contentItem(c));
      if (res.structuredContent !== undefined) parts.push(el('p', {}, el('strong', {text: 'Structured content'})), el('pre', {class: 'code', text: pretty(res.structuredContent)}));
      if (!parts.length) parts.push(el('p', {class: 'muted', text: 'The result has no content.'}));
      content.replaceChildren(...parts);
      status($('#try-status'), (res.isError ? 'The tool returned an error result' : 'The tool answered') + ' in ' + ms + ' ms.', !res.isError);
    }
    $('#result-h').focus();
    findAudit(tool.name, r.requestId);
  }

  // inputRequired shows what a tool asks of its caller (a 2026-07-28
  // input_required result): a form for each elicitation, and a reply box
  // for each sampling request (the person at the console answers as the
  // model would); the answers go back with the call's requestState.
  // Anything else (the client's roots, a URL to open) the console cannot
  // give.
  function inputRequired(tool, args, res) {
    const entries = Object.entries(res.inputRequests || {});
    const answerable = (q) => q && ((q.method === 'elicitation/create' && (q.params || {}).mode !== 'url') || q.method === 'sampling/createMessage');
    const other = entries.filter(([, q]) => !answerable(q));
    if (!entries.length || other.length) {
      const what = other.map(([, q]) => (q && q.method) || 'an unknown request').join(', ') || 'nothing it names';
      return el('p', {class: 'banner banner-warn', text: 'The tool asks its caller for ' + what + ', which the console cannot answer. Use an MCP client for this tool.'});
    }
    const forms = entries.map(([key, q], i) => q.method === 'sampling/createMessage' ? samplingForm(key, q.params || {}, i) : elicitationForm(key, q.params || {}, i));
    const sampling = forms.some((f) => f.sampling);
    const answer = (action) => {
      if (action !== 'accept' && sampling) {
        // A model's reply cannot be declined: the call is left
        // unanswered, and the gateway ends it when it stops holding it.
        form.replaceWith(el('p', {class: 'banner banner-warn', text: 'Not answered: the tool\'s call ends without a reply.'}));
        status($('#try-status'), 'The tool\'s request was not answered.', false);
        return;
      }
      const inputResponses = {};
      for (const f of forms) {
        if (action === 'accept') {
          const read = f.read();
          if (!read.ok) return;
          inputResponses[f.key] = read.answer;
        } else {
          inputResponses[f.key] = {action};
        }
      }
      callTool(tool, args, {inputResponses, requestState: res.requestState});
    };
    const form = el('form', {id: 'try-input', novalidate: true},
      ...forms.map((f) => f.node),
      el('div', {class: 'actions'},
        el('button', {type: 'submit', id: 'try-input-send'}, 'Send'),
        sampling ? '' : el('button', {type: 'button', class: 'secondary', id: 'try-input-decline', onclick: () => answer('decline')}, 'Decline'),
        el('button', {type: 'button', class: 'secondary', id: 'try-input-cancel', onclick: () => answer('cancel')}, 'Cancel')));
    form.addEventListener('submit', (ev) => { ev.preventDefault(); answer('accept'); });
    return form;
  }

  // elicitationForm is the form of one elicitation: its requested schema's
  // fields, as a tool's arguments are.
  function elicitationForm(key, p, i) {
    const box = el('div', {});
    const fields = argsForm(box, p.requestedSchema || {}, {prefix: 'input-' + i, none: 'No fields are asked for.'});
    return {
      key,
      node: el('fieldset', {class: 'group', 'data-input': key}, el('legend', {text: p.message || 'The tool asks for input'}), box),
      read() {
        const r = readArgs(fields, true);
        return {ok: r.ok, answer: {action: 'accept', content: r.args}};
      },
    };
  }

  // samplingForm shows one sampling request (its system prompt and
  // messages) and a box for the reply, which goes back as the model's.
  function samplingForm(key, p, i) {
    const id = 'input-' + i + '-reply';
    const reply = el('textarea', {id, rows: 4, spellcheck: 'true', 'aria-required': 'true', 'aria-describedby': id + '-error'});
    const err = el('p', {class: 'field-error', id: id + '-error', hidden: true});
    const said = (p.messages || []).map((m) => {
      const parts = [].concat(m.content || []);
      return el('div', {class: 'message'}, el('p', {class: 'role', text: m.role || 'message'}), ...parts.map(contentItem));
    });
    return {
      key,
      sampling: true,
      node: el('fieldset', {class: 'group', 'data-input': key},
        el('legend', {text: 'The tool asks for a model\'s reply' + (p.maxTokens ? ' (at most ' + p.maxTokens + ' tokens)' : '')}),
        p.systemPrompt ? el('p', {}, el('strong', {text: 'System prompt: '}), p.systemPrompt) : '',
        ...said,
        el('div', {class: 'field'}, el('label', {for: id, text: 'Reply, as the model'}), reply, err)),
      read() {
        const text = reply.value.trim();
        fieldError(reply, err, text ? '' : 'A reply is required.', !text);
        return {ok: !!text, answer: {role: 'assistant', content: {type: 'text', text}, model: 'atrax-console (a person)', stopReason: 'endTurn'}};
      },
    };
  }

  // findAudit shows the call's audit event: the edge sends it to the
  // control plane over its Sync stream, so it may take a moment.
  async function findAudit(tool, requestId) {
    const box = $('#try-audit');
    const st = $('#try-audit-status');
    const dl = $('#try-audit-entry');
    $('#try-audit-link').href = '/ui/audit?' + new URLSearchParams({action: 'tool.call', tool});
    show(box);
    dl.replaceChildren();
    if (!me.admin) return status(st, 'Reading the audit log needs the admin scope.', false);
    if (!requestId) return status(st, 'The answer carried no request id to look the entry up by.', false);
    status(st, 'Looking for the call in the audit log…');
    for (let i = 0; i < 20; i++) {
      const r = await api('GET', '/audit?' + new URLSearchParams({action: 'tool.call', tool, pageSize: '20'}));
      const ev = r.ok ? (r.data.events || []).find((e) => e.requestId === requestId) : null;
      if (ev) {
        status(st, 'Recorded.');
        const d = ev.details || {};
        dl.replaceChildren(
          el('dt', {text: 'Time'}), el('dd', {}, timeEl(ev.time)),
          el('dt', {text: 'Actor'}), el('dd', {text: ev.actor || ''}),
          el('dt', {text: 'Server'}), el('dd', {}, serverLink(ev.server)),
          el('dt', {text: 'Tool'}), el('dd', {text: ev.tool || ''}),
          el('dt', {text: 'Outcome'}), el('dd', {}, badge(ev.outcome), ev.error ? ' ' + ev.error : ''),
          el('dt', {text: 'Duration'}), el('dd', {text: fmtDuration(ev.duration)}),
          el('dt', {text: 'Transport'}), el('dd', {text: [d.transport, d.protocol_version].filter(Boolean).join(', ')}),
          el('dt', {text: 'Request id'}), el('dd', {}, el('code', {id: 'try-audit-request', text: ev.requestId})));
        return;
      }
      await new Promise((res) => setTimeout(res, 500));
    }
    status(st, 'Not in the audit log yet: the edge sends tool calls to the control plane over its Sync stream. Look again in a moment.', false);
  }

  // ---------------------------------------------------------------- try: a prompt

  // promptSchema is a prompt's arguments as a JSON schema of strings, for
  // argsForm: prompt arguments are strings.
  function promptSchema(p) {
    const args = (p.arguments || []).filter((a) => a && typeof a.name === 'string' && a.name);
    return {
      properties: Object.fromEntries(args.map((a) => [a.name, {type: 'string', description: a.description || a.title}])),
      required: args.filter((a) => a.required).map((a) => a.name),
    };
  }

  async function tryPrompt() {
    const sel = $('#prompt-pick');
    const byName = await pickList(sel, 'prompts', owners(), 'prompt');
    if (!byName.size) {
      $('#prompt-get').disabled = true;
      return;
    }
    let fields = [];
    const pick = () => {
      const p = byName.get(sel.value);
      setText($('#prompt-pick-desc'), p ? (p.description || p.title || 'No description.') : '');
      const box = $('#prompt-args');
      if (!p) {
        fields = [];
        box.replaceChildren(el('p', {class: 'muted', text: 'Pick a prompt.'}));
        return;
      }
      fields = argsForm(box, promptSchema(p), {prefix: 'parg', none: 'This prompt takes no arguments.'});
    };
    sel.addEventListener('change', pick);
    pick();

    $('#prompt-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const p = byName.get(sel.value);
      if (!p) {
        status($('#try-status'), 'Choose a prompt first.', false);
        sel.focus();
        return;
      }
      const read = readArgs(fields, true);
      if (!read.ok) {
        status($('#try-status'), 'Not sent: fill in the required arguments.', false);
        return;
      }
      await getPrompt(p, read.args);
    });
  }

  async function getPrompt(prompt, args) {
    const btn = $('#prompt-get');
    btn.disabled = true;
    status($('#try-status'), 'Getting ' + prompt.name + '…');
    const t0 = performance.now();
    const r = await mcp('prompts/get', {name: prompt.name, arguments: args});
    const ms = Math.round(performance.now() - t0);
    btn.disabled = false;
    if (r.error) {
      showFailure(r, ms);
    } else {
      const {meta, content} = startResult(r);
      const res = r.result || {};
      const messages = Array.isArray(res.messages) ? res.messages : [];
      meta.replaceChildren(el('span', {class: 'status-ok', text: 'The prompt answered. '}),
        prompt.name + ': ' + plural(messages.length, 'message') + ' in ' + ms + ' ms.', requestLine(r));
      const parts = [];
      if (res.description) parts.push(el('p', {class: 'muted', text: res.description}));
      if (messages.length) {
        parts.push(el('ol', {class: 'messages'}, ...messages.map((m) => el('li', {class: 'message', 'data-role': m.role || ''},
          el('p', {class: 'role', text: m.role || '(no role)'}),
          ...[].concat(m.content || []).map(contentItem)))));
      } else {
        parts.push(el('p', {class: 'muted', text: 'The prompt has no messages.'}));
      }
      content.replaceChildren(...parts);
      status($('#try-status'), 'Got ' + prompt.name + ': ' + plural(messages.length, 'message') + ' in ' + ms + ' ms.');
    }
    $('#result-h').focus();
  }

  // ---------------------------------------------------------------- try: a resource

  // templateVariable finds the first {variable} of a URI template.
  function templateVariable(s) {
    return /\{[^{}]*\}/.exec(s);
  }

  async function tryResource() {
    const sel = $('#resource-pick');
    const tsel = $('#resource-template');
    const uri = $('#resource-uri');
    const uriErr = $('#resource-uri-error');
    const ownP = owners();
    const [byURI, byTemplate] = await Promise.all([
      pickList(sel, 'resources', ownP, 'resource', (r) => (r.name && r.name !== r.uri ? r.name + ' — ' : '') + r.uri),
      pickList(tsel, 'resourceTemplates', ownP, 'resource template', (t) => t.uriTemplate),
    ]);
    show($('#resource-template-field'), byTemplate.size > 0);

    const describe = () => {
      const r = byURI.get(sel.value);
      setText($('#resource-pick-desc'), r ? [r.description || r.title, r.mimeType].filter(Boolean).join(' · ') || 'No description.' : '');
      const t = byTemplate.get(tsel.value);
      $('#resource-template-desc').replaceChildren(...(t ? [t.description ? t.description + ' ' : '',
        'Replace each ', el('code', {text: '{variable}'}), ' of ', el('code', {text: t.uriTemplate}), ' in the URI below with a value.'] : []));
    };
    sel.addEventListener('change', () => {
      if (sel.value) {
        uri.value = sel.value;
        tsel.value = '';
        fieldError(uri, uriErr, '');
      }
      describe();
    });
    tsel.addEventListener('change', () => {
      const t = byTemplate.get(tsel.value);
      if (t) {
        uri.value = t.uriTemplate;
        sel.value = '';
        fieldError(uri, uriErr, '');
      }
      describe();
    });
    uri.addEventListener('input', () => {
      if (sel.value && uri.value !== sel.value) {
        sel.value = '';
        describe();
      }
    });
    // Coming to the URI of a template, the first variable is selected:
    // typing replaces it.
    uri.addEventListener('focus', () => {
      const m = tsel.value && templateVariable(uri.value);
      if (m) setTimeout(() => uri.setSelectionRange(m.index, m.index + m[0].length), 0);
    });
    // A template of the URL (?template=) starts the URI, unless the URL
    // gave one.
    if (tsel.value && !uri.value) uri.value = tsel.value;
    if (uri.value && byURI.has(uri.value)) sel.value = uri.value;
    describe();

    $('#resource-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const u = uri.value.trim();
      fieldError(uri, uriErr, '');
      if (!u) {
        status($('#try-status'), 'Not sent: a URI is needed.', false);
        return fieldError(uri, uriErr, 'Enter the URI to read, or pick a resource.', true);
      }
      const left = tsel.value && templateVariable(u);
      if (left) {
        status($('#try-status'), 'Not sent: the URI still holds a template variable.', false);
        return fieldError(uri, uriErr, 'Replace ' + left[0] + ' with a value: the URI still holds the template\'s variable.', true);
      }
      await readResource(u);
    });
  }

  async function readResource(u) {
    const btn = $('#resource-read');
    btn.disabled = true;
    status($('#try-status'), 'Reading ' + u + '…');
    const t0 = performance.now();
    const r = await mcp('resources/read', {uri: u});
    const ms = Math.round(performance.now() - t0);
    btn.disabled = false;
    if (r.error) {
      showFailure(r, ms);
    } else {
      const {meta, content} = startResult(r);
      const contents = Array.isArray((r.result || {}).contents) ? r.result.contents : [];
      meta.replaceChildren(el('span', {class: 'status-ok', text: 'The server answered. '}),
        u + ': ' + plural(contents.length, 'part') + ' in ' + ms + ' ms.', requestLine(r));
      content.replaceChildren(...(contents.length ? contents.map(resourceContents) : [el('p', {class: 'muted', text: 'The resource has no contents.'})]));
      status($('#try-status'), 'Read ' + u + ': ' + plural(contents.length, 'part') + ' in ' + ms + ' ms.');
    }
    $('#result-h').focus();
  }

  // ---------------------------------------------------------------- boot

  const PAGES = {
    overview: overviewPage,
    server: serverPage,
    serverform: serverFormPage,
    tokens: tokensPage,
    audit: auditPage,
    try: tryPage,
  };

  async function boot() {
    const page = body.dataset.page;
    if (page === 'login') return loginPage();
    me = await whoami();
    if (!me) {
      if (page === 'notfound') return;
      location.replace('/ui/login?next=' + encodeURIComponent(location.pathname + location.search));
      return;
    }
    showWho();
    gateAdmin();
    const q = new URLSearchParams(location.search);
    if (page === 'overview' && q.get('removed')) notice('Server ' + q.get('removed') + ' removed.', 'ok');
    const fn = PAGES[page];
    if (fn) await fn();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
  else boot();
})();
