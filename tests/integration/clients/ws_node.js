// A game.v1 client on node's `ws` (the npm package; Debian's node-ws),
// for test_realtime_clients.py.  Usage: node ws_node.js URL TOKEN
//
// It authenticates with the Authorization header, checks ping/pong and an
// unknown type's error, prints {"ready":...} and waits for one
// notification, which it prints before closing normally.  Every line on
// stdout is JSON; anything unexpected exits non-zero.

'use strict';

const WebSocket = require('ws');

const [url, token] = process.argv.slice(2);
const ws = new WebSocket(url, 'game.v1', {
    headers: { Authorization: 'Bearer ' + token },
});

let step = 'welcome';
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const fail = (why) => { out({ error: why }); process.exit(2); };

setTimeout(() => fail('timed out at ' + step), 20000).unref();

ws.on('unexpected-response', (req, res) => fail('HTTP ' + res.statusCode));
ws.on('error', (e) => fail(String(e)));
ws.on('close', (code) => {
    if (step !== 'closing') fail('closed ' + code + ' at ' + step);
    out({ closed: code });
    process.exit(0);
});

ws.on('message', (data, binary) => {
    if (binary) fail('a binary message');
    const m = JSON.parse(data.toString());

    if (step === 'welcome' && m.type === 'welcome') {
        if (ws.protocol !== 'game.v1') fail('protocol ' + ws.protocol);
        step = 'pong';
        ws.send(JSON.stringify({ type: 'ping', id: 'node-1' }));

    } else if (step === 'pong' && m.type === 'pong') {
        if (m.id !== 'node-1') fail('pong id ' + m.id);
        step = 'error';
        ws.send(JSON.stringify({ type: 'no.such.type' }));

    } else if (step === 'error' && m.type === 'error') {
        if (m.code !== 'unknown_type') fail('error code ' + m.code);
        step = 'notification';
        out({ ready: m.code });

    } else if (step === 'notification' && m.type === 'notification') {
        out({ notification: m });
        step = 'closing';
        ws.close(1000, 'done');
    }
});
