#![allow(clippy::unwrap_used, reason = "tests panic on failure by design")]
//! Differential property test: the SIMD-scanning [`Parser`] against a deliberately naive,
//! line-by-line reference written straight from the STOMP 1.2 "Augmented BNF" and "Value
//! Encoding" sections, on random near-valid input (random commands, header lines full of
//! `:`, `\`, CR, LF, NUL and multi-byte UTF-8, long lines crossing the scanner's 64-byte
//! blocks, content-length or NUL-terminated bodies), fed whole and in random pieces.

use bytes::BytesMut;
use proptest::prelude::*;
use stompbox_stomp::{Command, Limits, ParseError, Parser, Version};

/// What a frame parsed to: command, decoded headers, body.
type Parsed = (Command, Vec<(Vec<u8>, Vec<u8>)>, Vec<u8>);

/// The reference: one frame at a time, one line at a time, byte by byte. Returns the frames
/// (or the first error) and the heart-beat count. Input must end on a frame boundary or an
/// error for the comparison to be meaningful; a trailing partial frame is ignored.
fn reference(input: &[u8], version: Version) -> (Vec<Parsed>, Option<ParseError>, u64) {
    let mut frames = Vec::new();
    let mut beats = 0;
    let mut i = 0;
    loop {
        // Heart-beats: LF or CR LF between frames.
        loop {
            match input.get(i) {
                Some(b'\n') => {
                    beats += 1;
                    i += 1;
                }
                Some(b'\r') => match input.get(i + 1) {
                    Some(b'\n') => {
                        beats += 1;
                        i += 2;
                    }
                    Some(_) => return (frames, Some(ParseError::BareCarriageReturn), beats),
                    None => return (frames, None, beats),
                },
                _ => break,
            }
        }
        if i >= input.len() {
            return (frames, None, beats);
        }
        match one_frame(&input[i..], version) {
            Ok(Some((frame, used))) => {
                frames.push(frame);
                i += used;
            }
            Ok(None) => return (frames, None, beats),
            Err(e) => return (frames, Some(e), beats),
        }
    }
}

fn line_at(input: &[u8], from: usize) -> Option<(&[u8], usize)> {
    let n = input[from..].iter().position(|&b| b == b'\n')?;
    let mut line = &input[from..from + n];
    if let [rest @ .., b'\r'] = line {
        line = rest;
    }
    Some((line, from + n + 1))
}

fn one_frame(input: &[u8], version: Version) -> Result<Option<(Parsed, usize)>, ParseError> {
    let Some((cmd_line, mut at)) = line_at(input, 0) else {
        if input.contains(&0) {
            return Err(ParseError::UnknownCommand);
        }
        return Ok(None);
    };
    let command = Command::from_bytes(cmd_line).ok_or(ParseError::UnknownCommand)?;
    let headers_start = at;
    let mut raw: Vec<(&[u8], &[u8])> = Vec::new();
    let mut blank_line = true;
    loop {
        if input.get(at) == Some(&0) {
            // Lenient: the frame ends without the blank line.
            blank_line = false;
            break;
        }
        let Some((line, next)) = line_at(input, at) else {
            return Ok(None);
        };
        if line.is_empty() {
            at = next;
            break;
        }
        let c = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(ParseError::MissingColon)?;
        if c == 0 {
            return Err(ParseError::EmptyHeaderName);
        }
        raw.push((&line[..c], &line[c + 1..]));
        at = next;
    }
    let head = &input[headers_start..at];
    if std::str::from_utf8(head).is_err() {
        return Err(ParseError::InvalidUtf8);
    }
    for (k, &b) in head.iter().enumerate() {
        if b == b'\r' && head.get(k + 1) != Some(&b'\n') {
            return Err(ParseError::BareCarriageReturn);
        }
    }
    let content_length = if blank_line {
        match raw.iter().find(|(k, _)| *k == b"content-length") {
            Some((_, v)) => {
                let s = std::str::from_utf8(v).unwrap();
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ParseError::InvalidContentLength);
                }
                let n: usize = s.parse().map_err(|_| ParseError::InvalidContentLength)?;
                if n > Limits::default().max_body_bytes {
                    return Err(ParseError::BodyTooLarge);
                }
                Some(n)
            }
            None => None,
        }
    } else {
        None
    };
    let body_end = match content_length {
        Some(n) => match input.get(at + n) {
            None => return Ok(None),
            Some(0) => at + n,
            Some(_) => return Err(ParseError::MissingNul),
        },
        None => match input[at..].iter().position(|&b| b == 0) {
            Some(k) => at + k,
            None => return Ok(None),
        },
    };
    let decode = command.escapes_headers() && version != Version::V1_0;
    let mut headers = Vec::new();
    for (k, v) in raw {
        headers.push(if decode {
            (unescape(k, version)?, unescape(v, version)?)
        } else {
            (k.to_vec(), v.to_vec())
        });
    }
    Ok(Some((
        (command, headers, input[at..body_end].to_vec()),
        body_end + 1,
    )))
}

fn unescape(raw: &[u8], version: Version) -> Result<Vec<u8>, ParseError> {
    let mut out = Vec::new();
    let mut it = raw.iter();
    while let Some(&b) = it.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        out.push(match it.next() {
            Some(b'n') => b'\n',
            Some(b'c') => b':',
            Some(b'\\') => b'\\',
            Some(b'r') if version == Version::V1_2 => b'\r',
            _ => return Err(ParseError::InvalidEscape),
        });
    }
    Ok(out)
}

fn parse_pieces(
    input: &[u8],
    version: Version,
    cuts: &[usize],
) -> (Vec<Parsed>, Option<ParseError>, u64) {
    let mut p = Parser::new(Limits::default());
    p.set_version(version);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut last = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        buf.extend_from_slice(&input[last..cut]);
        last = cut;
        loop {
            match p.parse(&mut buf) {
                Ok(Some(f)) => frames.push((
                    f.command(),
                    f.headers()
                        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                        .collect(),
                    f.body().to_vec(),
                )),
                Ok(None) => break,
                Err(e) => return (frames, Some(e), p.heartbeats()),
            }
        }
    }
    (frames, None, p.heartbeats())
}

/// Pieces of header text, biased to what the scanner treats specially.
fn header_text(min_atoms: usize, plain_weight: u32) -> impl Strategy<Value = Vec<u8>> {
    let atom = prop_oneof![
        plain_weight => proptest::string::string_regex("[a-z0-9/.-]{1,20}").unwrap().prop_map(String::into_bytes),
        2 => proptest::string::string_regex("[a-z]{60,130}").unwrap().prop_map(String::into_bytes),
        1 => Just(b":".to_vec()),
        1 => prop_oneof![Just(&b"\\n"[..]), Just(&b"\\c"[..]), Just(&b"\\\\"[..]), Just(&b"\\r"[..]), Just(&b"\\t"[..]), Just(&b"\\"[..])].prop_map(<[u8]>::to_vec),
        1 => prop_oneof![Just(&b"\r"[..]), Just(&b"\0"[..]), Just("é✓".as_bytes()), Just(&b"\xff"[..]), Just(&b"\xe2\x9c"[..])].prop_map(<[u8]>::to_vec),
    ];
    proptest::collection::vec(atom, min_atoms..5).prop_map(|v| v.concat())
}

fn frame_bytes() -> impl Strategy<Value = Vec<u8>> {
    let command = prop_oneof![
        30 => proptest::sample::select(vec!["SEND", "MESSAGE", "SUBSCRIBE", "CONNECT", "CONNECTED", "ERROR", "ACK"]),
        1 => proptest::sample::select(vec!["send", "SENDX", "", "SE:ND"]),
    ];
    let header = prop_oneof![
        30 => (header_text(1, 60), header_text(0, 12)).prop_map(|(k, v)| [k, b":".to_vec(), v].concat()),
        1 => header_text(0, 6),
    ];
    (
        command,
        any::<bool>(),
        proptest::collection::vec(header, 0..12),
        proptest::collection::vec(prop_oneof![60 => Just(b'x'), 1 => Just(0u8)], 0..150),
        prop_oneof![6 => Just(None), 6 => Just(Some(None)), 1 => (0usize..160).prop_map(|n| Some(Some(n)))],
        proptest::bool::weighted(0.9),
    )
        .prop_map(|(cmd, crlf, headers, body, content_length, blank)| {
            let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
            let mut f = cmd.as_bytes().to_vec();
            f.extend_from_slice(eol);
            for h in headers {
                f.extend_from_slice(&h);
                f.extend_from_slice(eol);
            }
            match content_length {
                Some(Some(n)) => f.extend_from_slice(format!("content-length:{n}").as_bytes()),
                Some(None) => f.extend_from_slice(format!("content-length:{}", body.len()).as_bytes()),
                None => {}
            }
            if content_length.is_some() {
                f.extend_from_slice(eol);
            }
            if blank {
                f.extend_from_slice(eol);
            }
            f.extend_from_slice(&body);
            f.push(0);
            f
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Same frames, same first error, same heart-beats as the reference, whole and split.
    #[test]
    fn parser_matches_reference(
        frames in proptest::collection::vec(frame_bytes(), 1..4),
        beats in 0usize..3,
        version in proptest::sample::select(Version::ALL.to_vec()),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut input = Vec::new();
        for f in &frames {
            input.extend(std::iter::repeat_n(b'\n', beats));
            input.extend_from_slice(f);
        }
        let want = reference(&input, version);
        prop_assert_eq!(&parse_pieces(&input, version, &[]), &want);
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
        points.sort_unstable();
        let got = parse_pieces(&input, version, &points);
        // A split can only delay an error, never change the frames before it or the error.
        prop_assert_eq!(&got, &want);
    }
}
