//! Codepoint types. Each is a transparent newtype over its wire integer, so
//! unknown values stay representable (an unknown suite is a finding, not a
//! parse error). The registry tables are generated from `data/` by
//! `build.rs`; every type comes from the one `codepoints!` macro.

/// Defines a codepoint newtype with registry constants, `name()`, `ALL`, a
/// `Debug`/`Display` that prints the name or `0x…`, `From` both ways, and
/// (with the `serde` feature) serialization as `{"id": "0x…", "name": …}`.
macro_rules! codepoints {
    (
        $(#[$meta:meta])*
        pub struct $ty:ident($repr:ty) {
            $($cname:ident = $value:literal => $label:literal,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $ty(pub $repr);

        #[allow(non_upper_case_globals)]
        impl $ty {
            $(
                #[doc = $label]
                pub const $cname: Self = Self($value);
            )*

            /// Every registered value, in ascending order.
            pub const ALL: &'static [Self] = &[$(Self($value)),*];

            /// The registry name, or `None` for an unregistered value.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some($label),)*
                    _ => None,
                }
            }

            /// Finds a value by its registry name (case-insensitive).
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.name().is_some_and(|n| n.eq_ignore_ascii_case(name)))
            }

            /// The value as `0x…` with at least four hex digits.
            pub fn hex(self) -> String {
                let width = 2 * std::mem::size_of::<$repr>().max(2);
                let width = if width > 6 && u64::from(self.0) <= 0xff_ffff { 6 } else { width };
                format!("0x{:0width$x}", self.0, width = width)
            }
        }

        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => f.write_str(&self.hex()),
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(self, f)
            }
        }

        impl From<$repr> for $ty {
            fn from(v: $repr) -> Self {
                Self(v)
            }
        }

        impl From<$ty> for $repr {
            fn from(v: $ty) -> Self {
                v.0
            }
        }

        #[cfg(feature = "serde")]
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeStruct;
                let mut st = s.serialize_struct(stringify!($ty), 2)?;
                // Written on the stack: records hold hundreds of codepoints.
                let mut buf = [0u8; 18];
                let width = 2 * std::mem::size_of::<$repr>().max(2);
                let width = if width > 6 && u64::from(self.0) <= 0xff_ffff { 6 } else { width };
                st.serialize_field("id", crate::codepoints::hex_id(u64::from(self.0), width, &mut buf))?;
                st.serialize_field("name", &self.name())?;
                st.end()
            }
        }
    };
}

/// `value` as `0x` and at least `width` lowercase hex digits, written
/// into `buf` (what [`format!`] with `{:#0w$x}`-style padding gives, without
/// allocating).
/// Every four-digit id, made once: most codepoints are u8 or u16, and a
/// record holds hundreds of them.
#[cfg(feature = "serde")]
static HEX4: std::sync::LazyLock<Vec<String>> =
    std::sync::LazyLock::new(|| (0..=0xffffu32).map(|v| format!("0x{v:04x}")).collect());

/// The id of a codepoint: from [`HEX4`] when it has four digits.
#[cfg(feature = "serde")]
pub(crate) fn hex_id(value: u64, width: usize, buf: &mut [u8; 18]) -> &str {
    if width == 4 {
        if let Some(s) = usize::try_from(value).ok().and_then(|i| HEX4.get(i)) {
            return s;
        }
    }
    hex_into(value, width, buf)
}

#[cfg(feature = "serde")]
pub(crate) fn hex_into(value: u64, width: usize, buf: &mut [u8; 18]) -> &str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digits = usize::try_from((64 - value.leading_zeros()).div_ceil(4))
        .unwrap_or(16)
        .max(1);
    let n = digits.max(width).min(16);
    let (head, tail) = buf.split_at_mut(2);
    head.copy_from_slice(b"0x");
    for (i, slot) in tail.iter_mut().take(n).enumerate() {
        let shift = 4 * (n - 1 - i);
        let nibble = usize::try_from((value >> shift) & 0xf).unwrap_or(0);
        *slot = DIGITS.get(nibble).copied().unwrap_or(b'0');
    }
    std::str::from_utf8(buf.get(..2 + n).unwrap_or(b"0x")).unwrap_or("0x")
}

include!(concat!(env!("OUT_DIR"), "/codepoints_gen.rs"));

codepoints! {
    /// TLS 1.2 HashAlgorithm (RFC 5246 §7.4.1.4.1), the first byte of a pair.
    pub struct HashAlgorithm(u8) {
        NONE = 0 => "none",
        MD5 = 1 => "md5",
        SHA1 = 2 => "sha1",
        SHA224 = 3 => "sha224",
        SHA256 = 4 => "sha256",
        SHA384 = 5 => "sha384",
        SHA512 = 6 => "sha512",
        INTRINSIC = 8 => "intrinsic",
    }
}

codepoints! {
    /// Server name type in the server_name extension (RFC 6066 §3).
    pub struct ServerNameType(u8) {
        HOST_NAME = 0 => "host_name",
    }
}

codepoints! {
    /// max_fragment_length values (RFC 6066 §4).
    pub struct MaxFragmentLength(u8) {
        _2_9 = 1 => "2^9",
        _2_10 = 2 => "2^10",
        _2_11 = 3 => "2^11",
        _2_12 = 4 => "2^12",
    }
}

impl ProtocolVersion {
    /// Short aliases for the versions the scanner works with.
    pub const SSL2: Self = Self::SSLV2;
    pub const SSL3: Self = Self::SSLV3;
    pub const TLS10: Self = Self::TLSV1_0;
    pub const TLS11: Self = Self::TLSV1_1;
    pub const TLS12: Self = Self::TLSV1_2;
    pub const TLS13: Self = Self::TLSV1_3;

    /// The versions a scan enumerates, oldest first.
    pub const SCANNED: [Self; 6] = [
        Self::SSL2,
        Self::SSL3,
        Self::TLS10,
        Self::TLS11,
        Self::TLS12,
        Self::TLS13,
    ];

    /// Whether this is a GREASE value (RFC 8701).
    pub fn is_grease(self) -> bool {
        is_grease_u16(self.0)
    }

    /// Parses the names users type: `ssl3`, `SSLv3`, `tls1.2`, `TLSv1.2`, `tls12`, `1.2`.
    pub fn parse_user(s: &str) -> Option<Self> {
        let t: String = s
            .to_ascii_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        Some(match t.as_str() {
            "ssl2" | "sslv2" => Self::SSL2,
            "ssl3" | "sslv3" => Self::SSL3,
            "tls1" | "tls10" | "tlsv1" | "tlsv10" | "10" => Self::TLS10,
            "tls11" | "tlsv11" | "11" => Self::TLS11,
            "tls12" | "tlsv12" | "12" => Self::TLS12,
            "tls13" | "tlsv13" | "13" => Self::TLS13,
            _ => return None,
        })
    }
}

/// RFC 8701: GREASE values are 0x?A?A with both bytes equal.
pub fn is_grease_u16(v: u16) -> bool {
    let [a, b] = v.to_be_bytes();
    a == b && a & 0x0f == 0x0a
}

impl CipherSuite {
    pub fn is_grease(self) -> bool {
        is_grease_u16(self.0)
    }

    /// A signalling value that is never selected (GREASE or an SCSV).
    pub fn is_signal(self) -> bool {
        self.is_grease() || self == Self::TLS_EMPTY_RENEGOTIATION_INFO_SCSV || self == Self::TLS_FALLBACK_SCSV
    }
}

impl NamedGroup {
    pub fn is_grease(self) -> bool {
        is_grease_u16(self.0)
    }
}

impl ExtensionType {
    pub fn is_grease(self) -> bool {
        is_grease_u16(self.0)
    }
}

impl SignatureScheme {
    /// The (hash, signature) pair as TLS 1.2 reads it.
    pub fn pair(self) -> (HashAlgorithm, u8) {
        let [h, s] = self.0.to_be_bytes();
        (HashAlgorithm(h), s)
    }
}

#[cfg(test)]
mod tests {

    #[cfg(feature = "serde")]
    #[test]
    fn ids_written_on_the_stack_are_what_hex_formats() {
        let mut buf = [0u8; 18];
        for v in [0u64, 1, 0x2f, 0x1301, 0xc02f, 0xffff, 0x0700c0, 0x1234_5678_9abc] {
            for width in [4, 6] {
                assert_eq!(super::hex_into(v, width, &mut buf), format!("0x{v:0width$x}"));
                assert_eq!(super::hex_id(v, width, &mut buf), format!("0x{v:0width$x}"));
            }
        }
    }

    use super::*;

    #[test]
    fn registry_names_and_constants_agree() {
        assert_eq!(CipherSuite::TLS_AES_128_GCM_SHA256.0, 0x1301);
        assert_eq!(CipherSuite(0x002f).name(), Some("TLS_RSA_WITH_AES_128_CBC_SHA"));
        assert_eq!(NamedGroup::X25519.0, 0x001d);
        assert_eq!(NamedGroup::SECP256R1.name(), Some("secp256r1"));
        assert_eq!(ExtensionType::SUPPORTED_VERSIONS.0, 43);
        assert_eq!(AlertDescription::HANDSHAKE_FAILURE.0, 40);
        assert_eq!(ProtocolVersion::TLS12.name(), Some("TLSv1.2"));
        assert_eq!(SignatureScheme::RSA_PSS_RSAE_SHA256.0, 0x0804);
        assert_eq!(SignatureScheme(0x0402).name(), Some("dsa_sha256"));
        assert_eq!(HandshakeType::SERVER_HELLO_DONE.0, 14);
    }

    #[test]
    fn unknown_values_print_as_hex() {
        assert_eq!(format!("{:?}", CipherSuite(0xabcd)), "0xabcd");
        assert_eq!(format!("{}", AlertDescription(200)), "0x00c8");
        assert_eq!(Sslv2CipherSpec(0x010080).hex(), "0x010080");
    }

    #[test]
    fn grease_is_recognised() {
        assert!(CipherSuite(0x0a0a).is_grease());
        assert!(CipherSuite(0xfafa).is_grease());
        assert!(!CipherSuite(0x0a1a).is_grease());
        assert!(CipherSuite::TLS_FALLBACK_SCSV.is_signal());
    }

    #[test]
    fn every_table_is_sorted_and_unique() {
        fn check<T: Ord + Copy + std::fmt::Debug>(all: &[T]) {
            assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
        }
        check(CipherSuite::ALL);
        check(NamedGroup::ALL);
        check(ExtensionType::ALL);
        check(SignatureScheme::ALL);
        check(AlertDescription::ALL);
        check(ProtocolVersion::ALL);
        check(Sslv2CipherSpec::ALL);
        assert_eq!(CipherSuite::ALL.len(), 433);
    }

    #[test]
    fn user_version_names() {
        assert_eq!(ProtocolVersion::parse_user("TLSv1.2"), Some(ProtocolVersion::TLS12));
        assert_eq!(ProtocolVersion::parse_user("ssl3"), Some(ProtocolVersion::SSL3));
        assert_eq!(ProtocolVersion::parse_user("tls1"), Some(ProtocolVersion::TLS10));
        assert_eq!(ProtocolVersion::parse_user("tls9"), None);
    }
}
