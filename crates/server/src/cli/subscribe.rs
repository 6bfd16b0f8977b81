//! `stompbox subscribe URL DEST [--ack MODE] [--count N]`: prints messages, one per line.

use std::io::Write;
use std::time::{Duration, Instant};

use stompbox::stomp::client::{MessageEvent, SubscribeOptions};
use stompbox::stomp::{AckMode, Frame};

use super::args::{Args, CONNECT_HELP, CliError, ConnectOptions, Item, one_line};
use super::blocking::{Blocking, Incoming, refused};
use super::target::Target;

const HELP: &str = "\
stompbox subscribe: print STOMP messages as they arrive

USAGE: stompbox subscribe URL DEST [FLAGS]

  URL   ws://HOST:PORT/PATH (STOMP over WebSocket) or stomp://HOST:PORT (STOMP over TCP)
  DEST  destination, e.g. /topic/chat

Each message is printed as one line: its body, with '\\' '\\n' '\\r' escaped (invalid UTF-8 as
U+FFFD). 'stompbox subscribe: subscribed to DEST' goes to stderr once the subscription is
active (the server's RECEIPT), so a script can start publishing then.

  --ack MODE               auto | client | client-individual (ACK after printing)  [auto]
  --count N                exit 0 after N messages                       [unbounded]
  --wait MS                exit 1 if the N messages have not come in MS ms [forever]
  --raw                    write the bodies as they are, nothing between them
  --headers                prefix each line with the headers, as K:V separated by tabs
  --id ID                  subscription id                                 [sub-0]
  --sub-header K:V         extra SUBSCRIBE header (repeatable)
  -q, --quiet              nothing on stderr on success
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ack {
    Auto,
    Client,
    ClientIndividual,
}

#[derive(Debug)]
struct Options {
    connect: ConnectOptions,
    url: String,
    dest: String,
    ack: Ack,
    count: Option<u64>,
    wait_ms: Option<u64>,
    raw: bool,
    show_headers: bool,
    id: String,
    sub_headers: Vec<(String, String)>,
    quiet: bool,
}

fn parse(args: &[String]) -> Result<Options, CliError> {
    let mut a = Args::new(args);
    let mut o = Options {
        connect: ConnectOptions::default(),
        url: String::new(),
        dest: String::new(),
        ack: Ack::Auto,
        count: None,
        wait_ms: None,
        raw: false,
        show_headers: false,
        id: "sub-0".into(),
        sub_headers: Vec::new(),
        quiet: false,
    };
    let mut pos = Vec::new();
    while let Some(item) = a.next_item()? {
        match item {
            Item::Positional(p) => pos.push(p),
            Item::Flag(f) => {
                if a.connect_flag(&f, &mut o.connect)? {
                    continue;
                }
                match f.as_str() {
                    "-h" | "--help" => {
                        return Err(CliError::Help(format!("{HELP}{CONNECT_HELP}")));
                    }
                    "--ack" => {
                        o.ack = match a.value(&f)?.as_str() {
                            "auto" => Ack::Auto,
                            "client" => Ack::Client,
                            "client-individual" => Ack::ClientIndividual,
                            other => {
                                return Err(CliError::Usage(format!(
                                    "bad value {other:?} for --ack: expected auto, client or client-individual"
                                )));
                            }
                        }
                    }
                    "--count" => o.count = Some(a.number(&f)?),
                    "--wait" => o.wait_ms = Some(a.number(&f)?),
                    "--raw" => o.raw = true,
                    "--headers" => o.show_headers = true,
                    "--id" => o.id = a.value(&f)?,
                    "--sub-header" => o.sub_headers.push(a.header(&f)?),
                    "-q" | "--quiet" => o.quiet = true,
                    _ => return Err(CliError::Usage(format!("unknown flag {f}"))),
                }
            }
        }
    }
    let mut pos = pos.into_iter();
    o.url = pos
        .next()
        .ok_or_else(|| CliError::Usage("missing URL".into()))?;
    o.dest = pos
        .next()
        .ok_or_else(|| CliError::Usage("missing DEST".into()))?;
    if let Some(extra) = pos.next() {
        return Err(CliError::Usage(format!("unexpected argument {extra:?}")));
    }
    if o.raw && o.show_headers {
        return Err(CliError::Usage(
            "--raw and --headers exclude each other".into(),
        ));
    }
    Ok(o)
}

fn print(out: &mut impl Write, o: &Options, f: &Frame) -> std::io::Result<()> {
    if o.raw {
        out.write_all(f.body())?;
        return out.flush();
    }
    let mut line = String::new();
    if o.show_headers {
        for (k, v) in f.headers() {
            line.push_str(&one_line(k.as_bytes()));
            line.push(':');
            line.push_str(&one_line(v.as_bytes()));
            line.push('\t');
        }
    }
    line.push_str(&one_line(f.body()));
    line.push('\n');
    out.write_all(line.as_bytes())?;
    out.flush()
}

pub(crate) fn run(args: &[String]) -> Result<(), CliError> {
    let o = parse(args)?;
    let target = Target::parse(&o.url)?;
    let (mut client, _version) = Blocking::connect(&target, &o.connect)?;
    let timeout = Duration::from_millis(o.connect.timeout_ms);
    let headers: Vec<(&str, &str)> = o
        .sub_headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let opts = SubscribeOptions {
        id: Some(&o.id),
        ack: match o.ack {
            Ack::Auto => AckMode::Auto,
            Ack::Client => AckMode::Client,
            Ack::ClientIndividual => AckMode::ClientIndividual,
        },
        receipt: Some("subscribed"),
        headers: &headers,
    };
    client
        .session()
        .subscribe(&o.dest, &opts)
        .map_err(|e| refused(&e))?;
    client.flush()?;
    let wait_deadline = o
        .wait_ms
        .map(|ms| Instant::now() + Duration::from_millis(ms));
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut seen = 0u64;
    let mut handle = |client: &mut Blocking, m: MessageEvent| -> Result<(), CliError> {
        seen += 1;
        if let Err(e) = print(&mut out, &o, &m.frame) {
            return Err(CliError::Connection(format!("cannot write to stdout: {e}")));
        }
        if o.ack != Ack::Auto {
            let Some(h) = &m.ack else {
                return Err(CliError::Connection(
                    "a MESSAGE without the headers needed to ACK it".into(),
                ));
            };
            client
                .session()
                .ack(h, None, None)
                .map_err(|e| refused(&e))?;
            client.flush()?;
        }
        Ok(())
    };
    // Messages may come before the receipt; keep them.
    let mut early = Vec::new();
    client.wait_receipt("subscribed", Instant::now() + timeout, |_, m| {
        early.push(m);
        Ok(())
    })?;
    if !o.quiet {
        eprintln!("stompbox subscribe: subscribed to {}", o.dest);
    }
    let count = o.count.unwrap_or(u64::MAX);
    let mut got = 0u64;
    for m in early {
        if got >= count {
            break;
        }
        got += 1;
        handle(&mut client, m)?;
    }
    while got < count {
        match client.next(wait_deadline)? {
            Some(Incoming::Message(m)) => {
                got += 1;
                handle(&mut client, *m)?;
            }
            Some(Incoming::Receipt(_)) => {}
            None => {
                return Err(CliError::Timeout(format!(
                    "{got} of {} messages in {} ms",
                    o.count.unwrap_or(0),
                    o.wait_ms.unwrap_or(0)
                )));
            }
        }
    }
    client.disconnect(Instant::now() + timeout)?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests panic on failure by design")]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn flags() {
        let o = parse(&args(&[
            "stomp://h:1",
            "/queue/a",
            "--ack",
            "client-individual",
            "--count=3",
            "--raw",
        ]))
        .unwrap();
        assert_eq!(o.ack, Ack::ClientIndividual);
        assert_eq!(o.count, Some(3));
        assert!(o.raw);
    }

    #[test]
    fn usage_errors() {
        let cases: &[&[&str]] = &[
            &[],
            &["ws://h/ws"],
            &["ws://h/ws", "/q", "extra"],
            &["ws://h/ws", "/q", "--ack", "sometimes"],
            &["ws://h/ws", "/q", "--count", "-1"],
            &["ws://h/ws", "/q", "--raw", "--headers"],
        ];
        for case in cases {
            assert!(
                matches!(parse(&args(case)), Err(CliError::Usage(_))),
                "{case:?}"
            );
        }
    }
}
