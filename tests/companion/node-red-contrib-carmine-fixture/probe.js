// carmine-probe: a plain Node-RED node for tests/companion's checks of what
// crosses the boundary as it is. msg.probe (an array, one entry per probe
// passed) gets what this node sees of the message: each key's kind
// ("buffer", "undefined", "array", "null", typeof; objects key by key), and
// whether msg.undef is a key ("undef" in msg, hasOwnProperty). With msg.make
// it then adds msg.undef = undefined, a real Buffer, Buffer-shaped plain
// objects (top level and nested) and flow context values of both kinds;
// with msg.ctx it also reports the kinds of flow.nb and flow.nf (set by a
// native node before it). msg.warn, msg.warnError (a TypeError) and msg.info
// are logged with node.warn / node.log. It shows the status "probe ready" from the start.
module.exports = function (RED) {
    function kind(v, depth) {
        if (Buffer.isBuffer(v)) return 'buffer';
        if (v === undefined) return 'undefined';
        if (v === null) return 'null';
        if (Array.isArray(v)) return depth > 2 ? 'array' : v.map((x) => kind(x, depth + 1));
        if (typeof v === 'object') {
            if (depth > 2) return 'object';
            const o = {};
            for (const k of Object.keys(v)) o[k] = kind(v[k], depth + 1);
            return o;
        }
        return typeof v;
    }
    function Probe(config) {
        RED.nodes.createNode(this, config);
        this.status({ fill: 'grey', shape: 'ring', text: 'probe ready' }); // while the flows start
        this.on('input', (msg, send, done) => {
            if (msg.warn) this.warn(msg.warn); // node.warn: the log and the debug sidebar
            if (msg.warnError) this.warn(new TypeError(msg.warnError));
            if (msg.info) this.log(msg.info);
            const flow = this.context().flow;
            const seen = {};
            for (const k of Object.keys(msg)) if (k !== 'probe' && k !== '_msgid') seen[k] = kind(msg[k], 0);
            const entry = { seen, hasUndef: 'undef' in msg, ownUndef: Object.prototype.hasOwnProperty.call(msg, 'undef') };
            if (msg.ctx) entry.ctx = { nb: kind(flow.get('nb'), 0), nf: kind(flow.get('nf'), 0) };
            msg.probe = (msg.probe || []).concat([entry]);
            if (msg.make) {
                delete msg.make;
                msg.undef = undefined;
                msg.real = Buffer.from([7, 8]);
                msg.fake = { type: 'Buffer', data: [7, 8] };
                msg.nested = { arr: [Buffer.from([9]), { type: 'Buffer', data: [9] }] };
                flow.set('hb', Buffer.from([6]));
                flow.set('hf', { type: 'Buffer', data: [6] });
            }
            send(msg);
            done();
        });
    }
    RED.nodes.registerType('carmine-probe', Probe);
};
