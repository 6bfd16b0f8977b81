//! Autobahn|Testsuite client testee. Reads `AUTOBAHN_URL` (default `ws://127.0.0.1:9001`) and
//! `AUTOBAHN_AGENT` (default `stompbox-ws`); runs every case of the fuzzing server, echoing
//! every message, then asks it to write the reports. The handshake is stompbox-upgrade's.
//! With env `STOMPBOX_DEFLATE=1` (and `--features deflate`) it offers permessage-deflate.

mod common;

use std::io::{self, Read, Write};
use std::net::TcpStream;

use stompbox_upgrade::{ClientEvent, ClientHandshake, ClientRequest, Limits};
use stompbox_ws::{Connection, GetrandomMask};

/// Connects to `host_port`, upgrades at `path`, runs the echo loop (or only reads).
fn session(host_port: &str, path: &str, echo: bool) -> io::Result<common::Outcome> {
    let mut stream = TcpStream::connect(host_port)?;
    stream.set_nodelay(true)?;
    #[cfg(feature = "deflate")]
    let offer = stompbox_upgrade::DeflateOffer::default();
    #[cfg_attr(not(feature = "deflate"), allow(unused_mut))]
    let mut request = ClientRequest::new(host_port, path);
    #[cfg(feature = "deflate")]
    if common::deflate_wanted() {
        request = request.extension(offer.extension());
    }
    let mut hs = ClientHandshake::with_random_nonce(&request, Limits::default())
        .map_err(|e| io::Error::other(e.to_string()))?;
    while let Some(out) = hs.poll_transmit_vec() {
        stream.write_all(&out)?;
    }
    let mut buf = [0u8; 4096];
    let upgraded = loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::other("closed during the handshake"));
        }
        hs.handle_read(&buf[..n])
            .map_err(|e| io::Error::other(e.to_string()))?;
        if let Some(ClientEvent::Upgraded(up)) = hs.poll_event() {
            break up;
        }
    };
    #[cfg_attr(not(feature = "deflate"), allow(unused_mut))]
    let mut config = common::autobahn_config();
    #[cfg(feature = "deflate")]
    if common::deflate_wanted() {
        // RFC 7692 section 7.2.2: an answer that does not fit the offer fails the connection.
        match offer.check_response(&upgraded.negotiated.extensions) {
            Ok(Some(params)) => config = config.deflate(Some(common::deflate_config(params))),
            Ok(None) => {}
            Err(e) => return Err(io::Error::other(format!("permessage-deflate answer: {e}"))),
        }
    }
    let mut conn = Connection::client(config, GetrandomMask::new());
    common::echo_loop(&mut stream, &mut conn, &upgraded.leftover, echo)
}

fn main() -> io::Result<()> {
    if common::deflate_wanted() && !cfg!(feature = "deflate") {
        return Err(io::Error::other(
            "STOMPBOX_DEFLATE needs --features deflate",
        ));
    }
    let url = std::env::var("AUTOBAHN_URL").unwrap_or_else(|_| "ws://127.0.0.1:9001".into());
    let agent = std::env::var("AUTOBAHN_AGENT").unwrap_or_else(|_| "stompbox-ws".into());
    let host_port = url
        .strip_prefix("ws://")
        .unwrap_or(&url)
        .trim_end_matches('/')
        .to_string();
    let count = session(&host_port, "/getCaseCount", false)?
        .first_text
        .and_then(|t| t.trim().parse::<u32>().ok())
        .ok_or_else(|| io::Error::other("no case count"))?;
    eprintln!("autobahn_client: {count} cases");
    for case in 1..=count {
        if let Err(e) = session(
            &host_port,
            &format!("/runCase?case={case}&agent={agent}"),
            true,
        ) {
            eprintln!("autobahn_client: case {case}: {e}");
        }
    }
    session(&host_port, &format!("/updateReports?agent={agent}"), false)?;
    eprintln!("autobahn_client: reports updated");
    Ok(())
}
