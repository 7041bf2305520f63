// test_corpus.js URL MQTT_PORT API_PORT WS_MODULE: tests/dashboard/corpus.json (two
// public flows, node-red-dashboard 3.x hosted by the companion beside native mqtt,
// http request, catch and function nodes) driven as the dashboard's page drives it:
// its socket.io (engine.io 4: a polling handshake, then the WebSocket upgrade, as
// node-red-dashboard refuses a direct WebSocket), its events ('update-value' both
// ways, 'show-toast'), and MQTT through the broker the flow uses. The same script
// passes against Node-RED 4.1.15 running the same flows (what its checks assert is
// what Node-RED does; run.sh runs it against Carmine). Prints "ok - "/"not ok - ".
const { execFile, spawn } = require('child_process');
const [url, mqttPort, apiPort, wsModule] = process.argv.slice(2);
const WebSocket = require(wsModule);
const T = 'abdel_project_9Xs9/security';

function check(name, cond, detail) {
  console.log((cond ? 'ok - ' : 'not ok - ') + name + (cond ? '' : '  (' + detail + ')'));
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function pub(topic, payload) {
  return new Promise((res) => execFile('mosquitto_pub', ['-h', '127.0.0.1', '-p', mqttPort, '-t', topic, '-m', payload], () => res()));
}

async function connect(events) {
  const base = url.replace(/\/$/, '');
  const hs = await (await fetch(base + '/ui/socket.io/?EIO=4&transport=polling')).text();
  const sid = JSON.parse(hs.slice(1)).sid;
  const ws = new WebSocket(base.replace(/^http/, 'ws') + '/ui/socket.io/?EIO=4&transport=websocket&sid=' + sid);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no socket.io connection in 10 s')), 10000);
    ws.on('open', () => ws.send('2probe'));
    ws.on('message', (d) => {
      d = d.toString();
      if (d === '3probe') { ws.send('5'); ws.send('40'); }
      else if (d === '2') ws.send('3');
      else if (d.startsWith('40')) { clearTimeout(timer); resolve(ws); }
      else if (d.startsWith('42')) { const [ev, data] = JSON.parse(d.slice(2)); events.push({ ev, data }); }
    });
    ws.on('error', reject);
  });
}
const emit = (ws, ev, data) => ws.send('42' + JSON.stringify([ev, data]));
async function until(fn, ms) {
  const end = Date.now() + ms;
  for (;;) { const v = fn(); if (v) return v; if (Date.now() > end) return null; await sleep(50); }
}

(async () => {
  const page = await fetch(url + 'ui/');
  const html = await page.text();
  check('GET /ui/ is node-red-dashboard\'s page (200)', page.status === 200 && /ng-app="ui"/.test(html), page.status + ' ' + html.slice(0, 120));
  const events = [];
  let ws;
  try { ws = await connect(events); } catch (e) { check('socket.io connects (polling, then WebSocket upgrade)', false, e.message); return; }
  check('socket.io connects (polling, then WebSocket upgrade)', true);
  const controls = await until(() => events.find((e) => e.ev === 'ui-controls'), 5000);
  const menu = controls && controls.data.menu;
  const items = menu && menu[0] && menu[0].items && menu[0].items[0] && menu[0].items[0].items;
  const kinds = items ? items.map((i) => i.type).sort().join(',') : '';
  check('ui-controls: tab Home, group Status with the flows\' widgets (' + kinds + ')',
    menu && menu.length === 1 && menu[0].header === 'Home' && menu[0].items[0].header.name === 'Status' &&
    kinds === 'button,button,switch,template,text,text,text', JSON.stringify(controls && controls.data).slice(0, 300));

  // MQTT reading -> native mqtt in -> hosted ui_text (and the native debug node)
  const sub = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', mqttPort, '-v', '-t', T + '/commands']);
  let published = '';
  sub.stdout.on('data', (d) => { published += d; });
  await sleep(300);
  await pub(T + '/detection', 'Motion detected');
  await pub(T + '/door', '42');
  const alert = await until(() => events.find((e) => e.ev === 'update-value' && e.data.id === 'ui_alert_text'), 5000);
  check('an MQTT reading reaches the hosted ui_text (' + (alert && alert.data.value) + ')', alert && alert.data.value === 'Motion detected' &&
    alert.data.msg && alert.data.msg.payload === 'Motion detected', JSON.stringify(alert));
  const door = await until(() => events.find((e) => e.ev === 'update-value' && e.data.id === '2f8a8e5b167d22fd'), 5000);
  check('auto-detect turns "42" into the number 42 on its way to ui_text (value "42", msg.payload 42)',
    door && door.data.value === '42' && door.data.msg.payload === 42, JSON.stringify(door));

  // the button and the switch -> native mqtt out
  emit(ws, 'update-value', { id: 'beda97a27fca6e65', value: true, event: {} });
  emit(ws, 'update-value', { id: '59dcdbe80dfa7f78', value: true });
  const both = await until(() => /OPEN_DOOR/.test(published) && /ALARM_ON/.test(published) ? published : null, 5000);
  check('the button and the switch publish through the native mqtt out (' + JSON.stringify(published) + ')',
    both && published.split('\n').filter(Boolean).sort().join('|') === T + '/commands ALARM_ON|' + T + '/commands OPEN_DOOR', published);
  const sw = await until(() => events.find((e) => e.ev === 'update-value' && e.data.id === '59dcdbe80dfa7f78'), 3000);
  check('the switch\'s new state goes back to the page (value true)', sw && sw.data.value === true, JSON.stringify(sw));
  sub.kill();

  // "Atualizar Lista": http request to a port nobody listens on; its error reaches the
  // catch node first (Node-RED hands it over at once), so its toast comes before the
  // table's message, then the second error's toast
  const from = events.length;
  emit(ws, 'update-value', { id: 'btn_atualizar', value: true, event: {} });
  await until(() => events.slice(from).filter((e) => e.ev === 'show-toast').length >= 2, 5000);
  await sleep(300);
  const seq = events.slice(from).filter((e) => e.ev === 'show-toast' || (e.ev === 'update-value' && e.data.id === 'ui_tabela_produtos'))
    .map((e) => e.ev === 'show-toast' ? 'toast: ' + e.data.message : 'table: ' + e.data.msg.payload);
  const want = ['toast: ⚠️ Erro interno: RequestError: connect ECONNREFUSED 127.0.0.1:' + apiPort,
    'table: <p style="color:#D32F2F">Erro: resposta inesperada da API.</p>',
    'toast: ⚠️ Erro interno: ❌ Erro ao carregar produtos (status ECONNREFUSED)'];
  check('the refused request: the catch branch\'s toast, the table, the second error\'s toast, in Node-RED\'s order',
    JSON.stringify(seq) === JSON.stringify(want), JSON.stringify(seq));
  const toast = events.slice(from).find((e) => e.ev === 'show-toast');
  check('the toast\'s msg.error is the catch node\'s (source http request, code ECONNREFUSED)',
    toast && toast.data.msg.error.source.id === 'http_get_products' && toast.data.msg.error.code === 'ECONNREFUSED' &&
    toast.data.title === 'load', JSON.stringify(toast && toast.data.msg.error));
  ws.close();
})().catch((e) => check('the test ran', false, e.stack)).finally(() => setTimeout(() => process.exit(0), 100));
