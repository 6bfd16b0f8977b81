//! `stompbox publish URL DEST [BODY|-]`: sends one message, or one per line of stdin.

use std::io::BufRead;
use std::time::{Duration, Instant};

use bytes::Bytes;
use stompbox::stomp::client::SendOptions;

use super::args::{Args, CONNECT_HELP, CliError, ConnectOptions, Item};
use super::blocking::{Blocking, refused};
use super::target::Target;

const HELP: &str = "\
stompbox publish: send STOMP messages

USAGE: stompbox publish URL DEST [BODY | -] [FLAGS]

  URL   ws://HOST:PORT/PATH (STOMP over WebSocket) or stomp://HOST:PORT (STOMP over TCP)
  DEST  destination, e.g. /topic/chat
  BODY  the message; '-' or none: one message per line of stdin (see --whole)

Message:
  --header K:V             extra SEND header (repeatable)
  --content-type TYPE      content-type header                             [text/plain]
  --whole                  with '-': all of stdin is one message
  --receipt                ask a receipt for every message and wait for it
  -q, --quiet              no summary line on stderr
";

#[derive(Debug, Default)]
struct Options {
    connect: ConnectOptions,
    url: String,
    dest: String,
    body: Option<String>,
    headers: Vec<(String, String)>,
    content_type: Option<String>,
    whole: bool,
    receipt_each: bool,
    quiet: bool,
}

fn parse(args: &[String]) -> Result<Options, CliError> {
    let mut a = Args::new(args);
    let mut o = Options::default();
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
                    "--header" => o.headers.push(a.header(&f)?),
                    "--content-type" => o.content_type = Some(a.value(&f)?),
                    "--whole" => o.whole = true,
                    "--receipt" => o.receipt_each = true,
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
    o.body = pos.next();
    if let Some(extra) = pos.next() {
        return Err(CliError::Usage(format!(
            "unexpected argument {extra:?} (quote a BODY with spaces)"
        )));
    }
    if o.whole && o.body.as_deref().is_some_and(|b| b != "-") {
        return Err(CliError::Usage(
            "--whole reads stdin; give '-' or no BODY".into(),
        ));
    }
    Ok(o)
}

pub(crate) fn run(args: &[String]) -> Result<(), CliError> {
    let o = parse(args)?;
    let target = Target::parse(&o.url)?;
    let (mut client, _version) = Blocking::connect(&target, &o.connect)?;
    let timeout = Duration::from_millis(o.connect.timeout_ms);
    let headers: Vec<(&str, &str)> = o
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut n = 0u64;
    let mut send = |client: &mut Blocking, body: Bytes| -> Result<(), CliError> {
        n += 1;
        let receipt = format!("m{n}");
        let opts = SendOptions {
            content_type: Some(o.content_type.as_deref().unwrap_or("text/plain")),
            receipt: o.receipt_each.then_some(receipt.as_str()),
            headers: &headers,
            ..SendOptions::default()
        };
        client
            .session()
            .send(&o.dest, body, &opts)
            .map_err(|e| refused(&e))?;
        client.flush()?;
        if o.receipt_each {
            client.wait_receipt(&receipt, Instant::now() + timeout, |_, _| Ok(()))?;
        }
        Ok(())
    };
    match o.body.as_deref() {
        Some(body) if body != "-" => send(&mut client, Bytes::copy_from_slice(body.as_bytes()))?,
        _ if o.whole => {
            let mut all = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut all)
                .map_err(|e| CliError::Usage(format!("cannot read stdin: {e}")))?;
            send(&mut client, Bytes::from(all))?;
        }
        _ => {
            let stdin = std::io::stdin();
            for line in stdin.lock().split(b'\n') {
                let mut line =
                    line.map_err(|e| CliError::Usage(format!("cannot read stdin: {e}")))?;
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                send(&mut client, Bytes::from(line))?;
            }
        }
    }
    // The DISCONNECT receipt says the server has processed every SEND before it.
    client.disconnect(Instant::now() + timeout)?;
    if !o.quiet {
        eprintln!(
            "stompbox publish: {n} message{} sent to {}",
            if n == 1 { "" } else { "s" },
            o.dest
        );
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

    #[test]
    fn positionals_and_flags() {
        let o = parse(&args(&[
            "ws://h:1/ws",
            "/topic/a",
            "hi there",
            "--header",
            "k:v",
            "--login",
            "u",
            "--receipt",
        ]))
        .unwrap();
        assert_eq!(
            (o.url.as_str(), o.dest.as_str()),
            ("ws://h:1/ws", "/topic/a")
        );
        assert_eq!(o.body.as_deref(), Some("hi there"));
        assert_eq!(o.headers, [("k".to_owned(), "v".to_owned())]);
        assert_eq!(o.connect.login.as_deref(), Some("u"));
        assert!(o.receipt_each);
    }

    #[test]
    fn usage_errors() {
        let cases: &[&[&str]] = &[
            &[],
            &["ws://h/ws"],
            &["ws://h/ws", "/q", "a", "b"],
            &["ws://h/ws", "/q", "--bogus"],
            &["ws://h/ws", "/q", "body", "--whole"],
        ];
        for case in cases {
            assert!(
                matches!(parse(&args(case)), Err(CliError::Usage(_))),
                "{case:?}"
            );
        }
        assert!(matches!(parse(&args(&["--help"])), Err(CliError::Help(_))));
    }
}
