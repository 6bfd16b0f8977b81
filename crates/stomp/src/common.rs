//! Pieces shared by the client and server sessions: the output queue and the heart-beat timer.

use crate::encoder::{EncodeError, encode_head};
use crate::frame::{Frame, Negotiated, Version};
use alloc::collections::VecDeque;
use bytes::{BufMut, Bytes, BytesMut};

/// Bodies at least this large are queued as their own `Bytes` chunk (shared, not copied).
pub(crate) const SHARE_BODY_AT: usize = 512;

/// One whole outgoing frame (or one heart-beat EOL), as handed out by a session's
/// `poll_transmit_frame`: up to three parts that share storage with the session's output
/// (nothing is copied). Write `head`, `body`, `tail` in order (e.g. as one WebSocket message,
/// or with vectored I/O).
///
/// A frame whose body is below 512 bytes, and every frame the session builds itself
/// (CONNECTED, RECEIPT, ERROR), is one contiguous `head` (its body was copied next to its
/// head); a frame with a larger body is `head` (command and headers), `body` (the caller's
/// `Bytes`, shared) and `tail` (the NUL terminator). A MESSAGE from
/// `ServerSession::send_shared_frame` is always `head`, shared `body` (possibly empty) and
/// `tail`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transmit {
    /// The command and headers, or the whole frame when it is contiguous.
    pub head: Bytes,
    /// A shared body (at least 512 bytes), or empty.
    pub body: Bytes,
    /// What follows a shared body (the NUL terminator), or empty.
    pub tail: Bytes,
}

impl Transmit {
    /// Total length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.head.len() + self.body.len() + self.tail.len()
    }

    /// Whether there are no bytes (never for a transmit a session hands out).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The parts in order, for vectored writes.
    #[must_use]
    pub fn parts(&self) -> [&[u8]; 3] {
        [&self.head, &self.body, &self.tail]
    }

    /// The whole frame in one buffer (one copy, unless it is contiguous already).
    #[must_use]
    pub fn to_bytes(&self) -> Bytes {
        if self.body.is_empty() && self.tail.is_empty() {
            return self.head.clone();
        }
        let mut b = BytesMut::with_capacity(self.len());
        for p in self.parts() {
            b.put_slice(p);
        }
        b.freeze()
    }
}

/// Encoded output awaiting `poll_transmit`: small writes are coalesced in `staging`, large
/// bodies are queued as shared `Bytes` chunks. `units` keeps the length of every queued frame
/// (and heart-beat EOL), so output can also be taken one whole frame at a time.
///
/// Invariants: the bytes are `queue` then `staging`, in order; `pending` is their total;
/// `units` sums to `pending + front_done`, where `front_done` is how much of the first unit
/// was already taken by byte-stream polling.
#[derive(Debug)]
pub(crate) struct Output {
    queue: VecDeque<Bytes>,
    staging: BytesMut,
    pending: usize,
    units: VecDeque<usize>,
    front_done: usize,
    /// Bodies at least this long (and not empty) are queued shared, not copied.
    share_at: usize,
}

impl Default for Output {
    fn default() -> Output {
        Output::sharing_from(SHARE_BODY_AT)
    }
}

impl Output {
    /// An output queue that shares bodies of at least `share_at` bytes.
    pub(crate) fn sharing_from(share_at: usize) -> Output {
        Output {
            queue: VecDeque::new(),
            staging: BytesMut::new(),
            pending: 0,
            units: VecDeque::new(),
            front_done: 0,
            share_at,
        }
    }

    pub(crate) fn pending(&self) -> usize {
        self.pending
    }

    /// Whole frames (and heart-beat EOLs) queued, counting a partly taken one.
    pub(crate) fn pending_frames(&self) -> usize {
        self.units.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// Encodes a whole frame; nothing is queued on error.
    pub(crate) fn push_frame(
        &mut self,
        frame: &Frame,
        version: Version,
    ) -> Result<(), EncodeError> {
        let start = self.pending;
        let before = self.staging.len();
        encode_head(frame, version, frame.body().len(), &mut self.staging)?;
        self.pending += self.staging.len() - before;
        self.push_body(frame.body().clone());
        self.end_unit(start);
        Ok(())
    }

    /// Appends raw head bytes written by the caller; the caller ends the frame with
    /// `push_body` + `end_unit` (or truncates what it wrote).
    pub(crate) fn with_staging<R>(&mut self, f: impl FnOnce(&mut BytesMut) -> R) -> R {
        let before = self.staging.len();
        let r = f(&mut self.staging);
        self.pending += self.staging.len() - before;
        r
    }

    /// Records that everything queued since `pending() == start` is one frame.
    pub(crate) fn end_unit(&mut self, start: usize) {
        let len = self.pending - start;
        if len > 0 {
            self.units.push_back(len);
        }
    }

    /// Appends a body followed by the NUL terminator.
    pub(crate) fn push_body(&mut self, body: Bytes) {
        self.pending += body.len() + 1;
        if !body.is_empty() && body.len() >= self.share_at {
            if !self.staging.is_empty() {
                self.queue.push_back(self.staging.split().freeze());
            }
            self.queue.push_back(body);
        } else {
            self.staging.put_slice(&body);
        }
        self.staging.put_u8(0);
    }

    /// A heart-beat EOL.
    pub(crate) fn push_eol(&mut self) {
        self.staging.put_u8(b'\n');
        self.pending += 1;
        self.units.push_back(1);
    }

    /// The next chunk without accounting.
    fn take(&mut self) -> Option<Bytes> {
        match self.queue.pop_front() {
            Some(c) => Some(c),
            None if !self.staging.is_empty() => Some(self.staging.split().freeze()),
            None => None,
        }
    }

    /// `n` bytes were taken by byte-stream polling: advance the unit boundaries.
    fn consumed(&mut self, n: usize) {
        self.pending -= n;
        self.front_done += n;
        while let Some(&u) = self.units.front() {
            if self.front_done < u {
                break;
            }
            self.front_done -= u;
            self.units.pop_front();
        }
    }

    pub(crate) fn poll(&mut self) -> Option<Bytes> {
        let chunk = self.take()?;
        self.consumed(chunk.len());
        Some(chunk)
    }

    /// Copies as much pending output as fits into `dst`; returns the number of bytes.
    pub(crate) fn poll_into(&mut self, dst: &mut [u8]) -> usize {
        let mut n = 0;
        while n < dst.len() {
            let Some(mut chunk) = self.take() else { break };
            let take = chunk.len().min(dst.len() - n);
            dst[n..n + take].copy_from_slice(&chunk[..take]);
            n += take;
            if take < chunk.len() {
                self.queue.push_front(chunk.split_off(take));
            }
        }
        self.consumed(n);
        n
    }

    /// The rest of the next whole frame (or heart-beat EOL), in at most three shared parts.
    pub(crate) fn poll_frame(&mut self) -> Option<Transmit> {
        let unit = self.units.pop_front()?;
        let len = unit - core::mem::take(&mut self.front_done);
        let mut parts: [Bytes; 3] = Default::default();
        let mut n = 0;
        let mut need = len;
        while need > 0 {
            let chunk = if let Some(mut c) = self.queue.pop_front() {
                if c.len() > need {
                    self.queue.push_front(c.split_off(need));
                }
                c
            } else if self.staging.is_empty() {
                break; // unreachable while the invariants hold
            } else {
                let k = need.min(self.staging.len());
                self.staging.split_to(k).freeze()
            };
            need -= chunk.len();
            if n < parts.len() {
                parts[n] = chunk;
                n += 1;
            } else {
                // Not produced by the session's own writes; stay correct with one copy.
                let mut m = BytesMut::with_capacity(parts[2].len() + chunk.len());
                m.put_slice(&parts[2]);
                m.put_slice(&chunk);
                parts[2] = m.freeze();
            }
        }
        self.pending -= len - need;
        let [head, body, tail] = parts;
        // A frame is contiguous or head + shared body + tail; a two-part remainder (the
        // host took part of a head byte-wise) is reported as head + tail.
        Some(if n == 2 {
            Transmit {
                head,
                body: Bytes::new(),
                tail: body,
            }
        } else {
            Transmit { head, body, tail }
        })
    }
}

/// Heart-beat bookkeeping: pure functions of the negotiated intervals and the host's `now`.
///
/// Reception: any received byte counts. Reads are not timestamped (`handle_read` takes no
/// clock); a read is stamped with the host's latest `now` and also marks the peer as heard,
/// and the next `handle_timeout` that sees the mark moves the reference point to its `now`. A silent peer is declared dead at
/// `last_heard + receive_ms * grace / 100`. The judgement can only err on the lenient side.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timer {
    pub(crate) negotiated: Negotiated,
    grace_percent: u32,
    pub(crate) now: u64,
    last_tx: u64,
    last_rx: u64,
    heard: bool,
    active: bool,
}

/// What a timeout asks the session to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerAction {
    pub(crate) send_heartbeat: bool,
    pub(crate) peer_dead: bool,
}

impl Timer {
    pub(crate) fn new(grace_percent: u32) -> Timer {
        Timer {
            negotiated: Negotiated::default(),
            grace_percent: grace_percent.max(100),
            now: 0,
            last_tx: 0,
            last_rx: 0,
            heard: false,
            active: false,
        }
    }

    /// Starts timing with the negotiated intervals (at the host's latest `now`).
    pub(crate) fn start(&mut self, negotiated: Negotiated) {
        self.negotiated = negotiated;
        self.last_tx = self.now;
        self.last_rx = self.now;
        self.heard = true;
        self.active = true;
    }

    pub(crate) fn stop(&mut self) {
        self.active = false;
    }

    pub(crate) fn on_receive(&mut self) {
        self.heard = true;
        if self.now > self.last_rx {
            self.last_rx = self.now;
        }
    }

    pub(crate) fn on_transmit(&mut self) {
        self.last_tx = self.now;
    }

    fn rx_deadline(&self) -> Option<u64> {
        if self.negotiated.receive_ms == 0 {
            return None;
        }
        let allowed = self
            .negotiated
            .receive_ms
            .saturating_mul(u64::from(self.grace_percent))
            / 100;
        Some(self.last_rx.saturating_add(allowed))
    }

    fn tx_deadline(&self) -> Option<u64> {
        if self.negotiated.send_ms == 0 {
            return None;
        }
        Some(self.last_tx.saturating_add(self.negotiated.send_ms))
    }

    pub(crate) fn poll_timeout(&self) -> Option<u64> {
        if !self.active {
            return None;
        }
        match (self.tx_deadline(), self.rx_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Advances the clock (a clock that goes backwards is ignored).
    pub(crate) fn advance(&mut self, now: u64) {
        if now > self.now {
            self.now = now;
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: u64) -> TimerAction {
        self.advance(now);
        let mut action = TimerAction {
            send_heartbeat: false,
            peer_dead: false,
        };
        if !self.active {
            return action;
        }
        if self.tx_deadline().is_some_and(|d| self.now >= d) {
            action.send_heartbeat = true;
            self.last_tx = self.now;
        }
        if self.heard {
            // Heard at some time up to now: lenient, never a false verdict.
            self.heard = false;
            self.last_rx = self.last_rx.max(self.now);
        } else if self.rx_deadline().is_some_and(|d| self.now >= d) {
            action.peer_dead = true;
        }
        action
    }
}
