// 1,000 concurrent WebSocket STOMP clients on one topic; each must receive every message of a
// short burst. Bounded in count and time. usage: node fanout_test.mjs PORT [CLIENTS] [MESSAGES]
import { createRequire } from 'node:module';
const require = createRequire(process.env.NODE_DIR + '/node_modules/');
const WebSocket = require('ws');

const port = process.argv[2];
const N = parseInt(process.argv[3] || '1000', 10);
const M = parseInt(process.argv[4] || '100', 10);
const url = `ws://127.0.0.1:${port}/ws`;
const deadline = setTimeout(() => { console.error('FAILED: time limit (60 s) exceeded'); report(); process.exit(1); }, 60000);
const frame = (cmd, h, body = '') => cmd + '\n' + Object.entries(h).map(([k, v]) => `${k}:${v}\n`).join('') + '\n' + body + '\0';

const clients = [];
let ready = 0;
function open(i) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ['v12.stomp']);
    const c = { ws, got: 0, buf: '', subscribed: false };
    ws.on('open', () => ws.send(frame('CONNECT', { 'accept-version': '1.2', host: 'localhost', 'heart-beat': '0,0' })));
    ws.on('message', (data) => {
      c.buf += data.toString();
      let z;
      while ((z = c.buf.indexOf('\0')) >= 0) {
        const f = c.buf.slice(0, z).replace(/^[\r\n]+/, '');
        c.buf = c.buf.slice(z + 1);
        if (f.startsWith('CONNECTED')) ws.send(frame('SUBSCRIBE', { id: 's', destination: '/topic/fanout', receipt: 'r' }));
        else if (f.startsWith('RECEIPT')) { c.subscribed = true; ready++; resolve(c); }
        else if (f.startsWith('MESSAGE')) c.got++;
        else if (f.startsWith('ERROR')) reject(new Error('client ' + i + ': ' + f));
      }
    });
    ws.on('error', reject);
  });
}
function report() {
  const counts = clients.map((c) => c.got);
  const full = counts.filter((n) => n === M).length;
  console.log(`[fanout] ${clients.length} clients, ${full} received all ${M} messages; min ${Math.min(...counts)} max ${Math.max(...counts)}`);
  return full;
}
const t0 = Date.now();
// open in waves of 100 so the accept backlog is never the limit
for (let i = 0; i < N; i += 100) {
  const wave = [];
  for (let j = i; j < Math.min(N, i + 100); j++) wave.push(open(j));
  clients.push(...await Promise.all(wave));
}
console.log(`[fanout] ${ready} clients connected and subscribed in ${Date.now() - t0} ms`);
const pub = await open(-1);
const t1 = Date.now();
for (let k = 0; k < M; k++) pub.ws.send(frame('SEND', { destination: '/topic/fanout' }, 'burst message ' + k));
while (clients.some((c) => c.got < M)) {
  await new Promise((r) => setTimeout(r, 20));
}
const ms = Date.now() - t1;
clearTimeout(deadline);
const full = report();
console.log(`[fanout] ${N * M} deliveries in ${ms} ms (${Math.round((N * M) / (ms / 1000))} msgs/s)`);
for (const c of clients) c.ws.terminate();
pub.ws.terminate();
process.exit(full === N ? 0 : 1);
