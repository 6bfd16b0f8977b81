//! A tiny STOMP server over `std::net` built on `ServerSession` alone (no broker crate): one
//! thread, non-blocking sockets, an in-memory topic table. It shows the host side of the
//! session API and is the peer of `.ci/interop/31-stomp-session-stomppy.sh`:
//!
//! - manual receipts (`auto_receipts = false`): every event carrying a receipt is answered
//!   after the host acted on it, so a SEND's RECEIPT follows the MESSAGE frames it caused;
//! - the connect timeout: `handle_timeout` once at creation, then whenever due;
//! - whole-frame output with `poll_transmit_frame` (as a WebSocket host would send them).
//!
//! Run: `cargo run -p stompbox-stomp --example session_server -- 127.0.0.1:61700 [CONNECT_TIMEOUT_MS]`
//! A login `bad` is rejected. The server runs until killed.
#![allow(clippy::unwrap_used, reason = "an example: fail loudly")]

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};
use stompbox_stomp::server::{Accept, ServerConfig, ServerEvent, ServerSession};

struct Conn {
    id: u64,
    sock: TcpStream,
    session: ServerSession,
    out: Vec<u8>,
    eof: bool,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:61700".into());
    let connect_timeout: u64 = args.next().map_or(10_000, |a| a.parse().unwrap());
    let listener = TcpListener::bind(&addr).unwrap();
    listener.set_nonblocking(true).unwrap();
    eprintln!("session_server on {addr}, connect timeout {connect_timeout} ms");
    let start = Instant::now();
    let now = || u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut conns: Vec<Conn> = Vec::new();
    // (connection, subscription id, destination)
    let mut subs: Vec<(u64, String, String)> = Vec::new();
    let (mut next_conn, mut next_msg) = (0u64, 0u64);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut busy = false;
        while let Ok((sock, _)) = listener.accept() {
            sock.set_nonblocking(true).unwrap();
            sock.set_nodelay(true).unwrap();
            let mut session = ServerSession::new(ServerConfig {
                auto_receipts: false,
                connect_timeout_ms: Some(connect_timeout),
                ..ServerConfig::default()
            });
            session.handle_timeout(now()); // starts the connect timeout
            next_conn += 1;
            conns.push(Conn {
                id: next_conn,
                sock,
                session,
                out: Vec::new(),
                eof: false,
            });
            busy = true;
        }
        for i in 0..conns.len() {
            // bytes in
            loop {
                match conns[i].sock.read(&mut buf) {
                    Ok(0) => {
                        conns[i].eof = true;
                        break;
                    }
                    Ok(n) => {
                        busy = true;
                        // a violation is sticky and its ERROR is queued: just drain
                        let _ = conns[i].session.handle_read(&buf[..n]);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        conns[i].eof = true;
                        break;
                    }
                }
            }
            // time
            let t = now();
            if conns[i].session.poll_timeout().is_some_and(|d| d <= t) {
                conns[i].session.handle_timeout(t);
            }
            // events: act, then answer the receipt
            let id = conns[i].id;
            while let Some(ev) = conns[i].session.poll_event() {
                busy = true;
                let receipt = ev.receipt().map(ToString::to_string);
                match ev {
                    ServerEvent::Connect(req) => {
                        let s = &mut conns[i].session;
                        if req.login.as_deref() == Some("bad") {
                            s.reject("access refused").unwrap();
                        } else {
                            let sid = format!("session-{id}");
                            s.accept(&Accept {
                                session: Some(&sid),
                                ..Accept::default()
                            })
                            .unwrap();
                        }
                    }
                    ServerEvent::Subscribe(sub) => subs.push((id, sub.id, sub.destination)),
                    ServerEvent::Unsubscribe(u) => {
                        subs.retain(|(c, s, _)| !(*c == id && *s == u.id));
                    }
                    ServerEvent::Send(send) => {
                        for (c, sub, dest) in &subs {
                            if dest != send.destination() {
                                continue;
                            }
                            if let Some(target) = conns.iter_mut().find(|x| x.id == *c) {
                                next_msg += 1;
                                // a full or closed target is skipped (a real broker would
                                // apply its slow-consumer policy here)
                                let _ = target.session.send_message_from(
                                    sub,
                                    &format!("m-{next_msg}"),
                                    &send.frame,
                                );
                            }
                        }
                    }
                    ServerEvent::Closed(_) => subs.retain(|(c, _, _)| *c != id),
                    _ => {}
                }
                if let Some(r) = receipt {
                    let _ = conns[i].session.send_receipt(&r);
                }
            }
        }
        // bytes out, whole frames; close finished sessions
        for c in &mut conns {
            while let Some(frame) = c.session.poll_transmit_frame() {
                for part in frame.parts() {
                    c.out.extend_from_slice(part);
                }
            }
            while !c.out.is_empty() {
                match c.sock.write(&c.out) {
                    Ok(0) => {
                        c.eof = true;
                        break;
                    }
                    Ok(n) => {
                        c.out.drain(..n);
                        busy = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        c.eof = true;
                        break;
                    }
                }
            }
        }
        conns.retain(|c| {
            let done = c.eof || (c.session.is_finished() && c.out.is_empty());
            if done {
                let _ = c.sock.shutdown(std::net::Shutdown::Both);
            }
            !done
        });
        subs.retain(|(c, _, _)| conns.iter().any(|x| x.id == *c));
        if !busy {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
