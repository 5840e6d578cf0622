// console_drive.mjs drives Atrax's web console (/ui/) in headless Chromium
// with playwright-core, as an operator would: sign in, watch a server come
// up, add a server through the form (its validation errors first), see its
// tools, edit it, restart it, issue a token and revoke it (and see the next call
// with it refused), try a tool and read its audit entry, get a prompt and
// read resources, and look at the console as a token without the admin
// scope. On every page it runs
// axe-core (WCAG 2 A and AA rules, colour contrast included), checks that
// the keyboard reaches the controls with a visible focus, that no request
// leaves the gateway's origin and that the Content-Security-Policy refused
// nothing, and keeps a screenshot.
//
//   node clients/console_drive.mjs PLAN        (run from test/e2e)
//
// PLAN is a JSON object:
//
//   {
//     "base": "http://127.0.0.1:PORT",     // the edge
//     "token": "...",                       // an admin token
//     "viewerToken": "...",                 // a token without the admin scope
//     "client": {"id": "...", "secret": "..."}, // a client without it
//     "chromium": "/usr/bin/chromium",
//     "artifacts": "/abs/dir",              // screenshots go here
//     "server": "everything",               // a server of the config file
//     "echoTool": "everything__echo",
//     "prompt": {"name": "everything__args-prompt", "argument": "city",   // a required argument
//                "value": "Lisbon", "want": "What's weather in Lisbon?"}, // its value, the message
//     "resource": {"uri": "demo://…", "want": "…",       // a listed resource, text in it
//                  "template": "demo://…/{resourceId}", "variable": "{resourceId}",
//                  "value": "42", "templateWant": "Resource 42:", // a template, filled in
//                  "blob": "demo://…", "missing": "demo://…"},    // a blob, a URI no server has
//     "remote": {"name": "remote", "url": "http://127.0.0.1:PORT/mcp"}
//   }
//
// It prints one JSON object per line: {"step": NAME, ...} as each step
// passes, then {"done": true, ...}; or {"fatal": MESSAGE, "step": NAME}
// and exits 1. Every wait is bounded.

import { mkdtempSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const plan = JSON.parse(process.argv[2] || '{}');
const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const base = plan.base;
const origin = new URL(base).origin;
const WAIT = 20000;

let step = 'launch';
const screenshots = [];
const offOrigin = [];
const cspErrors = [];
const pageErrors = [];

function out(obj) { process.stdout.write(JSON.stringify(obj) + '\n'); }
function pass(extra = {}) { out({step, ...extra}); }
function fail(msg) { throw new Error(msg); }

const profile = mkdtempSync(join(tmpdir(), 'atrax-console-chromium-'));
mkdirSync(plan.artifacts, {recursive: true});
const context = await chromium.launchPersistentContext(profile, {
  executablePath: plan.chromium,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: {width: 1280, height: 900},
  timeout: WAIT,
});
context.setDefaultTimeout(WAIT);
const page = context.pages()[0] || await context.newPage();
page.on('request', (r) => {
  const u = r.url();
  if (!u.startsWith(origin + '/') && !u.startsWith('data:') && !u.startsWith('about:')) offOrigin.push(u);
});
page.on('console', (m) => {
  if (/Content.Security.Policy/i.test(m.text())) cspErrors.push(m.text());
});
page.on('pageerror', (e) => pageErrors.push(String(e)));

async function shot(name) {
  const path = join(plan.artifacts, name + '.png');
  await page.screenshot({path, fullPage: true});
  screenshots.push(path);
}

// a11y runs axe-core's WCAG 2 A and AA rules on the page as it is. axe is
// evaluated through the DevTools protocol, which the page's CSP does not
// govern: the page itself is never given an inline script.
async function a11y(name) {
  await page.evaluate(axeSource);
  const res = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}, resultTypes: ['violations']});
    return r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ': ' + n.failureSummary)}));
  });
  if (res.length) fail('axe-core found accessibility violations on ' + name + ':\n' + JSON.stringify(res, null, 2));
}

// keyboard tabs through the page from its top and checks that every stop
// shows a visible focus ring and that the controls named in want are
// reached.
async function keyboard(name, want, max = 40) {
  // Focusing the body moves the start of sequential navigation to the
  // top of the page, wherever the focus was.
  await page.evaluate(() => {
    window.scrollTo(0, 0);
    document.body.setAttribute('tabindex', '-1');
    document.body.focus();
    document.body.removeAttribute('tabindex');
  });
  const seen = [];
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const f = await page.evaluate(() => {
      const e = document.activeElement;
      if (!e || e === document.body) return null;
      const cs = getComputedStyle(e);
      const label = e.getAttribute('aria-label') || (e.labels && e.labels[0] && e.labels[0].textContent) || e.textContent || e.value || e.id;
      return {tag: e.tagName.toLowerCase(), id: e.id, label: label.trim().replace(/\s+/g, ' ').slice(0, 60),
        outline: cs.outlineStyle, width: parseFloat(cs.outlineWidth) || 0};
    });
    if (!f) continue;
    if (f.outline === 'none' || f.width < 2) fail(`keyboard on ${name}: focus on ${f.tag} "${f.label}" is not visible (outline ${f.outline} ${f.width}px)`);
    seen.push(f);
  }
  if (!seen.length || !/skip to main content/i.test(seen[0].label)) fail(`keyboard on ${name}: the first stop is ${JSON.stringify(seen[0])}, want the skip link`);
  for (const w of want) {
    if (!seen.some((f) => f.label === w || f.id === w)) fail(`keyboard on ${name}: Tab never reached "${w}"; stops: ${seen.map((f) => f.label || f.id).join(' | ')}`);
  }
  return seen;
}

async function waitText(selector, re, timeout = WAIT) {
  const loc = page.locator(selector);
  const deadline = Date.now() + timeout;
  let last = '';
  while (Date.now() < deadline) {
    last = (await loc.first().textContent({timeout: 2000}).catch(() => '')) || '';
    if (re.test(last)) return last;
    await page.waitForTimeout(200);
  }
  fail(`${selector}: text ${JSON.stringify(last.slice(0, 300))} never matched ${re}`);
}

async function statusOf(name) {
  const r = await fetch(base + '/status');
  const st = await r.json();
  for (const e of st.edges || []) {
    const u = (e.upstreams || []).find((x) => x.name === name);
    if (u) return u;
  }
  return null;
}

// callWith sends a stateless tools/call with token, outside the browser.
async function callWith(token, tool, args) {
  const r = await fetch(base + '/mcp', {
    method: 'POST',
    headers: {'Content-Type': 'application/json', 'Accept': 'application/json, text/event-stream', 'Authorization': 'Bearer ' + token,
      'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'tools/call', 'Mcp-Name': tool},
    body: JSON.stringify({jsonrpc: '2.0', id: 1, method: 'tools/call', params: {name: tool, arguments: args,
      _meta: {'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {}}}}),
  });
  return {status: r.status, body: await r.text()};
}

async function signIn(token) {
  await page.goto(base + '/ui/');
  await page.waitForURL(/\/ui\/login\?next=/);
  await page.locator('#l-token').fill(token);
  await page.locator('#l-token').press('Enter');
  await page.waitForURL(base + '/ui/');
  await waitText('#who-name', /\S/);
}

try {
  // Headers of a page, as the browser got them.
  step = 'headers';
  const resp = await page.goto(base + '/ui/login');
  const h = resp.headers();
  const csp = h['content-security-policy'] || '';
  for (const want of ["default-src 'self'", "frame-ancestors 'none'", "form-action 'self'", "script-src 'self'"]) {
    if (!csp.includes(want)) fail(`Content-Security-Policy ${JSON.stringify(csp)} lacks ${want}`);
  }
  if (h['x-content-type-options'] !== 'nosniff' || h['referrer-policy'] !== 'no-referrer') fail('nosniff or no-referrer missing: ' + JSON.stringify(h));
  pass();

  // Sign in: the overview sends an unsigned visitor to the sign-in page.
  step = 'sign-in page';
  await page.goto(base + '/ui/');
  await page.waitForURL(/\/ui\/login\?next=/);
  await page.locator('#l-token').fill('not-a-token');
  await page.locator('#login-token button[type=submit]').click();
  await waitText('#l-token-error', /Not signed in: unknown token/);
  if (await page.locator('#l-token').getAttribute('aria-invalid') !== 'true') fail('a refused token is not marked aria-invalid');
  await a11y('the sign-in page');
  await shot('login');
  pass();

  step = 'sign in';
  await page.locator('#l-token').fill(plan.token);
  await page.locator('#l-token').press('Enter');
  await page.waitForURL(base + '/ui/');
  await waitText('#who-name', /static:default/);
  const stored = await page.evaluate(() => sessionStorage.getItem('atrax.console.token'));
  if (!stored || stored === plan.token || stored.split('.').length !== 3) fail('the session is not a JWT in sessionStorage: ' + (stored ? stored.slice(0, 12) + '…' : 'none'));
  pass();

  // The stdio server of the config comes up.
  step = 'overview';
  const row = `#servers-body tr[data-server="${plan.server}"]`;
  await waitText(`${row} td[data-col="state"]`, /running/, 30000);
  await waitText(`${row} td[data-col="tools"]`, /[1-9]/);
  await waitText('#edges-body', /connected/);
  await a11y('the overview');
  const stops = await keyboard('the overview', ['Overview', 'Add a server', 'Tokens', 'Audit log', 'Try', 'Sign out', plan.server]);
  // The skip link takes the focus to the main content.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.locator('a.skip').focus();
  await page.keyboard.press('Enter');
  if (await page.evaluate(() => document.activeElement && document.activeElement.id) !== 'main') fail('the skip link does not move the focus to the main content');
  await shot('overview');
  pass({tabStops: stops.length});

  // Add a server through the form: first wrong, then right.
  step = 'add a server: errors';
  await page.locator('nav[aria-label="Main"] >> text=Add a server').click();
  await page.waitForURL(base + '/ui/add-server');
  await page.locator('#f-name').fill(plan.remote.name);
  await page.locator('#f-url').fill('ftp://example.invalid/mcp');
  await page.locator('#f-transportType').selectOption('http');
  await page.locator('#f-submit').click();
  await waitText('#f-url-error', /must be an absolute http or https URL/);
  await waitText('#form-errors', /url: must be an absolute http or https URL/);
  if (await page.locator('#f-url').getAttribute('aria-invalid') !== 'true') fail('the refused URL is not marked aria-invalid');
  if (await page.evaluate(() => document.activeElement && document.activeElement.id) !== 'form-errors') fail('the error summary did not take the focus');
  await a11y('the server form with errors');
  await keyboard('the server form', ['Name', 'Transport', 'URL', 'Add server'], 60);
  await shot('add-server-errors');
  pass();

  step = 'add a server';
  await page.locator('#f-url').fill(plan.remote.url);
  await page.locator('#f-description').fill('server-everything over streamable HTTP, added from the console');
  await page.locator('#f-submit').click();
  await page.waitForURL(new RegExp('/ui/servers/' + plan.remote.name + '\\?saved=created'));
  await waitText('#notice', /added/);
  pass();

  // Its page: running, its tools as clients see them.
  step = 'server page';
  await waitText('#server-state', /running/, 30000);
  await page.locator(`#tools-list details[data-item="${plan.remote.name}__echo"]`).waitFor();
  await waitText('#tools-count', /\([1-9]\d*\)/);
  await page.locator(`#tools-list details[data-item="${plan.remote.name}__echo"] summary`).click();
  await waitText(`#tools-list details[data-item="${plan.remote.name}__echo"] pre`, /"message"/);
  if (await page.locator(`#tools-list details[data-item^="${plan.server}__"]`).count() !== 0) fail('the server page lists another server\'s tools');
  await waitText('#definition', new RegExp(plan.remote.url.replace(/[.?*+^$()[\]{}|\\/]/g, '\\$&')));
  await a11y('the server page');
  await shot('server');
  pass();

  // Edit it: the form comes filled in, and saving replaces it.
  step = 'edit a server';
  await page.locator('#edit-link').click();
  await page.waitForURL(new RegExp('/ui/servers/' + plan.remote.name + '/edit$'));
  for (const end = Date.now() + WAIT; await page.locator('#f-url').inputValue() !== plan.remote.url;) {
    if (Date.now() > end) fail('the edit form is not filled in with the server\'s URL');
    await page.waitForTimeout(100);
  }
  await page.locator('#f-description').fill('edited in the console');
  await a11y('the edit form');
  await shot('edit-server');
  await page.locator('#f-submit').click();
  await page.waitForURL(/\?saved=updated/);
  await waitText('#notice', /saved/);
  await waitText('#server-desc', /edited in the console/);
  await waitText('#server-state', /running/, 30000);
  await page.locator(`#tools-list details[data-item="${plan.remote.name}__echo"]`).waitFor();
  pass();

  // Restart it, and see it come back.
  step = 'restart';
  const before = await statusOf(plan.remote.name);
  await page.locator('button[data-action="restart"]').click();
  await waitText('#action-status', /Restart requested/);
  const deadline = Date.now() + 30000;
  let after = before;
  while (Date.now() < deadline) {
    after = await statusOf(plan.remote.name);
    if (after && after.state === 'running' && after.sinceTime !== before.sinceTime) break;
    await page.waitForTimeout(200);
  }
  if (!after || after.state !== 'running' || after.sinceTime === before.sinceTime) fail('the server did not restart: ' + JSON.stringify({before, after}));
  await waitText('#server-state', /running/);
  pass({since: after.sinceTime});

  // Tokens: issue one, use it, revoke it, see it refused.
  step = 'tokens: issue';
  await page.locator('nav[aria-label="Main"] >> text=Tokens').click();
  await page.waitForURL(base + '/ui/tokens');
  await page.locator('#t-scope').fill('server:' + plan.server);
  await page.locator('#t-ttl').fill('10m');
  await page.locator('#issue-form button[type=submit]').click();
  await page.locator('#issued').waitFor();
  const issued = await page.locator('#issued-token').inputValue();
  const jti = (await page.locator('#issued-jti').textContent()).trim();
  if (!issued || !jti) fail('no token or jti shown');
  const ok = await callWith(issued, plan.echoTool, {message: 'before revocation'});
  if (ok.status !== 200 || !/before revocation/.test(ok.body)) fail('the issued token cannot call: ' + ok.status + ' ' + ok.body.slice(0, 300));
  await page.locator(`#tokens-body tr[data-jti="${jti}"]`).waitFor();
  await a11y('the tokens page');
  await shot('tokens');
  pass({jti});

  step = 'tokens: revoke';
  await page.locator(`#tokens-body tr[data-jti="${jti}"] button`).click();
  await waitText('#tokens-status', /revoked/);
  let refused = null;
  for (const end = Date.now() + 15000; Date.now() < end;) {
    const r = await callWith(issued, plan.echoTool, {message: 'after revocation'});
    if (r.status === 401) { refused = r; break; }
    await page.waitForTimeout(200);
  }
  if (!refused) fail('the revoked token is still accepted');
  // A fresh page knows the revocation from the audit log, not from memory.
  await page.reload();
  await page.locator(`#tokens-body tr[data-jti="${jti}"] .badge-bad`).waitFor();
  await shot('tokens-revoked');
  pass({refused: refused.status});

  // Try a tool, by keyboard, and read its audit entry.
  step = 'try a tool';
  await page.goto(base + '/ui/try?tool=' + encodeURIComponent(plan.echoTool));
  await page.locator(`#try-tool option[value="${plan.echoTool}"]`).waitFor({state: 'attached'});
  if (await page.locator('#try-tool').inputValue() !== plan.echoTool) fail('the tool of the URL is not selected');
  await page.locator('#arg-0').waitFor();
  await page.locator('#arg-0').focus();
  await page.keyboard.type('hello from the console');
  // Tab on to the call button and press it.
  let onButton = false;
  for (let i = 0; i < 5 && !onButton; i++) {
    await page.keyboard.press('Tab');
    onButton = await page.evaluate(() => document.activeElement && document.activeElement.id === 'try-call');
  }
  if (!onButton) fail('Tab from the argument does not reach the call button');
  await page.keyboard.press('Enter');
  await waitText('#result-content', /hello from the console/);
  await waitText('#result-meta', /The tool answered/);
  await waitText('#try-audit-status', /Recorded/, 15000);
  const requestId = (await page.locator('#try-audit-request').textContent()).trim();
  await a11y('the try page');
  await keyboard('the try page', ['Tool', 'Call tool'], 30);
  await shot('try');
  pass({requestId});

  // The JSON mode, with a mistake.
  step = 'try a tool: JSON';
  await page.locator('#mode-json').check();
  const asJSON = await page.locator('#args-json').inputValue();
  if (!/"message": "hello from the console"/.test(asJSON)) fail('the form did not carry over to JSON: ' + asJSON);
  await page.locator('#args-json').fill('{"message": ');
  await page.locator('#try-call').click();
  await waitText('#args-json-error', /JSON object/);
  await page.locator('#args-json').fill('{"message": "as JSON"}');
  await page.locator('#try-call').click();
  await waitText('#result-content', /as JSON/);
  pass();

  // A tool that asks its caller for input (an elicitation, which the edge
  // turns into an input_required result for the console's stateless
  // calls): the form is shown, a required field left empty is caught, the
  // answer sent goes back to the held call, and declining is answered too.
  step = 'try a tool: input';
  const ask = plan.elicitTool;
  await page.goto(base + '/ui/try?tool=' + encodeURIComponent(ask.name));
  await page.locator(`#try-tool option[value="${ask.name}"]`).waitFor({state: 'attached'});
  if (await page.locator('#try-tool').inputValue() !== ask.name) fail('the tool of the URL is not selected');
  await page.locator('#try-call').click();
  await page.locator('#try-input').waitFor();
  await waitText('#result-meta', /asks for input/);
  await waitText('#try-status', /asks for input/);
  await a11y('the try page asking for input');
  await shot('try-input');
  await page.locator('#try-input-send').click();
  await waitText('#try-input .field-error:not([hidden])', new RegExp(ask.field + ' is required'));
  const askField = page.locator(`#try-input [name="${ask.field}"]`);
  if (await askField.getAttribute('aria-invalid') !== 'true') fail('the empty required field is not marked invalid');
  if (!await askField.evaluate((n) => n === document.activeElement)) fail('the empty required field does not have the focus');
  await askField.fill(ask.value);
  await page.locator('#try-input-send').click();
  await waitText('#result-content', new RegExp(ask.want));
  await waitText('#result-meta', /The tool answered/);
  await page.locator('#try-call').click();
  await page.locator('#try-input').waitFor();
  await page.locator('#try-input-decline').click();
  await waitText('#result-content', /declined/);
  pass();

  // A tool that asks for a model's reply (sampling): the person at the
  // console gives it, after an empty reply is caught.
  step = 'try a tool: sampling';
  const smp = plan.samplingTool;
  await page.goto(base + '/ui/try?tool=' + encodeURIComponent(smp.name));
  await page.locator(`#try-tool option[value="${smp.name}"]`).waitFor({state: 'attached'});
  await page.locator('#arg-0').waitFor();
  await page.locator('#args-form [name="prompt"]').fill(smp.prompt);
  await page.locator('#try-call').click();
  await page.locator('#try-input').waitFor();
  await waitText('#try-input', new RegExp(smp.prompt));
  if (await page.locator('#try-input-decline').count() !== 0) fail('a model\'s reply offers Decline');
  await a11y('the try page asking for a model\'s reply');
  await shot('try-sampling');
  await page.locator('#try-input-send').click();
  await waitText('#try-input .field-error:not([hidden])', /reply is required/);
  await page.locator('#try-input textarea').fill(smp.reply);
  await page.locator('#try-input-send').click();
  await waitText('#result-content', new RegExp(smp.reply));
  await waitText('#result-meta', /The tool answered/);
  pass();

  // Get a prompt, from its server's page: a required argument left empty
  // first, then given.
  step = 'get a prompt';
  const pr = plan.prompt;
  await page.goto(base + '/ui/servers/' + plan.server);
  const promptItem = page.locator(`#prompts-list details[data-item="${pr.name}"]`);
  await promptItem.waitFor();
  await page.locator(`#resources-list details[data-item="${plan.resource.uri}"] a[href="/ui/try?resource=${encodeURIComponent(plan.resource.uri)}"]`).waitFor({state: 'attached'});
  await promptItem.locator('summary').click();
  await promptItem.locator('a', {hasText: 'Get ' + pr.name}).click();
  await page.waitForURL(base + '/ui/try?prompt=' + encodeURIComponent(pr.name));
  await waitText('nav[aria-label="What to try"] [aria-current="page"]', /Get a prompt/);
  await page.locator(`#prompt-pick option[value="${pr.name}"]`).waitFor({state: 'attached'});
  if (await page.locator('#prompt-pick').inputValue() !== pr.name) fail('the prompt of the URL is not selected');
  const argInput = page.locator(`#prompt-args [name="${pr.argument}"]`);
  await argInput.waitFor();
  const argId = await argInput.getAttribute('id');
  await waitText(`label[for="${argId}"]`, /\(required\)/);
  if (await argInput.getAttribute('aria-required') !== 'true') fail('the required argument is not marked aria-required');
  await page.locator('#prompt-get').focus();
  await page.keyboard.press('Enter');
  await waitText(`#${argId}-error`, new RegExp(pr.argument + ' is required'));
  if (await argInput.getAttribute('aria-invalid') !== 'true') fail('the missing argument is not marked aria-invalid');
  if (await page.evaluate(() => document.activeElement && document.activeElement.id) !== argId) fail('the missing argument did not take the focus');
  await waitText('#try-status', /Not sent/);
  await page.keyboard.type(pr.value);
  await page.keyboard.press('Enter');
  await waitText('#result-content li.message[data-role="user"]', new RegExp(pr.want.replace(/[.?*+^$()[\]{}|\\/]/g, '\\$&')));
  await waitText('#result-meta', /The prompt answered.*1 message/);
  await waitText('#try-status', new RegExp('Got ' + pr.name));
  if (await page.evaluate(() => document.activeElement && document.activeElement.id) !== 'result-h') fail('the result heading did not take the focus');
  if (await argInput.getAttribute('aria-invalid') === 'true') fail('the argument is still marked invalid');
  await a11y('the prompt page');
  await keyboard('the prompt page', ['Prompt', 'Get prompt', 'Read a resource'], 30);
  await shot('try-prompt');
  pass();

  // Read a resource: a listed one, then one from a template (its variable
  // left in first), a blob, and one that no server has.
  step = 'read a resource';
  const rs = plan.resource;
  const esc = (s) => s.replace(/[.?*+^$()[\]{}|\\/]/g, '\\$&');
  await page.locator('nav[aria-label="What to try"] >> text=Read a resource').click();
  await page.waitForURL(base + '/ui/try?kind=resource');
  await page.locator(`#resource-pick option[value="${rs.uri}"]`).waitFor({state: 'attached'});
  await page.locator('#resource-pick').selectOption(rs.uri);
  if (await page.locator('#resource-uri').inputValue() !== rs.uri) fail('picking a resource does not fill its URI');
  await page.locator('#resource-read').click();
  await waitText(`#result-content .contents-item[data-uri="${rs.uri}"]`, new RegExp(esc(rs.want)));
  await waitText('#result-meta', /The server answered/);
  if (await page.evaluate(() => document.activeElement && document.activeElement.id) !== 'result-h') fail('the result heading did not take the focus');
  await a11y('the resource page');
  await keyboard('the resource page', ['Resource', 'URI (required)', 'Read resource'], 30);
  await shot('try-resource');
  pass();

  step = 'read a resource: template';
  await page.locator(`#resource-template option[value="${rs.template}"]`).waitFor({state: 'attached'});
  await page.locator('#resource-template').selectOption(rs.template);
  if (await page.locator('#resource-uri').inputValue() !== rs.template) fail('picking a template does not start the URI with it');
  await waitText('#resource-template-desc', new RegExp(esc(rs.template)));
  await page.locator('#resource-read').click();
  await waitText('#resource-uri-error', new RegExp('Replace ' + esc(rs.variable)));
  if (await page.evaluate(() => document.activeElement && document.activeElement.id) !== 'resource-uri') fail('the URI with a variable left did not take the focus');
  // The focus selects the variable: typing replaces it.
  const want = rs.template.replace(rs.variable, rs.value);
  for (const end = Date.now() + 5000; ;) {
    const sel = await page.evaluate(() => { const e = document.activeElement; return e.value.slice(e.selectionStart, e.selectionEnd); });
    if (sel === rs.variable) break;
    if (Date.now() > end) fail('the template\'s variable is not selected in the URI: ' + JSON.stringify(sel));
    await page.waitForTimeout(50);
  }
  await page.keyboard.type(rs.value);
  if (await page.locator('#resource-uri').inputValue() !== want) fail('typing over the variable gave ' + await page.locator('#resource-uri').inputValue());
  await page.keyboard.press('Enter');
  await waitText(`#result-content .contents-item[data-uri="${want}"]`, new RegExp(esc(rs.templateWant)));
  if (await page.locator('#resource-uri').getAttribute('aria-invalid') === 'true') fail('the URI is still marked invalid');
  pass();

  step = 'read a resource: blob';
  await page.locator('#resource-uri').fill(rs.blob);
  await page.locator('#resource-read').click();
  await waitText(`#result-content .contents-item[data-uri="${rs.blob}"]`, /A blob \([^,]+, \d+ bytes\): not shown here/);
  pass();

  step = 'read a resource: error';
  await page.locator('#resource-uri').fill(rs.missing);
  await page.locator('#resource-read').click();
  await waitText('#result-meta .result-error', /JSON-RPC error -?\d+: .+ \(HTTP \d{3}\)/);
  await waitText('#try-status', /Failed: JSON-RPC error/);
  await a11y('the resource page with an error');
  await shot('try-resource-error');
  pass();

  // The audit log, filtered through its form.
  step = 'audit';
  await page.locator('nav[aria-label="Main"] >> text=Audit log').click();
  await page.waitForURL(base + '/ui/audit');
  await page.locator('#a-action').fill('tool.call');
  await page.locator('#a-tool').fill(plan.echoTool);
  await page.locator('#a-outcome').selectOption('ok');
  await page.locator('#audit-filters button[type=submit]').click();
  await page.waitForURL(/\/ui\/audit\?.*action=tool.call/);
  await waitText('#audit-body', new RegExp(requestId));
  const rows = await page.locator('#audit-body tr').count();
  const actions = await page.locator('#audit-body tr[data-action]').evaluateAll((trs) => trs.map((t) => t.dataset.action));
  if (!actions.length || actions.some((a) => a !== 'tool.call')) fail('the filtered audit log shows ' + JSON.stringify(actions));
  await a11y('the audit log');
  await shot('audit');
  pass({rows});

  // A client without the admin scope, signed in with its id and secret:
  // admin actions disabled, and why.
  step = 'viewer';
  await page.locator('#sign-out').click();
  await page.waitForURL(/\/ui\/login\?signedout=1/);
  await waitText('#notice', /Signed out/);
  await page.locator('#l-client-id').fill(plan.client.id);
  await page.locator('#l-client-secret').fill('wrong-secret');
  await page.locator('#login-client button[type=submit]').click();
  await waitText('#l-client-error', /Not signed in: unknown client or wrong secret/);
  await page.locator('#l-client-secret').fill(plan.client.secret);
  await page.locator('#login-client button[type=submit]').click();
  await page.waitForURL(base + '/ui/');
  await waitText('#who-name', new RegExp('client:' + plan.client.id));
  await waitText('#who-scope', /no admin scope/);
  await page.goto(base + '/ui/servers/' + plan.server);
  await waitText('#admin-note', /without the admin scope/);
  for (const sel of ['button[data-action="restart"]', 'button[data-action="stop"]', 'button[data-action="start"]']) {
    if (!await page.locator(sel).isDisabled()) fail(sel + ' is enabled for a token without the admin scope');
    const desc = await page.locator(sel).getAttribute('aria-describedby');
    if (!desc || !desc.includes('admin-note')) fail(sel + ' does not point to the explanation');
  }
  await page.locator(`#tools-list details[data-item="${plan.echoTool}"]`).waitFor();
  if (await page.locator('#edit-link').isVisible() || await page.locator('#delete').isVisible()) fail('edit or remove is offered to a token without the admin scope');
  await a11y('the server page without admin');
  await shot('server-viewer');
  pass();

  // A JWT pasted as the token is exchanged as the caller's own.
  step = 'sign in with a JWT';
  await page.locator('#sign-out').click();
  await page.waitForURL(/\/ui\/login\?signedout=1/);
  const jwt = await (await fetch(base + '/auth', {method: 'POST', body: JSON.stringify({token: plan.viewerToken})})).json();
  if (!jwt.access_token) fail('no JWT for the viewer token: ' + JSON.stringify(jwt));
  await signIn(jwt.access_token);
  await waitText('#who-name', /static:viewer/);
  await waitText('#who-scope', /no admin scope/);
  pass();

  step = 'checks';
  if (offOrigin.length) fail('requests left the gateway\'s origin: ' + offOrigin.join(', '));
  if (cspErrors.length) fail('the Content-Security-Policy refused something: ' + cspErrors.join(' | '));
  if (pageErrors.length) fail('the page threw: ' + pageErrors.join(' | '));
  pass();
  out({done: true, screenshots, revokedToken: issued, jti, requestId});
} catch (err) {
  try { await shot('failure-' + step.replace(/[^a-z0-9]+/gi, '-')); } catch { /* no page */ }
  out({fatal: String(err && err.stack || err), step, screenshots, url: page.url()});
  process.exitCode = 1;
} finally {
  await context.close().catch(() => {});
  rmSync(profile, {recursive: true, force: true});
}
