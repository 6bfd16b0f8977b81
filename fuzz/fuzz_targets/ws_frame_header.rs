//! Frame header decode on arbitrary bytes: never panics; a decoded header re-encodes to the
//! same length (non-minimal inputs aside) and decodes back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stompbox_ws::{FrameHeader, MAX_HEADER_LEN, Status};

fuzz_target!(|data: &[u8]| {
    if let Ok(Status::Complete((header, used))) = FrameHeader::decode(data) {
        assert!(used <= data.len() && used <= MAX_HEADER_LEN);
        let mut buf = [0u8; MAX_HEADER_LEN];
        let n = header.encode(&mut buf).expect("fits");
        assert!(n <= used, "minimal encoding is never longer");
        assert_eq!(FrameHeader::decode(&buf[..n]), Ok(Status::Complete((header, n))));
    }
});
