// test_browser.js URL FLOWS.json [SCREENSHOT.png]: opens the Node-RED editor
// Carmine serves in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core from .deps/npm, both installed by tools/setup.sh), waits
// for the canvas, and checks that the flows file's tabs and nodes are drawn
// and that no node of a type whose definition the editor got from /nodes is
// shown as unknown. Prints "ok - " / "not ok - " lines; "# " lines report.
const path = require('path');
const fs = require('fs');
const root = path.resolve(__dirname, '..', '..');
const { chromium } = require(path.join(root, '.deps/npm/node_modules/playwright-core'));

const [url, flowsFile, shot] = process.argv.slice(2);
let failures = 0;
function check(name, cond, detail) {
  console.log((cond ? 'ok - ' : 'not ok - ') + name + (cond ? '' : '  (' + detail + ')'));
  if (!cond) failures++;
}

(async () => {
  const flows = JSON.parse(fs.readFileSync(flowsFile, 'utf8'));
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
    const errors = [];
    page.on('pageerror', e => errors.push(String(e)));
    const failed = [];
    page.on('response', r => { if (r.status() >= 400 && !/\/comms/.test(r.url())) failed.push(r.status() + ' ' + r.url()); });
    await page.addInitScript(() => localStorage.setItem('editor-language', 'en-US'));
    // the welcome tour would cover the canvas: off in the user settings (POST /settings/user)
    const res = await page.request.post(new URL('settings/user', url).href,
      { data: { editor: { view: { 'view-show-welcome-tours': false } } } });
    check('POST /settings/user', res.status() === 204, res.status());
    await page.goto(url);
    await page.waitForSelector('g.red-ui-flow-node', { timeout: 30000 });
    await page.waitForTimeout(1000);
    const info = await page.evaluate(() => {
      const tabs = [], nodes = [], unknown = [];
      RED.nodes.eachWorkspace(w => tabs.push(w.label));
      if (RED.nodes.eachJunction) RED.nodes.eachJunction(() => nodes.push('junction'));
      RED.nodes.eachNode(n => {
        nodes.push(n.type);
        if (n.type === 'unknown') unknown.push(n.name || (n._orig && n._orig.type));
      });
      const registered = RED.nodes.registry.getNodeTypes();
      return { tabs, nodes, unknown, registered, drawn: document.querySelectorAll('g.red-ui-flow-node').length };
    });
    const wantTabs = flows.filter(n => n.type === 'tab').map(n => n.label);
    for (const t of wantTabs) check(`the tab "${t}" is there`, info.tabs.includes(t), JSON.stringify(info.tabs));
    const shown = new Set(flows.filter(n => n.type === 'tab').map(n => n.id));
    const onCanvas = flows.filter(n => n.z && n.z === (flows.find(t => t.type === 'tab') || {}).id && n.x !== undefined);
    check('nodes are drawn on the canvas', info.drawn > 0 && info.drawn >= Math.min(onCanvas.length, 1), `${info.drawn} drawn`);
    const flowNodes = flows.filter(n => n.x !== undefined && n.type !== 'group' && !shown.has(n.id));
    check(`the editor holds the flows' ${flowNodes.length} nodes`, info.nodes.length >= flowNodes.length,
      `${info.nodes.length}: ${info.nodes.join(', ')}`);
    const withHtml = new Set(info.registered);
    const wrongUnknown = info.unknown.filter(t => withHtml.has(t));
    check('no node of a type the editor knows is unknown', wrongUnknown.length === 0, wrongUnknown.join(', '));
    const missing = [...new Set(info.unknown)];
    if (missing.length) console.log(`# types without an editor definition (shown as unknown): ${missing.join(', ')}`);
    const coreTypes = flows.map(n => n.type).filter(t => !/^(tab|group|ui_|moving-average|msg-speed|subflow)/.test(t));
    const coreUnknown = coreTypes.filter(t => missing.includes(t));
    check('every core node type of the flows has its definition', coreUnknown.length === 0, coreUnknown.join(', '));
    check('no script error in the page', errors.length === 0, errors.join(' | ').slice(0, 300));
    check('no request failed (but /comms)', failed.length === 0, failed.join(', ').slice(0, 300));
    if (shot) {
      await page.keyboard.press('Escape');
      await page.screenshot({ path: shot });
      console.log('# screenshot: ' + shot);
    }
  } finally {
    await browser.close();
  }
  process.exit(failures ? 1 : 0);
})().catch(e => { console.log('not ok - the browser test ran  (' + String(e).slice(0, 300) + ')'); process.exit(1); });
