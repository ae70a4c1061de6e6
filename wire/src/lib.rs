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
pub mod catalog;
pub mod error;
pub mod reader;
pub mod writer;

pub use codepoints::*;
pub use error::{DecodeError, EncodeError, Kind};
pub use reader::Reader;
pub use writer::Writer;
