//! The key-exchange values of the emulator's ServerKeyExchange: a real
//! ephemeral public key for the chosen curve, and real DHE parameters (a
//! safe prime of the profile's size, g = 2, Ys = g^x mod p). Pure: the
//! caller passes the byte source. The private halves are thrown away at
//! once — the emulator never computes a shared secret — so they come from
//! the emulator's own byte source, not the OS.

use super::responder::Bytes;
use hsscan_wire::NamedGroup;
use std::sync::OnceLock;

/// The groups, one per size (`src/emulate/dh-groups.txt`, sources there).
const DH_GROUPS: &str = include_str!("dh-groups.txt");

/// A finite-field group for DHE.
#[derive(Debug)]
pub struct DhGroup {
    pub bits: usize,
    pub name: &'static str,
    /// The prime, big-endian.
    pub p: Vec<u8>,
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

fn groups() -> &'static [DhGroup] {
    static GROUPS: OnceLock<Vec<DhGroup>> = OnceLock::new();
    GROUPS.get_or_init(|| {
        DH_GROUPS
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let bits = f.next()?.parse().ok()?;
                let name = f.next()?;
                let _source = f.next()?;
                let p = unhex(f.next()?)?;
                Some(DhGroup { bits, name, p })
            })
            .collect()
    })
}

/// The group of `bits` bits, if the emulator has one.
pub fn dh_group(bits: usize) -> Option<&'static DhGroup> {
    groups().iter().find(|g| g.bits == bits)
}

/// The sizes the emulator has a group for.
pub fn dh_sizes() -> Vec<usize> {
    groups().iter().map(|g| g.bits).collect()
}

/// Ys = 2^x mod p for a fresh 256-bit x, left-padded to the prime's length.
/// A 256-bit exponent is what real servers use for these groups (2 × the
/// 128-bit strength of ffdhe3072; RFC 7919 §5.2), and it keeps the
/// exponentiation cheap in a debug build.
pub fn dh_public(group: &DhGroup, rng: &mut Bytes) -> Vec<u8> {
    let p = rsa::BigUint::from_bytes_be(&group.p);
    let mut x: [u8; 32] = rng.fill();
    // 2^255 <= x < q, and 2 has order q: Ys is neither 1 nor p - 1.
    x[0] |= 0x80;
    let y = rsa::BigUint::from(2u32).modpow(&rsa::BigUint::from_bytes_be(&x), &p);
    let bytes = y.to_bytes_be();
    let mut out = vec![0u8; group.p.len().saturating_sub(bytes.len())];
    out.extend(bytes);
    out
}

/// A real ephemeral public value for `group`, or `None` for curves the
/// emulator has no arithmetic for.
pub fn ecdh_public(group: NamedGroup, rng: &mut Bytes) -> Option<Vec<u8>> {
    match group {
        NamedGroup::X25519 => {
            // Any u-coordinate is a valid X25519 public value to a client
            // (RFC 7748 §5); the top bit is masked as a sender must.
            let mut u: [u8; 32] = rng.fill();
            u[31] &= 0x7f;
            Some(u.to_vec())
        }
        // Uncompressed points (RFC 8422 §5.4); a scalar out of range is
        // drawn again.
        NamedGroup::SECP256R1 => (0..16).find_map(|_| {
            let k = p256::SecretKey::from_slice(&rng.fill::<32>()).ok()?;
            Some(k.public_key().to_sec1_bytes().into_vec())
        }),
        NamedGroup::SECP384R1 => (0..16).find_map(|_| {
            let k = p384::SecretKey::from_slice(&rng.fill::<48>()).ok()?;
            Some(k.public_key().to_sec1_bytes().into_vec())
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_group_is_an_odd_prime_of_its_size_with_2_a_square() {
        let sizes = dh_sizes();
        assert_eq!(sizes, [512, 1024, 1536, 2048, 3072, 4096, 6144, 8192]);
        for g in groups() {
            let p = rsa::BigUint::from_bytes_be(&g.p);
            assert_eq!(p.bits(), g.bits, "{}", g.name);
            // p = 7 (mod 8): 2 is a quadratic residue, so 2^q = 1 (Euler).
            assert_eq!(g.p.last().map(|b| b & 7), Some(7), "{}", g.name);
            if g.bits <= 2048 {
                let one = rsa::BigUint::from(1u32);
                let q = (&p - &one) >> 1usize;
                assert_eq!(rsa::BigUint::from(2u32).modpow(&q, &p), one, "{}", g.name);
            }
        }
        assert_eq!(dh_group(2048).map(|g| g.name), Some("ffdhe2048"));
        assert_eq!(dh_group(1024).map(|g| g.name), Some("rfc2409-group2"));
        assert!(dh_group(1000).is_none());
    }

    #[test]
    fn dh_public_is_in_range_and_full_length() {
        let g = dh_group(1024).unwrap();
        let y = dh_public(g, &mut Bytes::new(3));
        assert_eq!(y.len(), 128);
        let y = rsa::BigUint::from_bytes_be(&y);
        let p = rsa::BigUint::from_bytes_be(&g.p);
        assert!(y > rsa::BigUint::from(1u32) && y < p - 1u32);
    }

    #[test]
    fn ecdh_points_are_on_their_curves() {
        let mut rng = Bytes::new(5);
        let p = ecdh_public(NamedGroup::SECP256R1, &mut rng).unwrap();
        assert!(p256::PublicKey::from_sec1_bytes(&p).is_ok());
        assert_eq!(p.len(), 65);
        let p = ecdh_public(NamedGroup::SECP384R1, &mut rng).unwrap();
        assert!(p384::PublicKey::from_sec1_bytes(&p).is_ok());
        assert_eq!(ecdh_public(NamedGroup::X25519, &mut rng).map(|u| u.len()), Some(32));
        assert_eq!(ecdh_public(NamedGroup(0x0019), &mut rng), None);
    }
}
