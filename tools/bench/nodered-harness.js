// nodered-harness.js: starts a real Node-RED runtime (tools/bench/node_modules/
// node-red, 4.1.15) in this process with a flow and a counting sink node type
// ("bench sink"), the way bench_hops.c and bench_split.c drive Carmine
// in-process. No editor, no HTTP: only the runtime under measurement.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');

const SINK_JS = `module.exports = function (RED) {
  function BenchSink(config) {
    RED.nodes.createNode(this, config);
    this.on('input', function (msg, send, done) { global.__benchSink(msg); done(); });
  }
  RED.nodes.registerType('bench sink', BenchSink);
};
`;
const SINK_HTML = `<script type="text/javascript">
RED.nodes.registerType('bench sink', {category: 'function', defaults: {}, inputs: 1, outputs: 0});
</script>
`;

// flows: a Node-RED flows array; onMessage(msg) runs for every message the
// sink receives. Resolves to {RED, node(id), stop()} once every node exists.
async function start(flows, onMessage) {
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'carmine-nr-bench-'));
  const nodesDir = path.join(userDir, 'bench-nodes');
  fs.mkdirSync(nodesDir);
  fs.writeFileSync(path.join(nodesDir, 'bench-sink.js'), SINK_JS);
  fs.writeFileSync(path.join(nodesDir, 'bench-sink.html'), SINK_HTML);
  const flowFile = path.join(userDir, 'flows.json');
  fs.writeFileSync(flowFile, JSON.stringify(flows));
  global.__benchSink = onMessage;
  const RED = require(path.join(__dirname, 'node_modules', 'node-red'));
  RED.init(http.createServer(), {
    userDir, nodesDir, flowFile,
    httpAdminRoot: false, httpNodeRoot: false, disableEditor: true,
    credentialSecret: false,
    logging: {console: {level: 'warn', metrics: false, audit: false}},
  });
  await RED.start();
  const ids = flows.filter((n) => n.type !== 'tab').map((n) => n.id);
  for (let i = 0; i < 1000 && !ids.every((id) => RED.nodes.getNode(id)); i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  if (!ids.every((id) => RED.nodes.getNode(id))) throw new Error('Node-RED did not start every node of the flow');
  return {
    RED,
    node: (id) => RED.nodes.getNode(id),
    stop: async () => {
      await RED.stop();
      fs.rmSync(userDir, {recursive: true, force: true});
    },
  };
}

// Peak resident memory of this process, in MB.
function peakRssMb() {
  return process.resourceUsage().maxRSS / 1024;
}

module.exports = {start, peakRssMb};
