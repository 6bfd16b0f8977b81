//! The client commands of the binary (`publish`, `subscribe`, `bench`) against an in-process
//! server on loopback, over WebSocket and TCP, including the failures a user meets.
#![allow(
    clippy::unwrap_used,
    clippy::cast_sign_loss,
    reason = "tests panic on failure by design; JSON numbers here are non-negative"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use stompbox_server::ServerBuilder;
use stompbox_server::config::User;

const BIN: &str = env!("CARGO_BIN_EXE_stompbox");

mod support;
use support::Running;

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Starts `stompbox subscribe ...` and returns once it says the subscription is active.
fn subscriber(args: &[&str]) -> Child {
    let mut child = Command::new(BIN)
        .arg("subscribe")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("subscribed to"), "subscribe said {line:?}");
    child
}

fn finish(mut child: Child) -> Output {
    // A subscriber that never gets its messages fails the test instead of hanging it.
    for _ in 0..200 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if child.try_wait().unwrap().is_none() {
        child.kill().unwrap();
    }
    let status = child.wait().unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    Output {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr: String::new(),
    }
}

#[test]
fn subscribe_count_receives_what_publish_sent_across_transports() {
    let server = Running::start(ServerBuilder::new());
    // (subscriber URL, publisher URL): every combination of WebSocket and TCP.
    let cases = [
        (server.ws(), server.ws()),
        (server.tcp(), server.tcp()),
        (server.ws(), server.tcp()),
        (server.tcp(), server.ws()),
    ];
    for (i, (sub_url, pub_url)) in cases.iter().enumerate() {
        let dest = format!("/topic/cli.{i}");
        let sub = subscriber(&[sub_url, &dest, "--count", "3"]);
        let p = run(
            &["publish", pub_url, &dest, "-"],
            Some("one\ntwo\r\nthree\n"),
        );
        assert_eq!(p.code, 0, "publish: {}", p.stderr);
        assert!(p.stderr.contains("3 messages sent"), "{}", p.stderr);
        let s = finish(sub);
        assert_eq!(s.code, 0, "{sub_url} <- {pub_url}");
        assert_eq!(s.stdout, "one\ntwo\nthree\n", "{sub_url} <- {pub_url}");
    }
}

#[test]
fn bodies_are_escaped_one_per_line_or_raw() {
    let server = Running::start(ServerBuilder::new());
    let sub = subscriber(&[&server.ws(), "/topic/esc", "--count", "1"]);
    let p = run(
        &["publish", &server.tcp(), "/topic/esc", "-", "--whole"],
        Some("a\nb\\c"),
    );
    assert_eq!(p.code, 0, "{}", p.stderr);
    assert_eq!(finish(sub).stdout, "a\\nb\\\\c\n");

    let sub = subscriber(&[&server.tcp(), "/topic/raw", "--count", "2", "--raw"]);
    for body in ["x\ny", "z"] {
        let p = run(
            &["publish", &server.ws(), "/topic/raw", body, "--receipt"],
            None,
        );
        assert_eq!(p.code, 0, "{}", p.stderr);
    }
    assert_eq!(finish(sub).stdout, "x\nyz");
}

#[test]
fn client_acks_and_headers() {
    let server = Running::start(ServerBuilder::new());
    for mode in ["client", "client-individual"] {
        let dest = format!("/queue/ack-{mode}");
        let sub = subscriber(&[
            &server.ws(),
            &dest,
            "--count",
            "2",
            "--ack",
            mode,
            "--headers",
        ]);
        let p = run(
            &["publish", &server.ws(), &dest, "-", "--header", "x-k:v"],
            Some("m1\nm2\n"),
        );
        assert_eq!(p.code, 0, "{}", p.stderr);
        let s = finish(sub);
        assert_eq!(s.code, 0, "{mode}");
        let lines: Vec<&str> = s.stdout.lines().collect();
        assert_eq!(lines.len(), 2, "{}", s.stdout);
        assert!(
            lines[0].contains("x-k:v\t") && lines[0].ends_with("\tm1"),
            "{}",
            lines[0]
        );
        assert!(
            lines[0].contains(&format!("destination:{dest}\t")),
            "{}",
            lines[0]
        );
    }
}

#[test]
fn refused_connection_is_a_clear_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }; // closed again: nothing listens there
    for url in [
        format!("ws://127.0.0.1:{port}/ws"),
        format!("stomp://127.0.0.1:{port}"),
    ] {
        let o = run(&["publish", &url, "/topic/x", "hi"], None);
        assert_eq!(o.code, 1, "{url}");
        assert!(
            o.stderr.contains("cannot connect") && o.stderr.contains("refused"),
            "{}",
            o.stderr
        );
        let o = run(&["subscribe", &url, "/topic/x"], None);
        assert_eq!(o.code, 1);
        assert!(o.stderr.contains("refused"), "{}", o.stderr);
    }
}

#[test]
fn error_frames_are_reported() {
    let server = Running::start(ServerBuilder::new().users(vec![User::parse("alice:pw").unwrap()]));
    for url in [server.ws(), server.tcp()] {
        // Wrong passcode: the server answers CONNECT with ERROR.
        let o = run(
            &[
                "publish",
                &url,
                "/topic/x",
                "hi",
                "--login",
                "alice",
                "--passcode",
                "no",
            ],
            None,
        );
        assert_eq!(o.code, 1, "{url}: {}", o.stderr);
        assert!(o.stderr.contains("server sent ERROR"), "{}", o.stderr);
        // A destination the broker does not serve.
        let o = run(
            &[
                "subscribe",
                &url,
                "/nowhere/x",
                "--login",
                "alice",
                "--passcode",
                "pw",
            ],
            None,
        );
        assert_eq!(o.code, 1);
        assert!(o.stderr.contains("server sent ERROR"), "{}", o.stderr);
        // The right passcode works.
        let o = run(
            &[
                "publish",
                &url,
                "/topic/x",
                "hi",
                "--login",
                "alice",
                "--passcode",
                "pw",
                "-q",
            ],
            None,
        );
        assert_eq!((o.code, o.stderr.as_str()), (0, ""));
    }
}

#[test]
fn handshake_refusal_and_timeouts() {
    let server = Running::start(ServerBuilder::new());
    let o = run(
        &[
            "publish",
            &format!("ws://{}/not-here", server.http),
            "/topic/x",
            "hi",
        ],
        None,
    );
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("404"), "{}", o.stderr);
    // Nobody publishes: --wait gives up with status 1.
    let o = run(
        &[
            "subscribe",
            &server.tcp(),
            "/topic/quiet",
            "--count",
            "1",
            "--wait",
            "300",
        ],
        None,
    );
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("timed out") && o.stderr.contains("0 of 1"),
        "{}",
        o.stderr
    );
    // A listener that accepts but never answers: no CONNECTED within --timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("stomp://{}", silent.local_addr().unwrap());
    let o = run(
        &["publish", &url, "/topic/x", "hi", "--timeout", "300"],
        None,
    );
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("no CONNECTED within 300 ms"),
        "{}",
        o.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["publish"][..],
        &["subscribe", "ws://127.0.0.1:1/ws"],
        &["publish", "http://x/", "/q", "b"],
        &["subscribe", "ws://x/ws", "/q", "--ack", "never"],
        &["bench", "ws://127.0.0.1:1/ws", "--duration", "0"],
        &["bench", "ws://192.0.2.1:1/ws"],
    ] {
        let o = run(args, None);
        assert_eq!(o.code, 2, "{args:?}: {}", o.stderr);
        assert!(o.stderr.starts_with("stompbox "), "{}", o.stderr);
    }
    let o = run(&["bench", "--help"], None);
    assert_eq!(o.code, 0);
    assert!(o.stdout.contains("--scenario"));
}

fn json_number(json: &str, key: &str) -> u64 {
    let at = json
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("{key} in {json}"));
    let rest = &json[at + key.len() + 3..];
    let end = rest.find([',', '}']).unwrap();
    // Integers as they are; ratios as parts per million.
    let v: f64 = rest[..end].parse().unwrap();
    if rest[..end].contains('.') {
        (v * 1e6).round() as u64
    } else {
        v as u64
    }
}

#[test]
fn bench_smoke_pairs_and_fanout_deliver_everything() {
    let server = Running::start(ServerBuilder::new());
    for (url, scenario) in [
        (server.ws(), &["--scenario", "pairs", "--pairs", "4"][..]),
        (
            server.tcp(),
            &["--scenario", "fanout", "--subscribers", "5"][..],
        ),
    ] {
        let mut args = vec![
            "bench",
            url.as_str(),
            "--count",
            "200",
            "--duration",
            "10",
            "--json",
            "-q",
        ];
        args.extend_from_slice(scenario);
        let o = run(&args, None);
        assert_eq!(o.code, 0, "{}", o.stderr);
        let j = o.stdout.trim();
        assert_eq!(json_number(j, "published"), 200, "{j}");
        let expected = json_number(j, "expected");
        assert_eq!(json_number(j, "delivered"), expected, "{j}");
        assert_eq!(json_number(j, "delivery_ratio"), 1_000_000);
        assert_eq!(json_number(j, "lost"), 0);
        assert!(json_number(j, "p99") > 0, "{j}");
        // The in-process server is this test process: its RSS is found by the port.
        assert!(
            j.contains("\"server_pid\":") && !j.contains("\"server_pid\":null"),
            "{j}"
        );
    }
}

#[test]
fn bench_idle_holds_connections_with_heartbeats() {
    let server = Running::start(ServerBuilder::new().heartbeat_ms(100));
    let o = run(
        &[
            "bench",
            &server.ws(),
            "--scenario",
            "idle",
            "--connections",
            "50",
            "--heartbeat",
            "100",
            "--duration",
            "1",
            "--json",
            "-q",
        ],
        None,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let j = o.stdout.trim();
    assert_eq!(json_number(j, "ready"), 50, "{j}");
    assert_eq!(json_number(j, "lost"), 0, "{j}");
    // 50 connections, 100 ms heart-beats for 1 s: the server's heart-beats arrive.
    assert!(json_number(j, "heartbeats_received") >= 50, "{j}");
}

#[test]
fn bench_reports_refused_connections() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let o = run(
        &[
            "bench",
            &format!("stomp://127.0.0.1:{port}"),
            "--scenario",
            "pairs",
            "--pairs",
            "2",
            "--duration",
            "1",
            "-q",
        ],
        None,
    );
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("no connection became ready") && o.stderr.contains("refused"),
        "{}",
        o.stderr
    );
    assert!(o.stdout.contains("4 failed"), "{}", o.stdout);
}
