//! Autobahn|Testsuite echo server: `cargo run --release -p stompbox-ws --example autobahn_server [ADDR]`
//! (default `127.0.0.1:9001`). One thread per connection; the handshake is stompbox-upgrade's,
//! the rest is a `stompbox_ws::Connection` in the server role echoing every message.
//! With env `STOMPBOX_DEFLATE=1` (and `--features deflate`) it accepts permessage-deflate.

mod common;

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};

use stompbox_upgrade::{Accept, Limits, ServerEvent, ServerHandshake};
use stompbox_ws::Connection;

fn serve(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut hs = ServerHandshake::new(Limits::default());
    let mut buf = [0u8; 4096];
    #[cfg_attr(not(feature = "deflate"), allow(unused_mut))]
    let mut config = common::autobahn_config();
    let upgraded = 'handshake: loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let result = hs.handle_read(&buf[..n]);
        while let Some(out) = hs.poll_transmit_vec() {
            stream.write_all(&out)?;
        }
        if result.is_err() {
            return Ok(());
        }
        if let Some(event) = hs.poll_event() {
            match event {
                ServerEvent::Upgrade(req) => {
                    #[cfg_attr(not(feature = "deflate"), allow(unused_mut))]
                    let mut accept = Accept::new();
                    #[cfg(feature = "deflate")]
                    if common::deflate_wanted()
                        && let Some(agreed) =
                            req.negotiate_deflate(&stompbox_upgrade::DeflatePolicy::default())
                    {
                        accept = accept.extension(agreed.response);
                        config = config.deflate(Some(common::deflate_config(agreed.params)));
                    }
                    let Ok(upgraded) = hs.accept(&req, accept) else {
                        return Ok(());
                    };
                    while let Some(out) = hs.poll_transmit_vec() {
                        stream.write_all(&out)?;
                    }
                    break 'handshake upgraded;
                }
                ServerEvent::Http(_) => {
                    stream
                        .write_all(b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n")?;
                    return Ok(());
                }
            }
        }
    };
    let mut conn = Connection::server(config);
    common::echo_loop(&mut stream, &mut conn, &upgraded.leftover, true)?;
    Ok(())
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    if common::deflate_wanted() && !cfg!(feature = "deflate") {
        return Err(io::Error::other(
            "STOMPBOX_DEFLATE needs --features deflate",
        ));
    }
    let listener = TcpListener::bind(&addr)?;
    eprintln!("autobahn_server: echoing on ws://{addr}");
    for stream in listener.incoming() {
        let stream = stream?;
        std::thread::spawn(move || {
            if let Err(e) = serve(stream) {
                eprintln!("autobahn_server: connection error: {e}");
            }
        });
    }
    Ok(())
}
