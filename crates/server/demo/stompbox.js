// stompbox.js: a small STOMP 1.2/1.1/1.0 client over WebSocket, in plain JavaScript (no build step).
// Served by the stompbox server at /stompbox.js; works in browsers and in Node (pass a WebSocket class).
//
//   const c = new StompClient('ws://127.0.0.1:8080/ws', { login, passcode, heartbeat: [10000, 10000] });
//   c.onconnect = (headers) => { c.subscribe('/topic/chat', (msg) => console.log(msg.body)); };
//   c.connect();
//   c.send('/app/chat', 'hello', { nick: 'me' });
(function (root) {
  'use strict';

  const SUBPROTOCOLS = ['v12.stomp', 'v11.stomp', 'v10.stomp'];

  // Header value escaping (STOMP 1.2 section "Value Encoding"; 1.1 has no \r; never in CONNECT).
  function escapeValue(v, version) {
    if (version === '1.0') return v;
    let out = v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/:/g, '\\c');
    if (version === '1.2') out = out.replace(/\r/g, '\\r');
    return out;
  }
  function unescapeValue(v, version) {
    if (version === '1.0' || v.indexOf('\\') < 0) return v;
    return v.replace(/\\(.)/g, (m, c) => {
      switch (c) {
        case 'n': return '\n';
        case 'c': return ':';
        case '\\': return '\\';
        case 'r': if (version === '1.2') return '\r'; // falls through
        default: throw new Error('undefined escape ' + m);
      }
    });
  }

  const enc = new TextEncoder();
  const dec = new TextDecoder('utf-8', { fatal: false });

  // Incremental frame parser: bytes in any split; EOLs between frames are heart-beats;
  // content-length bodies may hold NUL; otherwise the body ends at the first NUL.
  class FrameParser {
    constructor(onFrame, onHeartbeat, version) {
      this.buf = new Uint8Array(0);
      this.onFrame = onFrame;
      this.onHeartbeat = onHeartbeat;
      this.version = version || '1.2';
      this.maxFrame = 16 * 1024 * 1024;
    }
    push(chunk) {
      const bytes = typeof chunk === 'string' ? enc.encode(chunk) : new Uint8Array(chunk);
      const joined = new Uint8Array(this.buf.length + bytes.length);
      joined.set(this.buf, 0);
      joined.set(bytes, this.buf.length);
      this.buf = joined;
      for (;;) {
        // Heart-beats: EOLs (LF or CR LF) before a frame.
        let i = 0;
        while (i < this.buf.length) {
          if (this.buf[i] === 10) { i += 1; this.onHeartbeat(); continue; }
          if (this.buf[i] === 13 && i + 1 < this.buf.length && this.buf[i + 1] === 10) { i += 2; this.onHeartbeat(); continue; }
          break;
        }
        if (i > 0) this.buf = this.buf.subarray(i);
        if (this.buf.length === 0) return;
        const frame = this.tryFrame();
        if (!frame) {
          if (this.buf.length > this.maxFrame) throw new Error('frame too large');
          return;
        }
        this.onFrame(frame);
      }
    }
    tryFrame() {
      const b = this.buf;
      // Find the end of the head: an empty line.
      let headEnd = -1, bodyStart = -1;
      for (let i = 0; i < b.length; i++) {
        if (b[i] !== 10) continue;
        if (i + 1 < b.length && b[i + 1] === 10) { headEnd = i; bodyStart = i + 2; break; }
        if (i + 2 < b.length && b[i + 1] === 13 && b[i + 2] === 10) { headEnd = i; bodyStart = i + 3; break; }
      }
      if (headEnd < 0) return null;
      const lines = dec.decode(b.subarray(0, headEnd)).split('\n').map((l) => l.replace(/\r$/, ''));
      const command = lines.shift();
      const headers = {};
      const version = this.version;
      const raw = command === 'CONNECTED' || command === 'CONNECT';
      for (const line of lines) {
        const c = line.indexOf(':');
        if (c < 0) throw new Error('malformed header line: ' + line);
        const k = raw ? line.slice(0, c) : unescapeValue(line.slice(0, c), version);
        const v = raw ? line.slice(c + 1) : unescapeValue(line.slice(c + 1), version);
        if (!(k in headers)) headers[k] = v; // the first value wins
      }
      let bodyEnd;
      if ('content-length' in headers) {
        const n = parseInt(headers['content-length'], 10);
        if (!(n >= 0)) throw new Error('bad content-length');
        if (b.length < bodyStart + n + 1) return null;
        bodyEnd = bodyStart + n;
        if (b[bodyEnd] !== 0) throw new Error('frame body not followed by NUL');
      } else {
        bodyEnd = b.indexOf(0, bodyStart);
        if (bodyEnd < 0) return null;
      }
      const binaryBody = b.slice(bodyStart, bodyEnd);
      this.buf = b.subarray(bodyEnd + 1);
      return { command, headers, binaryBody, body: dec.decode(binaryBody) };
    }
  }

  function encodeFrame(command, headers, body, version) {
    const bodyBytes = body == null ? new Uint8Array(0) : (typeof body === 'string' ? enc.encode(body) : new Uint8Array(body));
    const raw = command === 'CONNECT' || command === 'STOMP';
    let head = command + '\n';
    for (const [k, v] of Object.entries(headers || {})) {
      if (v === undefined || v === null || k === 'content-length') continue;
      head += raw ? k + ':' + v + '\n' : escapeValue(k, version) + ':' + escapeValue(String(v), version) + '\n';
    }
    if (bodyBytes.length > 0) head += 'content-length:' + bodyBytes.length + '\n';
    head += '\n';
    const h = enc.encode(head);
    const out = new Uint8Array(h.length + bodyBytes.length + 1);
    out.set(h, 0);
    out.set(bodyBytes, h.length);
    out[out.length - 1] = 0;
    return out;
  }

  class StompClient {
    constructor(url, options) {
      const o = options || {};
      this.url = url;
      this.login = o.login;
      this.passcode = o.passcode;
      this.host = o.host;
      this.heartbeat = o.heartbeat || [10000, 10000];
      this.WebSocket = o.WebSocket || root.WebSocket;
      this.reconnectDelay = o.reconnectDelay === undefined ? 2000 : o.reconnectDelay;
      this.debug = o.debug || function () {};
      this.subs = new Map();
      this.receipts = new Map();
      this.nextId = 1;
      this.connected = false;
      this.version = null;
      this.onconnect = null;
      this.ondisconnect = null;
      this.onerror = null;
      this.stopped = false;
      this.lastIn = 0;
      this.timers = [];
    }
    connect() {
      this.stopped = false;
      const ws = new this.WebSocket(this.url, SUBPROTOCOLS);
      ws.binaryType = 'arraybuffer';
      this.ws = ws;
      this.parser = new FrameParser((f) => this.onFrame(f), () => { this.debug('<<< heart-beat'); }, '1.2');
      ws.onopen = () => {
        const headers = { 'accept-version': '1.2,1.1,1.0', host: this.host || location_host(this.url), 'heart-beat': this.heartbeat.join(',') };
        if (this.login !== undefined) headers.login = this.login;
        if (this.passcode !== undefined) headers.passcode = this.passcode;
        this.raw(encodeFrame('CONNECT', headers, null, '1.2'));
      };
      ws.onmessage = (ev) => {
        this.lastIn = Date.now();
        try { this.parser.push(ev.data); } catch (e) { this.fail('parse error: ' + e.message); }
      };
      ws.onclose = (ev) => {
        const was = this.connected;
        this.connected = false;
        this.clearTimers();
        if (this.ondisconnect) this.ondisconnect({ code: ev.code, reason: ev.reason, wasConnected: was });
        if (!this.stopped && this.reconnectDelay > 0) setTimeout(() => { if (!this.stopped) this.connect(); }, this.reconnectDelay);
      };
      ws.onerror = () => {};
    }
    raw(bytes) {
      if (this.ws && this.ws.readyState === 1) this.ws.send(isUtf8Text(bytes) ? dec.decode(bytes) : bytes);
    }
    frame(command, headers, body) { this.raw(encodeFrame(command, headers, body, this.version || '1.2')); }
    onFrame(f) {
      this.debug('<<< ' + f.command);
      switch (f.command) {
        case 'CONNECTED': {
          this.version = f.headers.version || '1.0';
          this.parser.version = this.version;
          this.connected = true;
          this.setupHeartbeat(f.headers['heart-beat'] || '0,0');
          // Re-subscribe after a reconnect.
          for (const [id, s] of this.subs) this.frame('SUBSCRIBE', Object.assign({ id, destination: s.destination, ack: 'auto' }, s.headers));
          if (this.onconnect) this.onconnect(f.headers);
          break;
        }
        case 'MESSAGE': {
          const s = this.subs.get(f.headers.subscription);
          if (s) s.callback(f);
          break;
        }
        case 'RECEIPT': {
          const cb = this.receipts.get(f.headers['receipt-id']);
          if (cb) { this.receipts.delete(f.headers['receipt-id']); cb(f); }
          break;
        }
        case 'ERROR':
          if (this.onerror) this.onerror(f);
          break;
        default:
          break;
      }
    }
    setupHeartbeat(serverHb) {
      const [sx, sy] = serverHb.split(',').map((x) => parseInt(x, 10) || 0);
      const [cx, cy] = this.heartbeat;
      const out = cx && sy ? Math.max(cx, sy) : 0; // we send every `out` ms
      const inc = sx && cy ? Math.max(sx, cy) : 0;  // the server sends every `inc` ms
      if (out > 0) this.timers.push(setInterval(() => this.raw(enc.encode('\n')), out));
      if (inc > 0) {
        this.lastIn = Date.now();
        this.timers.push(setInterval(() => {
          if (Date.now() - this.lastIn > 2 * inc) { this.debug('server silent: closing'); this.ws.close(); }
        }, inc));
      }
    }
    clearTimers() { for (const t of this.timers) clearInterval(t); this.timers = []; }
    subscribe(destination, callback, headers) {
      const id = 'sub-' + this.nextId++;
      this.subs.set(id, { destination, callback, headers: headers || {} });
      if (this.connected) this.frame('SUBSCRIBE', Object.assign({ id, destination, ack: 'auto' }, headers || {}));
      return { id, unsubscribe: () => { this.subs.delete(id); if (this.connected) this.frame('UNSUBSCRIBE', { id }); } };
    }
    send(destination, body, headers) {
      this.frame('SEND', Object.assign({ destination, 'content-type': 'text/plain' }, headers || {}), body);
    }
    disconnect(callback) {
      this.stopped = true;
      const receipt = 'bye-' + this.nextId++;
      this.receipts.set(receipt, () => { this.ws.close(); if (callback) callback(); });
      this.frame('DISCONNECT', { receipt });
    }
    fail(message) {
      if (this.onerror) this.onerror({ command: 'ERROR', headers: { message }, body: '' });
      if (this.ws) this.ws.close();
    }
  }

  function isUtf8Text(bytes) {
    try { new TextDecoder('utf-8', { fatal: true }).decode(bytes); return true; } catch (e) { return false; }
  }
  function location_host(url) {
    const m = /^wss?:\/\/([^/:]+)/.exec(url);
    return m ? m[1] : 'localhost';
  }

  const api = { StompClient, FrameParser, encodeFrame, escapeValue, unescapeValue };
  if (typeof module !== 'undefined' && module.exports) module.exports = api;
  else root.Stompbox = api;
})(typeof globalThis !== 'undefined' ? globalThis : this);
