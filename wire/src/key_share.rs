//! Key shares of the right shape for every TLS 1.3 group, made without any
//! cryptography. A scanner only needs the server to accept the share and
//! answer with its ServerHello; it never derives a secret. Points are the
//! curve generators (valid points, so servers that check them accept
//! them), finite-field shares are the generator 2 (RFC 7919 §5.1 requires
//! 1 < Y < p-1), ML-KEM encapsulation keys are all-zero polynomials (which
//! pass the FIPS 203 modulus check) with a non-zero seed.

use crate::codepoints::NamedGroup;

const P256_G: &str = "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";
const P384_G: &str = "04aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab73617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f";
const P521_G: &str = "0400c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66011839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650";
const BP256_G: &str = "048bd2aeb9cb7e57cb2c4b482ffc81b7afb9de27e1e3bd23c23a4453bd9ace3262547ef835c3dac4fd97f8461a14611dc9c27745132ded8e545c1d54c72f046997";
const BP384_G: &str = "041d1c64f068cf45ffa2a63a81b7c13f6b8847a3e77ef14fe3db7fcafe0cbd10e8e826e03436d646aaef87b2e247d4af1e8abe1d7520f9c2a45cb1eb8e95cfd55262b70b29feec5864e19c054ff99129280e4646217791811142820341263c5315";
const BP512_G: &str = "0481aee4bdd82ed9645a21322e9c4c6a9385ed9f70b5d916c1b43b62eef4d0098eff3b1f78e2d0d48d50d1687b93b97d5f7c6d5047406a5e688b352209bcb9f8227dde385d566332ecc0eabfa9cf7822fdf209f70024a57b1aa000c55b881f8111b2dcde494a5f485e5bca4bd88a2763aed1ca2b2fa8f0540678cd1e0f3ad80892";
const SM2_G: &str = "0432c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7bc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0";

fn hex(s: &str) -> Vec<u8> {
    s.as_bytes()
        .chunks_exact(2)
        .filter_map(|p| std::str::from_utf8(p).ok().and_then(|p| u8::from_str_radix(p, 16).ok()))
        .collect()
}

/// The X25519 base point u = 9 (RFC 7748 §4.1).
fn x25519() -> Vec<u8> {
    let mut v = vec![0u8; 32];
    if let Some(b) = v.first_mut() {
        *b = 9;
    }
    v
}

/// The X448 base point u = 5 (RFC 7748 §4.2).
fn x448() -> Vec<u8> {
    let mut v = vec![0u8; 56];
    if let Some(b) = v.first_mut() {
        *b = 5;
    }
    v
}

/// Y = 2, left-padded to the size of p (RFC 8446 §4.2.8.1).
fn ffdhe(bytes: usize) -> Vec<u8> {
    let mut v = vec![0u8; bytes];
    if let Some(b) = v.last_mut() {
        *b = 2;
    }
    v
}

/// An ML-KEM (or Kyber round 3) encapsulation key: 384·k bytes of zero
/// coefficients followed by a 32-byte seed.
fn mlkem(k: usize) -> Vec<u8> {
    let mut v = vec![0u8; 384 * k];
    v.extend(std::iter::repeat_n(0x5a, 32));
    v
}

fn cat(a: Vec<u8>, b: Vec<u8>) -> Vec<u8> {
    let mut v = a;
    v.extend_from_slice(&b);
    v
}

/// A client key share for `group`, or `None` where the group has no TLS 1.3
/// key share (TLS 1.2-only curves, GREASE) or its shape is unknown.
pub fn client_share(group: NamedGroup) -> Option<Vec<u8>> {
    Some(match group.0 {
        0x0017 => hex(P256_G),
        0x0018 => hex(P384_G),
        0x0019 => hex(P521_G),
        0x001d => x25519(),
        0x001e => x448(),
        0x001f => hex(BP256_G),
        0x0020 => hex(BP384_G),
        0x0021 => hex(BP512_G),
        // GOST R 34.10-2012 (RFC 9367 §3.3): x || y, little-endian, 64 or 128 bytes.
        0x0022..=0x0025 => vec![0x01; 64],
        0x0026..=0x0028 => vec![0x01; 128],
        0x0029 => hex(SM2_G),
        0x0100 => ffdhe(256),
        0x0101 => ffdhe(384),
        0x0102 => ffdhe(512),
        0x0103 => ffdhe(768),
        0x0104 => ffdhe(1024),
        0x0200 => mlkem(2),
        0x0201 => mlkem(3),
        0x0202 => mlkem(4),
        // draft-ietf-tls-ecdhe-mlkem: ECDH share first for the NIST curves,
        // ML-KEM first for X25519.
        0x11eb => cat(hex(P256_G), mlkem(3)),
        0x11ec => cat(mlkem(3), x25519()),
        0x11ed => cat(hex(P384_G), mlkem(4)),
        0x11ee => cat(hex(SM2_G), mlkem(3)),
        // draft-tls-westerbaan-xyber768d00: X25519 share first.
        0x6399 => cat(x25519(), mlkem(3)),
        0x639a => cat(hex(P256_G), mlkem(3)),
        0xfe30 => cat(x25519(), mlkem(2)),
        // CECPQ2 (BoringSSL): X25519 share, then a 1138-byte HRSS key.
        0x4138 => cat(x25519(), vec![0x01; 1138]),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::GROUPS;

    #[test]
    fn shares_have_the_registered_sizes() {
        let mut checked = 0;
        for g in GROUPS.iter() {
            if let (Some(len), Some(share)) = (g.client_share_len, client_share(g.id)) {
                assert_eq!(share.len(), usize::from(len), "{:?}", g.id);
                checked += 1;
            }
        }
        assert!(checked >= 17, "{checked}");
    }

    #[test]
    fn every_tls13_ec_and_ff_group_has_a_share() {
        for g in GROUPS.iter().filter(|g| g.tls13) {
            assert!(client_share(g.id).is_some(), "{:?}", g.id);
        }
    }

    #[test]
    fn points_are_uncompressed() {
        for g in [NamedGroup::SECP256R1, NamedGroup::SECP384R1, NamedGroup::SECP521R1] {
            assert_eq!(client_share(g).unwrap().first(), Some(&4));
        }
    }
}
