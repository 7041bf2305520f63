// carmine-echo: a plain Node-RED node for tests/companion. msg.fail makes it
// report an error with the message (a catch node should see it), msg.failError
// an Error object with code EFIXTURE; a Buffer
// payload comes back with one byte 0xff appended; anything else gets
// msg.echoed = true and msg.count (messages seen), shown as its status.
module.exports = function (RED) {
    function Echo(config) {
        RED.nodes.createNode(this, config);
        let count = 0;
        this.on('input', (msg, send, done) => {
            count++;
            if (msg.fail) {
                done('failed: ' + msg.fail);
                return;
            }
            if (msg.failError) { // an Error object, with a code
                const e = new Error(msg.failError);
                e.code = 'EFIXTURE';
                done(e);
                return;
            }
            if (Buffer.isBuffer(msg.payload)) {
                msg.payload = Buffer.concat([msg.payload, Buffer.from([0xff])]);
                msg.wasBuffer = true;
            }
            msg.echoed = true;
            msg.count = count;
            if (count % 100 === 1) this.status({ fill: 'green', shape: 'dot', text: 'seen ' + count });
            send(msg);
            done();
        });
    }
    RED.nodes.registerType('carmine-echo', Echo);
};
