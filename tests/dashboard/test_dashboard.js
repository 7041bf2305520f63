// test_dashboard.js KIND URL [SCREENSHOT]: a real dashboard from npm, hosted by
// Carmine's companion, used in headless Chromium (playwright-core + Debian's
// chromium, as tests/editor does) through Carmine's port.
//   KIND dashboard: node-red-dashboard 3.x on tests/dashboard/dashboard.json:
//     the gauge, the text and the chart show the readings a native inject and
//     change node make every second (and they move), the npm moment node's
//     time of day, the page's socket.io runs over a WebSocket; the button's
//     press and the slider's value reach the native function node (its ui_text
//     answer comes back, and GET /state, a native http in, has them).
//   KIND flowfuse: @flowfuse/node-red-dashboard on tests/dashboard/flowfuse.json:
//     the page shows the text widget with the native change node's value.
// Prints "ok - " / "not ok - " lines.
const path = require('path');
const root = path.resolve(__dirname, '..', '..');
const { chromium } = require(path.join(root, '.deps/npm/node_modules/playwright-core'));

const [kind, url, shot] = process.argv.slice(2);
function check(name, cond, detail) {
  console.log((cond ? 'ok - ' : 'not ok - ') + name + (cond ? '' : '  (' + detail + ')'));
}

async function text(page) { return page.innerText('body').catch(() => ''); }

// waits until fn(body text) gives a value (not null), or null after ms
async function until(page, fn, ms) {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn(await text(page));
    if (v !== null && v !== undefined) return v;
    if (Date.now() > end) return null;
    await page.waitForTimeout(100);
  }
}

function match(re) { return (t) => { const m = re.exec(t); return m ? m[1] : null; }; }

async function state() {
  const r = await fetch(new URL('state', url));
  return r.json();
}

async function dashboard(page, socket) {
  await page.goto(new URL('ui/', url).href);
  const gauge = await until(page, match(/Pressure\s+([\d.]+)\s+bar/), 20000);
  const reading = await until(page, match(/Reading\s+([\d.]+)/), 5000);
  check('the gauge and the text show the native change node\'s reading (' + gauge + ', ' + reading + ')',
    gauge !== null && reading !== null && +gauge >= 20 && +gauge <= 80 && +reading >= 20 && +reading <= 80,
    'gauge ' + gauge + ', reading ' + reading);
  const moved = await until(page, (t) => { const r = match(/Reading\s+([\d.]+)/)(t); return r !== null && r !== reading ? r : null; }, 5000);
  check('the reading moves: a new value arrives every second (' + reading + ' then ' + moved + ')', moved !== null, 'still ' + reading);
  const clock = await until(page, match(/Updated \(UTC\)\s+(\d\d:\d\d:\d\d)/), 5000);
  check('the npm moment node\'s time of day is shown (' + clock + ')', clock !== null, (await text(page)).slice(0, 300));
  // the chart: line pixels of its first colour (#1f77b4) on its canvas
  const px = await page.evaluate(() => {
    let n = 0;
    for (const c of document.querySelectorAll('canvas')) {
      if (!c.width || !c.height) continue;
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      for (let i = 0; i < d.length; i += 4)
        if (Math.abs(d[i] - 31) < 12 && Math.abs(d[i + 1] - 119) < 12 && Math.abs(d[i + 2] - 180) < 12 && d[i + 3] > 200) n++;
    }
    return n;
  });
  check('the chart draws the readings (' + px + ' pixels of its line)', px > 20, px + ' pixels');
  check('the page\'s socket.io runs over a WebSocket through Carmine (' + socket.frames + ' frames received)',
    socket.urls.some((u) => /\/ui\/socket\.io\/\?EIO=4&transport=websocket/.test(u)) && socket.frames > 3,
    JSON.stringify(socket));
  // the button: hosted -> native function -> hosted ui_text, and global context
  await page.getByRole('button', { name: /vent/i }).click();
  const pressed = await until(page, match(/Last action\s+(button: pressed)/), 5000);
  const s1 = await state();
  check('a button press reaches the native function node: its answer is shown, GET /state has it',
    pressed !== null && s1.button === 'pressed' && typeof s1.pressure === 'number', JSON.stringify(s1));
  // the slider: a click three quarters along its track
  const box = await page.locator('md-slider').first().boundingBox();
  await page.mouse.click(box.x + box.width * 0.75, box.y + box.height / 2);
  const slid = await until(page, match(/Last action\s+slider: (\d+)/), 5000);
  const s2 = await state();
  check('the slider\'s value reaches the native function node (' + slid + ')',
    slid !== null && +slid >= 60 && +slid <= 90 && s2.slider === +slid, 'shown ' + slid + ', state ' + JSON.stringify(s2));
  // the companion killed: Carmine restarts it, the open page reconnects and the readings move again
  const pid = +process.env.COMPANION_PID;
  if (pid) {
    process.kill(pid, 'SIGKILL');
    const t0 = Date.now();
    await page.waitForTimeout(1000);
    const before = match(/Reading\s+([\d.]+)/)(await text(page));
    const again = await until(page, (t) => { const r = match(/Reading\s+([\d.]+)/)(t); return r !== null && r !== before ? r : null; }, 30000);
    check('after SIGKILL to the companion the open page reconnects and the reading moves again (' + before + ' then ' + again +
      ', ' + ((Date.now() - t0) / 1000).toFixed(1) + ' s)', again !== null, 'still ' + before);
  }
}

async function flowfuse(page, socket) {
  await page.goto(new URL('dashboard/plant', url).href);
  const v = await until(page, match(/Temperature\s+(20\.5 °C)/), 20000);
  check('the FlowFuse dashboard page shows the text widget with the native change node\'s value (' + v + ')', v !== null,
    (await text(page)).slice(0, 300));
  check('its socket.io runs over a WebSocket through Carmine',
    socket.urls.some((u) => /\/dashboard\/socket\.io\/\?EIO=4&transport=websocket/.test(u)) && socket.frames > 0,
    JSON.stringify(socket));
}

(async () => {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 720 } });
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const socket = { urls: [], frames: 0 };
    page.on('websocket', (ws) => {
      socket.urls.push(ws.url());
      ws.on('framereceived', () => socket.frames++);
    });
    if (kind === 'dashboard') await dashboard(page, socket);
    else await flowfuse(page, socket);
    check('no error in the page', errors.length === 0, errors.join('; '));
    if (shot) {
      await page.mouse.move(0, 0);
      await page.waitForTimeout(1500);
      await page.screenshot({ path: shot });
    }
  } catch (e) {
    check('the browser run', false, e.stack || e);
  } finally {
    await browser.close();
  }
})();
