//! Configuration of the `stompbox` binary: command-line flags, the config file and the users file.
//!
//! Every failure a user can cause is a [`ConfigError`] whose `Display` is one line, fit to print
//! as `stompbox: <error>` before exiting non-zero.
//!
//! The config file is a small subset of TOML: one `key = value` per line, `#` comments, values are
//! quoted strings, integers, booleans or arrays of quoted strings. The keys are the long flag names
//! with `-` written as `_` (`http`, `stomp`, `user`, `users_file`, `allow_origin`, `heartbeat_ms`,
//! `max_connections`, `max_frame`, `max_message`, `max_output`, `log`,
//! `stats_interval`, `shutdown_timeout_ms`, `handshake_timeout_ms`, `ws_echo`, `deflate`,
//! `deflate_no_context_takeover`). Flags given on the command line override
//! the file.
//!
//! The users file holds one `name:passcode` per line; blank lines and `#` comments are skipped.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Default address of the HTTP + WebSocket listener.
pub const DEFAULT_HTTP: &str = "127.0.0.1:8080";
/// Default address of the raw STOMP/TCP listener.
pub const DEFAULT_STOMP: &str = "127.0.0.1:61613";

/// A user-caused configuration failure, printed as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// An unknown flag.
    UnknownFlag(String),
    /// A flag that needs a value was given without one.
    MissingValue(String),
    /// A flag value that does not parse.
    BadValue {
        /// The flag (or config key).
        flag: String,
        /// The value given.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error, as text.
        error: String,
    },
    /// A line of the config file or users file is malformed.
    Syntax {
        /// The file.
        path: PathBuf,
        /// The line number, 1-based.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A positional argument was given (the server takes none).
    UnexpectedArgument(String),
    /// Both listeners are disabled.
    NoListener,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownFlag(flag) => write!(f, "unknown flag {flag} (see --help)"),
            Self::MissingValue(flag) => write!(f, "flag {flag} needs a value (see --help)"),
            Self::BadValue {
                flag,
                value,
                expected,
            } => write!(f, "bad value {value:?} for {flag}: expected {expected}"),
            Self::Io { path, error } => write!(f, "cannot read {}: {error}", path.display()),
            Self::Syntax {
                path,
                line,
                message,
            } => write!(f, "{}:{line}: {message}", path.display()),
            Self::UnexpectedArgument(arg) => {
                write!(f, "unexpected argument {arg:?} (see --help)")
            }
            Self::NoListener => write!(f, "both listeners are disabled; nothing to serve"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// One user of the built-in authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// The STOMP `login`.
    pub name: String,
    /// The STOMP `passcode`.
    pub passcode: String,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print a passcode, not even in debug output.
        f.debug_struct("User")
            .field("name", &self.name)
            .field("passcode", &"<redacted>")
            .finish()
    }
}

impl User {
    /// Parses `NAME:PASSCODE` (the passcode may contain `:`; the name may not be empty).
    pub fn parse(text: &str) -> Option<Self> {
        let (name, passcode) = text.split_once(':')?;
        if name.is_empty() {
            return None;
        }
        Some(Self {
            name: name.to_owned(),
            passcode: passcode.to_owned(),
        })
    }
}

/// The binary's configuration, after flags, config file and users file are merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// HTTP + WebSocket listener (`None`: off).
    pub http: Option<SocketAddr>,
    /// Raw STOMP/TCP listener (`None`: off).
    pub stomp: Option<SocketAddr>,
    /// Users for CONNECT authentication; empty means any login is accepted.
    pub users: Vec<User>,
    /// Origins allowed to open a WebSocket; empty means any (and requests without Origin).
    pub allowed_origins: Vec<String>,
    /// Heart-beat interval offered each way, in milliseconds (0: off).
    pub heartbeat_ms: u64,
    /// Maximum simultaneous client connections.
    pub max_connections: usize,
    /// Maximum size of one WebSocket frame, in bytes.
    pub max_frame: usize,
    /// Maximum size of one WebSocket message and of one STOMP frame, in bytes.
    pub max_message: usize,
    /// Maximum queued output per client before it counts as a slow consumer, in bytes.
    pub max_output: usize,
    /// Log filter (tracing `EnvFilter` syntax), when given; otherwise `RUST_LOG` or `info`.
    pub log: Option<String>,
    /// Seconds between periodic stats log lines (0: off).
    pub stats_interval_s: u64,
    /// How long a graceful shutdown may take before connections are dropped, in milliseconds.
    pub shutdown_timeout_ms: u64,
    /// A WebSocket echo route on the HTTP listener (for Autobahn), e.g. `/echo`.
    pub ws_echo: Option<String>,
    /// How long a client may take to send its HTTP head, in milliseconds (then 408 and close).
    pub handshake_timeout_ms: u64,
    /// Relay broker destinations to an upstream STOMP broker (`--relay stomp://HOST:PORT`).
    pub relay: Option<crate::RelaySettings>,
    /// Negotiate permessage-deflate (RFC 7692) with WebSocket clients that offer it
    /// (`--no-deflate` or `deflate = false` turns it off). Default on.
    pub deflate: bool,
    /// With deflate: reset both compression contexts after every message
    /// (`--deflate-no-context-takeover`), so that no LZ77 history outlives a message (zlib's
    /// state stays allocated). Default off.
    pub deflate_no_context_takeover: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: Some(parse_addr_const(DEFAULT_HTTP)),
            stomp: Some(parse_addr_const(DEFAULT_STOMP)),
            users: Vec::new(),
            allowed_origins: Vec::new(),
            heartbeat_ms: 10_000,
            max_connections: 10_000,
            max_frame: 1 << 20,
            max_message: 1 << 20,
            max_output: 4 << 20,
            log: None,
            stats_interval_s: 60,
            shutdown_timeout_ms: 3_000,
            ws_echo: None,
            handshake_timeout_ms: 10_000,
            relay: None,
            deflate: true,
            deflate_no_context_takeover: false,
        }
    }
}

fn parse_addr_const(s: &str) -> SocketAddr {
    match s.parse() {
        Ok(a) => a,
        Err(_) => SocketAddr::from(([127, 0, 0, 1], 0)),
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the server with this configuration.
    Run(Box<Config>),
    /// Print the help text and exit 0.
    Help,
    /// Print the version and exit 0.
    Version,
}

/// The `--help` text.
pub const HELP: &str = "\
stompbox: STOMP over WebSocket and TCP, with a demo page

USAGE: stompbox [FLAGS]

Listeners:
  --http ADDR              HTTP + WebSocket listener, STOMP at /ws  [127.0.0.1:8080]
  --stomp ADDR             raw STOMP/TCP listener                    [127.0.0.1:61613]
  --no-http / --no-stomp   disable a listener
  --ws-echo PATH           also serve a WebSocket echo route (for Autobahn), e.g. /echo
  --no-deflate             never negotiate permessage-deflate        [on when offered]
  --deflate-no-context-takeover
                           reset deflate contexts after each message (no history kept)
Security and limits:
  --user NAME:PASSCODE     accept this login (repeatable); with no users any login is accepted
  --users-file FILE        one NAME:PASSCODE per line
  --allow-origin ORIGIN    allow this Origin to open a WebSocket (repeatable; default: any)
  --max-connections N      simultaneous clients                      [10000]
  --max-frame BYTES        WebSocket frame size                      [1048576]
  --max-message BYTES      WebSocket message and STOMP frame size    [1048576]
  --max-output BYTES       queued output per client (slow consumer)  [4194304]
                           (before CONNECT is accepted: 64 KiB bodies, 8 KiB heads)
Behaviour:
  --heartbeat MS           heart-beat each way, 0 = off              [10000]
  --stats-interval SECS    periodic stats log line, 0 = off          [60]
  --shutdown-timeout MS    graceful stop deadline on SIGINT/SIGTERM  [3000]
  --handshake-timeout MS   time to send the HTTP head, then 408      [10000]
  --log FILTER             log filter, e.g. debug or stompbox=trace  [RUST_LOG or info]
Relay (scale out over RabbitMQ, ActiveMQ or Artemis instead of the in-memory broker):
  --relay stomp://HOST:PORT      relay broker destinations to this STOMP broker
  --relay-login / --relay-passcode   upstream credentials of client sessions
  --relay-system-login / --relay-system-passcode   of the system session [relay-login]
  --relay-vhost VHOST            upstream virtual host (CONNECT host)     [/]
  --relay-prefix LIST            relayed prefixes, comma-separated  [/topic,/queue]
  --relay-credentials relay|client   forward the clients' own login instead [relay]
  --relay-heartbeat MS           heart-beat with the upstream, 0 = off    [10000]
  --config FILE            key = value file (keys are flag names with _); flags override it
  -h, --help / -V, --version
";

/// Parses the command line (without the program name).
pub fn parse_args<I, S>(args: I) -> Result<Command, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let args: Vec<String> = args.into_iter().map(Into::into).collect();
    // First pass: find --config, so that flags override the file whatever their order.
    let mut settings: Vec<(String, String)> = Vec::new();
    let mut config_file: Option<PathBuf> = None;
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--no-http" | "--no-stomp" => {
                if let Some(v) = inline {
                    return Err(ConfigError::BadValue {
                        flag,
                        value: v,
                        expected: "no value",
                    });
                }
                settings.push((flag[5..].to_owned(), "off".to_owned()));
            }
            "--no-deflate" | "--deflate-no-context-takeover" => {
                if let Some(v) = inline {
                    return Err(ConfigError::BadValue {
                        flag,
                        value: v,
                        expected: "no value",
                    });
                }
                let (key, value) = if flag == "--no-deflate" {
                    ("deflate", "false")
                } else {
                    ("deflate_no_context_takeover", "true")
                };
                settings.push((key.to_owned(), value.to_owned()));
            }
            f if f.starts_with("--") && KEYS.contains(&key_of(f).as_str()) => {
                let value = if let Some(v) = inline {
                    v
                } else {
                    let Some(v) = args.get(i) else {
                        return Err(ConfigError::MissingValue(flag));
                    };
                    i += 1;
                    v.clone()
                };
                if flag == "--config" {
                    config_file = Some(PathBuf::from(value));
                } else {
                    settings.push((key_of(&flag), value));
                }
            }
            f if f.starts_with('-') => return Err(ConfigError::UnknownFlag(flag)),
            _ => return Err(ConfigError::UnexpectedArgument(arg.clone())),
        }
    }
    let mut builder = ConfigBuilder::default();
    if let Some(path) = &config_file {
        let text = read_file(path)?;
        for (line, key, value) in parse_config_text(path, &text)? {
            builder.apply(&key, value, true).map_err(|e| match e {
                ConfigError::BadValue {
                    value, expected, ..
                } => ConfigError::Syntax {
                    path: path.clone(),
                    line,
                    message: format!("bad value {value:?} for {key}: expected {expected}"),
                },
                other => other,
            })?;
        }
    }
    let mut from_flags = ConfigBuilder::default();
    for (key, value) in settings {
        from_flags.apply(&key, ConfigValue::One(value), false)?;
    }
    builder.merge(from_flags);
    builder.finish().map(|c| Command::Run(Box::new(c)))
}

const KEYS: &[&str] = &[
    "config",
    "http",
    "stomp",
    "user",
    "users_file",
    "allow_origin",
    "heartbeat",
    "heartbeat_ms",
    "max_connections",
    "max_frame",
    "max_message",
    "max_output",
    "log",
    "stats_interval",
    "shutdown_timeout",
    "shutdown_timeout_ms",
    "ws_echo",
    "handshake_timeout",
    "handshake_timeout_ms",
    "relay",
    "relay_login",
    "relay_passcode",
    "relay_system_login",
    "relay_system_passcode",
    "relay_vhost",
    "relay_prefix",
    "relay_credentials",
    "relay_heartbeat",
    "deflate",
    "deflate_no_context_takeover",
];

fn key_of(flag: &str) -> String {
    flag.trim_start_matches('-').replace('-', "_")
}

fn flag_of(key: &str) -> String {
    format!("--{}", key.replace('_', "-"))
}

/// A value from the config file (a scalar or an array) or a flag.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ConfigValue {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default)]
struct ConfigBuilder {
    scalars: BTreeMap<String, String>,
    users: Vec<User>,
    users_files: Vec<PathBuf>,
    origins: Vec<String>,
}

impl ConfigBuilder {
    fn apply(&mut self, key: &str, value: ConfigValue, from_file: bool) -> Result<(), ConfigError> {
        let key = match key {
            "heartbeat" => "heartbeat_ms",
            "shutdown_timeout" => "shutdown_timeout_ms",
            "handshake_timeout" => "handshake_timeout_ms",
            k => k,
        };
        if !KEYS.contains(&key) || key == "config" {
            return Err(ConfigError::UnknownFlag(if from_file {
                key.to_owned()
            } else {
                flag_of(key)
            }));
        }
        let values = match value {
            ConfigValue::One(v) => vec![v],
            ConfigValue::Many(v) => v,
        };
        match key {
            "user" => {
                for v in values {
                    let user = User::parse(&v).ok_or_else(|| ConfigError::BadValue {
                        flag: flag_of(key),
                        value: redact(&v),
                        expected: "NAME:PASSCODE",
                    })?;
                    self.users.push(user);
                }
            }
            "users_file" => self
                .users_files
                .extend(values.into_iter().map(PathBuf::from)),
            "allow_origin" => self.origins.extend(values),
            _ => {
                let [v] = <[String; 1]>::try_from(values).map_err(|_| ConfigError::BadValue {
                    flag: flag_of(key),
                    value: "[...]".to_owned(),
                    expected: "a single value",
                })?;
                // Validate now, so that the error names the flag and the value.
                validate_scalar(key, &v)?;
                self.scalars.insert(key.to_owned(), v);
            }
        }
        Ok(())
    }

    fn merge(&mut self, flags: ConfigBuilder) {
        self.scalars.extend(flags.scalars);
        if !flags.users.is_empty() || !flags.users_files.is_empty() {
            // Users given on the command line replace the file's users.
            self.users = flags.users;
            self.users_files = flags.users_files;
        }
        if !flags.origins.is_empty() {
            self.origins = flags.origins;
        }
    }

    fn finish(self) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        for (key, v) in &self.scalars {
            match key.as_str() {
                "http" => c.http = parse_listener(key, v)?,
                "stomp" => c.stomp = parse_listener(key, v)?,
                "heartbeat_ms" => c.heartbeat_ms = parse_num(key, v)?,
                "max_connections" => c.max_connections = parse_num(key, v)?,
                "max_frame" => c.max_frame = parse_num(key, v)?,
                "max_message" => c.max_message = parse_num(key, v)?,
                "max_output" => c.max_output = parse_num(key, v)?,
                "log" => c.log = Some(v.clone()),
                "stats_interval" => c.stats_interval_s = parse_num(key, v)?,
                "shutdown_timeout_ms" => c.shutdown_timeout_ms = parse_num(key, v)?,
                "handshake_timeout_ms" => c.handshake_timeout_ms = parse_num(key, v)?,
                "ws_echo" => c.ws_echo = Some(v.clone()),
                "deflate" => c.deflate = parse_bool(key, v)?,
                "deflate_no_context_takeover" => {
                    c.deflate_no_context_takeover = parse_bool(key, v)?;
                }
                _ => {}
            }
        }
        c.users = self.users;
        for path in &self.users_files {
            let text = read_file(path)?;
            c.users.extend(parse_users(path, &text)?);
        }
        c.allowed_origins = self.origins;
        c.relay = crate::relay::from_keys(&self.scalars)?;
        if c.http.is_none() && c.stomp.is_none() {
            return Err(ConfigError::NoListener);
        }
        Ok(c)
    }
}

fn redact(v: &str) -> String {
    match v.split_once(':') {
        Some((name, _)) => format!("{name}:***"),
        None => v.to_owned(),
    }
}

fn validate_scalar(key: &str, v: &str) -> Result<(), ConfigError> {
    match key {
        "http" | "stomp" => parse_listener(key, v).map(drop),
        "heartbeat_ms" | "stats_interval" | "shutdown_timeout_ms" | "handshake_timeout_ms" => {
            parse_num::<u64>(key, v).map(drop)
        }
        "max_connections" | "max_frame" | "max_message" | "max_output" => {
            let n: usize = parse_num(key, v)?;
            if n == 0 {
                return Err(ConfigError::BadValue {
                    flag: flag_of(key),
                    value: v.to_owned(),
                    expected: "a positive integer",
                });
            }
            Ok(())
        }
        "deflate" | "deflate_no_context_takeover" => parse_bool(key, v).map(drop),
        "ws_echo" => {
            if v.starts_with('/') && v != "/" && v != "/ws" && v != "/stats" {
                Ok(())
            } else {
                Err(ConfigError::BadValue {
                    flag: flag_of(key),
                    value: v.to_owned(),
                    expected: "a path like /echo (not /, /ws or /stats)",
                })
            }
        }
        _ => Ok(()),
    }
}

fn parse_listener(key: &str, v: &str) -> Result<Option<SocketAddr>, ConfigError> {
    if v == "off" {
        return Ok(None);
    }
    v.parse().map(Some).map_err(|_| ConfigError::BadValue {
        flag: flag_of(key),
        value: v.to_owned(),
        expected: "IP:PORT (e.g. 127.0.0.1:8080) or off",
    })
}

fn parse_bool(key: &str, v: &str) -> Result<bool, ConfigError> {
    match v {
        "true" | "on" => Ok(true),
        "false" | "off" => Ok(false),
        _ => Err(ConfigError::BadValue {
            flag: flag_of(key),
            value: v.to_owned(),
            expected: "true or false",
        }),
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, ConfigError> {
    v.replace('_', "")
        .parse()
        .map_err(|_| ConfigError::BadValue {
            flag: flag_of(key),
            value: v.to_owned(),
            expected: "a non-negative integer",
        })
}

fn read_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
        path: path.to_owned(),
        error: e.to_string(),
    })
}

/// Parses the config file's text into `(line, key, value)` triples.
fn parse_config_text(
    path: &Path,
    text: &str,
) -> Result<Vec<(usize, String, ConfigValue)>, ConfigError> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let syntax = |message: String| ConfigError::Syntax {
            path: path.to_owned(),
            line,
            message,
        };
        let trimmed = strip_comment(raw).trim();
        if trimmed.is_empty() {
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(syntax(format!("expected key = value, got {trimmed:?}")));
        };
        let key = key.trim().replace('-', "_");
        if !KEYS.contains(&key.as_str()) || key == "config" {
            return Err(syntax(format!("unknown key {key:?}")));
        }
        let value = parse_value(value.trim()).map_err(syntax)?;
        out.push((line, key, value));
    }
    Ok(out)
}

/// Removes a `#` comment that is not inside a quoted string.
fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            '\\' if in_string && !escaped => {
                escaped = true;
                continue;
            }
            '"' if !escaped => in_string = !in_string,
            '#' if !in_string => return &line[..i],
            _ => {}
        }
        escaped = false;
    }
    line
}

fn parse_value(v: &str) -> Result<ConfigValue, String> {
    if let Some(inner) = v.strip_prefix('[') {
        let Some(inner) = inner.strip_suffix(']') else {
            return Err("array without closing ]".to_owned());
        };
        let mut items = Vec::new();
        let mut rest = inner.trim();
        while !rest.is_empty() {
            let (item, after) = parse_string(rest)?;
            items.push(item);
            rest = after.trim_start();
            if let Some(r) = rest.strip_prefix(',') {
                rest = r.trim_start();
            } else if !rest.is_empty() {
                return Err(format!("expected , or ] in array, got {rest:?}"));
            }
        }
        return Ok(ConfigValue::Many(items));
    }
    if v.starts_with('"') {
        let (s, rest) = parse_string(v)?;
        if !rest.trim().is_empty() {
            return Err(format!("unexpected text after string: {:?}", rest.trim()));
        }
        return Ok(ConfigValue::One(s));
    }
    if v == "true" || v == "false" {
        return Ok(ConfigValue::One(v.to_owned()));
    }
    if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '_') {
        return Ok(ConfigValue::One(v.to_owned()));
    }
    Err(format!(
        "expected a quoted string, an integer or an array, got {v:?}"
    ))
}

/// Parses a basic TOML string at the start of `v`; returns it and the rest.
fn parse_string(v: &str) -> Result<(String, &str), String> {
    let Some(body) = v.strip_prefix('"') else {
        return Err(format!("expected a quoted string, got {v:?}"));
    };
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &body[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '"')) => out.push('"'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, other)) => return Err(format!("unsupported escape \\{other}")),
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("unterminated string".to_owned())
}

/// Parses a users file: one `name:passcode` per line.
pub fn parse_users(path: &Path, text: &str) -> Result<Vec<User>, ConfigError> {
    let mut users = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let user = User::parse(line).ok_or_else(|| ConfigError::Syntax {
            path: path.to_owned(),
            line: n + 1,
            message: "expected NAME:PASSCODE".to_owned(),
        })?;
        users.push(user);
    }
    Ok(users)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests panic on failure by design")]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, ConfigError> {
        match parse_args(args.iter().copied())? {
            Command::Run(c) => Ok(*c),
            other => panic!("expected Run, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_loopback_with_heartbeats() {
        let c = run(&[]).unwrap();
        assert_eq!(c.http, Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(c.stomp, Some("127.0.0.1:61613".parse().unwrap()));
        assert_eq!(c.heartbeat_ms, 10_000);
        assert!(c.users.is_empty());
    }

    #[test]
    fn flags_table() {
        let c = run(&[
            "--http",
            "127.0.0.1:9000",
            "--no-stomp",
            "--user",
            "alice:s3:cret",
            "--user=bob:pw",
            "--allow-origin",
            "http://localhost:8080",
            "--heartbeat",
            "0",
            "--max-connections=5",
            "--ws-echo",
            "/echo",
            "--log",
            "debug",
        ])
        .unwrap();
        assert_eq!(c.http, Some("127.0.0.1:9000".parse().unwrap()));
        assert_eq!(c.stomp, None);
        assert_eq!(c.users.len(), 2);
        assert_eq!(c.users[0].passcode, "s3:cret");
        assert_eq!(c.users[1].name, "bob");
        assert_eq!(c.allowed_origins, vec!["http://localhost:8080".to_owned()]);
        assert_eq!(c.heartbeat_ms, 0);
        assert_eq!(c.max_connections, 5);
        assert_eq!(c.ws_echo.as_deref(), Some("/echo"));
        assert_eq!(c.log.as_deref(), Some("debug"));
    }

    #[test]
    fn user_errors_are_one_line() {
        let cases: &[(&[&str], &str)] = &[
            (&["--bogus"], "unknown flag --bogus"),
            (&["--http"], "flag --http needs a value"),
            (&["--http", "nope"], "bad value \"nope\" for --http"),
            (&["--max-frame", "-1"], "bad value \"-1\" for --max-frame"),
            (&["--max-frame", "0"], "expected a positive integer"),
            (&["--user", "nocolon"], "expected NAME:PASSCODE"),
            (&["--user", ":pw"], "expected NAME:PASSCODE"),
            (&["--no-http", "--no-stomp"], "both listeners are disabled"),
            (&["stray"], "unexpected argument"),
            (
                &["--config", "/nonexistent/x.toml"],
                "cannot read /nonexistent/x.toml",
            ),
            (
                &["--users-file", "/nonexistent/u"],
                "cannot read /nonexistent/u",
            ),
            (&["--ws-echo", "/ws"], "expected a path like /echo"),
        ];
        for (args, want) in cases {
            let err = run(args).unwrap_err().to_string();
            assert!(err.contains(want), "{args:?}: {err:?} lacks {want:?}");
            assert!(!err.contains('\n'), "{args:?}: multi-line error {err:?}");
        }
    }

    #[test]
    fn deflate_flags_and_keys() {
        let cases: &[(&[&str], &str, bool, bool)] = &[
            (&[], "", true, false),
            (&["--no-deflate"], "", false, false),
            (&["--deflate-no-context-takeover"], "", true, true),
            (&[], "deflate = false\n", false, false),
            (&[], "deflate_no_context_takeover = true\n", true, true),
            (&["--deflate=true"], "deflate = false\n", true, false),
        ];
        for (i, (args, file, on, nct)) in cases.iter().enumerate() {
            let p = temp_file(&format!("deflate{i}.toml"), file);
            let mut all = vec!["--config", p.to_str().unwrap()];
            all.extend_from_slice(args);
            let c = run(&all).unwrap();
            assert_eq!(
                (c.deflate, c.deflate_no_context_takeover),
                (*on, *nct),
                "{args:?} {file:?}"
            );
        }
        for (args, want) in [
            (&["--no-deflate=1"][..], "expected no value"),
            (&["--deflate", "maybe"][..], "expected true or false"),
        ] {
            let err = run(args).unwrap_err().to_string();
            assert!(err.contains(want), "{args:?}: {err}");
        }
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse_args(["--help"]).unwrap(), Command::Help);
        assert_eq!(parse_args(["-V"]).unwrap(), Command::Version);
    }

    #[test]
    fn passcodes_are_not_echoed_in_errors_or_debug() {
        let u = User::parse("alice:secret").unwrap();
        assert!(!format!("{u:?}").contains("secret"));
    }

    fn temp_file(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("stompbox-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn config_file_and_flags_override() {
        let users = temp_file("users", "# users\nalice:pw1\n\ncarol:pw:3\n");
        let cfg = temp_file(
            "a.toml",
            &format!(
                "# comment\nhttp = \"127.0.0.1:18080\" # trailing\nstomp = \"off\"\n\
                 heartbeat_ms = 5_000\nallow_origin = [\"http://a\", \"http://b#x\"]\n\
                 users_file = \"{}\"\nmax_output = 1024\n",
                users.display()
            ),
        );
        let c = run(&["--config", cfg.to_str().unwrap(), "--heartbeat", "7"]).unwrap();
        assert_eq!(c.http, Some("127.0.0.1:18080".parse().unwrap()));
        assert_eq!(c.stomp, None);
        assert_eq!(c.heartbeat_ms, 7);
        assert_eq!(c.allowed_origins, vec!["http://a", "http://b#x"]);
        assert_eq!(
            c.users.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
            vec!["alice", "carol"]
        );
        assert_eq!(c.users[1].passcode, "pw:3");
        assert_eq!(c.max_output, 1024);
    }

    #[test]
    fn config_file_errors_name_the_line() {
        let cases = [
            ("http 127.0.0.1:1\n", ":1: expected key = value"),
            ("\nbogus = 1\n", ":2: unknown key \"bogus\""),
            ("http = 127.0.0.1:1\n", ":1: expected a quoted string"),
            ("http = \"x\"\n", ":1: bad value \"x\" for http"),
            ("allow_origin = [\"a\"\n", "array without closing ]"),
            ("log = \"abc\n", "unterminated string"),
        ];
        for (i, (text, want)) in cases.iter().enumerate() {
            let p = temp_file(&format!("bad{i}.toml"), text);
            let err = run(&["--config", p.to_str().unwrap()])
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{text:?}: {err:?} lacks {want:?}");
            assert!(!err.contains('\n'));
        }
        let p = temp_file("badusers", "alice:pw\nbob\n");
        let err = run(&["--users-file", p.to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(err.contains(":2: expected NAME:PASSCODE"), "{err}");
    }
}
