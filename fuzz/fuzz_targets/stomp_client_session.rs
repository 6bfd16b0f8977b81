//! Fuzz the STOMP client session: arbitrary server bytes (after an optional valid
//! CONNECTED), interleaved with client commands and timeouts. Invariants: no panic; usage
//! errors never corrupt the session; a failed session stays failed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stompbox_stomp::client::{ClientConfig, ClientEvent, ClientSession, SendOptions, SubscribeOptions};
use stompbox_stomp::AckMode;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let mut c = ClientSession::new(ClientConfig { host: "h".into(), ..ClientConfig::default() });
    while c.poll_transmit().is_some() {}
    if data[0] & 1 == 1 {
        let _ = c.handle_read(b"CONNECTED\nversion:1.2\nheart-beat:50,50\n\n\0");
    }
    let split = usize::from(data[1]).max(1);
    let mut now = 0u64;
    for (i, chunk) in data[2..].chunks(split).enumerate() {
        let failed_before = c.error().is_some();
        let res = c.handle_read(chunk);
        if failed_before {
            assert!(res.is_err(), "sticky");
        }
        while let Some(ev) = c.poll_event() {
            if let ClientEvent::Message(m) = ev {
                if let Some(h) = &m.ack {
                    let _ = c.ack(h, None, None);
                    let _ = c.nack(h, Some("tx"), Some("r"));
                }
            }
        }
        match chunk[0] % 8 {
            0 => {
                let _ = c.subscribe("/q", &SubscribeOptions { ack: AckMode::Client, receipt: Some("s"), ..Default::default() });
            }
            1 => {
                let _ = c.send("/q", chunk.to_vec(), &SendOptions { receipt: Some("x"), ..Default::default() });
            }
            2 => {
                let _ = c.begin(&i.to_string(), None);
            }
            3 => {
                let _ = c.commit(&(i.saturating_sub(1)).to_string(), Some("c"));
            }
            4 => {
                let _ = c.unsubscribe("sub-0", None);
            }
            5 => {
                let _ = c.disconnect(Some("bye"));
            }
            _ => {}
        }
        now += u64::from(chunk[0]) * 7;
        c.handle_timeout(now);
        while c.poll_transmit().is_some() {}
        assert_eq!(c.pending_output(), 0);
    }
});
