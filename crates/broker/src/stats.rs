//! The stats snapshot: plain data with a stable shape, rendered as JSON without dependencies.

use std::fmt::Write as _;

/// Frames counted by STOMP command (inbound or outbound).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameCounts {
    /// CONNECT and STOMP frames.
    pub connect: u64,
    /// CONNECTED frames.
    pub connected: u64,
    /// SEND frames.
    pub send: u64,
    /// SUBSCRIBE frames.
    pub subscribe: u64,
    /// UNSUBSCRIBE frames.
    pub unsubscribe: u64,
    /// ACK frames.
    pub ack: u64,
    /// NACK frames.
    pub nack: u64,
    /// BEGIN frames.
    pub begin: u64,
    /// COMMIT frames.
    pub commit: u64,
    /// ABORT frames.
    pub abort: u64,
    /// DISCONNECT frames.
    pub disconnect: u64,
    /// MESSAGE frames.
    pub message: u64,
    /// RECEIPT frames.
    pub receipt: u64,
    /// ERROR frames.
    pub error: u64,
    /// Heart-beats (lone EOLs).
    pub heartbeat: u64,
}

impl FrameCounts {
    /// `(name, count)` for every field, in a fixed order (the JSON keys).
    pub fn fields(&self) -> [(&'static str, u64); 15] {
        [
            ("CONNECT", self.connect),
            ("CONNECTED", self.connected),
            ("SEND", self.send),
            ("SUBSCRIBE", self.subscribe),
            ("UNSUBSCRIBE", self.unsubscribe),
            ("ACK", self.ack),
            ("NACK", self.nack),
            ("BEGIN", self.begin),
            ("COMMIT", self.commit),
            ("ABORT", self.abort),
            ("DISCONNECT", self.disconnect),
            ("MESSAGE", self.message),
            ("RECEIPT", self.receipt),
            ("ERROR", self.error),
            ("heartbeat", self.heartbeat),
        ]
    }

    /// The sum over all commands.
    pub fn total(&self) -> u64 {
        self.fields().iter().map(|(_, n)| n).sum()
    }
}

/// One queue in the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    /// The queue's destination (e.g. `/queue/jobs`).
    pub destination: String,
    /// Messages waiting for a consumer.
    pub depth: usize,
    /// Messages delivered and not yet acknowledged (client ack modes).
    pub unacked: usize,
    /// Subscriptions consuming from the queue.
    pub consumers: usize,
}

/// A snapshot of the broker's counters (like Spring's `WebSocketMessageBrokerStats`).
///
/// Plain data; [`Stats::to_json`] renders it with a stable shape for a monitoring endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Sessions open now (opened and not yet reported closed by the host).
    pub sessions_current: usize,
    /// Sessions opened since the broker started.
    pub sessions_total: u64,
    /// Sessions whose CONNECT was accepted, now.
    pub sessions_connected: usize,
    /// Frames received, by command.
    pub frames_in: FrameCounts,
    /// Frames sent, by command.
    pub frames_out: FrameCounts,
    /// Messages accepted for routing (client SENDs to broker destinations and app replies).
    pub messages_published: u64,
    /// MESSAGE frames queued to subscribers.
    pub messages_delivered: u64,
    /// Messages redelivered (NACK, UNSUBSCRIBE or disconnect with unacknowledged messages).
    pub messages_redelivered: u64,
    /// Messages that matched no subscriber of a topic or user destination.
    pub messages_unrouted: u64,
    /// SENDs to destinations outside every prefix, dropped by policy.
    pub messages_dropped: u64,
    /// SENDs refused because the queue was full (answered with ERROR).
    pub queue_full_rejections: u64,
    /// Application events emitted (SEND and SUBSCRIBE to application destinations).
    pub app_events: u64,
    /// Topic subscriptions in the pattern index.
    pub topic_subscriptions: usize,
    /// All subscriptions (topics, queues, user and application destinations).
    pub subscriptions: usize,
    /// Messages waiting in all queues.
    pub queue_depth_total: usize,
    /// Per-queue numbers, sorted by destination.
    pub queues: Vec<QueueStats>,
    /// Sessions disconnected because their output exceeded the bound.
    pub slow_consumer_disconnects: u64,
    /// Sessions ended by a protocol error (ERROR sent).
    pub protocol_errors: u64,
    /// CONNECTs rejected by the authentication hook.
    pub auth_failures: u64,
    /// Sessions ended because the client's heart-beats stopped.
    pub heartbeat_timeouts: u64,
    /// Sessions refused because the session limit was reached.
    pub sessions_refused: u64,
}

impl Stats {
    /// Renders the snapshot as one JSON object (keys as the field names; frame counts keyed by
    /// STOMP command).
    pub fn to_json(&self) -> String {
        let mut s = String::with_capacity(1024);
        s.push('{');
        let _ = write!(
            s,
            "\"sessions_current\":{},\"sessions_total\":{},\"sessions_connected\":{},",
            self.sessions_current, self.sessions_total, self.sessions_connected
        );
        for (name, counts) in [
            ("frames_in", &self.frames_in),
            ("frames_out", &self.frames_out),
        ] {
            let _ = write!(s, "\"{name}\":{{");
            for (i, (k, v)) in counts.fields().iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                let _ = write!(s, "\"{k}\":{v}");
            }
            s.push_str("},");
        }
        let nums: [(&str, u64); 15] = [
            ("messages_published", self.messages_published),
            ("messages_delivered", self.messages_delivered),
            ("messages_redelivered", self.messages_redelivered),
            ("messages_unrouted", self.messages_unrouted),
            ("messages_dropped", self.messages_dropped),
            ("queue_full_rejections", self.queue_full_rejections),
            ("app_events", self.app_events),
            ("topic_subscriptions", self.topic_subscriptions as u64),
            ("subscriptions", self.subscriptions as u64),
            ("queue_depth_total", self.queue_depth_total as u64),
            ("slow_consumer_disconnects", self.slow_consumer_disconnects),
            ("protocol_errors", self.protocol_errors),
            ("auth_failures", self.auth_failures),
            ("heartbeat_timeouts", self.heartbeat_timeouts),
            ("sessions_refused", self.sessions_refused),
        ];
        for (k, v) in nums {
            let _ = write!(s, "\"{k}\":{v},");
        }
        s.push_str("\"queues\":[");
        for (i, q) in self.queues.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str("{\"destination\":");
            json_str(&mut s, &q.destination);
            let _ = write!(
                s,
                ",\"depth\":{},\"unacked\":{},\"consumers\":{}}}",
                q.depth, q.unacked, q.consumers
            );
        }
        s.push_str("]}");
        s
    }
}

/// Appends `v` as a JSON string literal.
fn json_str(out: &mut String, v: &str) {
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_and_escaping() {
        let mut st = Stats {
            sessions_current: 2,
            ..Stats::default()
        };
        st.frames_in.send = 5;
        st.queues.push(QueueStats {
            destination: "/queue/\"q\"\n\u{1}".into(),
            depth: 3,
            unacked: 1,
            consumers: 0,
        });
        let j = st.to_json();
        assert!(j.starts_with("{\"sessions_current\":2,"), "{j}");
        assert!(j.contains("\"frames_in\":{\"CONNECT\":0,\"CONNECTED\":0,\"SEND\":5,"));
        assert!(j.contains(
            "\"queues\":[{\"destination\":\"/queue/\\\"q\\\"\\n\\u0001\",\"depth\":3,\"unacked\":1,\"consumers\":0}]}"
        ));
        // Balanced braces and brackets, no trailing commas.
        assert_eq!(j.matches('{').count(), j.matches('}').count());
        assert!(!j.contains(",}") && !j.contains(",]"));
        assert_eq!(st.frames_in.total(), 5);
    }
}
