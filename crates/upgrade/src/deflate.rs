//! permessage-deflate negotiation (RFC 7692 section 7), both roles (feature `deflate`).
//!
//! The handshake only agrees on parameters; the transform itself is `stompbox-ws`'s (feature
//! `deflate`), built from the [`DeflateParams`] negotiated here.
//!
//! - Server: [`DeflatePolicy::negotiate`] (or [`UpgradeRequest::negotiate_deflate`]) walks the
//!   client's offers in order of preference, declines the ones with unknown, duplicate or
//!   invalid parameters (section 7, "declines an extension negotiation offer"), answers the
//!   first acceptable one, and returns the response to put in the 101 plus the parameters.
//! - Client: [`DeflateOffer::extension`] makes the offer; [`DeflateOffer::check_response`]
//!   validates the server's answer (section 7.2.2: an invalid answer fails the connection).
//!
//! ```
//! use stompbox_upgrade::{DeflateOffer, DeflatePolicy, Extension};
//! // The client offers context takeover off for the server, and lets the server limit the
//! // client's window; the server policy bounds its own window to 10 bits.
//! let offer = DeflateOffer { server_no_context_takeover: true, ..DeflateOffer::default() };
//! let offered: Extension = offer.extension();
//! assert_eq!(
//!     offered.to_string(),
//!     "permessage-deflate; server_no_context_takeover; client_max_window_bits"
//! );
//! let policy = DeflatePolicy { server_max_window_bits: 10, ..DeflatePolicy::default() };
//! let agreed = policy.negotiate(core::slice::from_ref(&offered)).expect("accepted");
//! assert_eq!(
//!     agreed.response.to_string(),
//!     "permessage-deflate; server_no_context_takeover; server_max_window_bits=10"
//! );
//! assert_eq!(agreed.params.server_max_window_bits, 10);
//! // The client checks the server's answer and gets the same parameters.
//! let client_side = offer.check_response(&[agreed.response.clone()]).unwrap();
//! assert_eq!(client_side, Some(agreed.params));
//! ```

use alloc::string::ToString;
use core::fmt;

use crate::head::Extension;
use crate::server::UpgradeRequest;

/// The extension token.
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// The smallest and largest LZ77 window (in bits) RFC 7692 allows.
const MIN_BITS: u8 = 8;
const MAX_BITS: u8 = 15;

/// What both ends agreed on: the four parameters of RFC 7692 section 7.1, with the window
/// sizes resolved to numbers (15 where the answer named none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeflateParams {
    /// The server resets its compression context after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compression context after every message.
    pub client_no_context_takeover: bool,
    /// The largest LZ77 window (bits, 8-15) the server compresses with.
    pub server_max_window_bits: u8,
    /// The largest LZ77 window (bits, 8-15) the client compresses with.
    pub client_max_window_bits: u8,
}

impl Default for DeflateParams {
    /// Context takeover on both sides, 15-bit windows: what a bare `permessage-deflate` means.
    fn default() -> Self {
        DeflateParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: MAX_BITS,
            client_max_window_bits: MAX_BITS,
        }
    }
}

/// The server's policy for answering offers. The defaults accept any valid offer with the
/// largest windows; set the `*_no_context_takeover` flags and smaller windows to bound the
/// memory each connection keeps between messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeflatePolicy {
    /// Always reset the server's compression context after each message (sent as
    /// `server_no_context_takeover` even if the client did not ask for it).
    pub server_no_context_takeover: bool,
    /// Ask the client to reset its context after each message (`client_no_context_takeover`
    /// in the answer), so the server's inflater keeps no history between messages.
    pub client_no_context_takeover: bool,
    /// The largest window (8-15 bits) the server compresses with; below 15 it is announced
    /// as `server_max_window_bits`.
    pub server_max_window_bits: u8,
    /// The largest window (8-15 bits) the server accepts from the client. Below 15, an offer
    /// without `client_max_window_bits` (a client that cannot limit its window) is declined.
    pub client_max_window_bits: u8,
}

impl Default for DeflatePolicy {
    fn default() -> Self {
        DeflatePolicy {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: MAX_BITS,
            client_max_window_bits: MAX_BITS,
        }
    }
}

/// A server's acceptance: the extension to put in the 101 response and the parameters to
/// build the WebSocket connection's deflate transform from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeflateAgreement {
    /// The response parameters (pass to [`crate::Accept::extension`]).
    pub response: Extension,
    /// The negotiated parameters.
    pub params: DeflateParams,
}

/// The `client_max_window_bits` parameter of an offer (RFC 7692 section 7.1.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ClientWindowBits {
    /// Not sent: the client cannot limit its window, the server may not ask it to.
    #[default]
    Omitted,
    /// Sent without a value: the server may limit the client's window.
    Allowed,
    /// Sent with a value: as `Allowed`, and the client will use at most this window (8-15).
    Hint(u8),
}

/// One offer's parameters, parsed and validated (RFC 7692 section 7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Parsed {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: ClientWindowBits,
}

/// Why a `permessage-deflate` offer or answer is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeflateError {
    /// A parameter RFC 7692 does not define.
    UnknownParameter,
    /// A parameter given twice.
    DuplicateParameter,
    /// A flag with a value, a window size without one, or a window size outside 8-15 (or with
    /// leading zeros).
    InvalidValue,
    /// The server's answer has `client_max_window_bits` but the offer did not allow it.
    WindowBitsNotOffered,
    /// The server's answer exceeds what the offer asked for (a larger `server_max_window_bits`,
    /// or no `server_no_context_takeover` when the offer required it).
    OfferNotHonoured,
    /// The server accepted `permessage-deflate` more than once.
    Repeated,
}

impl fmt::Display for DeflateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeflateError::UnknownParameter => "unknown permessage-deflate parameter",
            DeflateError::DuplicateParameter => "duplicate permessage-deflate parameter",
            DeflateError::InvalidValue => "invalid permessage-deflate parameter value",
            DeflateError::WindowBitsNotOffered => {
                "client_max_window_bits in the answer but not in the offer"
            }
            DeflateError::OfferNotHonoured => "the answer does not honour the offer",
            DeflateError::Repeated => "permessage-deflate accepted more than once",
        })
    }
}

impl core::error::Error for DeflateError {}

/// A window size: 1-2 digits, no leading zero, 8-15.
fn window_bits(value: &str) -> Result<u8, DeflateError> {
    if value.is_empty() || value.len() > 2 || value.starts_with('0') {
        return Err(DeflateError::InvalidValue);
    }
    match value.parse::<u8>() {
        Ok(n) if (MIN_BITS..=MAX_BITS).contains(&n) => Ok(n),
        _ => Err(DeflateError::InvalidValue),
    }
}

fn parse(ext: &Extension) -> Result<Parsed, DeflateError> {
    let mut p = Parsed::default();
    let mut seen = [false; 4];
    for param in &ext.params {
        let name = param.name.as_str();
        let value = param.value.as_deref();
        let slot = if name.eq_ignore_ascii_case("server_no_context_takeover") {
            0
        } else if name.eq_ignore_ascii_case("client_no_context_takeover") {
            1
        } else if name.eq_ignore_ascii_case("server_max_window_bits") {
            2
        } else if name.eq_ignore_ascii_case("client_max_window_bits") {
            3
        } else {
            return Err(DeflateError::UnknownParameter);
        };
        if core::mem::replace(&mut seen[slot], true) {
            return Err(DeflateError::DuplicateParameter);
        }
        match (slot, value) {
            (0, None) => p.server_no_context_takeover = true,
            (1, None) => p.client_no_context_takeover = true,
            (2, Some(v)) => p.server_max_window_bits = Some(window_bits(v)?),
            (3, None) => p.client_max_window_bits = ClientWindowBits::Allowed,
            (3, Some(v)) => p.client_max_window_bits = ClientWindowBits::Hint(window_bits(v)?),
            _ => return Err(DeflateError::InvalidValue),
        }
    }
    Ok(p)
}

impl DeflatePolicy {
    /// Answers the first acceptable `permessage-deflate` offer among `offers` (every offered
    /// extension, in the client's order; other extensions are skipped). Offers with unknown,
    /// duplicate or invalid parameters are declined, as are offers this policy cannot meet
    /// (a window limit on the client that the client cannot apply). `None`: decline all.
    pub fn negotiate(&self, offers: &[Extension]) -> Option<DeflateAgreement> {
        offers
            .iter()
            .filter(|e| e.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE))
            .find_map(|e| self.answer(parse(e).ok()?))
    }

    fn answer(self, offer: Parsed) -> Option<DeflateAgreement> {
        let own_server = self.server_max_window_bits.clamp(MIN_BITS, MAX_BITS);
        let own_client = self.client_max_window_bits.clamp(MIN_BITS, MAX_BITS);
        let server_bits = offer
            .server_max_window_bits
            .map_or(own_server, |n| n.min(own_server));
        let client_bits = match offer.client_max_window_bits {
            // The client cannot limit its window: acceptable only if we need no limit.
            ClientWindowBits::Omitted if own_client < MAX_BITS => return None,
            ClientWindowBits::Omitted | ClientWindowBits::Allowed => own_client,
            ClientWindowBits::Hint(n) => n.min(own_client),
        };
        let params = DeflateParams {
            server_no_context_takeover: self.server_no_context_takeover
                || offer.server_no_context_takeover,
            client_no_context_takeover: self.client_no_context_takeover
                || offer.client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        };
        let mut response = Extension::new(PERMESSAGE_DEFLATE);
        if params.server_no_context_takeover {
            response = response.with_param("server_no_context_takeover", None);
        }
        if params.client_no_context_takeover {
            response = response.with_param("client_no_context_takeover", None);
        }
        if offer.server_max_window_bits.is_some() || server_bits < MAX_BITS {
            response = response.with_param(
                "server_max_window_bits",
                Some(server_bits.to_string().as_str()),
            );
        }
        if offer.client_max_window_bits != ClientWindowBits::Omitted && client_bits < MAX_BITS {
            response = response.with_param(
                "client_max_window_bits",
                Some(client_bits.to_string().as_str()),
            );
        }
        Some(DeflateAgreement { response, params })
    }
}

impl UpgradeRequest {
    /// Answers the client's `permessage-deflate` offers with `policy` (see
    /// [`DeflatePolicy::negotiate`]). Put [`DeflateAgreement::response`] in the
    /// [`crate::Accept`] with [`crate::Accept::extension`].
    pub fn negotiate_deflate(&self, policy: &DeflatePolicy) -> Option<DeflateAgreement> {
        policy.negotiate(&self.extensions())
    }
}

/// A client's offer. The default is what browsers send:
/// `permessage-deflate; client_max_window_bits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeflateOffer {
    /// Ask the server to reset its context after each message.
    pub server_no_context_takeover: bool,
    /// Tell the server this client resets its context after each message.
    pub client_no_context_takeover: bool,
    /// Ask the server to use at most this window (8-15 bits); `None` leaves it at 15.
    pub server_max_window_bits: Option<u8>,
    /// Let the server limit the client's window (`client_max_window_bits`), optionally with
    /// the largest window this client will use.
    pub client_max_window_bits: ClientWindowBits,
}

impl Default for DeflateOffer {
    fn default() -> Self {
        DeflateOffer {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: ClientWindowBits::Allowed,
        }
    }
}

impl DeflateOffer {
    /// The offer as an extension for [`crate::ClientRequest::extension`]. Window sizes
    /// outside 8-15 are clamped into that range.
    pub fn extension(&self) -> Extension {
        let mut e = Extension::new(PERMESSAGE_DEFLATE);
        if self.server_no_context_takeover {
            e = e.with_param("server_no_context_takeover", None);
        }
        if self.client_no_context_takeover {
            e = e.with_param("client_no_context_takeover", None);
        }
        if let Some(n) = self.server_max_window_bits {
            let n = n.clamp(MIN_BITS, MAX_BITS).to_string();
            e = e.with_param("server_max_window_bits", Some(n.as_str()));
        }
        match self.client_max_window_bits {
            ClientWindowBits::Omitted => {}
            ClientWindowBits::Allowed => e = e.with_param("client_max_window_bits", None),
            ClientWindowBits::Hint(n) => {
                let n = n.clamp(MIN_BITS, MAX_BITS).to_string();
                e = e.with_param("client_max_window_bits", Some(n.as_str()));
            }
        }
        e
    }

    /// Checks the server's answer (the accepted extensions of `Negotiated::extensions`)
    /// against this offer (RFC 7692 section 7.2.2). `Ok(None)`: the server declined
    /// permessage-deflate; `Err`: the client must fail the WebSocket connection (close 1010
    /// is not applicable after the handshake, so the host just closes the transport).
    pub fn check_response(
        &self,
        accepted: &[Extension],
    ) -> Result<Option<DeflateParams>, DeflateError> {
        let mut found = accepted
            .iter()
            .filter(|e| e.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE));
        let Some(answer) = found.next() else {
            return Ok(None);
        };
        if found.next().is_some() {
            return Err(DeflateError::Repeated);
        }
        let p = parse(answer)?;
        let client_bits = match (p.client_max_window_bits, self.client_max_window_bits) {
            (ClientWindowBits::Allowed, _) => return Err(DeflateError::InvalidValue),
            (ClientWindowBits::Hint(_), ClientWindowBits::Omitted) => {
                return Err(DeflateError::WindowBitsNotOffered);
            }
            (ClientWindowBits::Hint(n), _) => n,
            (ClientWindowBits::Omitted, ClientWindowBits::Hint(n)) => n.clamp(MIN_BITS, MAX_BITS),
            (ClientWindowBits::Omitted, _) => MAX_BITS,
        };
        let server_bits = p.server_max_window_bits.unwrap_or(MAX_BITS);
        if self.server_max_window_bits.is_some_and(|n| server_bits > n)
            || (self.server_no_context_takeover && !p.server_no_context_takeover)
        {
            return Err(DeflateError::OfferNotHonoured);
        }
        Ok(Some(DeflateParams {
            server_no_context_takeover: p.server_no_context_takeover,
            client_no_context_takeover: p.client_no_context_takeover
                || self.client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn ext(s: &str) -> Vec<Extension> {
        let mut c = crate::head::Collect(Vec::new());
        assert!(crate::head::parse_extensions(s.as_bytes(), &mut c), "{s}");
        c.0
    }

    fn answer(
        policy: DeflatePolicy,
        offer: &str,
    ) -> Option<(alloc::string::String, DeflateParams)> {
        policy
            .negotiate(&ext(offer))
            .map(|a| (a.response.to_string(), a.params))
    }

    /// RFC 7692 section 7.1: each parameter's grammar; invalid offers are declined.
    #[test]
    fn server_declines_invalid_offers() {
        let p = DeflatePolicy::default();
        for offer in [
            "permessage-deflate; foo",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_no_context_takeover; CLIENT_NO_CONTEXT_TAKEOVER",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=true",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; server_max_window_bits=abc",
            "permessage-deflate; client_max_window_bits=0",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(answer(p, offer), None, "{offer}");
        }
    }

    type Case<'a> = (&'a DeflatePolicy, &'a str, &'a str, (bool, bool, u8, u8));

    /// RFC 7692 sections 7.1.1-7.1.2: accepted offers and the answers.
    #[test]
    fn server_answers_table() {
        let d = DeflatePolicy::default();
        let bounded = DeflatePolicy {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 10,
            client_max_window_bits: 11,
        };
        let cases: &[Case<'_>] = &[
            (
                &d,
                "permessage-deflate",
                "permessage-deflate",
                (false, false, 15, 15),
            ),
            (
                &d,
                "permessage-deflate; client_max_window_bits",
                "permessage-deflate",
                (false, false, 15, 15),
            ),
            (
                &d,
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
                (true, true, 15, 15),
            ),
            (
                &d,
                "permessage-deflate; server_max_window_bits=8",
                "permessage-deflate; server_max_window_bits=8",
                (false, false, 8, 15),
            ),
            (
                &d,
                "permessage-deflate; server_max_window_bits=\"12\"",
                "permessage-deflate; server_max_window_bits=12",
                (false, false, 12, 15),
            ),
            (
                &d,
                "permessage-deflate; client_max_window_bits=9",
                "permessage-deflate; client_max_window_bits=9",
                (false, false, 15, 9),
            ),
            (
                &bounded,
                "permessage-deflate; client_max_window_bits",
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=10; client_max_window_bits=11",
                (true, true, 10, 11),
            ),
            (
                &bounded,
                "permessage-deflate; server_max_window_bits=9; client_max_window_bits=13",
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=9; client_max_window_bits=11",
                (true, true, 9, 11),
            ),
            // Several offers: the first acceptable one wins.
            (
                &d,
                "permessage-deflate; bogus, permessage-deflate; client_max_window_bits=10",
                "permessage-deflate; client_max_window_bits=10",
                (false, false, 15, 10),
            ),
            (
                &bounded,
                "permessage-deflate, permessage-deflate; client_max_window_bits",
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=10; client_max_window_bits=11",
                (true, true, 10, 11),
            ),
        ];
        for &(policy, offer, response, (snct, cnct, sb, cb)) in cases {
            let (r, params) = answer(*policy, offer).unwrap_or_else(|| panic!("{offer}"));
            assert_eq!(r, response, "{offer}");
            assert_eq!(
                params,
                DeflateParams {
                    server_no_context_takeover: snct,
                    client_no_context_takeover: cnct,
                    server_max_window_bits: sb,
                    client_max_window_bits: cb,
                },
                "{offer}"
            );
        }
        // A policy that limits the client's window declines an offer that cannot honour it.
        assert_eq!(answer(bounded, "permessage-deflate"), None);
    }

    /// RFC 7692 section 7.2.2: the client's checks of the answer.
    #[test]
    fn client_checks_answer_table() {
        let d = DeflateOffer::default();
        let strict = DeflateOffer {
            server_no_context_takeover: true,
            client_no_context_takeover: false,
            server_max_window_bits: Some(10),
            client_max_window_bits: ClientWindowBits::Omitted,
        };
        let ok = |o: &DeflateOffer, a: &str| o.check_response(&ext(a));
        assert_eq!(ok(&d, "x-other"), Ok(None));
        assert_eq!(
            ok(&d, "permessage-deflate"),
            Ok(Some(DeflateParams::default()))
        );
        assert_eq!(
            ok(
                &d,
                "permessage-deflate; client_max_window_bits=9; server_max_window_bits=12"
            ),
            Ok(Some(DeflateParams {
                server_max_window_bits: 12,
                client_max_window_bits: 9,
                ..DeflateParams::default()
            }))
        );
        assert_eq!(
            ok(&d, "permessage-deflate, permessage-deflate"),
            Err(DeflateError::Repeated)
        );
        assert_eq!(
            ok(&d, "permessage-deflate; client_max_window_bits"),
            Err(DeflateError::InvalidValue)
        );
        assert_eq!(
            ok(&d, "permessage-deflate; x=1"),
            Err(DeflateError::UnknownParameter)
        );
        assert_eq!(
            ok(
                &strict,
                "permessage-deflate; server_no_context_takeover; client_max_window_bits=9; server_max_window_bits=10"
            ),
            Err(DeflateError::WindowBitsNotOffered)
        );
        assert_eq!(
            ok(&strict, "permessage-deflate; server_no_context_takeover"),
            Err(DeflateError::OfferNotHonoured)
        );
        assert_eq!(
            ok(&strict, "permessage-deflate; server_max_window_bits=10"),
            Err(DeflateError::OfferNotHonoured)
        );
        assert_eq!(
            ok(
                &strict,
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=9"
            ),
            Ok(Some(DeflateParams {
                server_no_context_takeover: true,
                server_max_window_bits: 9,
                ..DeflateParams::default()
            }))
        );
        let offered = DeflateOffer {
            client_no_context_takeover: true,
            ..DeflateOffer::default()
        };
        assert_eq!(
            offered.extension().to_string(),
            "permessage-deflate; client_no_context_takeover; client_max_window_bits"
        );
        assert!(
            ok(&offered, "permessage-deflate")
                .ok()
                .flatten()
                .is_some_and(|p| p.client_no_context_takeover)
        );
    }

    /// Every policy answers every offer it accepts in a way the offering client accepts, with
    /// the same parameters.
    #[test]
    fn every_combination_agrees() {
        let bits = [None, Some(8u8), Some(12), Some(15)];
        let hints = [
            ClientWindowBits::Omitted,
            ClientWindowBits::Allowed,
            ClientWindowBits::Hint(9),
            ClientWindowBits::Hint(15),
        ];
        for snct in [false, true] {
            for cnct in [false, true] {
                for s in bits {
                    for c in hints {
                        let offer = DeflateOffer {
                            server_no_context_takeover: snct,
                            client_no_context_takeover: cnct,
                            server_max_window_bits: s,
                            client_max_window_bits: c,
                        };
                        for policy in [
                            DeflatePolicy::default(),
                            DeflatePolicy {
                                server_no_context_takeover: true,
                                client_no_context_takeover: true,
                                server_max_window_bits: 9,
                                client_max_window_bits: 10,
                            },
                        ] {
                            let Some(a) = policy.negotiate(&[offer.extension()]) else {
                                assert!(
                                    c == ClientWindowBits::Omitted
                                        && policy.client_max_window_bits < 15
                                );
                                continue;
                            };
                            let back = offer.check_response(&ext(&a.response.to_string()));
                            assert_eq!(back, Ok(Some(a.params)), "{offer:?} {policy:?}");
                        }
                    }
                }
            }
        }
    }
}
