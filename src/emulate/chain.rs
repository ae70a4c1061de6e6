//! The emulator's certificate chains: an ECDSA P-256 CA and intermediate
//! made at start with rcgen, and two leaves for the profile's host name —
//! one ECDSA P-256, one RSA 2048. The emulator never signs anything (it
//! completes no handshake), so the RSA leaf carries a public key that has
//! no private half: a 2048-bit odd modulus drawn at start, exponent 65537.

use anyhow::{anyhow, Context as _};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, PublicKeyData, SignatureAlgorithm};
use sha2::{Digest as _, Sha256};

/// DER certificates, leaf first.
#[derive(Debug, Clone, Default)]
pub struct Chains {
    pub rsa: Vec<Vec<u8>>,
    pub ecdsa: Vec<Vec<u8>>,
}

/// An RSA public key for the leaf, with no private key behind it.
struct BareRsaKey {
    der: Vec<u8>,
}

impl PublicKeyData for BareRsaKey {
    fn der_bytes(&self) -> &[u8] {
        &self.der
    }
    fn algorithm(&self) -> &SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

/// DER length octets.
fn der_len(n: usize) -> Vec<u8> {
    match n {
        0..=0x7f => vec![n as u8],
        0x80..=0xff => vec![0x81, n as u8],
        _ => vec![0x82, (n >> 8) as u8, (n & 0xff) as u8],
    }
}

fn der(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend(der_len(body.len()));
    v.extend_from_slice(body);
    v
}

/// RSAPublicKey (RFC 8017 A.1.1) with a 2048-bit modulus from `seed`.
fn bare_rsa(seed: &[u8]) -> BareRsaKey {
    let mut modulus = Vec::with_capacity(257);
    let mut counter = 0u32;
    while modulus.len() < 256 {
        let block = Sha256::new()
            .chain_update(seed)
            .chain_update(counter.to_be_bytes())
            .finalize();
        modulus.extend_from_slice(&block);
        counter += 1;
    }
    modulus.truncate(256);
    if let Some(first) = modulus.first_mut() {
        *first |= 0x80;
    }
    if let Some(last) = modulus.last_mut() {
        *last |= 1;
    }
    // A leading zero keeps the INTEGER positive.
    let mut n = vec![0u8];
    n.extend(modulus);
    let mut body = der(0x02, &n);
    body.extend(der(0x02, &[0x01, 0x00, 0x01]));
    BareRsaKey { der: der(0x30, &body) }
}

fn params(cn: &str, ca: bool, hostname: Option<&str>) -> anyhow::Result<CertificateParams> {
    let sans: Vec<String> = hostname.map(str::to_owned).into_iter().collect();
    let mut p = CertificateParams::new(sans).context("certificate parameters")?;
    p.distinguished_name.push(DnType::OrganizationName, "hsscan emulate");
    p.distinguished_name.push(DnType::CommonName, cn);
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(365);
    if ca {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    Ok(p)
}

impl Chains {
    /// Generates the chains for `hostname`.
    pub fn generate(hostname: &str) -> anyhow::Result<Self> {
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).context("CA key")?;
        let ca = params("hsscan emulate CA", true, None)?
            .self_signed(&ca_key)
            .context("CA certificate")?;
        let int_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).context("intermediate key")?;
        let int = params("hsscan emulate intermediate", true, None)?
            .signed_by(&int_key, &ca, &ca_key)
            .context("intermediate certificate")?;
        let ec_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).context("leaf key")?;
        let ec_leaf = params(hostname, false, Some(hostname))?
            .signed_by(&ec_key, &int, &int_key)
            .context("ECDSA leaf")?;
        let seed = Sha256::digest(ec_key.public_key_der());
        let rsa_leaf = params(hostname, false, Some(hostname))?
            .signed_by(&bare_rsa(&seed), &int, &int_key)
            .context("RSA leaf")?;
        let int_der = int.der().to_vec();
        Ok(Self {
            rsa: vec![rsa_leaf.der().to_vec(), int_der.clone()],
            ecdsa: vec![ec_leaf.der().to_vec(), int_der],
        })
    }

    /// Replaces the chain of the leaf's key type with the PEM file's
    /// certificates (leaf first).
    pub fn load_pem(&mut self, path: &std::path::Path) -> anyhow::Result<()> {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let mut ders = Vec::new();
        for pem in x509_parser::pem::Pem::iter_from_buffer(&text) {
            let pem = pem.map_err(|e| anyhow!("{}: not PEM: {e}", path.display()))?;
            if pem.label == "CERTIFICATE" {
                ders.push(pem.contents);
            }
        }
        let leaf = ders
            .first()
            .ok_or_else(|| anyhow!("{}: no CERTIFICATE block", path.display()))?;
        let (_, cert) = x509_parser::parse_x509_certificate(leaf)
            .map_err(|e| anyhow!("{}: the first certificate does not parse: {e}", path.display()))?;
        let oid = cert.public_key().algorithm.algorithm.to_id_string();
        match oid.as_str() {
            "1.2.840.10045.2.1" => self.ecdsa = ders,
            _ => self.rsa = ders,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_chains_parse_with_the_right_keys() {
        let c = Chains::generate("mx.emulated.test").unwrap();
        let (_, rsa) = x509_parser::parse_x509_certificate(&c.rsa[0]).unwrap();
        let (_, ec) = x509_parser::parse_x509_certificate(&c.ecdsa[0]).unwrap();
        assert_eq!(
            rsa.public_key().algorithm.algorithm.to_id_string(),
            "1.2.840.113549.1.1.1"
        );
        assert_eq!(ec.public_key().algorithm.algorithm.to_id_string(), "1.2.840.10045.2.1");
        match rsa.public_key().parsed().unwrap() {
            x509_parser::public_key::PublicKey::RSA(k) => assert_eq!(k.key_size(), 2048),
            other => panic!("{other:?}"),
        }
        assert_eq!(rsa.issuer(), ec.issuer());
        assert_eq!(c.rsa.len(), 2);
    }
}
