//! The `accept_close` example's handshake against Python's `websockets` client (a real peer).
//! Missing peer: fails when `CI` is set, otherwise prints `SKIPPED: <why>` and passes.
#![allow(clippy::unwrap_used, reason = "in tests a panic is the failure report")]

#[path = "../examples/accept_close.rs"]
#[allow(dead_code, unreachable_pub, reason = "only `serve` is used here")]
mod accept_close;

use accept_close::Served;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

fn has_websockets() -> bool {
    Command::new("python3")
        .args(["-c", "import websockets"])
        .status()
        .is_ok_and(|s| s.success())
}

/// The peer is Python's `websockets`; `cargo test` may run before `.ci/interop` installed it,
/// so try installing it once (as the interop script does) before deciding.
fn peer_or_skip() -> bool {
    let ok = has_websockets() || {
        let _ = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "websockets>=12",
            ])
            .status();
        has_websockets()
    };
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 with `websockets` is required in CI"
        );
        println!("SKIPPED: python3 with the `websockets` package is not installed");
    }
    ok
}

#[test]
fn python_websockets_client() {
    if !peer_or_skip() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // 3 upgrades, 1 rejection (426), 1 plain HTTP request, as the client script does.
    let server = std::thread::spawn(move || {
        let mut served = Vec::new();
        for _ in 0..5 {
            let (stream, _) = listener.accept().unwrap();
            served.push(accept_close::serve(stream).unwrap());
        }
        served
    });
    let script: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        ".ci",
        "interop",
        "upgrade_websockets_client.py",
    ]
    .iter()
    .collect();
    let out = Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let served = server.join().unwrap();
    assert_eq!(
        served,
        vec![
            Served::Upgraded {
                protocol: Some("v12.stomp".into()),
                echo: true
            },
            Served::Upgraded {
                protocol: Some("v12.stomp".into()),
                echo: true
            },
            Served::Upgraded {
                protocol: Some("v11.stomp".into()),
                echo: true
            },
            Served::Rejected(426),
            Served::Http,
        ]
    );
}
