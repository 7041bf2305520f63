// test_deploy_browser.js URL [USER PASSWORD]: the editor used as a user would, in headless
// Chromium (as test_browser.js): imports an inject and a debug node into the
// open tab, deploys with the Deploy button, presses the inject node's button
// and waits for its payload in the debug sidebar. Carmine must run a flows
// file it may write (a copy). With USER and PASSWORD (adminAuth) it logs in
// through the editor's login dialog first. With EDITOR_SHOTS=DIR it saves a
// PNG of each step there (editor-canvas, editor-imported, editor-deployed,
// editor-debug; editor-login with adminAuth): docs/img/ holds them
// (SCREENSHOT=1 tests/editor/run.sh). With REPLICAS_URL (URL is then a
// supervisor's API, carmine --replicas N) it checks that the deploy rolled
// out to the replicas at REPLICAS_URL instead of the inject and the debug
// sidebar (the supervisor does not relay the replicas' debug messages).
// Prints "ok - " / "not ok - " lines.
const path = require('path');
const root = path.resolve(__dirname, '..', '..');
const { chromium } = require(path.join(root, '.deps/npm/node_modules/playwright-core'));

const [url, user, password] = process.argv.slice(2);
let failures = 0;
function check(name, cond, detail) {
  console.log((cond ? 'ok - ' : 'not ok - ') + name + (cond ? '' : '  (' + detail + ')'));
  if (!cond) failures++;
}
const PAYLOAD = process.env.EDITOR_SHOTS ? 'hello from the browser' : 'hello from the browser ' + Date.now();
async function shot(page, name, target, clearNotes) { // target: a clip rectangle or a selector
  if (!process.env.EDITOR_SHOTS) return;
  if (clearNotes) await page.evaluate(() => document.querySelectorAll('.red-ui-notification').forEach(n => n.remove()));
  const file = path.join(process.env.EDITOR_SHOTS, name + '.png');
  if (typeof target === 'string') await page.locator(target).first().screenshot({ path: file });
  else await page.screenshot({ path: file, clip: target });
}

(async () => {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
    const errors = [];
    page.on('pageerror', e => errors.push(String(e) + (process.env.DEBUG_STACK ? e.stack : '')));
    await page.addInitScript(() => localStorage.setItem('editor-language', 'en-US'));
    // the welcome tour would cover the canvas: off in the user's settings (with
    // adminAuth, those of the user, through a token of their own)
    const auth = {};
    if (user) {
      const t = await page.request.post(new URL('auth/token', url).href, { form: {
        client_id: 'node-red-editor', grant_type: 'password', scope: '*', username: user, password } });
      auth.Authorization = 'Bearer ' + (await t.json()).access_token;
    }
    await page.request.post(new URL('settings/user', url).href,
      { headers: auth, data: { editor: { view: { 'view-show-welcome-tours': false } } } });
    await page.goto(url);
    if (user) {
      await page.waitForSelector('#node-dialog-login-username', { timeout: 30000 });
      await page.fill('#node-dialog-login-username', user);
      await page.fill('#node-dialog-login-password', password);
      await shot(page, 'editor-login', '.ui-dialog:has(#node-dialog-login-username)');
      await page.click('#node-dialog-login-submit');
      const in_ = await page.waitForFunction(() => window.RED && RED.workspaces && RED.workspaces.active(), null, { timeout: 30000 })
        .then(() => true, () => false);
      check('the login dialog logs in (adminAuth)', in_, 'no workspace after the login');
      await page.waitForTimeout(500);
    }
    await page.waitForFunction(() => window.RED && RED.workspaces && RED.workspaces.active(), null, { timeout: 30000 });
    await page.waitForTimeout(500);
    if (!user) await shot(page, 'editor-canvas', { x: 0, y: 0, width: 1400, height: 560 });
    // import, as the Import dialog does, into the active tab
    const imported = await page.evaluate((payload) => {
      const z = RED.workspaces.active();
      RED.view.importNodes([
        { id: 'e2e-inject', type: 'inject', z, name: 'e2e inject', props: [{ p: 'payload' }], repeat: '', crontab: '',
          once: false, onceDelay: 0.1, topic: '', payload, payloadType: 'str', x: 160, y: 440, wires: [['e2e-debug']] },
        { id: 'e2e-debug', type: 'debug', z, name: 'e2e debug', active: true, tosidebar: true, console: false,
          tostatus: false, complete: 'payload', targetType: 'msg', x: 420, y: 440, wires: [] }
      ], { generateIds: false, addFlow: false });
      return !!RED.nodes.node('e2e-inject') && !!RED.nodes.node('e2e-debug');
    }, PAYLOAD);
    check('an inject and a debug node are imported into the open tab', imported, 'not in RED.nodes');
    // the imported nodes follow the pointer until a click drops them, as after the Import dialog
    await page.mouse.move(500, 420);
    await page.mouse.click(500, 420);
    check('they are dropped on the canvas', await page.evaluate(() => RED.nodes.dirty() && !!document.getElementById('e2e-inject')), 'not drawn');
    if (!user) {
      await page.evaluate(() => RED.view.select({ nodes: [] }));
      await shot(page, 'editor-imported', { x: 0, y: 0, width: 1400, height: 560 });
      await page.evaluate(() => document.querySelectorAll('.red-ui-notification').forEach(n => n.remove()));
    }
    if (process.env.REPLICAS_URL) {
      // a rolling deploy takes a second or two: let the import notification close first (its
      // slide-up overlapping the deploy's notifications threw inside the editor's notify code)
      await page.waitForFunction(() => document.querySelectorAll('.red-ui-notification').length === 0, null,
        { timeout: 20000 }).catch(() => {});
    }
    await page.click('#red-ui-header-button-deploy');
    const deployed = await page.waitForFunction(() => !RED.nodes.dirty(), null, { timeout: 15000 }).then(() => true, () => false);
    check('the Deploy button deploys (the workspace is clean again)', deployed, 'still dirty');
    if (!user) {
      await page.waitForTimeout(2500); // the "Successfully deployed" notification
      await shot(page, 'editor-deployed', { x: 0, y: 0, width: 1400, height: 560 });
    }
    const token = await page.evaluate(() => (JSON.parse(localStorage.getItem('auth-tokens') || '{}')).access_token);
    const headers = { 'Node-RED-API-Version': 'v2' };
    if (token) headers.Authorization = 'Bearer ' + token;
    const saved = await page.request.get(new URL('flows', url).href, { headers });
    const flows = (await saved.json()).flows || [];
    check('GET /flows has the imported nodes', flows.some(n => n.id === 'e2e-inject') && flows.some(n => n.id === 'e2e-debug'),
      flows.map(n => n.id).join(','));
    const replicas = process.env.REPLICAS_URL; // the editor of a supervisor (--replicas N)
    if (replicas) {
      // the deploy rolled out: every replica runs the imported nodes (the shared port
      // spreads new connections over them; several asks reach both)
      let all = true;
      for (let i = 0; i < 8; i++) {
        const r = await fetch(new URL('flows', replicas).href, { headers: { Connection: 'close' } });
        const ids = (await r.json()).map(n => n.id);
        all = all && ids.includes('e2e-inject') && ids.includes('e2e-debug');
      }
      check('the supervisor rolled the deploy out: the replicas run the imported nodes', all, 'a replica without them');
      check('no script error in the page', errors.length === 0, errors.join(' | ').slice(0, 300));
      return;
    }
    await page.evaluate(() => RED.sidebar.show('debug'));
    // the inject node's button, as the editor runs it when pressed: its definition's
    // button.onclick with the node as this (POST /inject/:id from the editor's own code)
    await page.evaluate(() => {
      const n = RED.nodes.node('e2e-inject');
      n._def.button.onclick.call(n);
    });
    const seen = await page.waitForFunction((payload) => [...document.querySelectorAll('.red-ui-debug-msg')]
      .some(el => el.textContent.includes(payload)), PAYLOAD, { timeout: 15000 }).then(() => true, () => false);
    if (!user) {
      await page.waitForTimeout(500);
      await shot(page, 'editor-debug', { x: 0, y: 0, width: 1400, height: 560 }, true);
    }
    check('the inject button (its onclick, as the editor runs it when pressed) shows the payload in the debug sidebar', seen,
      await page.evaluate(() => [...document.querySelectorAll('.red-ui-debug-msg')].map(e => e.textContent).join(' | ').slice(0, 300)));
    check('no script error in the page', errors.length === 0, errors.join(' | ').slice(0, 300));
  } finally {
    await browser.close();
  }
  process.exit(failures ? 1 : 0);
})().catch(e => { console.log('not ok - the deploy browser test ran  (' + String(e).slice(0, 300) + ')'); process.exit(1); });
