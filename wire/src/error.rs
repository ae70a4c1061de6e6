//! Decode and encode errors. A decode error always names the field being
//! read and the byte offset where it failed, so a report can point at the
//! exact byte of a hostile or broken peer's message.

/// A failure to decode peer bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} at byte {offset}: {kind}")]
pub struct DecodeError {
    /// The field being read, e.g. `server_hello.cipher_suite`.
    pub field: &'static str,
    /// Offset from the start of the buffer the decoder was given.
    pub offset: usize,
    /// What went wrong.
    pub kind: Kind,
}

/// What went wrong while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Kind {
    /// The input ends before the field does.
    #[error("needs {needed} bytes, {available} left")]
    Truncated { needed: usize, available: usize },
    /// A length-delimited structure has bytes left over.
    #[error("{extra} trailing bytes")]
    Trailing { extra: usize },
    /// A peer-controlled length is over our cap or the protocol's limit.
    #[error("length {len} over limit {max}")]
    TooLong { len: usize, max: usize },
    /// A list whose length must be a multiple of the element size is not.
    #[error("length {len} not a multiple of {unit}")]
    Misaligned { len: usize, unit: usize },
    /// A list that must not be empty is.
    #[error("empty")]
    Empty,
    /// An extension appears twice in one message (RFC 8446 §4.2).
    #[error("duplicate extension 0x{0:04x}")]
    DuplicateExtension(u16),
    /// A value the protocol does not allow here.
    #[error("unexpected value 0x{0:x}")]
    Unexpected(u32),
}

/// A failure to encode a message we build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A length-prefixed field outgrew its prefix.
    #[error("{field}: length {len} over limit {max}")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    /// A parameter cannot be encoded as asked.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: &'static str },
}
