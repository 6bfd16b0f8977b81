// @stomp/stompjs (with the `ws` package) against the stompbox server over WebSocket.
// usage: node stompjs_test.mjs PORT RESTART_FIFO
// Covers connect, subscribe, publish, receive, ack, receipts, transaction, heart-beats both ways
// (server started with --heartbeat 1000) and a reconnect after the server restarts: the script
// prints "RESTART" and waits for a line on stdin once the server is back.
import { createRequire } from 'node:module';
import readline from 'node:readline';
const require = createRequire(process.env.NODE_DIR + '/node_modules/');
const { Client } = require('@stomp/stompjs');
const WebSocket = require('ws');

const port = process.argv[2];
const url = `ws://127.0.0.1:${port}/ws`;
const log = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function check(cond, msg) {
  if (!cond) { console.error('FAILED: ' + msg); console.error(log.slice(-30).join('\n')); process.exit(1); }
  console.log('[stompjs] ok: ' + msg);
}
async function until(what, pred, ms = 10000) {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (pred()) return; await sleep(20); }
  check(false, 'timed out waiting for ' + what);
}

let connects = 0, pongs = 0, pings = 0, closes = 0;
const got = [];
const client = new Client({
  webSocketFactory: () => new WebSocket(url, ['v12.stomp', 'v11.stomp', 'v10.stomp']),
  connectHeaders: { login: 'js', passcode: 'js' },
  heartbeatIncoming: 1000,
  heartbeatOutgoing: 1000,
  reconnectDelay: 300,
  debug: (s) => {
    log.push(s);
    if (s.includes('<<< PONG')) pongs++;
    if (s.includes('>>> PING')) pings++;
  },
});
let sessionHeaders = null;
client.onConnect = (frame) => {
  connects++;
  sessionHeaders = frame.headers;
  client.subscribe('/topic/js', (m) => got.push(m.body));
};
client.onWebSocketClose = () => { closes++; };
client.onStompError = (f) => log.push('ERROR ' + JSON.stringify(f.headers));
client.activate();

await until('connect', () => connects === 1);
check(sessionHeaders.version === '1.2' && client.webSocket.protocol === 'v12.stomp',
  `negotiated STOMP 1.2 over the ${client.webSocket.protocol} subprotocol`);
check(sessionHeaders['heart-beat'] === '1000,1000', `heart-beat header ${sessionHeaders['heart-beat']}`);

// publish with a receipt
const r1 = 'r-' + Date.now();
let receipt = false;
client.watchForReceipt(r1, () => { receipt = true; });
client.publish({ destination: '/topic/js', body: 'hello from stompjs', headers: { receipt: r1 } });
await until('receipt', () => receipt);
await until('message', () => got.includes('hello from stompjs'));
check(true, 'publish/subscribe with receipt');

// client ack on a queue
const acked = [];
client.subscribe('/queue/js', (m) => { acked.push(m.body); m.ack(); }, { ack: 'client' });
await sleep(100);
client.publish({ destination: '/queue/js', body: 'job' });
await until('queue message', () => acked.includes('job'));
check(true, 'client ack');

// transaction
const tx = client.begin();
client.publish({ destination: '/topic/js', body: 'tx-1', headers: { transaction: tx.id } });
await sleep(300);
check(!got.includes('tx-1'), 'nothing before COMMIT');
tx.commit();
await until('tx message', () => got.includes('tx-1'));
check(true, 'transaction committed');

// heart-beats: stay idle for 3.5 s; expect pongs from the server and no disconnect
const p0 = pongs, q0 = pings;
await sleep(3500);
check(pongs - p0 >= 2, `server heart-beats received (${pongs - p0} in 3.5 s)`);
check(pings - q0 >= 2, `client heart-beats sent (${pings - q0})`);
check(closes === 0 && client.connected, 'connection alive after idle period with heart-beats');

// reconnect after a server restart
console.log('RESTART');
const rl = readline.createInterface({ input: process.stdin });
await new Promise((r) => rl.once('line', r));
await until('reconnect', () => connects === 2, 20000);
check(closes >= 1, 'saw the close of the stopped server');
client.publish({ destination: '/topic/js', body: 'after restart' });
await until('message after restart', () => got.includes('after restart'));
check(true, 'reconnected and resubscribed after restart');
await client.deactivate();
rl.close();
console.log('[stompjs] all checks passed');
process.exit(0);
