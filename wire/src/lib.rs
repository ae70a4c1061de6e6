//! hsscan-wire: a sans-I/O codec for TLS and SSLv2 handshakes.
//!
//! Bytes in, values out: records and a deframer that takes pushed bytes,
//! the ClientHello builder, decoders for every message of a server's first
//! flight, and the cipher suite catalog. No sockets, no clock, no
//! randomness source: callers pass the ClientHello random in and own every
//! deadline, so a live scan and a capture replay run the same decoder.
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::cast_possible_truncation
    )
)]

#[macro_use]
mod codepoints;
pub mod alert;
pub mod catalog;
pub mod certificate;
pub mod client_hello;
pub mod deframer;
pub mod error;
pub mod ext;
pub mod fuzzing;
pub mod handshake;
pub mod key_share;
pub mod reader;
pub mod record;
#[cfg(feature = "serde")]
mod ser;
pub mod server_hello;
pub mod server_key_exchange;
pub mod sslv2;
pub mod writer;

pub use alert::Alert;
pub use certificate::{Certificate, CertificateEntry, CertificateRequest, CertificateStatus};
pub use client_hello::ClientHello;
pub use codepoints::*;
pub use deframer::{Deframer, Event, Side};
pub use error::{DecodeError, EncodeError, Kind};
pub use ext::{ClientExtension, KeyShareEntry, ServerExtension};
pub use handshake::HandshakeHeader;
pub use reader::Reader;
pub use record::Framing;
pub use server_hello::ServerHello;
pub use server_key_exchange::ServerKeyExchange;
pub use sslv2::{Sslv2ClientHello, Sslv2ServerHello};
pub use writer::Writer;

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * bytes.len());
    for &b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            s.push(DIGITS.get(usize::from(nibble)).map_or('0', |&d| char::from(d)));
        }
    }
    s
}
