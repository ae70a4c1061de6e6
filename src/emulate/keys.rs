//! The emulator's private keys and the ServerKeyExchange signatures made
//! with them. A key comes from `--key PEM` (RSA in PKCS#1 or PKCS#8, EC
//! P-256/P-384 in SEC1 or PKCS#8), from rcgen at start (the ECDSA P-256
//! leaf), or is the fixed RSA key below.
//!
//! Signatures follow the version: TLS 1.0/1.1 (and SSLv3) sign with RSA
//! over MD5 ‖ SHA-1 with PKCS#1 v1.5 and no DigestInfo (RFC 4346 §7.4.3)
//! and with ECDSA over SHA-1 (RFC 4492 §5.4); TLS 1.2 signs with the
//! negotiated SignatureScheme (RFC 5246 §7.4.1.4.1). The digests are
//! computed here and handed to the signers as prehashes, so one digest
//! generation (sha2, sha1, md-5) serves RSA and ECDSA alike.

use anyhow::{anyhow, bail, Context as _};
use hsscan_wire::SignatureScheme;
use p256::ecdsa::signature::hazmat::PrehashSigner as _;
use rsa::pkcs1::{DecodeRsaPrivateKey as _, DecodeRsaPublicKey as _, EncodeRsaPublicKey as _};
use rsa::pkcs8::DecodePrivateKey as _;
use sha2::Digest as _;

/// The RSA key of the emulator's generated RSA leaf. Not a secret: it is
/// checked in, guards nothing, and signs only the emulator's own
/// ServerKeyExchange parameters. It was made once with `openssl genpkey
/// -algorithm RSA -pkeyopt rsa_keygen_bits:2048`, because generating an
/// RSA 2048 key in pure Rust takes 2–5 s in a debug build here.
const EMULATOR_RSA_KEY: &str = include_str!("emulator-rsa-2048.pem");

/// A private key the emulator signs with.
#[derive(Clone)]
pub enum PrivateKey {
    Rsa(Box<rsa::RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

impl std::fmt::Debug for PrivateKey {
    // Never prints the key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({})", self.describe())
    }
}

/// How a ServerKeyExchange is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// SSLv3–TLS 1.1 with RSA: MD5 ‖ SHA-1, PKCS#1 v1.5 without DigestInfo.
    Md5Sha1,
    /// SSLv3–TLS 1.1 with ECDSA: SHA-1.
    Sha1,
    /// TLS 1.2: the SignatureScheme that is also sent.
    Scheme(SignatureScheme),
}

impl Method {
    /// The method's name as the log prints it.
    pub fn name(self) -> String {
        match self {
            Self::Md5Sha1 => "RSA MD5-SHA1".to_owned(),
            Self::Sha1 => "ECDSA SHA1".to_owned(),
            Self::Scheme(s) => s.name().map_or_else(|| s.hex(), str::to_owned),
        }
    }
}

/// The hash of a TLS 1.2 scheme this module can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => sha1::Sha1::digest(message).to_vec(),
            Self::Sha256 => sha2::Sha256::digest(message).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(message).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(message).to_vec(),
        }
    }
}

/// What a TLS 1.2 scheme asks for: the key family, the hash, PSS or not.
fn scheme_parts(s: SignatureScheme) -> Option<(Family, Hash, bool)> {
    Some(match s {
        SignatureScheme::RSA_PKCS1_SHA1 => (Family::Rsa, Hash::Sha1, false),
        SignatureScheme::RSA_PKCS1_SHA256 => (Family::Rsa, Hash::Sha256, false),
        SignatureScheme::RSA_PKCS1_SHA384 => (Family::Rsa, Hash::Sha384, false),
        SignatureScheme::RSA_PKCS1_SHA512 => (Family::Rsa, Hash::Sha512, false),
        SignatureScheme::RSA_PSS_RSAE_SHA256 => (Family::Rsa, Hash::Sha256, true),
        SignatureScheme::RSA_PSS_RSAE_SHA384 => (Family::Rsa, Hash::Sha384, true),
        SignatureScheme::RSA_PSS_RSAE_SHA512 => (Family::Rsa, Hash::Sha512, true),
        SignatureScheme::ECDSA_SHA1 => (Family::Ec, Hash::Sha1, false),
        // TLS 1.2 binds no curve to these (RFC 8446 §4.2.3 does, for 1.3).
        SignatureScheme::ECDSA_SECP256R1_SHA256 => (Family::Ec, Hash::Sha256, false),
        SignatureScheme::ECDSA_SECP384R1_SHA384 => (Family::Ec, Hash::Sha384, false),
        SignatureScheme::ECDSA_SECP521R1_SHA512 => (Family::Ec, Hash::Sha512, false),
        _ => return None,
    })
}

/// Which certificate slot a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Rsa,
    Ec,
}

/// Whether a key of `family` can make a TLS 1.2 signature with `scheme`.
pub fn can_sign(family: Family, scheme: SignatureScheme) -> bool {
    scheme_parts(scheme).is_some_and(|(f, _, _)| f == family)
}

/// The TLS 1.2 schemes a key of each family can sign with, in the order a
/// server without its own list prefers them: SHA-256 first, SHA-1 last.
pub fn default_schemes(family: Family) -> &'static [SignatureScheme] {
    match family {
        Family::Rsa => &[
            SignatureScheme::RSA_PSS_RSAE_SHA256,
            SignatureScheme::RSA_PKCS1_SHA256,
            SignatureScheme::RSA_PSS_RSAE_SHA384,
            SignatureScheme::RSA_PKCS1_SHA384,
            SignatureScheme::RSA_PSS_RSAE_SHA512,
            SignatureScheme::RSA_PKCS1_SHA512,
            SignatureScheme::RSA_PKCS1_SHA1,
        ],
        Family::Ec => &[
            SignatureScheme::ECDSA_SECP256R1_SHA256,
            SignatureScheme::ECDSA_SECP384R1_SHA384,
            SignatureScheme::ECDSA_SECP521R1_SHA512,
            SignatureScheme::ECDSA_SHA1,
        ],
    }
}

/// Left-pads a digest shorter than the curve's field with zeros: the same
/// integer (FIPS 186-5 §6.4.1 takes the digest as a number), in the length
/// every curve accepts as a prehash.
fn field_sized(digest: Vec<u8>, field: usize) -> Vec<u8> {
    if digest.len() >= field {
        return digest;
    }
    let mut v = vec![0u8; field - digest.len()];
    v.extend(digest);
    v
}

impl PrivateKey {
    /// The fixed RSA 2048 key of the generated RSA leaf.
    pub fn emulator_rsa() -> anyhow::Result<Self> {
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(EMULATOR_RSA_KEY).context("the emulator's RSA key")?;
        Ok(Self::Rsa(Box::new(key)))
    }

    /// The key of a PKCS#8 DER private key (RSA, P-256 or P-384).
    pub fn from_pkcs8_der(der: &[u8]) -> anyhow::Result<Self> {
        if let Ok(k) = rsa::RsaPrivateKey::from_pkcs8_der(der) {
            return Ok(Self::Rsa(Box::new(k)));
        }
        if let Ok(k) = p256::SecretKey::from_pkcs8_der(der) {
            return Ok(Self::P256(k.into()));
        }
        if let Ok(k) = p384::SecretKey::from_pkcs8_der(der) {
            return Ok(Self::P384(k.into()));
        }
        bail!("not an RSA, P-256 or P-384 PKCS#8 private key")
    }

    /// Every private key in a PEM file: `RSA PRIVATE KEY` (PKCS#1), `EC
    /// PRIVATE KEY` (SEC1) or `PRIVATE KEY` (PKCS#8). Other blocks
    /// (certificates, EC PARAMETERS) are skipped.
    pub fn load_pem(path: &std::path::Path) -> anyhow::Result<Vec<Self>> {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let mut keys = Vec::new();
        for pem in x509_parser::pem::Pem::iter_from_buffer(&text) {
            let pem = pem.map_err(|e| anyhow!("{}: not PEM: {e}", path.display()))?;
            let der = pem.contents.as_slice();
            let key = match pem.label.as_str() {
                "RSA PRIVATE KEY" => rsa::RsaPrivateKey::from_pkcs1_der(der)
                    .map(|k| Self::Rsa(Box::new(k)))
                    .map_err(|e| anyhow!("{e}")),
                "EC PRIVATE KEY" => p256::SecretKey::from_sec1_der(der)
                    .map(|k| Self::P256(k.into()))
                    .or_else(|_| p384::SecretKey::from_sec1_der(der).map(|k| Self::P384(k.into())))
                    .map_err(|_| anyhow!("not a P-256 or P-384 SEC1 key")),
                "PRIVATE KEY" => Self::from_pkcs8_der(der),
                "ENCRYPTED PRIVATE KEY" => Err(anyhow!(
                    "the key is encrypted; decrypt it first (openssl pkey -in KEY -out PLAIN)"
                )),
                _ => continue,
            };
            keys.push(key.with_context(|| format!("{}: the {} block", path.display(), pem.label))?);
        }
        if keys.is_empty() {
            bail!(
                "{}: no private key (RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY block)",
                path.display()
            );
        }
        Ok(keys)
    }

    pub fn family(&self) -> Family {
        match self {
            Self::Rsa(_) => Family::Rsa,
            Self::P256(_) | Self::P384(_) => Family::Ec,
        }
    }

    /// The named curve of an EC key.
    pub fn curve(&self) -> Option<hsscan_wire::NamedGroup> {
        match self {
            Self::Rsa(_) => None,
            Self::P256(_) => Some(hsscan_wire::NamedGroup::SECP256R1),
            Self::P384(_) => Some(hsscan_wire::NamedGroup::SECP384R1),
        }
    }

    /// "RSA 2048", "ECDSA P-256".
    pub fn describe(&self) -> String {
        use rsa::traits::PublicKeyParts as _;
        match self {
            Self::Rsa(k) => format!("RSA {}", k.n().bits()),
            Self::P256(_) => "ECDSA P-256".to_owned(),
            Self::P384(_) => "ECDSA P-384".to_owned(),
        }
    }

    /// The subjectPublicKey of a certificate for this key (RSAPublicKey
    /// DER, or an uncompressed SEC1 point) and the rcgen algorithm that
    /// names its type.
    pub fn subject_public_key(&self) -> anyhow::Result<(Vec<u8>, &'static rcgen::SignatureAlgorithm)> {
        Ok(match self {
            Self::Rsa(k) => (
                k.to_public_key()
                    .to_pkcs1_der()
                    .context("encoding the RSA public key")?
                    .into_vec(),
                &rcgen::PKCS_RSA_SHA256,
            ),
            Self::P256(k) => (
                p256::PublicKey::from(k.verifying_key()).to_sec1_bytes().into_vec(),
                &rcgen::PKCS_ECDSA_P256_SHA256,
            ),
            Self::P384(k) => (
                p384::PublicKey::from(k.verifying_key()).to_sec1_bytes().into_vec(),
                &rcgen::PKCS_ECDSA_P384_SHA384,
            ),
        })
    }

    /// Whether a certificate's subjectPublicKey (the BIT STRING's bytes)
    /// is this key's public half, compared as keys, not as encodings.
    pub fn matches(&self, subject_public_key: &[u8]) -> bool {
        match self {
            Self::Rsa(k) => rsa::RsaPublicKey::from_pkcs1_der(subject_public_key).is_ok_and(|p| p == k.to_public_key()),
            Self::P256(k) => p256::PublicKey::from_sec1_bytes(subject_public_key)
                .is_ok_and(|p| p == p256::PublicKey::from(k.verifying_key())),
            Self::P384(k) => p384::PublicKey::from_sec1_bytes(subject_public_key)
                .is_ok_and(|p| p == p384::PublicKey::from(k.verifying_key())),
        }
    }

    /// Signs `message` (client_random ‖ server_random ‖ params).
    pub fn sign(&self, method: Method, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        let (hash, pss) = match method {
            Method::Md5Sha1 => {
                let Self::Rsa(k) = self else {
                    bail!("md5-sha1 signatures are RSA only");
                };
                let mut both = md5::Md5::digest(message).to_vec();
                both.extend(sha1::Sha1::digest(message));
                // Blinded (an OS random), as a --key may be a real one.
                return k
                    .sign_with_rng(&mut rsa::rand_core::OsRng, rsa::Pkcs1v15Sign::new_unprefixed(), &both)
                    .context("RSA signature");
            }
            Method::Sha1 => (Hash::Sha1, false),
            Method::Scheme(s) => {
                let (family, hash, pss) = scheme_parts(s).ok_or_else(|| anyhow!("cannot sign with {}", s.hex()))?;
                if family != self.family() {
                    bail!("{} does not fit an {} key", method.name(), self.describe());
                }
                (hash, pss)
            }
        };
        let digest = hash.digest(message);
        match self {
            Self::Rsa(k) => {
                let mut rng = rsa::rand_core::OsRng;
                let signature = match (hash, pss) {
                    // RFC 8446 §4.2.3: the salt is as long as the digest.
                    (Hash::Sha256, true) => {
                        k.sign_with_rng(&mut rng, rsa::Pss::new_with_salt::<sha2::Sha256>(32), &digest)
                    }
                    (Hash::Sha384, true) => {
                        k.sign_with_rng(&mut rng, rsa::Pss::new_with_salt::<sha2::Sha384>(48), &digest)
                    }
                    (Hash::Sha512, true) => {
                        k.sign_with_rng(&mut rng, rsa::Pss::new_with_salt::<sha2::Sha512>(64), &digest)
                    }
                    (Hash::Sha1, _) => k.sign_with_rng(&mut rng, rsa::Pkcs1v15Sign::new::<sha1::Sha1>(), &digest),
                    (Hash::Sha256, false) => {
                        k.sign_with_rng(&mut rng, rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &digest)
                    }
                    (Hash::Sha384, false) => {
                        k.sign_with_rng(&mut rng, rsa::Pkcs1v15Sign::new::<sha2::Sha384>(), &digest)
                    }
                    (Hash::Sha512, false) => {
                        k.sign_with_rng(&mut rng, rsa::Pkcs1v15Sign::new::<sha2::Sha512>(), &digest)
                    }
                };
                signature.context("RSA signature")
            }
            // ECDSA-Sig-Value in DER (RFC 4492 §5.4), deterministic (RFC 6979).
            Self::P256(k) => {
                let s: p256::ecdsa::DerSignature = k
                    .sign_prehash(&field_sized(digest, 32))
                    .map_err(|e| anyhow!("ECDSA signature: {e}"))?;
                Ok(s.as_bytes().to_vec())
            }
            Self::P384(k) => {
                let s: p384::ecdsa::DerSignature = k
                    .sign_prehash(&field_sized(digest, 48))
                    .map_err(|e| anyhow!("ECDSA signature: {e}"))?;
                Ok(s.as_bytes().to_vec())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashVerifier as _;

    #[test]
    fn the_fixed_rsa_key_is_rsa_2048() {
        let k = PrivateKey::emulator_rsa().unwrap();
        assert_eq!(k.describe(), "RSA 2048");
        let (der, _) = k.subject_public_key().unwrap();
        assert!(k.matches(&der));
    }

    #[test]
    fn tls10_rsa_signature_is_pkcs1_over_md5_and_sha1_without_digest_info() {
        let k = PrivateKey::emulator_rsa().unwrap();
        let PrivateKey::Rsa(rsa_key) = &k else { unreachable!() };
        let message = b"client random, server random, params";
        let sig = k.sign(Method::Md5Sha1, message).unwrap();
        assert_eq!(sig.len(), 256);
        let mut both = md5::Md5::digest(message).to_vec();
        both.extend(sha1::Sha1::digest(message));
        rsa_key
            .to_public_key()
            .verify(rsa::Pkcs1v15Sign::new_unprefixed(), &both, &sig)
            .unwrap();
    }

    #[test]
    fn tls12_rsa_schemes_verify() {
        let k = PrivateKey::emulator_rsa().unwrap();
        let PrivateKey::Rsa(rsa_key) = &k else { unreachable!() };
        let public = rsa_key.to_public_key();
        let m = b"params";
        let sig = k.sign(Method::Scheme(SignatureScheme::RSA_PKCS1_SHA1), m).unwrap();
        public
            .verify(rsa::Pkcs1v15Sign::new::<sha1::Sha1>(), &sha1::Sha1::digest(m), &sig)
            .unwrap();
        let sig = k.sign(Method::Scheme(SignatureScheme::RSA_PSS_RSAE_SHA256), m).unwrap();
        public
            .verify(rsa::Pss::new::<sha2::Sha256>(), &sha2::Sha256::digest(m), &sig)
            .unwrap();
        assert!(k.sign(Method::Scheme(SignatureScheme::ECDSA_SHA1), m).is_err());
    }

    #[test]
    fn ecdsa_signs_sha1_on_p256_and_p384() {
        let m = b"params";
        let p256_key = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
        let k = PrivateKey::P256(p256_key.clone().into());
        let der = k.sign(Method::Sha1, m).unwrap();
        let sig = p256::ecdsa::DerSignature::from_bytes(&der).unwrap();
        p256::ecdsa::VerifyingKey::from(p256_key.public_key())
            .verify_prehash(&field_sized(sha1::Sha1::digest(m).to_vec(), 32), &sig)
            .unwrap();
        let p384_key = p384::SecretKey::from_slice(&[9u8; 48]).unwrap();
        let k = PrivateKey::P384(p384_key.clone().into());
        let der = k.sign(Method::Sha1, m).unwrap();
        let sig = p384::ecdsa::DerSignature::from_bytes(&der).unwrap();
        p384::ecdsa::VerifyingKey::from(p384_key.public_key())
            .verify_prehash(&field_sized(sha1::Sha1::digest(m).to_vec(), 48), &sig)
            .unwrap();
        let (point, _) = k.subject_public_key().unwrap();
        assert_eq!(point.first(), Some(&4), "uncompressed");
        assert!(k.matches(&point));
    }
}
