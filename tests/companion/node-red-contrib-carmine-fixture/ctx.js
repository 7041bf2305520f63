// carmine-ctx: a plain Node-RED node for tests/companion's context checks.
// It reads flow and global context with the synchronous API (what the
// native nodes before it set), its own node context (a counter), the flow's
// keys, and one key again with the asynchronous (callback) API; it writes
// flow.hosted and global.hg for the native nodes after it, and, when
// msg.store names a context store, flow.persisted in that store (after
// reading it). All it read
// goes out in msg.seen.
module.exports = function (RED) {
    function Ctx(config) {
        RED.nodes.createNode(this, config);
        this.on('input', (msg, send, done) => {
            const ctx = this.context(), flow = ctx.flow, global = ctx.global;
            const count = (ctx.get('count') || 0) + 1;
            ctx.set('count', count);
            msg.seen = { nat: flow.get('nat'), ga: global.get('g.a'), v: flow.get('v'), count: count,
                         keys: flow.keys().sort() };
            flow.set('hosted', 'h:' + msg.payload);
            global.set('hg', count);
            if (msg.store) {
                msg.seen.persisted = flow.get('persisted', msg.store);
                flow.set('persisted', msg.payload, msg.store);
            }
            flow.get('nat', (err, v) => {
                msg.seen.asyncNat = err ? 'error: ' + err.message : v;
                send(msg);
                done();
            });
        });
    }
    RED.nodes.registerType('carmine-ctx', Ctx);
};
