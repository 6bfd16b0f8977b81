//! A blocking `std::net` host for the server handshake: accepts a WebSocket upgrade (choosing
//! a STOMP subprotocol), sends a close frame (1000, "bye"), waits briefly for the client's
//! close frame and closes the connection. Plain HTTP requests get a small text page.
//!
//! ```sh
//! cargo run -p stompbox-upgrade --example accept_close -- 127.0.0.1:9001
//! python3 -c "from websockets.sync.client import connect; ws = connect('ws://127.0.0.1:9001/', subprotocols=['v12.stomp']); print(ws.subprotocol)"
//! ```
//!
//! Prints `listening on ADDR` once the socket is bound; serves until killed (or `--once`).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use stompbox_upgrade::{Accept, Limits, ServerEvent, ServerHandshake};

/// The subprotocols this server speaks, most preferred first.
pub const PROTOCOLS: &[&str] = &["v12.stomp", "v11.stomp", "v10.stomp"];

/// A close frame from the server (unmasked): status 1000, reason "bye" (RFC 6455 §5.5.1).
pub const CLOSE_FRAME: &[u8] = &[0x88, 5, 0x03, 0xE8, b'b', b'y', b'e'];

/// What happened on one connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Served {
    /// Upgraded with this subprotocol, close sent; `echo` tells if the client's close arrived.
    Upgraded {
        protocol: Option<String>,
        echo: bool,
    },
    /// A plain HTTP request was answered.
    Http,
    /// The request was rejected with this status.
    Rejected(u16),
    /// The peer closed before a complete head.
    Closed,
}

/// Runs the handshake on one connection, then the close.
pub fn serve(mut stream: TcpStream) -> io::Result<Served> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let start = Instant::now();
    let now_ms = || u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut hs = ServerHandshake::new(Limits::default());
    hs.handle_timeout(now_ms());
    let mut buf = [0u8; 4096];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                // The machine decides whether the deadline passed (and queues a 408).
                hs.handle_timeout(now_ms());
                if let Some(out) = hs.poll_transmit_vec() {
                    stream.write_all(&out)?;
                    return Ok(Served::Rejected(408));
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(Served::Closed);
        }
        let result = hs.handle_read(&buf[..n]);
        if let Some(out) = hs.poll_transmit_vec() {
            stream.write_all(&out)?;
        }
        if let Err(e) = result {
            eprintln!("rejected: {e}");
            let status = match e {
                stompbox_upgrade::Error::Request(r) => r.status(),
                _ => 500,
            };
            return Ok(Served::Rejected(status));
        }
        if let Some(event) = hs.poll_event() {
            match event {
                ServerEvent::Upgrade(req) => {
                    let protocol = req.choose_protocol(PROTOCOLS);
                    let upgraded = match hs.accept(&req, Accept::new().protocol(protocol)) {
                        Ok(u) => u,
                        Err(e) => return Err(io::Error::other(e)),
                    };
                    let mut out = hs.poll_transmit_vec().unwrap_or_default();
                    out.extend_from_slice(CLOSE_FRAME);
                    stream.write_all(&out)?;
                    let echo = wait_for_close(&mut stream, upgraded.leftover)?;
                    return Ok(Served::Upgraded {
                        protocol: upgraded.negotiated.protocol,
                        echo,
                    });
                }
                ServerEvent::Http(head) => {
                    let body = format!(
                        "stompbox-upgrade example: WebSocket endpoint; you asked for {}\n",
                        head.path()
                    );
                    write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )?;
                    return Ok(Served::Http);
                }
            }
        }
    }
}

/// Reads until a close frame header (opcode 8) from the client shows up, or EOF/timeout.
/// The bytes behind the handshake head (`leftover`) come first: they are never dropped.
fn wait_for_close(stream: &mut TcpStream, mut seen: Vec<u8>) -> io::Result<bool> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = [0u8; 1024];
    loop {
        // A client frame starts with FIN|opcode; a close is 0x88. Masked frames carry a
        // 4-byte key after the length, so only the first byte of each frame matters here.
        if seen.first().is_some_and(|b| b & 0x0F == 0x08) {
            return Ok(true);
        }
        match stream.read(&mut buf) {
            Ok(0) => return Ok(false),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(false);
            }
            Err(e) => return Err(e),
        }
    }
}

#[allow(
    dead_code,
    reason = "the integration test includes this file and calls `serve` only"
)]
fn main() -> io::Result<()> {
    let mut addr = String::from("127.0.0.1:9001");
    let mut once = false;
    for arg in std::env::args().skip(1) {
        if arg == "--once" {
            once = true;
        } else {
            addr = arg;
        }
    }
    let listener = TcpListener::bind(&addr)?;
    println!("listening on {}", listener.local_addr()?);
    io::stdout().flush()?;
    for stream in listener.incoming() {
        let stream = stream?;
        let peer = stream.peer_addr()?;
        match serve(stream) {
            Ok(served) => println!("{peer}: {served:?}"),
            Err(e) => eprintln!("{peer}: {e}"),
        }
        io::stdout().flush()?;
        if once {
            break;
        }
    }
    Ok(())
}
