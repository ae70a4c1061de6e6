//! The TLS 1.3 key schedule (RFC 8446 §7.1) as far as the server's first
//! flight: the handshake secret, the server's handshake traffic secret and
//! its write key and IV (§7.3), and the record protection that uses them
//! (§5.2, §5.3). Nothing past the handshake secret is derived: hsscan
//! never sends a Finished, so it needs no client keys and no master secret.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use hsscan_wire::CipherSuite;
use sha2::{Digest, Sha256, Sha384};

/// The hash of a TLS 1.3 suite: the transcript hash and the HKDF hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
}

impl Hash {
    /// Bytes of a digest.
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
        }
    }

    /// The hash of `parts` concatenated.
    pub fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        match self {
            Self::Sha256 => {
                let mut h = Sha256::new();
                parts.iter().for_each(|p| h.update(p));
                h.finalize().to_vec()
            }
            Self::Sha384 => {
                let mut h = Sha384::new();
                parts.iter().for_each(|p| h.update(p));
                h.finalize().to_vec()
            }
        }
    }

    /// HKDF-Extract(salt, IKM) (RFC 5869 §2.2).
    pub fn extract(self, salt: &[u8], ikm: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => hkdf::Hkdf::<Sha256>::extract(Some(salt), ikm).0.to_vec(),
            Self::Sha384 => hkdf::Hkdf::<Sha384>::extract(Some(salt), ikm).0.to_vec(),
        }
    }

    /// HKDF-Expand-Label(Secret, Label, Context, Length) (RFC 8446 §7.1).
    /// `None` only for a secret shorter than the hash or a length over
    /// 255 hashes, which the schedule never asks for.
    pub fn expand_label(self, secret: &[u8], label: &str, context: &[u8], len: usize) -> Option<Vec<u8>> {
        let full = [b"tls13 ".as_slice(), label.as_bytes()].concat();
        let mut info = Vec::with_capacity(4 + full.len() + context.len());
        info.extend_from_slice(&u16::try_from(len).ok()?.to_be_bytes());
        info.push(u8::try_from(full.len()).ok()?);
        info.extend_from_slice(&full);
        info.push(u8::try_from(context.len()).ok()?);
        info.extend_from_slice(context);
        let mut out = vec![0u8; len];
        match self {
            Self::Sha256 => hkdf::Hkdf::<Sha256>::from_prk(secret)
                .ok()?
                .expand(&info, &mut out)
                .ok()?,
            Self::Sha384 => hkdf::Hkdf::<Sha384>::from_prk(secret)
                .ok()?
                .expand(&info, &mut out)
                .ok()?,
        }
        Some(out)
    }

    /// Derive-Secret(Secret, Label, Messages), with the transcript hash
    /// of the messages already taken.
    pub fn derive_secret(self, secret: &[u8], label: &str, transcript_hash: &[u8]) -> Option<Vec<u8>> {
        self.expand_label(secret, label, transcript_hash, self.output_len())
    }
}

/// The AEAD of a TLS 1.3 suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
}

impl Cipher {
    fn key_len(self) -> usize {
        match self {
            Self::Aes128Gcm => 16,
            Self::Aes256Gcm | Self::ChaCha20Poly1305 => 32,
        }
    }
}

/// A TLS 1.3 suite we can decrypt. The CCM suites (0x1304, 0x1305) are
/// not offered by the certificate hello, so a server never picks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suite {
    pub id: CipherSuite,
    pub cipher: Cipher,
    pub hash: Hash,
}

impl Suite {
    /// The suites the certificate hello offers, in OpenSSL's order.
    pub const OFFERED: [CipherSuite; 3] = [CipherSuite(0x1302), CipherSuite(0x1303), CipherSuite(0x1301)];

    pub fn of(id: CipherSuite) -> Option<Self> {
        let (cipher, hash) = match id.0 {
            0x1301 => (Cipher::Aes128Gcm, Hash::Sha256),
            0x1302 => (Cipher::Aes256Gcm, Hash::Sha384),
            0x1303 => (Cipher::ChaCha20Poly1305, Hash::Sha256),
            _ => return None,
        };
        Some(Self { id, cipher, hash })
    }
}

/// The secrets of the handshake as far as the server's first flight.
#[derive(Clone, PartialEq, Eq)]
pub struct HandshakeSecrets {
    pub handshake_secret: Vec<u8>,
    pub server_handshake_traffic_secret: Vec<u8>,
}

impl std::fmt::Debug for HandshakeSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Throwaway secrets, but still not for logs.
        f.write_str("HandshakeSecrets(..)")
    }
}

/// RFC 8446 §7.1 from the (EC)DHE shared secret and the transcript hash
/// of ClientHello…ServerHello, without a PSK (the early secret's IKM is
/// a string of zeros).
pub fn handshake_secrets(hash: Hash, shared: &[u8], hello_hash: &[u8]) -> Option<HandshakeSecrets> {
    let zeros = vec![0u8; hash.output_len()];
    let early = hash.extract(&zeros, &zeros);
    let empty_hash = hash.digest(&[]);
    let derived = hash.derive_secret(&early, "derived", &empty_hash)?;
    let handshake_secret = hash.extract(&derived, shared);
    let server_handshake_traffic_secret = hash.derive_secret(&handshake_secret, "s hs traffic", hello_hash)?;
    Some(HandshakeSecrets {
        handshake_secret,
        server_handshake_traffic_secret,
    })
}

/// Opens the records of one direction under one traffic secret: the
/// write key and IV of RFC 8446 §7.3, the per-record nonce of §5.3, and
/// the record header as the additional data (§5.2).
pub struct RecordOpener {
    cipher: Cipher,
    key: Vec<u8>,
    iv: [u8; 12],
    seq: u64,
}

impl std::fmt::Debug for RecordOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordOpener")
            .field("cipher", &self.cipher)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

/// A record that does not open under the keys: a wrong key, a corrupted
/// record, or a server that sends something other than TLS 1.3 records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("record {seq} does not decrypt under the server's handshake keys")]
pub struct OpenError {
    pub seq: u64,
}

impl RecordOpener {
    pub fn new(suite: Suite, traffic_secret: &[u8]) -> Option<Self> {
        let key = suite
            .hash
            .expand_label(traffic_secret, "key", &[], suite.cipher.key_len())?;
        let iv: [u8; 12] = suite
            .hash
            .expand_label(traffic_secret, "iv", &[], 12)?
            .try_into()
            .ok()?;
        Some(Self {
            cipher: suite.cipher,
            key,
            iv,
            seq: 0,
        })
    }

    /// The write key and IV, for tests against published traces.
    pub fn key_and_iv(&self) -> (&[u8], &[u8; 12]) {
        (&self.key, &self.iv)
    }

    /// Decrypts one TLSCiphertext (`header` is its five bytes, `body` the
    /// encrypted_record) and returns the inner content type and content,
    /// padding removed (RFC 8446 §5.4).
    pub fn open(&mut self, header: &[u8], body: &[u8]) -> Result<(u8, Vec<u8>), OpenError> {
        let seq = self.seq;
        let err = OpenError { seq };
        let mut nonce = self.iv;
        for (n, s) in nonce.iter_mut().skip(4).zip(seq.to_be_bytes()) {
            *n ^= s;
        }
        let payload = Payload { msg: body, aad: header };
        let plain = match self.cipher {
            Cipher::Aes128Gcm => aes_gcm::Aes128Gcm::new_from_slice(&self.key)
                .map_err(|_| err)?
                .decrypt((&nonce).into(), payload),
            Cipher::Aes256Gcm => aes_gcm::Aes256Gcm::new_from_slice(&self.key)
                .map_err(|_| err)?
                .decrypt((&nonce).into(), payload),
            Cipher::ChaCha20Poly1305 => chacha20poly1305::ChaCha20Poly1305::new_from_slice(&self.key)
                .map_err(|_| err)?
                .decrypt((&nonce).into(), payload),
        }
        .map_err(|_| err)?;
        self.seq += 1;
        let mut plain = plain;
        // TLSInnerPlaintext: content, the content type, then zero padding.
        while plain.last() == Some(&0) {
            plain.pop();
        }
        let typ = plain.pop().ok_or(err)?;
        Ok((typ, plain))
    }
}
