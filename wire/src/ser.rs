//! Serde helpers: bytes serialize as lowercase hex.

pub(crate) fn hex_bytes<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::hex(bytes))
}
