// jsonata-js.js: the same expressions and inputs as tools/bench/bench_jsonata.c,
// evaluated by jsonata-js (the version Node-RED 4.1.15 embeds), in CPU ns per
// evaluation, so the two can be put side by side.
const jsonata = require('jsonata');

function cpuNs() { const u = process.cpuUsage(); return (u.user + u.system) * 1000; }

async function bench(expr, input, iters) {
  const e = jsonata(expr);
  for (let i = 0; i < Math.min(iters, 1000); i++) await e.evaluate(input); // warm up the JIT
  const t0 = cpuNs();
  for (let i = 0; i < iters; i++) await e.evaluate(input);
  const ns = (cpuNs() - t0) / iters;
  console.log(expr.padEnd(40) + ' ' + ns.toFixed(0).padStart(10) + ' ns/eval');
}

(async () => {
  const scale = Number(process.argv[2] || 1);
  const root = { msg: { payload: 42, topic: 'sensors/temp' }, payload: 42 };
  const big = { a: [] };
  for (let i = 0; i < 1000; i++) big.a.push({ id: i, b: i % 17, name: i % 2 ? 'odd' : 'even' });
  await bench('1000 / msg.payload', root, 200000 * scale);
  await bench('payload.x', root, 200000 * scale);
  await bench('msg.payload > 40 ? "hot" : "cold"', root, 100000 * scale);
  await bench('msg.topic & "/" & msg.payload', root, 100000 * scale);
  await bench('$uppercase($substringBefore(msg.topic, "/")) & ":" & $string(msg.payload)', root, 50000 * scale);
  await bench('msg.topic ~> $split("/") ~> $reverse() ~> $join(".")', root, 50000 * scale);
  await bench('$sum(a.b)', big, 200 * scale);
  await bench('a[b > 10].id', big, 200 * scale);
  await bench('$count(a[name = "odd"])', big, 200 * scale);
  await bench('a{name: $sum(b)}', big, 100 * scale);
  await bench('$map(a, function($v){$v.b * 2})', big, 100 * scale);
})();
