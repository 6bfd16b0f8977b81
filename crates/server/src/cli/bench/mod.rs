//! `stompbox bench`: the load generator. P publisher and S subscriber connections (WebSocket or
//! TCP) to any STOMP broker; publishes at a fixed rate or as fast as a window of in-flight
//! messages allows, for a bounded time and count; reports rates, the delivery ratio, end-to-end
//! latency percentiles (a timestamp header per message), connect times, errors, and the server's
//! RSS when the server runs on this machine.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    reason = "statistics: counts and microseconds stay far below 2^52, rates and times are non-negative"
)]

mod hist;
mod procfs;
mod worker;

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;

use self::hist::Histogram;
use self::worker::{CONNECTING, DRAINING, RUNNING, Role, STOPPING, Shared, Spec, WorkerResult};
use super::args::{Args, CONNECT_HELP, CliError, ConnectOptions, Item};
use super::target::{Target, Transport};

const HELP: &str = "\
stompbox bench: a STOMP load generator (any broker; WebSocket or TCP)

USAGE: stompbox bench URL [FLAGS]

  URL   ws://HOST:PORT/PATH or stomp://HOST:PORT (loopback only unless --allow-remote)

Scenario:
  --scenario NAME          fanout:  P publishers -> S subscribers on one topic  [1 -> 1000]
                           fanin:   P publishers -> S subscribers on one topic  [1000 -> 1]
                           pairs:   N publisher/subscriber pairs, a topic each  [N = 100]
                           idle:    N connections with heart-beats, no traffic  [N = 10000]
  --publishers P / --subscribers S / --pairs N / --connections N   override the sizes
  --topic PREFIX           destination (prefix for pairs)                 [/topic/bench]
Load:
  --rate R                 messages/s offered, all publishers together, 0 = as fast as
                           the window allows                                        [0]
  --window W               max-rate mode: deliveries in flight (published x subscribers
                           per topic, not yet received), all publishers together  [5000]
  --size BYTES             message body size                                         [100]
  --count N                stop publishing after N messages in all                [none]
  --duration SECS          publishing time (idle: holding time), at most 3600         [10]
  --drain-ms MS            after publishing, wait this long for the last deliveries [3000]
  --threads T              load-generator threads                                      [2]
  --connect-rate-limit K   connection attempts in progress per thread                 [64]
Output:
  --json                   print the result as JSON on stdout
  --server-pid PID         the server whose RSS to report [found by the URL's port when local]
  -q, --quiet              no progress on stderr
  --allow-remote           allow a non-loopback URL (you are load-testing someone's server)
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    FanOut,
    FanIn,
    Pairs,
    Idle,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Self::FanOut => "fanout",
            Self::FanIn => "fanin",
            Self::Pairs => "pairs",
            Self::Idle => "idle",
        }
    }
}

#[derive(Debug)]
struct Options {
    connect: ConnectOptions,
    url: String,
    scenario: Scenario,
    publishers: Option<u64>,
    subscribers: Option<u64>,
    pairs: Option<u64>,
    connections: Option<u64>,
    topic: String,
    rate: f64,
    window: u64,
    size: usize,
    count: Option<u64>,
    duration_s: f64,
    drain_ms: u64,
    threads: usize,
    max_connecting: usize,
    json: bool,
    server_pid: Option<u32>,
    quiet: bool,
    allow_remote: bool,
}

const MAX_CONNECTIONS: u64 = 100_000;

fn parse(args: &[String]) -> Result<Options, CliError> {
    let mut a = Args::new(args);
    let mut o = Options {
        connect: ConnectOptions::default(),
        url: String::new(),
        scenario: Scenario::FanOut,
        publishers: None,
        subscribers: None,
        pairs: None,
        connections: None,
        topic: "/topic/bench".into(),
        rate: 0.0,
        window: 5_000,
        size: 100,
        count: None,
        duration_s: 10.0,
        drain_ms: 3000,
        threads: 2,
        max_connecting: 64,
        json: false,
        server_pid: None,
        quiet: false,
        allow_remote: false,
    };
    let mut pos = Vec::new();
    let mut heartbeat_given = false;
    while let Some(item) = a.next_item()? {
        match item {
            Item::Positional(p) => pos.push(p),
            Item::Flag(f) => {
                if f == "--heartbeat" {
                    heartbeat_given = true;
                }
                if a.connect_flag(&f, &mut o.connect)? {
                    continue;
                }
                match f.as_str() {
                    "-h" | "--help" => {
                        return Err(CliError::Help(format!("{HELP}{CONNECT_HELP}")));
                    }
                    "--scenario" => {
                        o.scenario = match a.value(&f)?.as_str() {
                            "fanout" | "fan-out" => Scenario::FanOut,
                            "fanin" | "fan-in" => Scenario::FanIn,
                            "pairs" => Scenario::Pairs,
                            "idle" | "connections" => Scenario::Idle,
                            other => {
                                return Err(CliError::Usage(format!(
                                    "unknown scenario {other:?}: expected fanout, fanin, pairs or idle"
                                )));
                            }
                        }
                    }
                    "--publishers" => o.publishers = Some(a.number(&f)?),
                    "--subscribers" => o.subscribers = Some(a.number(&f)?),
                    "--pairs" => o.pairs = Some(a.number(&f)?),
                    "--connections" => o.connections = Some(a.number(&f)?),
                    "--topic" => o.topic = a.value(&f)?,
                    "--rate" => o.rate = a.number(&f)?,
                    "--window" => o.window = a.number(&f)?,
                    "--size" => o.size = a.number(&f)?,
                    "--count" => o.count = Some(a.number(&f)?),
                    "--duration" => o.duration_s = a.number(&f)?,
                    "--drain-ms" => o.drain_ms = a.number(&f)?,
                    "--threads" => o.threads = a.number(&f)?,
                    "--connect-rate-limit" => o.max_connecting = a.number(&f)?,
                    "--json" => o.json = true,
                    "--server-pid" => o.server_pid = Some(a.number(&f)?),
                    "-q" | "--quiet" => o.quiet = true,
                    "--allow-remote" => o.allow_remote = true,
                    _ => return Err(CliError::Usage(format!("unknown flag {f}"))),
                }
            }
        }
    }
    let mut pos = pos.into_iter();
    o.url = pos
        .next()
        .ok_or_else(|| CliError::Usage("missing URL".into()))?;
    if let Some(extra) = pos.next() {
        return Err(CliError::Usage(format!("unexpected argument {extra:?}")));
    }
    if o.scenario == Scenario::Idle && !heartbeat_given {
        o.connect.heartbeat_ms = 10_000;
    }
    let usage = |m: &str| Err(CliError::Usage(m.into()));
    if !(o.duration_s > 0.0 && o.duration_s <= 3600.0) {
        return usage("--duration must be more than 0 and at most 3600 seconds");
    }
    if !(o.rate >= 0.0 && o.rate.is_finite()) {
        return usage("--rate must be 0 (max) or a positive number");
    }
    if o.window == 0 {
        return usage("--window must be at least 1");
    }
    if !(1..=64).contains(&o.threads) {
        return usage("--threads must be 1..=64");
    }
    if o.max_connecting == 0 {
        return usage("--connect-rate-limit must be at least 1");
    }
    if o.size > 16 << 20 {
        return usage("--size is at most 16 MiB");
    }
    if o.drain_ms > 600_000 {
        return usage("--drain-ms is at most 600000");
    }
    if o.count == Some(0) {
        return usage("--count must be at least 1");
    }
    Ok(o)
}

/// The connections a run opens, and the deliveries each publish should make.
#[derive(Debug)]
struct Plan {
    roles: Vec<Role>,
    publishers: u64,
    subscribers: u64,
    factor: u64,
}

fn plan(o: &Options) -> Result<Plan, CliError> {
    let quota = |i: u64, p: u64| match o.count {
        // Split N over P publishers: the first N % P get one more.
        Some(n) => n / p + u64::from(i < n % p),
        None => u64::MAX,
    };
    let mut roles = Vec::new();
    let (publishers, subscribers, factor) = match o.scenario {
        Scenario::FanOut | Scenario::FanIn => {
            let (dp, ds) = if o.scenario == Scenario::FanOut {
                (1, 1000)
            } else {
                (1000, 1)
            };
            let p = o.publishers.unwrap_or(dp);
            let s = o.subscribers.unwrap_or(ds);
            if p == 0 || s == 0 {
                return Err(CliError::Usage(
                    "--publishers and --subscribers must be at least 1".into(),
                ));
            }
            check_size(p + s)?;
            let dest: Arc<str> = o.topic.as_str().into();
            // Subscribers first, so they are in place before anyone publishes.
            for _ in 0..s {
                roles.push(Role::Subscriber { dest: dest.clone() });
            }
            for i in 0..p {
                roles.push(Role::Publisher {
                    dest: dest.clone(),
                    quota: quota(i, p),
                });
            }
            (p, s, s)
        }
        Scenario::Pairs => {
            let n = o.pairs.or(o.publishers).unwrap_or(100);
            if n == 0 {
                return Err(CliError::Usage("--pairs must be at least 1".into()));
            }
            check_size(2 * n)?;
            for i in 0..n {
                let dest: Arc<str> = format!("{}.{i}", o.topic).into();
                roles.push(Role::Subscriber { dest: dest.clone() });
                roles.push(Role::Publisher {
                    dest,
                    quota: quota(i, n),
                });
            }
            (n, n, 1)
        }
        Scenario::Idle => {
            let n = o.connections.unwrap_or(10_000);
            if n == 0 {
                return Err(CliError::Usage("--connections must be at least 1".into()));
            }
            check_size(n)?;
            roles.resize(n as usize, Role::Idle);
            (0, 0, 1)
        }
    };
    Ok(Plan {
        roles,
        publishers,
        subscribers,
        factor,
    })
}

fn check_size(n: u64) -> Result<(), CliError> {
    if n > MAX_CONNECTIONS {
        return Err(CliError::Usage(format!(
            "{n} connections is more than the limit of {MAX_CONNECTIONS}"
        )));
    }
    Ok(())
}

/// Everything measured in one run.
#[derive(Debug, Default)]
struct Report {
    scenario: &'static str,
    url: String,
    transport: &'static str,
    publishers: u64,
    subscribers: u64,
    connections: u64,
    size: usize,
    rate_offered: f64,
    ready: u64,
    connect_failed: u64,
    lost: u64,
    connect_s: f64,
    run_s: f64,
    published: u64,
    delivered: u64,
    expected: u64,
    publish_rate: f64,
    deliver_rate: f64,
    latency: Histogram,
    connect_us: Histogram,
    heartbeats_received: u64,
    bytes_read: u64,
    errors: Vec<(String, u64)>,
    server_pid: Option<u32>,
    rss_before_kib: Option<u64>,
    rss_after_kib: Option<u64>,
}

impl Report {
    fn ratio(&self) -> f64 {
        if self.expected == 0 {
            1.0
        } else {
            self.delivered as f64 / self.expected as f64
        }
    }

    fn rss_per_connection(&self) -> Option<f64> {
        let (b, a) = (self.rss_before_kib?, self.rss_after_kib?);
        (self.ready > 0).then(|| (a.saturating_sub(b) as f64 * 1024.0) / self.ready as f64)
    }

    fn json(&self) -> String {
        let opt = |v: Option<u64>| v.map_or("null".to_owned(), |v| v.to_string());
        let mut s = String::from("{");
        let _ = write!(
            s,
            "\"scenario\":\"{}\",\"url\":{},\"transport\":\"{}\",\"publishers\":{},\"subscribers\":{},\"connections\":{},\"size\":{},\"rate_offered\":{},",
            self.scenario,
            json_str(&self.url),
            self.transport,
            self.publishers,
            self.subscribers,
            self.connections,
            self.size,
            self.rate_offered
        );
        let _ = write!(
            s,
            "\"ready\":{},\"connect_failed\":{},\"lost\":{},\"connect_s\":{:.3},\"run_s\":{:.3},\"published\":{},\"delivered\":{},\"expected\":{},\"delivery_ratio\":{:.6},\"publish_rate\":{:.1},\"deliver_rate\":{:.1},",
            self.ready,
            self.connect_failed,
            self.lost,
            self.connect_s,
            self.run_s,
            self.published,
            self.delivered,
            self.expected,
            self.ratio(),
            self.publish_rate,
            self.deliver_rate
        );
        let h = &self.latency;
        let _ = write!(
            s,
            "\"latency_us\":{{\"count\":{},\"p50\":{},\"p99\":{},\"p999\":{},\"max\":{},\"mean\":{:.1}}},",
            h.count(),
            h.quantile(0.5),
            h.quantile(0.99),
            h.quantile(0.999),
            h.max(),
            h.mean()
        );
        let c = &self.connect_us;
        let _ = write!(
            s,
            "\"connect_us\":{{\"count\":{},\"p50\":{},\"p99\":{},\"max\":{}}},\"heartbeats_received\":{},\"bytes_read\":{},",
            c.count(),
            c.quantile(0.5),
            c.quantile(0.99),
            c.max(),
            self.heartbeats_received,
            self.bytes_read
        );
        let _ = write!(
            s,
            "\"server_pid\":{},\"server_rss_before_kib\":{},\"server_rss_after_kib\":{},\"server_rss_per_connection_bytes\":{},",
            opt(self.server_pid.map(u64::from)),
            opt(self.rss_before_kib),
            opt(self.rss_after_kib),
            self.rss_per_connection()
                .map_or("null".to_owned(), |v| format!("{v:.0}"))
        );
        s.push_str("\"errors\":[");
        for (i, (m, n)) in self.errors.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(s, "{{\"message\":{},\"count\":{n}}}", json_str(m));
        }
        s.push_str("]}");
        s
    }

    fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "scenario {} on {} ({}): {} publishers, {} subscribers, {} connections, {} B bodies, rate {}",
            self.scenario,
            self.url,
            self.transport,
            self.publishers,
            self.subscribers,
            self.connections,
            self.size,
            if self.rate_offered > 0.0 {
                format!("{} msg/s", self.rate_offered)
            } else {
                "max".into()
            }
        );
        let c = &self.connect_us;
        let _ = writeln!(
            s,
            "connections: {} ready, {} failed, {} lost; connect p50 {:.1} ms p99 {:.1} ms max {:.1} ms; all in {:.2} s",
            self.ready,
            self.connect_failed,
            self.lost,
            c.quantile(0.5) as f64 / 1e3,
            c.quantile(0.99) as f64 / 1e3,
            c.max() as f64 / 1e3,
            self.connect_s
        );
        if self.publishers > 0 {
            let _ = writeln!(
                s,
                "published {} in {:.2} s ({:.0} msg/s); delivered {} of {} ({:.2} %), {:.0} msg/s",
                self.published,
                self.run_s,
                self.publish_rate,
                self.delivered,
                self.expected,
                self.ratio() * 100.0,
                self.deliver_rate
            );
            let h = &self.latency;
            let _ = writeln!(
                s,
                "latency p50 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms  mean {:.3} ms",
                h.quantile(0.5) as f64 / 1e3,
                h.quantile(0.99) as f64 / 1e3,
                h.quantile(0.999) as f64 / 1e3,
                h.max() as f64 / 1e3,
                h.mean() / 1e3
            );
        } else {
            let _ = writeln!(
                s,
                "held {} connections for {:.1} s; {} heart-beats received",
                self.ready, self.run_s, self.heartbeats_received
            );
        }
        if let (Some(pid), Some(b), Some(a)) =
            (self.server_pid, self.rss_before_kib, self.rss_after_kib)
        {
            let _ = write!(
                s,
                "server pid {pid}: RSS {:.1} MiB before, {:.1} MiB after",
                b as f64 / 1024.0,
                a as f64 / 1024.0
            );
            if let Some(per) = self.rss_per_connection() {
                let _ = write!(s, " ({per:.0} bytes per connection)");
            }
            s.push('\n');
        }
        for (m, n) in &self.errors {
            let _ = writeln!(s, "error x{n}: {m}");
        }
        s
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

struct Progress {
    on: bool,
    tty: bool,
    last: Instant,
}

impl Progress {
    fn show(&mut self, line: &str, force: bool) {
        if !self.on {
            return;
        }
        let every = if self.tty {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(2)
        };
        if !force && self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        let mut e = std::io::stderr().lock();
        if self.tty {
            let _ = write!(e, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(e, "{line}");
        }
        let _ = e.flush();
    }

    fn done(&self) {
        if self.on && self.tty {
            eprintln!();
        }
    }
}

pub(crate) fn run(args: &[String]) -> Result<(), CliError> {
    let o = parse(args)?;
    let target = Target::parse(&o.url)?;
    let addrs = target.resolve()?;
    if !o.allow_remote && addrs.iter().any(|a| !a.ip().is_loopback()) {
        return Err(CliError::Usage(format!(
            "{} is not a loopback address; pass --allow-remote to load-test another machine",
            target.host
        )));
    }
    let plan = plan(&o)?;
    let server_pid = o.server_pid.or_else(|| {
        addrs
            .iter()
            .all(|a| a.ip().is_loopback())
            .then(|| procfs::listener_pid(target.port))
            .flatten()
    });
    let rss_before = server_pid.and_then(procfs::rss_kib);
    let total = plan.roles.len() as u64;
    let rate_per_publisher = if plan.publishers > 0 {
        o.rate / plan.publishers as f64
    } else {
        0.0
    };
    let spec = Arc::new(Spec {
        target: target.clone(),
        addrs,
        connect: o.connect.clone(),
        body: Bytes::from(vec![b'x'; o.size]),
        rate_per_publisher,
        window: o.window,
        factor: plan.factor,
        max_connecting: o.max_connecting,
        epoch: Instant::now(),
    });
    let shared = Arc::new(Shared::default());
    let threads = o.threads.min(plan.roles.len()).max(1);
    let mut per_thread: Vec<Vec<Role>> = vec![Vec::new(); threads];
    for (i, r) in plan.roles.iter().enumerate() {
        per_thread[i % threads].push(r.clone());
    }
    let mut handles = Vec::new();
    for roles in per_thread {
        let (spec, shared) = (spec.clone(), shared.clone());
        let h = std::thread::Builder::new()
            .name("stompbox-bench".into())
            .spawn(move || worker::run(spec, roles, shared))
            .map_err(|e| CliError::Connection(format!("cannot start a thread: {e}")))?;
        handles.push(h);
    }
    let mut progress = Progress {
        on: !o.quiet,
        tty: std::io::stderr().is_terminal(),
        last: Instant::now(),
    };
    // 1. Connect (and subscribe) everything, within the connect timeout per batch.
    let connect_started = Instant::now();
    let connect_limit =
        Duration::from_millis(o.connect.timeout_ms).saturating_mul((total / 1000 + 1) as u32);
    loop {
        let ready = shared.ready.load(Relaxed);
        let failed = shared.failed.load(Relaxed);
        progress.show(
            &format!("connecting: {ready}/{total} ready, {failed} failed"),
            false,
        );
        if ready + failed >= total || connect_started.elapsed() > connect_limit {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let connect_s = connect_started.elapsed().as_secs_f64();
    let ready = shared.ready.load(Relaxed);
    progress.show(
        &format!(
            "connected: {ready}/{total} in {connect_s:.2} s, {} failed",
            shared.failed.load(Relaxed)
        ),
        true,
    );
    // 2. Run (publish, or hold the idle connections).
    let run_start = spec.epoch.elapsed();
    shared
        .run_start_us
        .store(run_start.as_micros() as u64, Relaxed);
    shared.phase.store(RUNNING, Relaxed);
    let run_started = Instant::now();
    let duration = Duration::from_secs_f64(o.duration_s);
    let mut rss_after = None;
    if ready > 0 {
        loop {
            let el = run_started.elapsed();
            let p = shared.published.load(Relaxed);
            let d = shared.delivered.load(Relaxed);
            let secs = el.as_secs_f64().max(1e-3);
            progress.show(
                &format!(
                    "[{:5.1}s/{:.0}s] published {p} ({:.0}/s) delivered {d} ({:.0}/s) lost {}",
                    secs,
                    o.duration_s,
                    p as f64 / secs,
                    d as f64 / secs,
                    shared.lost.load(Relaxed)
                ),
                false,
            );
            if el >= duration
                || (plan.publishers > 0 && shared.publishers_done.load(Relaxed) >= plan.publishers)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if plan.publishers == 0 {
            rss_after = server_pid.and_then(procfs::rss_kib);
        }
    }
    let run_s = run_started.elapsed().as_secs_f64();
    // 3. Drain: wait for the deliveries still in flight.
    shared.phase.store(DRAINING, Relaxed);
    let drain_started = Instant::now();
    // Not drained before every worker has seen DRAINING: a worker that read RUNNING just
    // before the switch may still publish a batch, whose deliveries the workers must read.
    let workers = handles.len() as u64;
    while drain_started.elapsed() < Duration::from_millis(o.drain_ms) && plan.publishers > 0 {
        if shared.drained(workers, plan.factor) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if rss_after.is_none() {
        rss_after = server_pid.and_then(procfs::rss_kib);
    }
    shared.phase.store(STOPPING, Relaxed);
    let _ = CONNECTING;
    let mut merged = WorkerResult::default();
    for h in handles {
        let r = h
            .join()
            .map_err(|_| CliError::Connection("a load thread panicked".into()))?;
        merged.latency_us.merge(&r.latency_us);
        merged.connect_us.merge(&r.connect_us);
        merged.heartbeats_received += r.heartbeats_received;
        merged.bytes_read += r.bytes_read;
        merged.last_delivery_us = merged.last_delivery_us.max(r.last_delivery_us);
        for (m, n) in r.errors {
            if let Some(e) = merged.errors.iter_mut().find(|(x, _)| *x == m) {
                e.1 += n;
            } else {
                merged.errors.push((m, n));
            }
        }
    }
    progress.done();
    let published = shared.published.load(Relaxed);
    let delivered = shared.delivered.load(Relaxed);
    let deliver_window = (merged.last_delivery_us as f64 - run_start.as_micros() as f64) / 1e6;
    let report = Report {
        scenario: o.scenario.name(),
        url: o.url.clone(),
        transport: match target.transport {
            Transport::WebSocket { .. } => "websocket",
            Transport::Tcp => "tcp",
        },
        publishers: plan.publishers,
        subscribers: plan.subscribers,
        connections: total,
        size: o.size,
        rate_offered: o.rate,
        ready,
        connect_failed: shared.failed.load(Relaxed),
        lost: shared.lost.load(Relaxed),
        connect_s,
        run_s,
        published,
        delivered,
        expected: published * plan.factor,
        publish_rate: published as f64 / run_s.max(1e-9),
        deliver_rate: if deliver_window > 0.0 {
            delivered as f64 / deliver_window
        } else {
            0.0
        },
        latency: merged.latency_us,
        connect_us: merged.connect_us,
        heartbeats_received: merged.heartbeats_received,
        bytes_read: merged.bytes_read,
        errors: merged.errors,
        server_pid,
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
    };
    if o.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.human());
    }
    if ready == 0 {
        let why = report.errors.first().map_or_else(
            || "no connection became ready".to_owned(),
            |(m, _)| m.clone(),
        );
        return Err(CliError::Connect(format!(
            "no connection became ready: {why}"
        )));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests panic on failure by design")]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    fn plan_of(a: &[&str]) -> Plan {
        plan(&parse(&args(a)).unwrap()).unwrap()
    }

    /// The lost-delivery race of the drain phase: the coordinator switched to DRAINING, saw
    /// every delivery of what was counted so far and stopped the workers, while a worker that
    /// had read RUNNING just before published one more batch (a whole burst of 256 at max
    /// rate, one fan-out message at a fixed rate). Those deliveries were written by the server
    /// (its `bytes_out`) but never read. Not drained until every worker has acknowledged.
    #[test]
    fn drained_waits_for_every_worker_to_stop_publishing() {
        use std::sync::atomic::Ordering::SeqCst;
        // (workers, acks, published, delivered, factor, drained)
        let cases: &[(u64, u64, u64, u64, u64, bool)] = &[
            // Deliveries caught up with the count, but one worker may still publish.
            (2, 0, 402, 402 * 50, 50, false),
            (2, 1, 402, 402 * 50, 50, false),
            (2, 2, 402, 402 * 50, 50, true),
            // The last message only half delivered (one thread's subscribers).
            (2, 2, 403, 402 * 50 + 25, 50, false),
            (2, 2, 403, 403 * 50, 50, true),
            // Max-rate pairs: a late burst of 256 is counted before the ack.
            (2, 2, 1024 + 256, 1024, 1, false),
            (2, 2, 1024 + 256, 1024 + 256, 1, true),
            (1, 1, 0, 0, 1, true),
        ];
        for &(workers, acks, published, delivered, factor, want) in cases {
            let s = Shared::default();
            s.drain_acks.store(acks, SeqCst);
            s.published.store(published, SeqCst);
            s.delivered.store(delivered, SeqCst);
            assert_eq!(
                s.drained(workers, factor),
                want,
                "workers {workers} acks {acks} published {published} delivered {delivered}"
            );
        }
    }

    #[test]
    fn scenario_sizes() {
        let cases: &[(&[&str], u64, u64, u64, usize)] = &[
            (&["ws://x/", "--scenario", "fanout"], 1, 1000, 1000, 1001),
            (&["ws://x/", "--scenario", "fanin"], 1000, 1, 1, 1001),
            (&["ws://x/", "--scenario", "pairs"], 100, 100, 1, 200),
            (
                &["ws://x/", "--scenario", "pairs", "--pairs", "3"],
                3,
                3,
                1,
                6,
            ),
            (
                &["ws://x/", "--scenario", "idle", "--connections", "5"],
                0,
                0,
                1,
                5,
            ),
            (
                &["ws://x/", "--publishers", "2", "--subscribers", "7"],
                2,
                7,
                7,
                9,
            ),
        ];
        for (a, p, s, factor, n) in cases {
            let plan = plan_of(a);
            assert_eq!(
                (
                    plan.publishers,
                    plan.subscribers,
                    plan.factor,
                    plan.roles.len()
                ),
                (*p, *s, *factor, *n),
                "{a:?}"
            );
        }
    }

    #[test]
    fn count_is_split_over_publishers() {
        let plan = plan_of(&[
            "ws://x/",
            "--scenario",
            "fanin",
            "--publishers",
            "3",
            "--count",
            "10",
        ]);
        let quotas: Vec<u64> = plan
            .roles
            .iter()
            .filter_map(|r| match r {
                Role::Publisher { quota, .. } => Some(*quota),
                _ => None,
            })
            .collect();
        assert_eq!(quotas, [4, 3, 3]);
    }

    #[test]
    fn pairs_have_private_topics() {
        let plan = plan_of(&["ws://x/", "--scenario", "pairs", "--pairs", "2"]);
        let dests: Vec<String> = plan
            .roles
            .iter()
            .map(|r| match r {
                Role::Publisher { dest, .. } | Role::Subscriber { dest } => dest.to_string(),
                Role::Idle => String::new(),
            })
            .collect();
        assert_eq!(
            dests,
            [
                "/topic/bench.0",
                "/topic/bench.0",
                "/topic/bench.1",
                "/topic/bench.1"
            ]
        );
    }

    #[test]
    fn idle_defaults_to_heartbeats() {
        let o = parse(&args(&["ws://x/", "--scenario", "idle"])).unwrap();
        assert_eq!(o.connect.heartbeat_ms, 10_000);
        let o = parse(&args(&[
            "ws://x/",
            "--scenario",
            "idle",
            "--heartbeat",
            "0",
        ]))
        .unwrap();
        assert_eq!(o.connect.heartbeat_ms, 0);
    }

    #[test]
    fn bounds_are_enforced() {
        let cases: &[&[&str]] = &[
            &[],
            &["ws://x/", "--duration", "0"],
            &["ws://x/", "--duration", "4000"],
            &["ws://x/", "--rate", "-1"],
            &["ws://x/", "--window", "0"],
            &["ws://x/", "--threads", "0"],
            &["ws://x/", "--count", "0"],
            &["ws://x/", "--scenario", "storm"],
            &["ws://x/", "extra"],
        ];
        for a in cases {
            assert!(matches!(parse(&args(a)), Err(CliError::Usage(_))), "{a:?}");
        }
        let too_many = parse(&args(&[
            "ws://x/",
            "--scenario",
            "idle",
            "--connections",
            "100001",
        ]))
        .unwrap();
        assert!(matches!(plan(&too_many), Err(CliError::Usage(_))));
        let zero = parse(&args(&["ws://x/", "--pairs", "0", "--scenario", "pairs"])).unwrap();
        assert!(matches!(plan(&zero), Err(CliError::Usage(_))));
    }

    #[test]
    fn remote_targets_need_a_flag() {
        let r = run(&args(&["ws://192.0.2.1:9/ws", "--duration", "1"]));
        assert!(
            matches!(r, Err(CliError::Usage(ref m)) if m.contains("--allow-remote")),
            "{r:?}"
        );
    }

    #[test]
    fn json_is_well_formed_for_odd_strings() {
        assert_eq!(json_str("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
        let r = Report {
            url: "ws://x/\"".into(),
            errors: vec![("boom \"x\"".into(), 2)],
            ..Report::default()
        };
        let j = r.json();
        assert!(j.starts_with('{') && j.ends_with('}'));
        assert!(j.contains("\"errors\":[{\"message\":\"boom \\\"x\\\"\",\"count\":2}]"));
        assert!(j.contains("\"server_rss_per_connection_bytes\":null"));
    }
}
