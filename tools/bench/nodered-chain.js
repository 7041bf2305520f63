// nodered-chain.js: the Node-RED side of bench_hops.c, measured the same way:
// a chain of N nodes of one kind (link, or a node of hop-kinds.json) ending in a
// counting sink, M messages pushed into its first node with at most WINDOW in
// flight, deliveries per second and nanoseconds per hop (wall clock, and the
// process's CPU time: process.cpuUsage(), which counts V8's helper threads too).
//   node tools/bench/nodered-chain.js KIND [N=10] [M=200000] [WINDOW=64]
// Output line: the same shape as bench_hops prints.
'use strict';
const {start} = require('./nodered-harness');

// the node of each kind, shared with bench_hops.c
const KINDS = require('./hop-kinds.json');

function chain(kind, n) {
  const spec = KINDS[kind];
  if (kind !== 'link' && (!spec || kind.startsWith('_'))) throw new Error(`no kind ${kind} in hop-kinds.json`);
  const flows = [{id: 't', type: 'tab', label: 'bench'}];
  for (let i = 0; i < n; i++) {
    const id = `n${i}`;
    const next = i + 1 < n ? `n${i + 1}` : 'sink';
    if (kind === 'link') {
      // a link out / link in pair counts as two hops, as in bench_hops.c
      flows.push({id, type: 'link out', z: 't', x: 1, y: 1, mode: 'link', links: [`${id}-in`], wires: []});
      flows.push({id: `${id}-in`, type: 'link in', z: 't', x: 1, y: 1, links: [id], wires: [[next]]});
    } else {
      const node = spec.nodes ? spec.nodes[i % spec.nodes.length] : spec.node;
      flows.push({...JSON.parse(JSON.stringify(node)), id, z: 't', x: 1, y: 1, wires: [[next]]});
    }
  }
  flows.push({id: 'sink', type: 'bench sink', z: 't', x: 1, y: 1, wires: []});
  return flows;
}

async function main() {
  const kind = process.argv[2] || 'junction';
  const n = Number(process.argv[3] || 10);
  const m = Number(process.argv[4] || 200000);
  const window = Number(process.argv[5] || 64);
  const spec = KINDS[kind] || {};
  const lines = spec.payload_lines; // a text: the header, then count lines
  const payload = lines ? lines.header + lines.line.repeat(lines.count) : spec.payload;
  const payloadJSON = JSON.stringify(payload);
  let sent = 0;
  let received = 0;
  let first;
  let finish;
  const done = new Promise((resolve) => { finish = resolve; });
  const pump = () => {
    while (sent < m && sent - received < window) {
      first.receive({payload: payload === undefined ? sent : JSON.parse(payloadJSON), topic: 'bench'});
      sent++;
    }
  };
  const rt = await start(chain(kind, n), () => {
    received++;
    if (received === m) finish();
    else pump();
  });
  first = rt.node('n0');
  // deliveries per message: each node's inputs (hop-kinds.json), and the sink's
  let hops = 1;
  for (let i = 0; i < n; i++) hops += kind === 'link' ? 2 : (spec.inputs ? spec.inputs[i % spec.inputs.length] : 1);
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  pump();
  await done;
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  const cu = process.cpuUsage(c0);
  const cpu = (cu.user + cu.system) / 1e6;
  console.log(`${kind} chain of ${n}: ${m} messages, ${(m / dt).toFixed(0)} msgs/s, ` +
    `${(m * hops / dt).toFixed(0)} deliveries/s, ${(dt * 1e9 / (m * hops)).toFixed(0)} ns per hop, ` +
    `${(cpu * 1e9 / (m * hops)).toFixed(0)} ns CPU per hop`);
  await rt.stop();
  process.exit(0);
}

main().catch((e) => { console.error(`nodered-chain: ${e.stack || e}`); process.exit(1); });
