//! A minimal blocking-free `std::net` host for the broker: STOMP over plain TCP, one thread,
//! non-blocking sockets polled every millisecond. Used by the interop script
//! `.ci/interop/50-broker-stomppy.sh`; the real server is `stompbox-server` (mio).
//!
//! Usage: `tcp_host [PORT]` (default 61613). Logins: any user whose passcode is `pw`
//! (the user name is the login). The application echoes SENDs to `/app/echo` to
//! `/topic/echo`, and answers SUBSCRIBEs to `/app/hello` once with `hello <user>`.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use stompbox_broker::{
    AuthDecision, Broker, Config, ConnectRequest, Event, SessionId, TransportInfo,
};

struct Conn {
    stream: TcpStream,
    out: Vec<u8>,
    closing: bool,
}

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(61613);
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    listener.set_nonblocking(true)?;
    let config = Config {
        max_queue_depth: 5,
        ..Config::default()
    };
    let mut broker = Broker::with_authenticator(config, |r: &ConnectRequest<'_>| {
        if r.passcode == Some("pw") {
            AuthDecision::Accept {
                user: r.login.map(str::to_owned),
            }
        } else {
            AuthDecision::Reject {
                message: "bad credentials".into(),
            }
        }
    });
    let start = Instant::now();
    let mut conns: HashMap<SessionId, Conn> = HashMap::new();
    let mut buf = vec![0u8; 64 * 1024];
    eprintln!("tcp_host listening on 127.0.0.1:{port}");
    loop {
        let now = start.elapsed().as_millis() as u64;
        let mut busy = false;
        while let Ok((stream, addr)) = listener.accept() {
            stream.set_nonblocking(true)?;
            stream.set_nodelay(true)?;
            let info = TransportInfo {
                remote_addr: Some(addr),
                ..TransportInfo::default()
            };
            match broker.open_session(info, now) {
                Ok(id) => {
                    conns.insert(
                        id,
                        Conn {
                            stream,
                            out: Vec::new(),
                            closing: false,
                        },
                    );
                }
                Err(e) => eprintln!("refused {addr}: {e}"),
            }
        }
        let ids: Vec<SessionId> = conns.keys().copied().collect();
        for id in ids {
            let Some(c) = conns.get_mut(&id) else {
                continue;
            };
            if c.closing {
                continue;
            }
            loop {
                match c.stream.read(&mut buf) {
                    Ok(0) => {
                        conns.remove(&id);
                        let _ = broker.transport_closed(id);
                        break;
                    }
                    Ok(n) => {
                        busy = true;
                        let _ = broker.handle_read(id, &buf[..n], now);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        conns.remove(&id);
                        let _ = broker.transport_closed(id);
                        break;
                    }
                }
            }
        }
        if broker.poll_timeout().is_some_and(|t| t <= now) {
            broker.handle_timeout(now);
        }
        // Drain events (the application) and output until quiet.
        loop {
            let mut progressed = false;
            while let Some(ev) = broker.poll_event() {
                progressed = true;
                match ev {
                    Event::Message(m) if m.destination == "/app/echo" => {
                        let ct = m.header("content-type").unwrap_or("text/plain").to_owned();
                        let _ = broker.publish("/topic/echo", &[("content-type", &ct)], m.body);
                    }
                    Event::Subscribe(s) if s.destination == "/app/hello" => {
                        let who = s.user.as_deref().unwrap_or("anonymous").to_owned();
                        let _ = broker.send_to_session(
                            s.session,
                            &s.destination,
                            &[],
                            format!("hello {who}").into_bytes(),
                        );
                    }
                    Event::Closed { session, .. } => {
                        if let Some(c) = conns.get_mut(&session) {
                            c.closing = true;
                        }
                    }
                    _ => {}
                }
            }
            while let Some(id) = broker.poll_ready() {
                progressed = true;
                while let Some(t) = broker.poll_transmit(id) {
                    if let Some(c) = conns.get_mut(&id) {
                        t.write_to(&mut c.out);
                    }
                }
            }
            if !progressed {
                break;
            }
        }
        let ids: Vec<SessionId> = conns.keys().copied().collect();
        for id in ids {
            let Some(c) = conns.get_mut(&id) else {
                continue;
            };
            while !c.out.is_empty() {
                match c.stream.write(&c.out) {
                    Ok(0) => break,
                    Ok(n) => {
                        busy = true;
                        c.out.drain(..n);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {
                        c.out.clear();
                        c.closing = true;
                        break;
                    }
                }
            }
            if c.closing && c.out.is_empty() {
                let _ = c.stream.shutdown(std::net::Shutdown::Both);
                conns.remove(&id);
                let _ = broker.transport_closed(id);
            }
        }
        if !busy {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
