//! Property test against a reference model: random sessions, subscriptions, sends, acks,
//! nacks, unsubscribes and disconnects. Checks that no queue message is lost or consumed
//! twice (each is consumed exactly once: delivered on an auto subscription, or ACKed), that a
//! message's first delivery is the only one without `redelivered:true`, that topic
//! subscribers get every message published while subscribed exactly once, and that each
//! subscriber sees each publisher's messages in publish order.

mod common;

use std::collections::HashMap;

use common::Host;
use proptest::prelude::*;
use stompbox_broker::{Config, SessionId};
use stompbox_stomp::Command;

const CLIENTS: usize = 3;
const PUBLISHERS: usize = 2;

#[derive(Debug, Clone)]
enum Op {
    Connect(usize),
    SubQueue(usize, u8),
    SubTopic(usize),
    Send { publisher: usize, queue: bool },
    Ack(usize, usize),
    Nack(usize, usize),
    UnsubQueue(usize),
    Disconnect(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let c = 0..CLIENTS;
    prop_oneof![
        1 => c.clone().prop_map(Op::Connect),
        1 => (c.clone(), 0u8..3).prop_map(|(i, m)| Op::SubQueue(i, m)),
        1 => c.clone().prop_map(Op::SubTopic),
        4 => (0..PUBLISHERS, any::<bool>()).prop_map(|(publisher, queue)| Op::Send { publisher, queue }),
        2 => (c.clone(), 0usize..4).prop_map(|(i, k)| Op::Ack(i, k)),
        1 => (c.clone(), 0usize..4).prop_map(|(i, k)| Op::Nack(i, k)),
        1 => c.clone().prop_map(Op::UnsubQueue),
        1 => c.prop_map(Op::Disconnect),
    ]
}

#[derive(Default)]
struct ClientModel {
    session: Option<SessionId>,
    /// Queue subscription ack mode: "auto", "client", "client-individual".
    queue_mode: Option<&'static str>,
    topic: bool,
    /// Outstanding (ack id, body) of the queue subscription, in delivery order.
    outstanding: Vec<(String, String)>,
    /// Topic bodies expected while subscribed, and received.
    topic_expected: Vec<String>,
    topic_received: Vec<String>,
    /// Per publisher, last non-redelivered sequence seen (order check).
    last_seq: HashMap<(bool, usize), u64>,
}

struct Run {
    h: Host,
    publishers: Vec<SessionId>,
    clients: Vec<ClientModel>,
    seq: Vec<u64>,
    queue_sent: Vec<String>,
    consumed: HashMap<String, usize>,
    first_deliveries: HashMap<String, usize>,
}

impl Run {
    fn new() -> Run {
        let mut h = Host::new(Config {
            max_queue_depth: 100_000,
            ..Config::default()
        });
        let publishers = (0..PUBLISHERS).map(|_| h.connect(None)).collect();
        Run {
            h,
            publishers,
            clients: (0..CLIENTS).map(|_| ClientModel::default()).collect(),
            seq: vec![0; PUBLISHERS],
            queue_sent: Vec::new(),
            consumed: HashMap::new(),
            first_deliveries: HashMap::new(),
        }
    }

    /// Moves every client's received MESSAGEs into the model, checking order and marks.
    fn collect(&mut self) -> Result<(), TestCaseError> {
        for i in 0..CLIENTS {
            let Some(sid) = self.clients[i].session else {
                continue;
            };
            for f in self.h.take(sid) {
                prop_assert!(
                    f.command() != Command::Error,
                    "unexpected ERROR: {:?}",
                    f.header("message")
                );
                if f.command() != Command::Message {
                    continue;
                }
                let body = String::from_utf8_lossy(f.body()).into_owned();
                let redelivered = f.header("redelivered") == Some("true");
                let c = &mut self.clients[i];
                match f.header("subscription") {
                    Some("q") => {
                        if redelivered {
                            prop_assert!(
                                self.first_deliveries.contains_key(&body),
                                "redelivered before delivered: {}",
                                body
                            );
                        } else {
                            *self.first_deliveries.entry(body.clone()).or_default() += 1;
                            check_order(c, true, &body)?;
                        }
                        if c.queue_mode == Some("auto") {
                            *self.consumed.entry(body).or_default() += 1;
                        } else {
                            let ack = f.header("ack").expect("ack header").to_owned();
                            c.outstanding.push((ack, body));
                        }
                    }
                    Some("t") => {
                        prop_assert!(!redelivered);
                        check_order(c, false, &body)?;
                        c.topic_received.push(body);
                    }
                    other => prop_assert!(false, "unknown subscription {:?}", other),
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Connect(i) => {
                if self.clients[i].session.is_none() {
                    let sid = self.h.connect(None);
                    self.clients[i] = ClientModel {
                        session: Some(sid),
                        ..ClientModel::default()
                    };
                }
            }
            Op::SubQueue(i, m) => {
                let c = &mut self.clients[i];
                if let (Some(sid), None) = (c.session, c.queue_mode) {
                    let mode = ["auto", "client", "client-individual"][m as usize];
                    c.queue_mode = Some(mode);
                    self.h.subscribe(sid, "q", "/queue/work", mode);
                }
            }
            Op::SubTopic(i) => {
                let c = &mut self.clients[i];
                if let (Some(sid), false) = (c.session, c.topic) {
                    c.topic = true;
                    self.h.subscribe(sid, "t", "/topic/news", "auto");
                }
            }
            Op::Send { publisher, queue } => {
                self.seq[publisher] += 1;
                let body = format!(
                    "{}:{}:{}",
                    if queue { "q" } else { "t" },
                    publisher,
                    self.seq[publisher]
                );
                if queue {
                    self.queue_sent.push(body.clone());
                } else {
                    for c in &mut self.clients {
                        if c.topic {
                            c.topic_expected.push(body.clone());
                        }
                    }
                }
                let dest = if queue { "/queue/work" } else { "/topic/news" };
                let p = self.publishers[publisher];
                self.h.publish(p, dest, &body);
            }
            Op::Ack(i, k) | Op::Nack(i, k) => {
                let nack = matches!(op, Op::Nack(..));
                let c = &mut self.clients[i];
                let (Some(sid), Some(mode)) = (c.session, c.queue_mode) else {
                    return Ok(());
                };
                if c.outstanding.is_empty() {
                    return Ok(());
                }
                let k = k % c.outstanding.len();
                let id = c.outstanding[k].0.clone();
                let covered: Vec<(String, String)> = if mode == "client" {
                    c.outstanding.drain(..=k).collect()
                } else {
                    vec![c.outstanding.remove(k)]
                };
                if !nack {
                    for (_, b) in covered {
                        *self.consumed.entry(b).or_default() += 1;
                    }
                }
                self.h
                    .send(sid, if nack { "NACK" } else { "ACK" }, &[("id", &id)], "");
            }
            Op::UnsubQueue(i) => {
                let c = &mut self.clients[i];
                if let (Some(sid), Some(_)) = (c.session, c.queue_mode) {
                    c.queue_mode = None;
                    c.outstanding.clear();
                    self.h.send(sid, "UNSUBSCRIBE", &[("id", "q")], "");
                }
            }
            Op::Disconnect(i) => {
                if let Some(sid) = self.clients[i].session {
                    self.collect()?;
                    let c = &mut self.clients[i];
                    prop_assert_eq!(&c.topic_received, &c.topic_expected);
                    self.clients[i] = ClientModel::default();
                    self.h.broker.transport_closed(sid).expect("open");
                }
            }
        }
        self.collect()
    }
}

fn check_order(c: &mut ClientModel, queue: bool, body: &str) -> Result<(), TestCaseError> {
    let mut parts = body.split(':').skip(1);
    let publisher: usize = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let seq: u64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let last = c.last_seq.entry((queue, publisher)).or_insert(0);
    prop_assert!(
        seq > *last,
        "publisher {} order: {} after {}",
        publisher,
        seq,
        *last
    );
    *last = seq;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn broker_matches_reference_model(ops in prop::collection::vec(op(), 1..60)) {
        let mut run = Run::new();
        for op in &ops {
            run.apply(op)?;
        }
        // End: every client leaves (topic books checked), then an auto consumer drains.
        for i in 0..CLIENTS {
            run.apply(&Op::Disconnect(i))?;
        }
        let drain = run.h.connect(None);
        run.clients[0] = ClientModel { session: Some(drain), queue_mode: Some("auto"), ..ClientModel::default() };
        run.h.subscribe(drain, "q", "/queue/work", "auto");
        run.collect()?;
        for b in &run.queue_sent {
            prop_assert_eq!(run.consumed.get(b).copied().unwrap_or(0), 1, "consumed once: {}", b);
            prop_assert_eq!(run.first_deliveries.get(b).copied().unwrap_or(0), 1, "one first delivery: {}", b);
        }
        prop_assert_eq!(run.consumed.len(), run.queue_sent.len());
        let st = run.h.broker.stats();
        prop_assert_eq!(st.queue_depth_total, 0);
    }
}
