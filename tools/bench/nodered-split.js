// nodered-split.js: the Node-RED side of bench_split.c: one message holding an
// array of N numbers (default 1,000,000) goes into a split node wired to a
// counting sink; prints the time until the last part arrived and the peak
// resident memory of the process.
//   node tools/bench/nodered-split.js [N=1000000]
'use strict';
const {start, peakRssMb} = require('./nodered-harness');

async function main() {
  const n = Number(process.argv[2] || 1000000);
  const flows = [
    {id: 't', type: 'tab', label: 'bench'},
    {id: 'sp', z: 't', type: 'split', splt: '\\n', spltType: 'str', arraySplt: 1, arraySpltType: 'len',
      stream: false, addname: '', x: 1, y: 1, wires: [['sink']]},
    {id: 'sink', z: 't', type: 'bench sink', x: 2, y: 1, wires: []},
  ];
  let received = 0;
  let finish;
  const done = new Promise((resolve) => { finish = resolve; });
  const rt = await start(flows, () => { if (++received === n) finish(); });
  const base = process.memoryUsage().rss / 1048576;
  const payload = Array.from({length: n}, (_, i) => i);
  const withInput = process.memoryUsage().rss / 1048576;
  const t0 = process.hrtime.bigint();
  rt.node('sp').receive({payload});
  await done;
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(`split->sink: ${n} numbers, ${received} messages out, ${ms.toFixed(0)} ms wall`);
  console.log(`rss: ${base.toFixed(1)} MB before the input, ${withInput.toFixed(1)} MB with the input array, ` +
    `peak ${peakRssMb().toFixed(1)} MB`);
  await rt.stop();
  process.exit(0);
}

main().catch((e) => { console.error(`nodered-split: ${e.stack || e}`); process.exit(1); });
