//! Regression: output that a flush creates for *other* clients goes out in the same turn of the
//! event loop, not at some later wake-up. With heart-beats off (`--heartbeat 0`) no timer is
//! armed, so a later wake-up may never come: each test's last delivery must arrive with no
//! further traffic from anyone.
#![allow(clippy::unwrap_used, reason = "tests panic on failure by design")]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use stompbox_server::{ServerBuilder, ShutdownHandle};

/// How long a delivery may take before the test calls it stalled (a hang bound, not a speed
/// target: a correct server delivers in microseconds).
const STALL: Duration = Duration::from_secs(5);

struct Running {
    stomp: SocketAddr,
    stop: ShutdownHandle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// A server with heart-beats off and no stats timer: nothing wakes its loop but sockets.
    fn quiet() -> Self {
        let server = ServerBuilder::new()
            .no_http()
            .stomp("127.0.0.1:0".parse().unwrap())
            .heartbeat_ms(0)
            .handle_signals(false)
            .stats_interval_ms(None)
            .build()
            .unwrap();
        let stomp = server.stomp_addr().unwrap();
        let stop = server.shutdown_handle();
        let thread = Some(std::thread::spawn(move || server.run()));
        Self {
            stomp,
            stop,
            thread,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.shutdown();
            let _ = t.join();
        }
    }
}

/// A raw STOMP/TCP client that writes frames as text and scans what it reads.
struct Raw {
    sock: TcpStream,
    seen: Vec<u8>,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Self {
        let sock = TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut c = Self {
            sock,
            seen: Vec::new(),
        };
        c.send("CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:0,0\n\n");
        c.expect("CONNECTED\n");
        c
    }

    /// Sends one frame (`text` is the command, headers and blank line; the NUL is added).
    fn send(&mut self, text: &str) {
        self.sock.write_all(text.as_bytes()).unwrap();
        self.sock.write_all(b"\0").unwrap();
    }

    /// Reads until `needle` has been seen (anywhere in the input so far), or fails as a stall.
    fn expect(&mut self, needle: &str) {
        let deadline = Instant::now() + STALL;
        let mut buf = [0u8; 4096];
        loop {
            if self
                .seen
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "stalled: {needle:?} not received; got {:?}",
                String::from_utf8_lossy(&self.seen)
            );
            match self.sock.read(&mut buf) {
                Ok(0) => panic!("closed before {needle:?}"),
                Ok(n) => self.seen.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("read failed before {needle:?}: {e}"),
            }
        }
    }
}

/// STOMP 1.2 §SUBSCRIBE ack modes / §ACK: a queue message that a session received but did not
/// acknowledge is redelivered to another subscriber when that session's transport closes. The
/// server learns of the close while flushing the closed client, after it collected the sessions
/// with output: the redelivery must still go out in that turn.
#[test]
fn redelivery_on_close_reaches_the_other_subscriber_without_further_traffic() {
    let server = Running::quiet();
    let mut holder = Raw::connect(server.stomp);
    holder.send("SUBSCRIBE\nid:0\ndestination:/queue/work\nack:client\nreceipt:r-sub\n\n");
    holder.expect("receipt-id:r-sub");

    let mut producer = Raw::connect(server.stomp);
    producer.send("SEND\ndestination:/queue/work\nreceipt:r-send\n\njob-1");
    producer.expect("receipt-id:r-send");
    holder.expect("job-1");

    // The second subscriber joins after the message went to the first one.
    let mut taker = Raw::connect(server.stomp);
    taker.send("SUBSCRIBE\nid:0\ndestination:/queue/work\nack:auto\nreceipt:r-sub2\n\n");
    taker.expect("receipt-id:r-sub2");

    // The holder goes away without acknowledging: its transport close redelivers job-1.
    holder.sock.shutdown(Shutdown::Both).unwrap();
    drop(holder);
    taker.expect("redelivered:true");
    taker.expect("job-1");
}

/// The same for several closes in a row: the message moves from subscriber to subscriber as
/// each one goes away, every time without further traffic.
#[test]
fn redeliveries_chain_across_closes() {
    let server = Running::quiet();
    let mut first = Raw::connect(server.stomp);
    first.send("SUBSCRIBE\nid:0\ndestination:/queue/q\nack:client-individual\nreceipt:s\n\n");
    first.expect("receipt-id:s");
    let mut producer = Raw::connect(server.stomp);
    producer.send("SEND\ndestination:/queue/q\nreceipt:p1\n\nm-one");
    producer.expect("receipt-id:p1");
    first.expect("m-one");

    let mut second = Raw::connect(server.stomp);
    second.send("SUBSCRIBE\nid:0\ndestination:/queue/q\nack:client-individual\nreceipt:s\n\n");
    second.expect("receipt-id:s");
    first.sock.shutdown(Shutdown::Both).unwrap();
    second.expect("m-one");

    let mut third = Raw::connect(server.stomp);
    third.send("SUBSCRIBE\nid:0\ndestination:/queue/q\nack:auto\nreceipt:s\n\n");
    third.expect("receipt-id:s");
    second.sock.shutdown(Shutdown::Both).unwrap();
    third.expect("m-one");
}
