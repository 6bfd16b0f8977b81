//! A server-role connection fed arbitrary bytes in arbitrary pieces: no panic, bounded memory,
//! sticky errors, valid UTF-8 in every text event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stompbox_ws::Connection;

#[path = "ws_common.rs"]
mod ws_common;

fuzz_target!(|data: &[u8]| {
    let streaming = data.first().is_some_and(|b| b & 0x80 != 0);
    ws_common::drive(Connection::server(ws_common::config(streaming)), data);
});
