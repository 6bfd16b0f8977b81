//! Errors and flag parsing shared by the client commands.

use std::fmt;

/// A client command's failure: one line for stderr, and the exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CliError {
    /// `--help`: print this and exit 0.
    Help(String),
    /// Bad flags or arguments (exit 2).
    Usage(String),
    /// The TCP connection could not be made (refused, unreachable, bad host).
    Connect(String),
    /// The server answered with a STOMP ERROR frame.
    Server(String),
    /// Nothing arrived in time.
    Timeout(String),
    /// The connection failed or closed (I/O error, protocol violation, EOF).
    Connection(String),
}

impl CliError {
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::Help(_) => 0,
            Self::Usage(_) => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Help(t) => f.write_str(t),
            Self::Usage(m) => write!(f, "{m} (see --help)"),
            Self::Connect(m) => write!(f, "cannot connect: {m}"),
            Self::Server(m) => write!(f, "server sent ERROR: {m}"),
            Self::Timeout(m) => write!(f, "timed out: {m}"),
            Self::Connection(m) => write!(f, "connection failed: {m}"),
        }
    }
}

/// Flags common to every client command: who we are and how long we wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnectOptions {
    pub(crate) login: Option<String>,
    pub(crate) passcode: Option<String>,
    /// The STOMP `host` header (RabbitMQ: the virtual host); default: the URL's host.
    pub(crate) host: Option<String>,
    /// Extra CONNECT headers.
    pub(crate) connect_headers: Vec<(String, String)>,
    /// Heart-beat offered each way, in ms (0: none).
    pub(crate) heartbeat_ms: u64,
    /// How long to wait for the connection and CONNECTED (and receipts), in ms.
    pub(crate) timeout_ms: u64,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            login: None,
            passcode: None,
            host: None,
            connect_headers: Vec::new(),
            heartbeat_ms: 0,
            timeout_ms: 10_000,
        }
    }
}

pub(crate) const CONNECT_HELP: &str = "\
Connection:
  --login NAME             STOMP login
  --passcode SECRET        STOMP passcode
  --host NAME              STOMP host header (RabbitMQ: the vhost, e.g. /)  [the URL's host]
  --connect-header K:V     extra CONNECT header (repeatable)
  --heartbeat MS           heart-beat offered each way, 0 = off             [0]
  --timeout MS             wait for the connection, CONNECTED and receipts [10000]
";

/// A tiny flag scanner: `--flag VALUE`, `--flag=VALUE`, switches and positionals.
pub(crate) struct Args {
    items: Vec<String>,
    pos: usize,
    pending_value: Option<String>,
}

/// One parsed item.
pub(crate) enum Item {
    Flag(String),
    Positional(String),
}

impl Args {
    pub(crate) fn new(args: &[String]) -> Self {
        Self {
            items: args.to_vec(),
            pos: 0,
            pending_value: None,
        }
    }

    pub(crate) fn next_item(&mut self) -> Result<Option<Item>, CliError> {
        if let Some(v) = self.pending_value.take() {
            return Err(CliError::Usage(format!("unexpected value {v:?}")));
        }
        let Some(arg) = self.items.get(self.pos).cloned() else {
            return Ok(None);
        };
        self.pos += 1;
        if arg == "-" || !arg.starts_with('-') {
            return Ok(Some(Item::Positional(arg)));
        }
        if arg == "--" {
            return Err(CliError::Usage("'--' is not supported".into()));
        }
        if let Some((f, v)) = arg.split_once('=')
            && f.starts_with("--")
        {
            self.pending_value = Some(v.to_owned());
            return Ok(Some(Item::Flag(f.to_owned())));
        }
        Ok(Some(Item::Flag(arg)))
    }

    /// The value of the flag just returned.
    pub(crate) fn value(&mut self, flag: &str) -> Result<String, CliError> {
        if let Some(v) = self.pending_value.take() {
            return Ok(v);
        }
        let Some(v) = self.items.get(self.pos).cloned() else {
            return Err(CliError::Usage(format!("flag {flag} needs a value")));
        };
        self.pos += 1;
        Ok(v)
    }

    pub(crate) fn number<T: std::str::FromStr>(&mut self, flag: &str) -> Result<T, CliError> {
        let v = self.value(flag)?;
        v.parse()
            .map_err(|_| CliError::Usage(format!("bad value {v:?} for {flag}: expected a number")))
    }

    /// Handles a connection flag; `Ok(false)` when `flag` is not one.
    pub(crate) fn connect_flag(
        &mut self,
        flag: &str,
        o: &mut ConnectOptions,
    ) -> Result<bool, CliError> {
        match flag {
            "--login" => o.login = Some(self.value(flag)?),
            "--passcode" => o.passcode = Some(self.value(flag)?),
            "--host" => o.host = Some(self.value(flag)?),
            "--connect-header" => o.connect_headers.push(self.header(flag)?),
            "--heartbeat" => o.heartbeat_ms = self.number(flag)?,
            "--timeout" => {
                o.timeout_ms = self.number(flag)?;
                if o.timeout_ms == 0 {
                    return Err(CliError::Usage("--timeout must be at least 1 ms".into()));
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// `NAME:VALUE` for a header flag.
    pub(crate) fn header(&mut self, flag: &str) -> Result<(String, String), CliError> {
        let v = self.value(flag)?;
        match v.split_once(':') {
            Some((k, val)) if !k.is_empty() => Ok((k.to_owned(), val.to_owned())),
            _ => Err(CliError::Usage(format!(
                "bad value {v:?} for {flag}: expected NAME:VALUE"
            ))),
        }
    }
}

/// Escapes a body for one-line output: `\` as `\\`, newline as `\n`, CR as `\r`; invalid
/// UTF-8 as U+FFFD.
pub(crate) fn one_line(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests panic on failure by design")]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn flags_values_and_positionals() {
        let mut a = Args::new(&strings(&[
            "x",
            "--login=bob",
            "--timeout",
            "5",
            "-",
            "--raw",
        ]));
        let mut o = ConnectOptions::default();
        let mut pos = Vec::new();
        let mut flags = Vec::new();
        while let Some(item) = a.next_item().unwrap() {
            match item {
                Item::Positional(p) => pos.push(p),
                Item::Flag(f) => {
                    if !a.connect_flag(&f, &mut o).unwrap() {
                        flags.push(f);
                    }
                }
            }
        }
        assert_eq!(pos, ["x", "-"]);
        assert_eq!(flags, ["--raw"]);
        assert_eq!(o.login.as_deref(), Some("bob"));
        assert_eq!(o.timeout_ms, 5);
    }

    #[test]
    fn bad_values_are_usage_errors() {
        let cases: &[&[&str]] = &[
            &["--timeout", "soon"],
            &["--timeout", "0"],
            &["--timeout"],
            &["--connect-header", "novalue"],
            &["--connect-header", ":v"],
        ];
        for case in cases {
            let mut a = Args::new(&strings(case));
            let Some(Item::Flag(f)) = a.next_item().unwrap() else {
                panic!("flag expected")
            };
            let r = a.connect_flag(&f, &mut ConnectOptions::default());
            assert!(matches!(r, Err(CliError::Usage(_))), "{case:?}: {r:?}");
        }
    }

    #[test]
    fn a_switch_given_a_value_is_refused() {
        let mut a = Args::new(&strings(&["--raw=yes"]));
        assert!(matches!(a.next_item(), Ok(Some(Item::Flag(_)))));
        assert!(matches!(a.next_item(), Err(CliError::Usage(_))));
    }

    #[test]
    fn one_line_escapes() {
        let cases: &[(&[u8], &str)] = &[
            (b"plain", "plain"),
            (b"a\nb", "a\\nb"),
            (b"a\\n", "a\\\\n"),
            (b"x\r\n", "x\\r\\n"),
            (b"\xff", "\u{fffd}"),
        ];
        for (input, want) in cases {
            assert_eq!(one_line(input), *want);
        }
    }
}
