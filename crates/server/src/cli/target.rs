//! Broker URLs (`ws://host:port/path`, `stomp://host:port`), the CONNECT frame and the
//! client connection they make.

use std::net::{SocketAddr, ToSocketAddrs};

use stompbox::ClientConnection;
use stompbox::stomp::HeartBeat;
use stompbox::stomp::client::ClientConfig;

use super::args::{CliError, ConnectOptions};

/// How STOMP is carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Transport {
    /// STOMP over WebSocket, upgraded on this path.
    WebSocket { path: String },
    /// Raw STOMP over TCP.
    Tcp,
}

/// A parsed broker URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) transport: Transport,
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Self, CliError> {
        let bad = |why: &str| CliError::Usage(format!("bad URL {url:?}: {why}"));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected ws://HOST:PORT/PATH or stomp://HOST:PORT"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (transport, default_port) = match scheme.to_ascii_lowercase().as_str() {
            "ws" => (
                Transport::WebSocket {
                    path: if path.is_empty() { "/" } else { path }.to_owned(),
                },
                80,
            ),
            "stomp" | "tcp" => {
                if !path.is_empty() && path != "/" {
                    return Err(bad("a stomp:// URL has no path"));
                }
                (Transport::Tcp, 61613)
            }
            "wss" | "stomp+ssl" | "stomps" => {
                return Err(bad("TLS is not supported (use ws:// or stomp://)"));
            }
            _ => return Err(bad("the scheme must be ws:// or stomp://")),
        };
        if authority.contains('@') {
            return Err(bad("credentials go in --login/--passcode, not the URL"));
        }
        let (host, port) = if let Some(stripped) = authority.strip_prefix('[') {
            // [v6]:port
            let (h, after) = stripped
                .split_once(']')
                .ok_or_else(|| bad("unclosed '[' in the host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad("bad port"))?,
                None if after.is_empty() => default_port,
                None => return Err(bad("junk after the host")),
            };
            (h.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| bad("bad port"))?),
                None => (authority.to_owned(), default_port),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(Self {
            transport,
            host,
            port,
        })
    }

    /// Every address the host resolves to.
    pub(crate) fn resolve(&self) -> Result<Vec<SocketAddr>, CliError> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| CliError::Connect(format!("cannot resolve {}: {e}", self.host)))?
            .collect();
        if addrs.is_empty() {
            return Err(CliError::Connect(format!(
                "{} resolves to no address",
                self.host
            )));
        }
        Ok(addrs)
    }

    /// `host:port` as it goes in the HTTP `Host` header.
    pub(crate) fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// A new client connection for this target, its CONNECT queued (from `o`).
    pub(crate) fn client(&self, rng: &mut Rng, o: &ConnectOptions) -> ClientConnection {
        let config = self.client_config(o);
        match &self.transport {
            Transport::WebSocket { path } => {
                let mut nonce = [0u8; 16];
                nonce[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
                nonce[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
                let mut masks = Rng::new(rng.next_u64());
                ClientConnection::websocket(
                    &self.authority(),
                    path,
                    nonce,
                    move || {
                        let key = masks.next_u64().to_le_bytes();
                        [key[0], key[1], key[2], key[3]]
                    },
                    config,
                )
            }
            Transport::Tcp => ClientConnection::raw_stomp(config),
        }
    }

    /// The STOMP session's configuration: `host` (default: the URL's host), login, passcode,
    /// the heart-beat offered each way, extra CONNECT headers.
    pub(crate) fn client_config(&self, o: &ConnectOptions) -> ClientConfig {
        let hb = u32::try_from(o.heartbeat_ms).unwrap_or(u32::MAX);
        ClientConfig {
            host: o.host.clone().unwrap_or_else(|| self.host.clone()),
            login: o.login.clone(),
            passcode: o.passcode.clone(),
            heart_beat: HeartBeat {
                send_ms: hb,
                receive_ms: hb,
            },
            headers: o.connect_headers.clone(),
            ..ClientConfig::default()
        }
    }
}

/// xorshift64*: WebSocket nonces and masking keys, seeded from the OS. Masking keys only need
/// to be unpredictable to scripts in a browser (RFC 6455 §10.3), not secret; a fresh OS seed
/// per connection is enough for a command-line client and a load generator.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// Seeded from the OS random source (falls back to the clock and the pid).
    pub(crate) fn from_os() -> Self {
        let mut b = [0u8; 8];
        if getrandom::fill(&mut b).is_err() {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            b = (t ^ (u64::from(std::process::id()) << 32)).to_le_bytes();
        }
        Self::new(u64::from_le_bytes(b))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests panic on failure by design")]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let ws = |p: &str| Transport::WebSocket { path: p.into() };
        let cases: &[(&str, Transport, &str, u16)] = &[
            ("ws://127.0.0.1:8080/ws", ws("/ws"), "127.0.0.1", 8080),
            ("ws://localhost/ws", ws("/ws"), "localhost", 80),
            ("ws://localhost:15674", ws("/"), "localhost", 15674),
            ("WS://h:1/a/b?x=1", ws("/a/b?x=1"), "h", 1),
            (
                "stomp://127.0.0.1:61613",
                Transport::Tcp,
                "127.0.0.1",
                61613,
            ),
            ("stomp://broker", Transport::Tcp, "broker", 61613),
            ("stomp://[::1]:7", Transport::Tcp, "::1", 7),
            ("ws://[::1]/ws", ws("/ws"), "::1", 80),
        ];
        for (url, transport, host, port) in cases {
            let t = Target::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(
                (&t.transport, t.host.as_str(), t.port),
                (transport, *host, *port)
            );
        }
    }

    #[test]
    fn bad_urls_are_usage_errors() {
        for url in [
            "localhost:8080",
            "http://localhost/ws",
            "wss://localhost/ws",
            "ws://:80/ws",
            "ws://h:port/ws",
            "ws://h:99999/ws",
            "stomp://h:1/path",
            "ws://user:pw@h/ws",
            "ws://[::1/ws",
            "ws://[::1]x/ws",
        ] {
            assert!(
                matches!(Target::parse(url), Err(CliError::Usage(_))),
                "{url} should be refused"
            );
        }
    }

    #[test]
    fn authority_brackets_v6() {
        assert_eq!(
            Target::parse("ws://[::1]:9/").unwrap().authority(),
            "[::1]:9"
        );
        assert_eq!(Target::parse("ws://a:9/").unwrap().authority(), "a:9");
    }

    #[test]
    fn client_config_uses_the_options() {
        let t = Target::parse("stomp://127.0.0.1:1").unwrap();
        let o = ConnectOptions {
            login: Some("guest".into()),
            passcode: Some("pw".into()),
            host: Some("/".into()),
            connect_headers: vec![("client-id".into(), "x".into())],
            heartbeat_ms: 500,
            timeout_ms: 1,
        };
        let c = t.client_config(&o);
        assert_eq!(c.host, "/");
        assert_eq!((c.heart_beat.send_ms, c.heart_beat.receive_ms), (500, 500));
        assert_eq!(c.login.as_deref(), Some("guest"));
        assert_eq!(c.passcode.as_deref(), Some("pw"));
        assert_eq!(c.headers, [("client-id".to_owned(), "x".to_owned())]);
        let plain = t.client_config(&ConnectOptions::default());
        assert_eq!(plain.host, "127.0.0.1");
        assert_eq!(plain.login, None);
        assert_eq!(plain.heart_beat, HeartBeat::NONE);
    }

    #[test]
    fn rng_is_not_constant() {
        let mut r = Rng::new(0);
        let a = r.next_u64();
        let b = r.next_u64();
        assert_ne!(a, b);
        assert_ne!(a, 0);
    }
}
