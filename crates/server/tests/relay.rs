//! The server's relay sockets end to end over loopback: `ServerBuilder::relay` against a fake
//! upstream STOMP broker (a `stompbox-stomp` server session per TCP connection, each routing
//! SEND to its own subscriptions), with a raw STOMP/TCP client. The RabbitMQ version of this
//! is `.ci/interop/80-relay-rabbitmq.sh`.
#![allow(clippy::unwrap_used, reason = "tests panic on failure by design")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use stompbox::stomp::server::{Accept, ServerConfig, ServerEvent, ServerSession};
use stompbox::stomp::{Command, Frame, Limits, Parser};
use stompbox_server::{RelaySettings, ServerBuilder};

type Connects = Arc<Mutex<Vec<(Option<String>, Option<String>)>>>;

/// A fake upstream broker: each connection is its own little broker.
fn fake_upstream() -> (String, Connects) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let connects: Connects = Arc::default();
    let seen = connects.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut s = ServerSession::new(ServerConfig::default());
                let mut subs: Vec<(String, String)> = Vec::new();
                let mut buf = [0u8; 4096];
                let mut n_msg = 0;
                loop {
                    let n = match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if s.handle_read(&buf[..n]).is_err() {
                        return;
                    }
                    while let Some(ev) = s.poll_event() {
                        match ev {
                            ServerEvent::Connect(req) => {
                                seen.lock()
                                    .unwrap()
                                    .push((req.login.clone(), req.host.clone()));
                                s.accept(&Accept::default()).unwrap();
                            }
                            ServerEvent::Subscribe(sub) => subs.push((sub.id, sub.destination)),
                            ServerEvent::Send(send) => {
                                for (id, dest) in &subs {
                                    if dest == send.destination() {
                                        n_msg += 1;
                                        let mid = format!("up-{n_msg}");
                                        s.send_message_from(id, &mid, &send.frame).unwrap();
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                    while let Some(out) = s.poll_transmit() {
                        if stream.write_all(&out).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, connects)
}

struct Client {
    stream: TcpStream,
    parser: Parser,
    buf: BytesMut,
}

impl Client {
    fn connect(addr: std::net::SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Self {
            stream,
            parser: Parser::new(Limits::default()),
            buf: BytesMut::new(),
        }
    }

    fn send(&mut self, frame: &str) {
        self.stream.write_all(frame.as_bytes()).unwrap();
    }

    fn next(&mut self) -> Frame {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(f) = self.parser.parse(&mut self.buf).unwrap() {
                return f;
            }
            assert!(Instant::now() < deadline, "no frame within 10 s");
            let mut b = [0u8; 4096];
            match self.stream.read(&mut b) {
                Ok(0) => panic!("closed"),
                Ok(n) => self.buf.extend_from_slice(&b[..n]),
                Err(_) => {}
            }
        }
    }
}

#[test]
fn relays_broker_destinations_over_the_mio_loop() {
    let (upstream, connects) = fake_upstream();
    let mut relay = RelaySettings::new(upstream);
    relay.login = Some("relay-user".into());
    relay.virtual_host = "vh".into();
    let server = ServerBuilder::new()
        .no_http()
        .stomp("127.0.0.1:0".parse().unwrap())
        .handle_signals(false)
        .stats_interval_ms(None)
        .relay(relay)
        .build()
        .unwrap();
    let addr = server.stomp_addr().unwrap();
    let stop = server.shutdown_handle();
    let thread = std::thread::spawn(move || server.run());

    let mut c = Client::connect(addr);
    c.send("CONNECT\naccept-version:1.2\nhost:x\nheart-beat:0,0\n\n\0");
    let f = c.next();
    assert_eq!(f.command(), Command::Connected, "{f:?}");
    c.send("SUBSCRIBE\nid:s1\ndestination:/topic/t\nreceipt:r1\n\n\0");
    let f = c.next();
    assert_eq!(f.command(), Command::Receipt);
    assert_eq!(f.header("receipt-id"), Some("r1"));
    c.send("SEND\ndestination:/topic/t\nx-k:v\n\nthrough the relay\0");
    let f = c.next();
    assert_eq!(f.command(), Command::Message);
    assert_eq!(f.header("subscription"), Some("s1"));
    assert_eq!(
        f.header("message-id"),
        Some("up-1"),
        "the upstream's id, unchanged"
    );
    assert_eq!(f.header("x-k"), Some("v"));
    assert_eq!(&f.body()[..], b"through the relay");
    // The system session and the client's upstream session both connected with the relay's
    // login and virtual host.
    let seen = connects.lock().unwrap().clone();
    assert!(seen.len() >= 2, "{seen:?}");
    assert!(
        seen.iter()
            .all(|(l, h)| l.as_deref() == Some("relay-user") && h.as_deref() == Some("vh"))
    );
    stop.shutdown();
    thread.join().unwrap().unwrap();
}

#[test]
fn an_unreachable_upstream_is_an_error_for_the_client() {
    // A port with nothing listening.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = ServerBuilder::new()
        .no_http()
        .stomp("127.0.0.1:0".parse().unwrap())
        .handle_signals(false)
        .stats_interval_ms(None)
        .relay(RelaySettings::new(format!("127.0.0.1:{port}")))
        .build()
        .unwrap();
    let addr = server.stomp_addr().unwrap();
    let stop = server.shutdown_handle();
    let thread = std::thread::spawn(move || server.run());
    let mut c = Client::connect(addr);
    c.send("CONNECT\naccept-version:1.2\nhost:x\n\n\0");
    let f = c.next();
    assert_eq!(f.command(), Command::Error, "{f:?}");
    assert!(
        f.header("message").unwrap_or("").contains("upstream"),
        "{f:?}"
    );
    stop.shutdown();
    thread.join().unwrap().unwrap();
}
