//! A blocking `std::net` host for [`ClientConnection`]: the second host of the sans-IO stack
//! (the server is the first, on mio). One socket; the read timeout is the only clock wake-up
//! (the session's heart-beats and liveness run from `handle_timeout`).

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use stompbox::stomp::client::{
    ClientCloseReason, ClientEvent as StompEvent, ClientSession, MessageEvent,
};
use stompbox::stomp::{Frame, UsageError, Version};
use stompbox::{ClientConnection, ClientEvent};

use super::args::{CliError, ConnectOptions};
use super::target::{Rng, Target};

/// What a command waits for.
#[derive(Debug)]
pub(crate) enum Incoming {
    Message(Box<MessageEvent>),
    Receipt(String),
}

/// A connected STOMP session on a blocking socket.
pub(crate) struct Blocking {
    stream: TcpStream,
    conn: ClientConnection,
    epoch: Instant,
    incoming: VecDeque<Incoming>,
    connected: Option<Version>,
    /// The transport or session ended (what came before stays readable).
    closed: Option<String>,
    buf: Vec<u8>,
}

/// A session command the session refused (e.g. client-individual acks on STOMP 1.0).
pub(crate) fn refused(e: &UsageError) -> CliError {
    CliError::Connection(format!("the session refused the command: {e:?}"))
}

impl Blocking {
    /// Connects, sends CONNECT and waits for CONNECTED, within `o.timeout_ms`; returns the
    /// negotiated version.
    pub(crate) fn connect(
        target: &Target,
        o: &ConnectOptions,
    ) -> Result<(Self, Version), CliError> {
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
        let conn = target.client(&mut Rng::from_os(), o);
        let mut me = Self {
            stream,
            conn,
            epoch: Instant::now(),
            incoming: VecDeque::new(),
            connected: None,
            closed: None,
            buf: vec![0; 64 * 1024],
        };
        me.flush()?;
        while me.connected.is_none() {
            if let Some(why) = &me.closed {
                return Err(CliError::Connection(format!(
                    "closed before CONNECTED ({why})"
                )));
            }
            if !me.pump(Some(deadline))? {
                return Err(CliError::Timeout(format!(
                    "no CONNECTED within {} ms",
                    o.timeout_ms
                )));
            }
        }
        let version = me.connected.unwrap_or(Version::V1_2);
        Ok((me, version))
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The STOMP session, for commands; call [`flush`](Self::flush) after them.
    pub(crate) fn session(&mut self) -> &mut ClientSession {
        self.conn.session()
    }

    /// Writes everything the connection has queued.
    pub(crate) fn flush(&mut self) -> Result<(), CliError> {
        while let Some(bytes) = self.conn.poll_transmit() {
            self.stream
                .write_all(&bytes)
                .map_err(|e| CliError::Connection(format!("write: {e}")))?;
        }
        Ok(())
    }

    /// One read (or timer) step; `Ok(false)` when `deadline` passed.
    fn pump(&mut self, deadline: Option<Instant>) -> Result<bool, CliError> {
        let now = self.now_ms();
        if self.conn.poll_timeout().is_some_and(|t| t <= now) {
            self.conn.handle_timeout(now);
        } else {
            let mut wait = Duration::from_secs(3600);
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                wait = wait.min(left);
            }
            if let Some(t) = self.conn.poll_timeout() {
                wait = wait.min(Duration::from_millis(t.saturating_sub(now).max(1)));
            }
            self.stream
                .set_read_timeout(Some(wait))
                .map_err(|e| CliError::Connection(format!("socket: {e}")))?;
            match self.stream.read(&mut self.buf) {
                Ok(0) => self.conn.handle_eof(),
                Ok(n) => self.conn.handle_read(&self.buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(CliError::Connection(format!("read: {e}"))),
            }
        }
        self.flush()?;
        while let Some(ev) = self.conn.poll_event() {
            match ev {
                ClientEvent::Stomp(StompEvent::Connected { version, .. }) => {
                    self.connected = Some(version);
                }
                ClientEvent::Stomp(StompEvent::Message(m)) => {
                    self.incoming.push_back(Incoming::Message(Box::new(m)));
                }
                ClientEvent::Stomp(StompEvent::Receipt { receipt_id }) => {
                    self.incoming.push_back(Incoming::Receipt(receipt_id));
                }
                ClientEvent::Stomp(StompEvent::Error { frame, .. }) => {
                    return Err(CliError::Server(describe_error(&frame)));
                }
                ClientEvent::Stomp(StompEvent::HeartBeatTimeout) => {
                    return Err(CliError::Timeout("no heart-beat from the server".into()));
                }
                ClientEvent::Stomp(StompEvent::Closed(reason)) => {
                    let why = match reason {
                        ClientCloseReason::Disconnected => "disconnected".to_owned(),
                        ClientCloseReason::ServerError => "server error".to_owned(),
                        ClientCloseReason::Violation(v) => format!("protocol violation: {v:?}"),
                    };
                    self.closed.get_or_insert(why);
                }
                ClientEvent::Open { .. } => {}
                ClientEvent::Error(e) => return Err(CliError::Connection(e.to_string())),
                ClientEvent::Closed(why) => {
                    self.closed.get_or_insert(why);
                }
            }
        }
        Ok(true)
    }

    /// The next message or receipt; `Ok(None)` when `deadline` passes first. An ERROR frame
    /// is an `Err(CliError::Server)` with its `message` header and body.
    pub(crate) fn next(&mut self, deadline: Option<Instant>) -> Result<Option<Incoming>, CliError> {
        loop {
            if let Some(i) = self.incoming.pop_front() {
                return Ok(Some(i));
            }
            if let Some(why) = &self.closed {
                return Err(CliError::Connection(format!(
                    "closed by the server ({why})"
                )));
            }
            if !self.pump(deadline)? {
                return Ok(None);
            }
        }
    }

    /// Waits for the RECEIPT with this id (messages meanwhile go to `other`).
    pub(crate) fn wait_receipt(
        &mut self,
        id: &str,
        deadline: Instant,
        mut other: impl FnMut(&mut Self, MessageEvent) -> Result<(), CliError>,
    ) -> Result<(), CliError> {
        loop {
            match self.next(Some(deadline))? {
                Some(Incoming::Receipt(r)) if r == id => return Ok(()),
                Some(Incoming::Receipt(_)) => {}
                Some(Incoming::Message(m)) => other(self, *m)?,
                None => return Err(CliError::Timeout(format!("no RECEIPT for {id:?}"))),
            }
        }
    }

    /// DISCONNECT with a receipt, waits for it (or the deadline), then closes.
    pub(crate) fn disconnect(mut self, deadline: Instant) -> Result<(), CliError> {
        self.session()
            .disconnect(Some("bye"))
            .map_err(|e| refused(&e))?;
        self.flush()?;
        let r = self.wait_receipt("bye", deadline, |_, _| Ok(()));
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
