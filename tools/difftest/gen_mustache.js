// Random templates rendered by mustache.js (Node-RED's copy): writes mu_in.jsonl and mu_exp.json in the current directory.
const M = require(process.env.NR_MODULES + '/mustache');
const fs = require('fs');
let seed = 987; function rnd(n) { seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff; return (seed >>> 8) % n; }
const names = ['a', 'b', 'a.b', '.', 'c.d.e', 'list', 's', 'n', 't', 'f', 'e', 'nul', 'obj', 'obj.x', 'list.length', 's.length', 'missing', 'z'];
const texts = ['x', ' ', '\n', '\r\n', '\t', 'é', '<', '&', 'yy', '  ', '}', '{', '='];
const views = [
  {a: {b: 'AB', x: 1}, b: 'B', c: {d: {e: 'E&'}}, list: [1, 'two', {a: 'la', s: 'ls'}, [3, 4]], s: 'str<>"\'', n: 0, t: true, f: false, e: [], nul: null, obj: {x: 'ox', a: {b: 'inner'}}, z: 1.5},
  {list: [{a: {b: 1}}, {b: 2}], s: '', n: -2.5e-7, obj: {}, t: 'yes', a: 'plain'},
];
function gen(depth, open) {
  let out = '';
  const k = 1 + rnd(6);
  for (let i = 0; i < k; i++) {
    const r = rnd(20);
    const nm = names[rnd(names.length)];
    const sp = rnd(4) === 0 ? ' ' : '';
    if (r < 6) out += texts[rnd(texts.length)];
    else if (r < 9) out += '{{' + sp + nm + sp + '}}';
    else if (r < 10) out += '{{{' + sp + nm + sp + '}}}';
    else if (r < 11) out += '{{&' + sp + nm + '}}';
    else if (r < 12) out += '{{! c' + texts[rnd(texts.length)] + ' }}';
    else if (r < 16 && depth < 3) {
      const ty = rnd(2) ? '#' : '^';
      const nl = rnd(2) ? '\n' : '';
      out += '{{' + ty + sp + nm + sp + '}}' + nl + gen(depth + 1) + '{{/' + sp + nm + sp + '}}' + nl;
    }
    else if (r < 17) out += '\n  ';
    else if (r < 18 && rnd(3) === 0) out += '{{=<% %>=}}' + '<%' + nm + '%>' + '<%={{ }}=%>';
    else if (r < 19) out += ['{{', '{{#a}}', '{{/b}}', '{{x', '{{{a}}', '{{= | | =}}|a|', '{{=a=}}', '{{>p}}', '{{ # a }}x{{ / a }}', '{{{a} }}', '{{}}', '{{ }}', '{{#}}{{/}}', '\u00a0{{#t}}\u00a0\n{{/t}}'][rnd(14)];
    else out += ' ';
  }
  return out;
}
const lines = [], exp = [];
for (let i = 0; i < 2000; i++) {
  const t = gen(0); const v = views[rnd(views.length)];
  let res;
  try { M.clearCache(); res = {r: M.render(t, v)}; } catch (e) { res = {err: e.message}; }
  lines.push(JSON.stringify({t, v})); exp.push(res);
}
fs.writeFileSync('mu_in.jsonl', lines.join('\n') + '\n');
fs.writeFileSync('mu_exp.json', JSON.stringify(exp));
