// Random schemas and data validated by ajv as Node-RED's json node does: writes js_in.jsonl and js_exp.json in the current directory.
const NR = process.env.NR_MODULES + '/';
const Ajv = require(NR + 'ajv');
const fs = require('fs');
let seed = 777; function rnd(n) { seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff; return (seed >>> 8) % n; }
function pick(a) { return a[rnd(a.length)]; }
const types = ['string', 'number', 'integer', 'object', 'array', 'boolean', 'null'];
function schema(d) {
  if (d > 2 || rnd(8) === 0) return pick([true, false, {}, {type: pick(types)}]);
  const s = {};
  const k = 1 + rnd(4);
  for (let i = 0; i < k; i++) {
    switch (rnd(29)) {
      case 0: s.type = rnd(3) ? pick(types) : [pick(types), pick(types)]; break;
      case 1: s.minimum = rnd(5); break;
      case 2: s.maximum = rnd(5); break;
      case 3: s.exclusiveMinimum = rnd(5); break;
      case 4: s.multipleOf = pick([2, 0.5, 3]); break;
      case 5: s.minLength = rnd(4); s.maxLength = rnd(6); break;
      case 6: s.pattern = pick(['^a', '[0-9]$', 'é']); break;
      case 7: s.required = [pick(['a', 'b']), pick(['c', 'a'])].filter((x, i, a) => a.indexOf(x) === i); break;
      case 8: s.properties = {a: schema(d + 1), b: schema(d + 1)}; break;
      case 9: s.additionalProperties = rnd(2) ? false : schema(d + 1); break;
      case 10: s.items = rnd(2) ? schema(d + 1) : [schema(d + 1), schema(d + 1)]; break;
      case 11: s.minItems = rnd(3); s.maxItems = 1 + rnd(3); break;
      case 12: s.uniqueItems = true; break;
      case 13: s.enum = [1, 'a', null, {x: 1}]; break;
      case 14: s.const = pick([1, 'a', [1]]); break;
      case 15: s.anyOf = [schema(d + 1), schema(d + 1)]; break;
      case 16: s.oneOf = [schema(d + 1), schema(d + 1), schema(d + 1)]; break;
      case 17: s.not = schema(d + 1); break;
      case 18: s.allOf = [schema(d + 1), schema(d + 1)]; break;
      case 19: s.if = schema(d + 1); s.then = schema(d + 1); if (rnd(2)) s.else = schema(d + 1); break;
      case 20: s.contains = schema(d + 1); break;
      case 21: s.dependencies = {a: rnd(2) ? ['b', 'c'] : schema(d + 1)}; break;
      case 22: s.patternProperties = {'^x': schema(d + 1)}; break;
      case 23: s.minProperties = rnd(3); s.maxProperties = 1 + rnd(3); break;
      case 24: s.propertyNames = {maxLength: 1}; break;
      case 26: s.definitions = {p: schema(d + 1)}; s['$ref'] = '#/definitions/p'; break; case 27: s[pick(['format','foo','title','$comment'])] = 'email'; break; case 28: s.if = schema(d + 1); if (rnd(2)) s.then = schema(d + 1); break; case 25: s.additionalItems = rnd(2) ? false : schema(d + 1); s.items = [schema(d + 1)]; break;
    }
  }
  return s;
}
function data(d) {
  switch (rnd(d > 2 ? 6 : 9)) {
    case 0: return rnd(7) - 1;
    case 1: return pick([0.5, 2.5, 1.5, 4]);
    case 2: return pick(['', 'a', 'ab1', 'é', 'xyz0', 'aaaa']);
    case 3: return pick([true, false]);
    case 4: return null;
    case 5: return pick([1, 'a', {x: 1}]);
    case 6: case 7: { const o = {}; const k = rnd(4); for (let i = 0; i < k; i++) o[pick(['a', 'b', 'c', 'x1', 'xy', 'zz'])] = data(d + 1); return o; }
    default: { const a = []; const k = rnd(4); for (let i = 0; i < k; i++) a.push(data(d + 1)); return a; }
  }
}
const lines = [], exp = [];
for (let i = 0; i < 3000; i++) {
  const s = schema(0), dt = data(0);
  const ajv = new Ajv({allErrors: true, logger: false});
  ajv.addMetaSchema(require(NR + 'ajv/lib/refs/json-schema-draft-06.json'));
  let res;
  try { const v = ajv.compile(s); const ok = v(dt); res = ok ? {valid: true} : {valid: false, errors: v.errors}; }
  catch (e) { res = {compile: false}; }
  lines.push(JSON.stringify({s, d: dt})); exp.push(res);
}
fs.writeFileSync('js_in.jsonl', lines.join('\n') + '\n');
fs.writeFileSync('js_exp.json', JSON.stringify(exp));
