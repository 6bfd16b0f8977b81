//! A blocking `std::net` host for [`ClientConnection`]: the second host of the sans-IO stack
//! (the server is the first, on mio). One socket, read timeouts as the only clock wake-ups.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use stompbox::stomp::{Command, Frame, HeartBeat};
use stompbox::{ClientConnection, ClientEvent};

use super::args::{CliError, ConnectOptions};
use super::target::{Rng, Target};

/// A connected STOMP session on a blocking socket.
pub(crate) struct Blocking {
    stream: TcpStream,
    conn: ClientConnection,
    epoch: Instant,
    frames: VecDeque<Frame>,
    /// We send a heart-beat after this long without writing (0: never).
    send_every: u64,
    /// The server is dead after this long without a byte (0: never checked).
    recv_grace: u64,
    last_write: u64,
    last_read: u64,
    /// The transport closed (frames received before stay readable).
    closed: Option<String>,
    buf: Vec<u8>,
}

impl Blocking {
    /// Connects, sends CONNECT and waits for CONNECTED (returned), within `o.timeout_ms`.
    pub(crate) fn connect(target: &Target, o: &ConnectOptions) -> Result<(Self, Frame), CliError> {
        let deadline = Instant::now() + Duration::from_millis(o.timeout_ms);
        let addrs = target.resolve()?;
        let mut last_err = None;
        let mut stream = None;
        for addr in &addrs {
            match TcpStream::connect_timeout(addr, Duration::from_millis(o.timeout_ms)) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last_err = Some(format!("{addr}: {e}")),
            }
        }
        let Some(stream) = stream else {
            return Err(CliError::Connect(last_err.unwrap_or_default()));
        };
        let _ = stream.set_nodelay(true);
        let mut conn = target.client(&mut Rng::from_os());
        conn.send_frame(&target.connect_frame(o));
        let mut me = Self {
            stream,
            conn,
            epoch: Instant::now(),
            frames: VecDeque::new(),
            send_every: 0,
            recv_grace: 0,
            last_write: 0,
            last_read: 0,
            closed: None,
            buf: vec![0; 64 * 1024],
        };
        me.flush()?;
        let connected = match me.next_frame(Some(deadline)) {
            Ok(Some(f)) if f.command() == Command::Connected => f,
            Ok(Some(f)) => {
                return Err(CliError::Connection(format!(
                    "expected CONNECTED, got {:?}",
                    f.command()
                )));
            }
            Ok(None) => {
                return Err(CliError::Timeout(format!(
                    "no CONNECTED within {} ms",
                    o.timeout_ms
                )));
            }
            Err(e) => return Err(e),
        };
        // Heart-beats as STOMP 1.2 §"Heart-beating": each way the larger of the two values,
        // when neither is 0.
        if o.heartbeat_ms > 0
            && let Some(server) = connected.header("heart-beat").and_then(HeartBeat::parse)
        {
            let (sx, sy) = (u64::from(server.send_ms), u64::from(server.receive_ms));
            if sy > 0 {
                me.send_every = o.heartbeat_ms.max(sy);
            }
            if sx > 0 {
                me.recv_grace = 2 * o.heartbeat_ms.max(sx);
            }
        }
        Ok((me, connected))
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Queues a frame and writes everything pending.
    pub(crate) fn send(&mut self, frame: &Frame) -> Result<(), CliError> {
        self.conn.send_frame(frame);
        self.flush()
    }

    fn flush(&mut self) -> Result<(), CliError> {
        let mut wrote = false;
        while let Some(bytes) = self.conn.poll_transmit() {
            self.stream
                .write_all(&bytes)
                .map_err(|e| CliError::Connection(format!("write: {e}")))?;
            wrote = true;
        }
        if wrote {
            self.last_write = self.now_ms();
        }
        Ok(())
    }

    /// The next frame from the server; `Ok(None)` when `deadline` passes first. An ERROR frame
    /// is an `Err(CliError::Server)` with its `message` header and body.
    pub(crate) fn next_frame(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<Frame>, CliError> {
        loop {
            if let Some(f) = self.frames.pop_front() {
                return Ok(Some(f));
            }
            if let Some(why) = &self.closed {
                return Err(CliError::Connection(format!(
                    "closed by the server ({why})"
                )));
            }
            let now = self.now_ms();
            if self.send_every > 0 && now >= self.last_write + self.send_every {
                self.conn.send_raw(bytes::Bytes::from_static(b"\n"));
                self.flush()?;
            }
            if self.recv_grace > 0 && now > self.last_read + self.recv_grace {
                return Err(CliError::Timeout(format!(
                    "no heart-beat from the server for {} ms",
                    now - self.last_read
                )));
            }
            let mut wait = Duration::from_secs(3600);
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(None);
                }
                wait = wait.min(left);
            }
            if self.send_every > 0 {
                wait = wait.min(Duration::from_millis(
                    (self.last_write + self.send_every)
                        .saturating_sub(now)
                        .max(1),
                ));
            }
            if self.recv_grace > 0 {
                wait = wait.min(Duration::from_millis(
                    (self.last_read + self.recv_grace + 1)
                        .saturating_sub(now)
                        .max(1),
                ));
            }
            if let Some(t) = self.conn.poll_timeout() {
                wait = wait.min(Duration::from_millis(t.saturating_sub(now).max(1)));
            }
            self.stream
                .set_read_timeout(Some(wait))
                .map_err(|e| CliError::Connection(format!("socket: {e}")))?;
            match self.stream.read(&mut self.buf) {
                Ok(0) => self.conn.handle_eof(),
                Ok(n) => {
                    self.last_read = self.now_ms();
                    self.conn.handle_read(&self.buf[..n]);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    let now = self.now_ms();
                    if self.conn.poll_timeout().is_some_and(|t| t <= now) {
                        self.conn.handle_timeout(now);
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(CliError::Connection(format!("read: {e}"))),
            }
            self.flush()?;
            while let Some(ev) = self.conn.poll_event() {
                match ev {
                    ClientEvent::Frame(f) if f.command() == Command::Error => {
                        return Err(CliError::Server(describe_error(&f)));
                    }
                    ClientEvent::Frame(f) => self.frames.push_back(f),
                    ClientEvent::Open { .. } | ClientEvent::Heartbeat => {}
                    ClientEvent::Error(e) => return Err(CliError::Connection(e.to_string())),
                    ClientEvent::Closed(why) => self.closed = Some(why),
                }
            }
        }
    }

    /// Waits for the RECEIPT with this id (other frames are handed to `other`).
    pub(crate) fn wait_receipt(
        &mut self,
        id: &str,
        deadline: Instant,
        mut other: impl FnMut(Frame) -> Result<(), CliError>,
    ) -> Result<(), CliError> {
        loop {
            match self.next_frame(Some(deadline))? {
                Some(f)
                    if f.command() == Command::Receipt && f.header("receipt-id") == Some(id) =>
                {
                    return Ok(());
                }
                Some(f) => other(f)?,
                None => return Err(CliError::Timeout(format!("no RECEIPT for {id:?}"))),
            }
        }
    }

    /// DISCONNECT with a receipt, waits for it (or the deadline), then closes.
    pub(crate) fn disconnect(mut self, deadline: Instant) -> Result<(), CliError> {
        let f = Frame::builder(Command::Disconnect)
            .header("receipt", "bye")
            .build();
        self.send(&f)?;
        let r = self.wait_receipt("bye", deadline, |_| Ok(()));
        self.conn.close();
        let _ = self.flush();
        r
    }
}

/// `message` header and body of an ERROR frame, on one line.
pub(crate) fn describe_error(f: &Frame) -> String {
    let message = f.header("message").unwrap_or("(no message header)");
    let body = super::args::one_line(f.body());
    if body.trim().is_empty() || body.trim() == message {
        message.to_owned()
    } else {
        format!("{message}: {}", body.trim())
    }
}
