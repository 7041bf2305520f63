// make-flows.js: writes the flows tools/bench/run.sh loads into both Carmine
// and Node-RED:
//   hello.json   GET /hello: http in -> change (payload = timestamp) -> http response
//   flow50.json  50 everyday nodes on one tab, no http request node (idle memory)
//   node tools/bench/make-flows.js OUTDIR
'use strict';
const fs = require('fs');
const path = require('path');

const hello = [
  {id: 't', type: 'tab', label: 'bench'},
  {id: 'in', type: 'http in', z: 't', url: '/hello', method: 'get', upload: false, x: 100, y: 50, wires: [['ch']]},
  {id: 'ch', type: 'change', z: 't', rules: [{t: 'set', p: 'payload', pt: 'msg', to: '', tot: 'date'}],
    x: 300, y: 50, wires: [['out']]},
  {id: 'out', type: 'http response', z: 't', statusCode: '', headers: {}, x: 500, y: 50, wires: []},
];

// The node configurations the editor gives each type by default.
const configs = {
  inject: () => ({props: [{p: 'payload'}, {p: 'topic', vt: 'str'}], repeat: '', crontab: '', once: false,
    onceDelay: 0.1, topic: '', payload: '', payloadType: 'date'}),
  change: (i) => ({rules: [{t: 'set', p: `step${i}`, pt: 'msg', to: `value ${i}`, tot: 'str'}]}),
  switch: () => ({property: 'payload', propertyType: 'msg', rules: [{t: 'nnull'}], checkall: 'true',
    repair: false, outputs: 1}),
  delay: () => ({pauseType: 'delay', timeout: '5', timeoutUnits: 'milliseconds', rate: '1', nbRateUnits: '1',
    rateUnits: 'second', randomFirst: '1', randomLast: '5', randomUnits: 'seconds', drop: false,
    allowrate: false, outputs: 1}),
  split: () => ({splt: '\\n', spltType: 'str', arraySplt: 1, arraySpltType: 'len', stream: false, addname: ''}),
  join: () => ({mode: 'auto', build: 'object', property: 'payload', propertyType: 'msg', key: 'topic',
    joiner: '\\n', joinerType: 'str', accumulate: false, timeout: '', count: '', reduceRight: false}),
  debug: () => ({active: true, tosidebar: true, console: false, tostatus: false, complete: 'payload',
    targetType: 'msg', statusVal: '', statusType: 'auto'}),
  junction: () => ({}),
};

// 1 inject, 20 change, 10 switch, 5 delay, 4 link out/in pairs, split, join,
// junction, 3 debug: 50 nodes in one chain.
function flow50() {
  const seq = ['inject'];
  for (let i = 0; i < 10; i++) seq.push('change', 'switch', 'change');
  for (let i = 0; i < 5; i++) seq.push('delay');
  seq.push('split', 'join', 'junction', 'debug', 'debug');
  for (let i = 0; i < 4; i++) seq.push('link');
  seq.push('debug');
  const nodes = [{id: 'f50', type: 'tab', label: 'fifty nodes'}];
  let prev = null;
  seq.forEach((type, i) => {
    const base = {z: 'f50', x: 100 + 20 * i, y: 100, wires: []};
    let entry;
    let exit;
    if (type === 'link') {
      entry = {...base, id: `lo${i}`, type: 'link out', mode: 'link', links: [`li${i}`]};
      exit = {...base, id: `li${i}`, type: 'link in', links: [`lo${i}`], wires: [[]]};
      nodes.push(entry, exit);
    } else {
      entry = exit = {...base, id: `n${i}`, type, ...configs[type](i)};
      if (type !== 'debug') exit.wires = [[]];
      nodes.push(entry);
    }
    if (prev) prev.wires[0].push(entry.id);
    prev = exit.wires.length ? exit : null;
  });
  const count = nodes.filter((n) => n.type !== 'tab').length;
  if (count !== 50) throw new Error(`flow50 has ${count} nodes`);
  return nodes;
}

const out = process.argv[2] || '.';
fs.writeFileSync(path.join(out, 'hello.json'), JSON.stringify(hello));
fs.writeFileSync(path.join(out, 'flow50.json'), JSON.stringify(flow50()));
