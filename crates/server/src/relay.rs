//! The broker relay's sockets (`--relay stomp://host:port`): the upstream TCP connections the
//! sans-IO broker asks for, driven by the server's own mio loop.
//!
//! The broker decides everything (which upstream to open, what to write, when a connection is
//! dead); this module only connects, reads, writes and closes, and reports what the sockets do:
//! bytes read go to `Broker::upstream_read`, a failed connect or a closed socket to
//! `Broker::upstream_closed`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};

use bytes::Bytes;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use stompbox::broker::{RelayConfig, RelayCredentials, RelayEvent, UpstreamCommand, UpstreamId};
use tracing::{debug, info, warn};

use crate::config::ConfigError;
use crate::hub::Hub;

/// Tokens of upstream sockets start here (client tokens are below).
pub(crate) const TOKEN_BASE: usize = 1 << 30;
const READ_CHUNK: usize = 64 * 1024;

/// The relay settings of the binary (`--relay*` flags or `relay*` config keys).
#[derive(Clone, PartialEq, Eq)]
pub struct RelaySettings {
    /// The upstream broker's STOMP/TCP address, `host:port`.
    pub address: String,
    /// The login of client sessions' upstream CONNECTs (and of the system session, unless
    /// `system_login` is set).
    pub login: Option<String>,
    /// The passcode that goes with `login`.
    pub passcode: Option<String>,
    /// The system session's login.
    pub system_login: Option<String>,
    /// The system session's passcode.
    pub system_passcode: Option<String>,
    /// The upstream virtual host (the CONNECT `host` header).
    pub virtual_host: String,
    /// Destination prefixes relayed upstream (the others stay in memory).
    pub prefixes: Vec<String>,
    /// Forward each client's own login and passcode instead of `login`/`passcode`.
    pub client_credentials: bool,
    /// Heart-beat with the upstream broker each way, in milliseconds (0: off).
    pub heartbeat_ms: u32,
}

impl fmt::Debug for RelaySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelaySettings")
            .field("address", &self.address)
            .field("login", &self.login)
            .field("system_login", &self.system_login)
            .field("virtual_host", &self.virtual_host)
            .field("prefixes", &self.prefixes)
            .field("client_credentials", &self.client_credentials)
            .field("heartbeat_ms", &self.heartbeat_ms)
            .finish_non_exhaustive()
    }
}

impl RelaySettings {
    /// Settings for `stomp://host:port` with the defaults: no credentials, virtual host `/`,
    /// prefixes `/topic` and `/queue`, heart-beats 10 s.
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            login: None,
            passcode: None,
            system_login: None,
            system_passcode: None,
            virtual_host: "/".into(),
            prefixes: vec!["/topic".into(), "/queue".into()],
            client_credentials: false,
            heartbeat_ms: 10_000,
        }
    }

    /// The broker's relay configuration.
    pub(crate) fn broker_config(&self) -> RelayConfig {
        RelayConfig {
            prefixes: self.prefixes.clone(),
            virtual_host: self.virtual_host.clone(),
            credentials: if self.client_credentials {
                RelayCredentials::Client
            } else {
                RelayCredentials::Relay
            },
            login: self.login.clone(),
            passcode: self.passcode.clone(),
            system_login: self.system_login.clone().or_else(|| self.login.clone()),
            system_passcode: self
                .system_passcode
                .clone()
                .or_else(|| self.passcode.clone()),
            heart_beat: (self.heartbeat_ms, self.heartbeat_ms),
            ..RelayConfig::default()
        }
    }
}

/// Config keys of the relay (flags are `--relay`, `--relay-login`, ...).
pub(crate) const KEYS: &[&str] = &[
    "relay",
    "relay_login",
    "relay_passcode",
    "relay_system_login",
    "relay_system_passcode",
    "relay_vhost",
    "relay_prefix",
    "relay_credentials",
    "relay_heartbeat",
];

fn bad(key: &str, value: &str, expected: &'static str) -> ConfigError {
    ConfigError::BadValue {
        flag: format!("--{}", key.replace('_', "-")),
        value: if key.ends_with("passcode") {
            "***".into()
        } else {
            value.to_owned()
        },
        expected,
    }
}

/// Parses `stomp://host:port` (or `host:port`) into `host:port`.
pub(crate) fn parse_url(v: &str) -> Option<String> {
    let rest = v.strip_prefix("stomp://").unwrap_or(v);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = rest.rsplit_once(':')?;
    if host.is_empty() || host.contains('/') || port.parse::<u16>().ok()? == 0 {
        return None;
    }
    Some(rest.to_owned())
}

/// The relay settings from the merged config keys (`None` without `relay`).
pub(crate) fn from_keys(
    scalars: &BTreeMap<String, String>,
) -> Result<Option<RelaySettings>, ConfigError> {
    let get = |k: &str| scalars.get(k).cloned();
    let Some(url) = get("relay") else {
        if let Some(k) = KEYS.iter().find(|k| scalars.contains_key(**k)) {
            return Err(bad(k, "", "--relay stomp://HOST:PORT as well"));
        }
        return Ok(None);
    };
    let address = parse_url(&url).ok_or_else(|| bad("relay", &url, "stomp://HOST:PORT"))?;
    let mut r = RelaySettings::new(address);
    r.login = get("relay_login");
    r.passcode = get("relay_passcode");
    r.system_login = get("relay_system_login");
    r.system_passcode = get("relay_system_passcode");
    if let Some(v) = get("relay_vhost") {
        r.virtual_host = v;
    }
    if let Some(v) = get("relay_prefix") {
        let prefixes: Vec<String> = v
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        if prefixes.is_empty() || prefixes.iter().any(|p| !p.starts_with('/')) {
            return Err(bad(
                "relay_prefix",
                &v,
                "a comma-separated list like /topic,/queue",
            ));
        }
        r.prefixes = prefixes;
    }
    if let Some(v) = get("relay_credentials") {
        r.client_credentials = match v.as_str() {
            "relay" => false,
            "client" => true,
            _ => return Err(bad("relay_credentials", &v, "relay or client")),
        };
    }
    if let Some(v) = get("relay_heartbeat") {
        r.heartbeat_ms = v
            .parse()
            .map_err(|_| bad("relay_heartbeat", &v, "milliseconds (0 = off)"))?;
    }
    Ok(Some(r))
}

/// Logs a relay event of the broker (system session up/down, publishes that failed).
pub(crate) fn log_event(ev: &RelayEvent) {
    match ev {
        RelayEvent::SystemConnected => {
            info!("relay: system session connected to the upstream broker");
        }
        RelayEvent::SystemDown { reason, retry_at } => {
            warn!(%reason, retry_at_ms = retry_at, "relay: system session down; publishes fail until it reconnects");
        }
        RelayEvent::PublishFailed {
            destination,
            reason,
            body,
            ..
        } => {
            warn!(%destination, %reason, bytes = body.len(), "relay: application publish not confirmed by the upstream broker");
        }
    }
}

struct Conn {
    id: UpstreamId,
    stream: TcpStream,
    connected: bool,
    pending: Bytes,
    closing: bool,
    want_write: bool,
}

/// The upstream sockets.
pub(crate) struct RelaySockets {
    address: String,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    by_id: HashMap<UpstreamId, usize>,
    read_buf: Vec<u8>,
}

impl fmt::Debug for RelaySockets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelaySockets")
            .field("address", &self.address)
            .field("open", &self.by_id.len())
            .finish_non_exhaustive()
    }
}

impl RelaySockets {
    pub(crate) fn new(address: String) -> Self {
        Self {
            address,
            conns: Vec::new(),
            free: Vec::new(),
            by_id: HashMap::new(),
            read_buf: vec![0; READ_CHUNK],
        }
    }

    fn resolve(&self) -> io::Result<SocketAddr> {
        self.address
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))
    }

    /// Carries out the broker's upstream commands and writes its upstream output.
    pub(crate) fn pump(&mut self, hub: &mut Hub, registry: &Registry, now: u64) {
        loop {
            let mut progressed = false;
            while let Some(cmd) = hub.broker_mut().poll_upstream() {
                progressed = true;
                match cmd {
                    UpstreamCommand::Open(id) => self.open(id, hub, registry, now),
                    UpstreamCommand::Close(id) => {
                        if let Some(&slot) = self.by_id.get(&id) {
                            if let Some(c) = self.conns[slot].as_mut() {
                                c.closing = true;
                            }
                            self.flush(slot, hub, registry, now);
                        }
                    }
                }
            }
            while let Some(id) = hub.broker_mut().upstream_ready() {
                if let Some(&slot) = self.by_id.get(&id) {
                    progressed = true;
                    self.flush(slot, hub, registry, now);
                }
            }
            if !progressed {
                return;
            }
        }
    }

    fn open(&mut self, id: UpstreamId, hub: &mut Hub, registry: &Registry, now: u64) {
        let stream = self.resolve().and_then(TcpStream::connect);
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => {
                warn!(upstream = %id, address = %self.address, error = %e, "relay: cannot connect");
                let _ = hub.broker_mut().upstream_closed(id, now);
                return;
            }
        };
        let slot = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        if let Err(e) = registry.register(
            &mut stream,
            Token(TOKEN_BASE + slot),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            warn!(upstream = %id, error = %e, "relay: cannot register socket");
            self.free.push(slot);
            let _ = hub.broker_mut().upstream_closed(id, now);
            return;
        }
        let _ = stream.set_nodelay(true);
        debug!(upstream = %id, address = %self.address, "relay: connecting");
        self.conns[slot] = Some(Conn {
            id,
            stream,
            connected: false,
            pending: Bytes::new(),
            closing: false,
            want_write: true,
        });
        self.by_id.insert(id, slot);
    }

    /// A readiness event for an upstream socket.
    pub(crate) fn on_event(
        &mut self,
        token: usize,
        event: &mio::event::Event,
        hub: &mut Hub,
        registry: &Registry,
        now: u64,
    ) {
        let slot = token - TOKEN_BASE;
        let Some(c) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if !c.connected {
            // mio: a connect completes (or fails) with a writable (or error) event.
            match c.stream.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => return self.fail(slot, &e.to_string(), hub, registry, now),
            }
            match c.stream.peer_addr() {
                Ok(_) => c.connected = true,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    if event.is_error() || event.is_read_closed() || event.is_write_closed() {
                        return self.fail(slot, "connection refused", hub, registry, now);
                    }
                    return;
                }
                Err(e) => return self.fail(slot, &e.to_string(), hub, registry, now),
            }
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.read(slot, hub, registry, now);
        }
        self.flush(slot, hub, registry, now);
    }

    fn read(&mut self, slot: usize, hub: &mut Hub, registry: &Registry, now: u64) {
        loop {
            let Some(c) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                return;
            };
            match c.stream.read(&mut self.read_buf) {
                Ok(0) => {
                    return self.fail(slot, "upstream closed the connection", hub, registry, now);
                }
                Ok(n) => {
                    let id = c.id;
                    if hub
                        .broker_mut()
                        .upstream_read(id, &self.read_buf[..n], now)
                        .is_err()
                    {
                        // The broker forgot this upstream: drop the socket.
                        return self.drop_slot(slot, registry);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.fail(slot, &e.to_string(), hub, registry, now),
            }
        }
    }

    fn flush(&mut self, slot: usize, hub: &mut Hub, registry: &Registry, now: u64) {
        loop {
            let Some(c) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                return;
            };
            if !c.connected {
                if c.closing {
                    return self.drop_slot(slot, registry);
                }
                return; // written once the connect completes
            }
            if c.pending.is_empty() {
                match hub.broker_mut().upstream_transmit(c.id) {
                    Some(b) => c.pending = b,
                    None => break,
                }
            }
            match c.stream.write(&c.pending) {
                Ok(0) => return self.fail(slot, "write returned 0", hub, registry, now),
                Ok(n) => {
                    let _ = c.pending.split_to(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.fail(slot, &e.to_string(), hub, registry, now),
            }
        }
        let Some(c) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let done = c.pending.is_empty() && !hub.broker_mut().has_upstream_output(c.id);
        if c.closing && done {
            return self.drop_slot(slot, registry);
        }
        let want_write = !done;
        if want_write != c.want_write {
            c.want_write = want_write;
            let interest = if want_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if let Err(e) = registry.reregister(&mut c.stream, Token(TOKEN_BASE + slot), interest) {
                self.fail(slot, &e.to_string(), hub, registry, now);
            }
        }
    }

    fn fail(&mut self, slot: usize, why: &str, hub: &mut Hub, registry: &Registry, now: u64) {
        let Some(c) = self.conns.get(slot).and_then(Option::as_ref) else {
            return;
        };
        let id = c.id;
        if !c.closing {
            warn!(upstream = %id, reason = why, "relay: upstream connection failed");
        }
        self.drop_slot(slot, registry);
        // Unknown when the broker already closed it: fine.
        let _ = hub.broker_mut().upstream_closed(id, now);
    }

    fn drop_slot(&mut self, slot: usize, registry: &Registry) {
        if let Some(mut c) = self.conns.get_mut(slot).and_then(Option::take) {
            let _ = registry.deregister(&mut c.stream);
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
            self.by_id.remove(&c.id);
            self.free.push(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_urls() {
        for (v, want) in [
            ("stomp://127.0.0.1:61614", Some("127.0.0.1:61614")),
            ("stomp://rabbit.local:61613/", Some("rabbit.local:61613")),
            ("localhost:61613", Some("localhost:61613")),
            ("stomp://[::1]:61613", Some("[::1]:61613")),
            ("stomp://host", None),
            ("stomp://:61613", None),
            ("stomp://h:0", None),
            ("stomp://h:99999", None),
            ("stomp://h:1/x", None),
        ] {
            assert_eq!(parse_url(v).as_deref(), want, "{v}");
        }
    }

    #[test]
    fn settings_from_keys() {
        let keys = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
            kv.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(from_keys(&keys(&[])), Ok(None));
        let r = from_keys(&keys(&[
            ("relay", "stomp://127.0.0.1:61614"),
            ("relay_login", "guest"),
            ("relay_passcode", "guest"),
            ("relay_vhost", "/"),
            ("relay_prefix", "/topic, /queue,/exchange"),
            ("relay_credentials", "client"),
            ("relay_heartbeat", "5000"),
        ]))
        .expect("valid")
        .expect("some");
        assert_eq!(r.prefixes, vec!["/topic", "/queue", "/exchange"]);
        assert!(r.client_credentials);
        let b = r.broker_config();
        assert_eq!(
            b.system_login.as_deref(),
            Some("guest"),
            "system falls back to login"
        );
        assert_eq!(b.heart_beat, (5_000, 5_000));
        assert_eq!(b.credentials, RelayCredentials::Client);
        assert!(
            !format!("{r:?}").contains("passcode"),
            "passcodes never printed"
        );
        for (kv, msg) in [
            (
                vec![("relay", "http://x")],
                "bad value \"http://x\" for --relay",
            ),
            (
                vec![("relay_login", "x")],
                "--relay stomp://HOST:PORT as well",
            ),
            (
                vec![("relay", "h:1"), ("relay_prefix", "topic")],
                "comma-separated list",
            ),
            (
                vec![("relay", "h:1"), ("relay_credentials", "x")],
                "relay or client",
            ),
            (
                vec![("relay", "h:1"), ("relay_heartbeat", "-1")],
                "milliseconds",
            ),
        ] {
            let e = from_keys(&keys(&kv)).expect_err("invalid").to_string();
            assert!(e.contains(msg), "{e}");
        }
    }
}
