// Tests of the demo page's own STOMP client (crates/server/demo/stompbox.js), in Node:
// the frame parser on every split of a stream (content-length bodies with NUL, heart-beat EOLs,
// CR LF, 1.2 escapes), the encoder round trip, and the client against the live server over `ws`.
// usage: node stompbox_js_test.mjs JS_PATH PORT
import { createRequire } from 'node:module';
const require = createRequire(process.env.NODE_DIR + '/node_modules/');
const WebSocket = require('ws');
const [jsPath, port] = process.argv.slice(2);
const { FrameParser, encodeFrame, StompClient } = createRequire(import.meta.url)(jsPath);

function check(cond, msg) {
  if (!cond) { console.error('FAILED: ' + msg); process.exit(1); }
  console.log('[stompbox.js] ok: ' + msg);
}
const enc = new TextEncoder();
const stream = enc.encode(
  '\n\r\nMESSAGE\ndestination:/a\\cb\nx-esc:line\\nnext\ncontent-length:5\n\nab\0cd\0' +
  '\nRECEIPT\r\nreceipt-id:7\r\n\r\n\0' +
  'MESSAGE\ndestination:/t\n\nno length\0\n');
function parseAll(chunks) {
  const frames = []; let beats = 0;
  const p = new FrameParser((f) => frames.push(f), () => beats++, '1.2');
  for (const c of chunks) p.push(c);
  return { frames: frames.map((f) => [f.command, JSON.stringify(f.headers), Buffer.from(f.binaryBody).toString('hex')]), beats };
}
const whole = parseAll([stream]);
check(whole.frames.length === 3 && whole.beats === 4, `3 frames and 4 heart-beats (${JSON.stringify(whole)})`);
check(whole.frames[0][2] === Buffer.from('ab\0cd').toString('hex'), 'content-length body keeps its NUL');
check(JSON.parse(whole.frames[0][1])['destination'] === '/a:b' && JSON.parse(whole.frames[0][1])['x-esc'] === 'line\nnext', '1.2 escapes decoded');
let splits = 0;
for (let i = 0; i <= stream.length; i++) {
  for (let j = i; j <= stream.length; j += 7) {
    const got = parseAll([stream.slice(0, i), stream.slice(i, j), stream.slice(j)]);
    if (JSON.stringify(got) !== JSON.stringify(whole)) check(false, `split at ${i},${j} differs`);
    splits++;
  }
}
check(true, `${splits} splits give the same frames as the whole stream`);
const round = [];
const p = new FrameParser((f) => round.push(f), () => {}, '1.2');
p.push(encodeFrame('SEND', { destination: '/q', note: 'a:b\nc\\d' }, 'body\0with nul', '1.2'));
check(round[0].headers.note === 'a:b\nc\\d' && round[0].body === 'body\0with nul', 'encoder/parser round trip (escapes, NUL in body)');

// The client against the server (heart-beats 1 s offered; the server was started with --heartbeat 1000).
const c = new StompClient(`ws://127.0.0.1:${port}/ws`, { WebSocket, heartbeat: [1000, 1000], reconnectDelay: 0 });
let beats = 0;
c.debug = (s) => { if (s === '<<< heart-beat') beats++; };
const got = [];
await new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error('no CONNECTED')), 10000);
  c.onconnect = (h) => { clearTimeout(t); check(h.version === '1.2' && c.ws.protocol === 'v12.stomp', `CONNECTED 1.2 over ${c.ws.protocol}`); resolve(); };
  c.onerror = (f) => reject(new Error(JSON.stringify(f.headers)));
  c.connect();
});
c.subscribe('/user/queue/echo', (m) => got.push(m.body));
c.send('/app/echo', 'héllo');
const t0 = Date.now();
while (got.length === 0 && Date.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 20));
check(got[0] === 'héllo', 'SEND /app/echo -> MESSAGE on /user/queue/echo (UTF-8 body)');
await new Promise((r) => setTimeout(r, 2500));
check(beats >= 1 && c.connected, `server heart-beats received (${beats}) and still connected`);
await new Promise((r) => c.disconnect(r));
check(true, 'DISCONNECT with receipt');
process.exit(0);
