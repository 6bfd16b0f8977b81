//! Pieces shared by the client and server sessions: the output queue and the heart-beat timer.

use crate::encoder::{EncodeError, encode_head};
use crate::frame::{Frame, Negotiated, Version};
use alloc::collections::VecDeque;
use bytes::{BufMut, Bytes, BytesMut};

/// Bodies at least this large are queued as their own `Bytes` chunk (shared, not copied).
const SHARE_BODY_AT: usize = 512;

/// Encoded output awaiting `poll_transmit`: small writes are coalesced in `staging`, large
/// bodies are queued as shared `Bytes` chunks.
#[derive(Debug, Default)]
pub(crate) struct Output {
    queue: VecDeque<Bytes>,
    staging: BytesMut,
    pending: usize,
}

impl Output {
    pub(crate) fn pending(&self) -> usize {
        self.pending
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
        let before = self.staging.len();
        encode_head(frame, version, frame.body().len(), &mut self.staging)?;
        self.pending += self.staging.len() - before;
        self.push_body(frame.body().clone());
        Ok(())
    }

    /// Appends raw head bytes written by the caller via `with_staging`.
    pub(crate) fn with_staging<R>(&mut self, f: impl FnOnce(&mut BytesMut) -> R) -> R {
        let before = self.staging.len();
        let r = f(&mut self.staging);
        self.pending += self.staging.len() - before;
        r
    }

    /// Appends a body followed by the NUL terminator.
    pub(crate) fn push_body(&mut self, body: Bytes) {
        self.pending += body.len() + 1;
        if body.len() >= SHARE_BODY_AT {
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
    }

    pub(crate) fn poll(&mut self) -> Option<Bytes> {
        let chunk = match self.queue.pop_front() {
            Some(c) => c,
            None if !self.staging.is_empty() => self.staging.split().freeze(),
            None => return None,
        };
        self.pending -= chunk.len();
        Some(chunk)
    }

    /// Copies as much pending output as fits into `dst`; returns the number of bytes.
    pub(crate) fn poll_into(&mut self, dst: &mut [u8]) -> usize {
        let mut n = 0;
        while n < dst.len() {
            let Some(mut chunk) = self.poll() else { break };
            let take = chunk.len().min(dst.len() - n);
            dst[n..n + take].copy_from_slice(&chunk[..take]);
            n += take;
            if take < chunk.len() {
                let rest = chunk.split_off(take);
                self.pending += rest.len();
                self.queue.push_front(rest);
            }
        }
        n
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
