//! The server end to end over real sockets (loopback, port 0): HTTP routes, STOMP over WebSocket
//! and TCP, demo handlers, authentication, limits, graceful shutdown, and the binary's exit codes.
#![allow(clippy::unwrap_used, reason = "tests panic on failure by design")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use stompbox::stomp::client::{ClientConfig, ClientEvent as StompEvent, MessageEvent};
use stompbox::stomp::{Command, Frame, HeartBeat, Version};
use stompbox::{ClientConnection, ClientEvent};
use stompbox_server::{AppMessage, AuthDecision, Reply, ServerBuilder};

mod support;
use support::Running;

fn http(addr: SocketAddr, request: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8(out[..end].to_vec()).unwrap();
    let status = head[9..12].parse().unwrap();
    (status, head, out[end..].to_vec())
}

fn get(addr: SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
    http(addr, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"))
}

/// A blocking STOMP client over a socket, hosted with std::net: the facade's client machine,
/// with the host's clock driving its heart-beats.
struct Client {
    sock: TcpStream,
    conn: ClientConnection,
    start: Instant,
    closed: Option<String>,
}

fn config(login: Option<&str>, passcode: Option<&str>) -> ClientConfig {
    ClientConfig {
        host: "localhost".into(),
        login: login.map(str::to_owned),
        passcode: passcode.map(str::to_owned),
        ..ClientConfig::default()
    }
}

impl Client {
    fn websocket(addr: SocketAddr, config: ClientConfig) -> Self {
        let conn =
            ClientConnection::websocket("localhost", "/ws", [5; 16], || [7, 7, 7, 7], config);
        Self::with(addr, conn)
    }

    fn websocket_deflate(addr: SocketAddr, config: ClientConfig) -> Self {
        let offer = stompbox::upgrade::DeflateOffer::default();
        let conn = ClientConnection::websocket_with_deflate(
            "localhost",
            "/ws",
            [6; 16],
            || [7, 7, 7, 7],
            config,
            Some(offer),
        );
        Self::with(addr, conn)
    }

    fn tcp(addr: SocketAddr, config: ClientConfig) -> Self {
        Self::with(addr, ClientConnection::raw_stomp(config))
    }

    fn with(addr: SocketAddr, conn: ClientConnection) -> Self {
        let sock = TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        Self {
            sock,
            conn,
            start: Instant::now(),
            closed: None,
        }
    }

    fn flush(&mut self) {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap();
        if self.conn.poll_timeout().is_some_and(|t| t <= now) {
            self.conn.handle_timeout(now);
        }
        while let Some(b) = self.conn.poll_transmit() {
            let _ = self.sock.write_all(&b);
        }
    }

    /// Reads until `pred` holds for a STOMP event, or the deadline.
    fn until(&mut self, what: &str, mut pred: impl FnMut(&StompEvent) -> bool) -> StompEvent {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = vec![0u8; 65536];
        loop {
            self.flush();
            while let Some(e) = self.conn.poll_event() {
                match e {
                    ClientEvent::Stomp(e) if pred(&e) => return e,
                    ClientEvent::Closed(why) => self.closed = Some(why),
                    _ => {}
                }
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            assert!(
                self.closed.is_none(),
                "closed while waiting for {what}: {:?}",
                self.closed
            );
            match self.sock.read(&mut buf) {
                Ok(0) => self.conn.handle_eof(),
                Ok(n) => self.conn.handle_read(&buf[..n]),
                Err(_) => {}
            }
        }
    }

    /// Reads until the server closes the connection; returns the last close description.
    fn until_closed(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = vec![0u8; 65536];
        loop {
            self.flush();
            while let Some(e) = self.conn.poll_event() {
                if let ClientEvent::Closed(why) = e {
                    self.closed = Some(why);
                }
            }
            assert!(Instant::now() < deadline, "not closed");
            match self.sock.read(&mut buf) {
                Ok(0) => return self.closed.clone().unwrap_or_else(|| "eof".into()),
                Ok(n) => self.conn.handle_read(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return "reset".into();
                }
                Err(_) => {}
            }
        }
    }

    /// Waits for CONNECTED (or ERROR).
    fn connected(&mut self) -> StompEvent {
        self.until("CONNECTED or ERROR", |e| {
            matches!(e, StompEvent::Connected { .. } | StompEvent::Error { .. })
        })
    }

    fn frame(&mut self, command: Command, headers: &[(&str, &str)], body: &[u8]) {
        let mut b = Frame::builder(command);
        for (k, v) in headers {
            b = b.header(k, v);
        }
        let f = b.body(bytes::Bytes::copy_from_slice(body)).build();
        self.conn.session().send_frame(&f).unwrap();
        self.flush();
    }

    fn receipt(&mut self, id: &str) {
        self.until(
            id,
            |e| matches!(e, StompEvent::Receipt { receipt_id } if receipt_id == id),
        );
    }

    fn message(&mut self, what: &str, mut pred: impl FnMut(&MessageEvent) -> bool) -> MessageEvent {
        match self.until(what, |e| matches!(e, StompEvent::Message(m) if pred(m))) {
            StompEvent::Message(m) => m,
            _ => unreachable!(),
        }
    }
}

#[test]
fn http_routes_table() {
    let s = Running::demo();
    let cases: &[(&str, &str, u16, &str)] = &[
        ("GET", "/", 200, "<title>stompbox demo</title>"),
        ("GET", "/index.html", 200, "Chat room"),
        ("GET", "/stompbox.js", 200, "class StompClient"),
        ("GET", "/stats", 200, "\"connections_current\""),
        ("GET", "/nope", 404, "not found"),
        ("GET", "/ws", 426, "WebSocket"),
        ("POST", "/", 405, "method not allowed"),
    ];
    for (method, path, status, needle) in cases {
        let (st, head, body) = http(
            s.http,
            &format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
        );
        assert_eq!(st, *status, "{method} {path}: {head}");
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains(needle), "{method} {path}: {body:.200}");
    }
    let (st, head, body) = http(s.http, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(st, 200);
    assert!(head.contains("Content-Length: ") && body.is_empty());
    s.stop().unwrap();
}

#[test]
fn stats_is_json_with_server_and_broker_sections() {
    let s = Running::demo();
    let mut c = Client::tcp(s.stomp, config(None, None));
    c.connected();
    let (_, _, body) = get(s.http, "/stats");
    let body = String::from_utf8(body).unwrap();
    assert!(
        body.starts_with("{\"server\":{") && body.ends_with("}}"),
        "{body}"
    );
    assert!(body.contains("\"tcp_current\":1"), "{body}");
    assert!(
        body.contains("\"broker\":{\"sessions_current\":1"),
        "{body}"
    );
}

#[test]
fn websocket_stomp_with_demo_handlers() {
    let s = Running::demo();
    let mut a = Client::websocket(s.http, config(Some("alice"), None));
    let mut b = Client::websocket(s.http, config(Some("bob"), None));
    let connected = a.connected();
    assert!(
        matches!(
            connected,
            StompEvent::Connected {
                version: Version::V1_2,
                ..
            }
        ),
        "{connected:?}"
    );
    b.connected();
    for c in [&mut a, &mut b] {
        c.frame(
            Command::Subscribe,
            &[("id", "e"), ("destination", "/user/queue/echo")],
            b"",
        );
        c.frame(
            Command::Subscribe,
            &[
                ("id", "c"),
                ("destination", "/topic/chat"),
                ("receipt", "r"),
            ],
            b"",
        );
        c.receipt("r");
    }
    a.frame(Command::Send, &[("destination", "/app/echo")], b"ping");
    let echo = a.message("echo", |_| true);
    assert_eq!(echo.destination(), "/user/queue/echo");
    assert_eq!(&echo.body()[..], b"ping");
    a.frame(
        Command::Send,
        &[("destination", "/app/chat"), ("nick", "al")],
        b"hi all",
    );
    for c in [&mut a, &mut b] {
        let m = c.message("chat", |m| m.destination() == "/topic/chat");
        assert_eq!(&m.body()[..], b"hi all");
        assert_eq!(m.frame.header("nick"), Some("al"));
        let ts: u64 = m.frame.header("timestamp").unwrap().parse().unwrap();
        assert!(ts > 1_600_000_000_000);
    }
    // b never got a's echo: the next MESSAGE b sees is its own echo.
    b.frame(Command::Send, &[("destination", "/app/echo")], b"mine");
    let m = b.message("b echo", |_| true);
    assert_eq!(&m.body()[..], b"mine");
}

// RFC 7692 over real sockets: deflate is on by default, `--deflate-no-context-takeover` makes
// the server ask for reset contexts, `--no-deflate` declines; chat works in every case.
#[test]
fn permessage_deflate_is_negotiated_per_server_policy_and_chat_works() {
    use stompbox::upgrade::{DeflateParams, DeflatePolicy};
    let bounded = DeflatePolicy {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        ..DeflatePolicy::default()
    };
    let params = |nct| DeflateParams {
        server_no_context_takeover: nct,
        client_no_context_takeover: nct,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let cases = [
        (None::<Option<DeflatePolicy>>, Some(params(false))),
        (Some(Some(bounded)), Some(params(true))),
        (Some(None), None),
    ];
    for (policy, want) in cases {
        let mut builder = ServerBuilder::new().handler("/app/chat", stompbox_server::chat_handler);
        if let Some(p) = policy {
            builder = builder.deflate(p);
        }
        let s = Running::start(builder);
        let mut a = Client::websocket_deflate(s.http, config(Some("alice"), None));
        let mut b = Client::websocket_deflate(s.http, config(Some("bob"), None));
        for c in [&mut a, &mut b] {
            c.connected();
            assert_eq!(c.conn.deflate(), want, "{policy:?}");
            c.frame(
                Command::Subscribe,
                &[
                    ("id", "c"),
                    ("destination", "/topic/chat"),
                    ("receipt", "r"),
                ],
                b"",
            );
            c.receipt("r");
        }
        let body = "compressible chat text, ".repeat(200);
        a.frame(
            Command::Send,
            &[("destination", "/app/chat")],
            body.as_bytes(),
        );
        b.frame(Command::Send, &[("destination", "/app/chat")], b"short");
        for c in [&mut a, &mut b] {
            // The two senders race: take both messages in either order.
            let mut got: Vec<Vec<u8>> = (0..2)
                .map(|_| c.message("chat", |_| true).body().to_vec())
                .collect();
            got.sort_by_key(Vec::len);
            assert_eq!(got, vec![b"short".to_vec(), body.as_bytes().to_vec()]);
        }
        s.stop().unwrap();
    }
}

#[test]
fn custom_handler_auth_hook_and_user_destination() {
    let s = Running::start(
        ServerBuilder::new()
            .authenticate(|r| match (r.login, r.passcode) {
                (Some("ann"), Some("pw")) => AuthDecision::Accept(Some("ann".into())),
                _ => AuthDecision::Reject("who are you?".into()),
            })
            .handler("/app/whoami", |m: &AppMessage, r: &mut Reply| {
                r.to_user(
                    m.user.clone().unwrap_or_default(),
                    "/queue/me",
                    m.user.clone().unwrap_or_default(),
                );
            }),
    );
    let mut bad = Client::tcp(s.stomp, config(Some("ann"), Some("nope")));
    let err = bad.connected();
    assert!(
        matches!(&err, StompEvent::Error { message: Some(m), .. } if m == "who are you?"),
        "{err:?}"
    );
    bad.until_closed();

    let mut good = Client::websocket(s.http, config(Some("ann"), Some("pw")));
    assert!(matches!(good.connected(), StompEvent::Connected { .. }));
    good.frame(
        Command::Subscribe,
        &[
            ("id", "1"),
            ("destination", "/user/queue/me"),
            ("receipt", "s"),
        ],
        b"",
    );
    good.receipt("s");
    good.frame(Command::Send, &[("destination", "/app/whoami")], b"");
    let m = good.message("whoami", |_| true);
    assert_eq!(&m.body()[..], b"ann");
}

#[test]
fn heartbeats_flow_both_ways_when_negotiated() {
    let s = Running::start(ServerBuilder::new().heartbeat_ms(50));
    let mut c = Client::tcp(
        s.stomp,
        ClientConfig {
            heart_beat: HeartBeat {
                send_ms: 50,
                receive_ms: 50,
            },
            ..config(None, None)
        },
    );
    c.connected();
    // Idle: only heart-beats flow both ways; the session stays up (the server hears ours).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = vec![0u8; 4096];
    loop {
        let (sent, received) = c.conn.session().heartbeat_counts();
        if sent >= 5 && received >= 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "heart-beats sent {sent}, received {received}"
        );
        c.flush();
        match c.sock.read(&mut buf) {
            Ok(0) => panic!("server closed an idle connection with heart-beats"),
            Ok(n) => c.conn.handle_read(&buf[..n]),
            Err(_) => {}
        }
    }
    c.frame(
        Command::Send,
        &[("destination", "/topic/x"), ("receipt", "r")],
        b"",
    );
    c.receipt("r");
}

#[test]
fn connection_limit_refuses_politely() {
    let s = Running::start(ServerBuilder::new().max_connections(1));
    let mut first = Client::tcp(s.stomp, config(None, None));
    first.connected();
    let mut second = TcpStream::connect(s.stomp).unwrap();
    second
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut out = Vec::new();
    let _ = second.read_to_end(&mut out);
    assert!(
        out.starts_with(b"ERROR\nmessage:too many connections"),
        "{out:?}"
    );
    let mut h = TcpStream::connect(s.http).unwrap();
    h.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = Vec::new();
    let _ = h.read_to_end(&mut out);
    let reply = String::from_utf8_lossy(&out);
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
}

#[test]
fn graceful_shutdown_closes_clients_with_1001_and_error() {
    let s = Running::demo();
    let mut ws = Client::websocket(s.http, config(None, None));
    ws.connected();
    let mut tcp = Client::tcp(s.stomp, config(None, None));
    tcp.connected();
    let handle = s.stop.clone();
    let t0 = Instant::now();
    handle.shutdown();
    let why = ws.until_closed();
    assert!(why.contains("1001"), "{why}");
    let err = tcp.until("ERROR", |e| matches!(e, StompEvent::Error { .. }));
    assert!(
        matches!(&err, StompEvent::Error { message: Some(m), .. } if m == "server shutting down"),
        "{err:?}"
    );
    s.stop().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn tighter_limit_before_connect_is_accepted() {
    // 1 MiB messages are fine after CONNECT, but a CONNECT may not exceed the codec's small
    // pre-authentication limits (8 KiB head).
    let s = Running::demo();
    let big = ClientConfig {
        headers: vec![("x-big".into(), "x".repeat(100 * 1024))],
        ..config(None, None)
    };
    let mut c = Client::websocket(s.http, big);
    let err = c.connected();
    assert!(matches!(err, StompEvent::Error { .. }), "{err:?}");
    c.until_closed();
    // After CONNECT, a 512 KiB message passes.
    let mut ok = Client::websocket(s.http, config(None, None));
    ok.connected();
    ok.frame(
        Command::Subscribe,
        &[
            ("id", "1"),
            ("destination", "/user/queue/echo"),
            ("receipt", "s"),
        ],
        b"",
    );
    ok.receipt("s");
    ok.frame(
        Command::Send,
        &[("destination", "/app/echo")],
        &vec![b'y'; 512 * 1024],
    );
    let m = ok.message("big echo", |_| true);
    assert_eq!(m.body().len(), 512 * 1024);
}

fn binary() -> Process {
    Process::new(env!("CARGO_BIN_EXE_stompbox"))
}

#[test]
fn binary_user_errors_are_one_line_with_nonzero_exit() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (vec!["--bogus".into()], 2, "unknown flag --bogus"),
        (
            vec!["--http".into(), "x".into()],
            2,
            "bad value \"x\" for --http",
        ),
        (
            vec!["--config".into(), "/nonexistent".into()],
            2,
            "cannot read /nonexistent",
        ),
        (vec!["--log".into(), "[[".into()], 2, "bad --log filter"),
        (
            vec![
                "--http".into(),
                format!("127.0.0.1:{port}"),
                "--no-stomp".into(),
            ],
            1,
            "address already in use",
        ),
    ];
    for (args, code, needle) in cases {
        let out = binary().args(&args).stdin(Stdio::null()).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        let last = stderr.trim_end().lines().last().unwrap_or("");
        assert!(
            last.starts_with("stompbox: ") && last.contains(needle),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let help = binary().arg("--help").output().unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--user NAME:PASSCODE"));
}

#[test]
fn binary_stops_gracefully_on_sigterm() {
    let mut child = binary()
        .args([
            "--http",
            "127.0.0.1:0",
            "--stomp",
            "127.0.0.1:0",
            "--log",
            "warn",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it prints where it listens.
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 256];
    let n = out.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("demo page on http://127.0.0.1:"));
    let status = Process::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success(), "exit status {st:?}");
            break;
        }
        assert!(Instant::now() < deadline, "did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads from `s` until a whole STOMP frame's command line is in, or the timeout.
fn read_command(s: &mut TcpStream, timeout: Duration) -> Option<String> {
    s.set_read_timeout(Some(timeout)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !got.contains(&b'\n') {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let line = got.split(|&b| b == b'\n').next().unwrap_or_default();
    Some(String::from_utf8_lossy(line).into_owned())
}

/// Out of file descriptors, `accept` fails and the connection stays queued in the kernel.
/// The listeners are edge-triggered, so the server must try again by itself once
/// descriptors free up: here no new connection arrives to wake it.
#[test]
fn binary_accepts_queued_connections_after_running_out_of_file_descriptors() {
    const FD_LIMIT: u32 = 48;
    const CLIENTS: usize = 60;
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // `ulimit -n` in the shell that execs the server: no libc call in the test.
    let mut child = Process::new("sh")
        .args([
            "-c",
            &format!("ulimit -n {FD_LIMIT} && exec \"$0\" \"$@\""),
            env!("CARGO_BIN_EXE_stompbox"),
            "--no-http",
            "--stomp",
            &addr.to_string(),
            "--stats-interval",
            "0",
            "--log",
            "error",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "the server did not start listening"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let connect = b"CONNECT\naccept-version:1.2\nhost:x\n\n\0";
    let clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(connect).unwrap();
            s
        })
        .collect();
    // Sort the clients into served and queued: passes over the unserved ones until a whole
    // pass (after the first second) serves no more, so a slow machine only takes longer.
    let started = Instant::now();
    let (mut connected, mut queued) = (Vec::new(), clients);
    loop {
        let before = connected.len();
        for mut s in std::mem::take(&mut queued) {
            match read_command(&mut s, Duration::from_millis(50)).as_deref() {
                Some("CONNECTED") => connected.push(s),
                other => {
                    assert_eq!(other, None, "unexpected reply");
                    queued.push(s);
                }
            }
        }
        let settled = connected.len() == before && started.elapsed() > Duration::from_secs(1);
        if settled || queued.is_empty() || started.elapsed() > Duration::from_secs(20) {
            break;
        }
    }
    assert!(
        !queued.is_empty() && queued.len() <= connected.len(),
        "the descriptor limit should leave some, but not most, clients queued: {} connected, \
         {} queued",
        connected.len(),
        queued.len()
    );
    drop(connected);
    for (i, mut s) in queued.into_iter().enumerate() {
        assert_eq!(
            read_command(&mut s, Duration::from_secs(5)).as_deref(),
            Some("CONNECTED"),
            "queued client {i} was never served"
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}
