//! A client-role connection fed arbitrary bytes in arbitrary pieces: no panic, bounded memory,
//! sticky errors, valid UTF-8 in every text event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stompbox_ws::Connection;

#[path = "ws_common.rs"]
mod ws_common;

fuzz_target!(|data: &[u8]| {
    let streaming = data.first().is_some_and(|b| b & 0x80 != 0);
    let mut n = 0u32;
    let masks = move || {
        n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        n.to_le_bytes()
    };
    ws_common::drive(Connection::client(ws_common::config(streaming), masks), data);
});
