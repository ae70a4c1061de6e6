//! The emulator's certificate chains and their keys: an ECDSA P-256 CA
//! and intermediate made at start with rcgen, and two leaves for the
//! profile's host name — ECDSA P-256 on a key made at start, and RSA 2048
//! on the emulator's fixed RSA key ([`PrivateKey::emulator_rsa`]), since
//! an RSA key takes seconds to generate in a debug build. `--cert PEM`
//! replaces the chain of its key type; `--key PEM` supplies the private key
//! of a `--cert` leaf (matched by public key), or, with no `--cert` of its
//! type, is the key the generated leaf of that type is made on.

use super::keys::{Family, PrivateKey};
use anyhow::{anyhow, bail, Context as _};
use hsscan_wire::NamedGroup;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, PublicKeyData, SignatureAlgorithm};
use std::path::{Path, PathBuf};

/// One chain and the private key of its leaf.
#[derive(Debug, Clone, Default)]
pub struct Credential {
    /// DER certificates, leaf first.
    pub chain: Vec<Vec<u8>>,
    /// `None` for a `--cert` chain given without its `--key`: its
    /// ServerKeyExchange signatures are then filler.
    pub key: Option<PrivateKey>,
    /// The named curve of an ECDSA leaf's key.
    pub curve: Option<NamedGroup>,
}

/// The RSA and the ECDSA credential.
#[derive(Debug, Clone, Default)]
pub struct Chains {
    pub rsa: Credential,
    pub ecdsa: Credential,
}

/// The public half of a leaf key, as rcgen puts it in a certificate.
struct LeafKey {
    der: Vec<u8>,
    algorithm: &'static SignatureAlgorithm,
}

impl PublicKeyData for LeafKey {
    fn der_bytes(&self) -> &[u8] {
        &self.der
    }
    fn algorithm(&self) -> &SignatureAlgorithm {
        self.algorithm
    }
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

/// The generated intermediate that signs the generated leaves.
struct Issuer {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Issuer {
    fn generate() -> anyhow::Result<Self> {
        let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).context("CA key")?;
        let ca = params("hsscan emulate CA", true, None)?
            .self_signed(&ca_key)
            .context("CA certificate")?;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).context("intermediate key")?;
        let cert = params("hsscan emulate intermediate", true, None)?
            .signed_by(&key, &ca, &ca_key)
            .context("intermediate certificate")?;
        Ok(Self { cert, key })
    }

    /// A leaf for `hostname` on `key`, and the intermediate after it.
    fn leaf(&self, hostname: &str, key: PrivateKey) -> anyhow::Result<Credential> {
        let (der, algorithm) = key.subject_public_key()?;
        let leaf = params(hostname, false, Some(hostname))?
            .signed_by(&LeafKey { der, algorithm }, &self.cert, &self.key)
            .with_context(|| format!("{} leaf", key.describe()))?;
        Ok(Credential {
            chain: vec![leaf.der().to_vec(), self.cert.der().to_vec()],
            curve: key.curve(),
            key: Some(key),
        })
    }
}

/// A `--cert` file: its certificates, the leaf's key type and subjectPublicKey.
struct CertFile {
    path: PathBuf,
    ders: Vec<Vec<u8>>,
    family: Family,
    subject_public_key: Vec<u8>,
    curve: Option<NamedGroup>,
}

fn read_cert_file(path: &Path) -> anyhow::Result<CertFile> {
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
    let spki = cert.public_key();
    let family = match spki.algorithm.algorithm.to_id_string().as_str() {
        "1.2.840.10045.2.1" => Family::Ec,
        _ => Family::Rsa,
    };
    let subject_public_key = spki.subject_public_key.data.to_vec();
    // id-ecPublicKey's parameters: the namedCurve OID (RFC 5480 §2.1.1.1).
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .and_then(|oid| match oid.to_id_string().as_str() {
            "1.2.840.10045.3.1.7" => Some(NamedGroup::SECP256R1),
            "1.3.132.0.34" => Some(NamedGroup::SECP384R1),
            "1.3.132.0.35" => Some(NamedGroup::SECP521R1),
            _ => None,
        });
    Ok(CertFile {
        path: path.to_owned(),
        ders,
        family,
        subject_public_key,
        curve,
    })
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::Rsa => "RSA",
        Family::Ec => "ECDSA",
    }
}

impl Chains {
    /// The generated chains for `hostname`, each with its private key.
    pub fn generate(hostname: &str) -> anyhow::Result<Self> {
        Self::build(hostname, &[], &[]).map(|(chains, _)| chains)
    }

    /// The chains for `hostname` with `--cert` and `--key` files applied,
    /// and the warnings to print (a `--cert` chain without its key).
    pub fn build(hostname: &str, certs: &[PathBuf], keys: &[PathBuf]) -> anyhow::Result<(Self, Vec<String>)> {
        let issuer = Issuer::generate()?;
        let mut loaded: Vec<(PathBuf, Option<PrivateKey>)> = Vec::new();
        for path in keys {
            for key in PrivateKey::load_pem(path)? {
                loaded.push((path.clone(), Some(key)));
            }
        }
        // A later --cert of the same key type replaces an earlier one.
        let mut files: Vec<CertFile> = Vec::new();
        for path in certs {
            let file = read_cert_file(path)?;
            files.retain(|f| f.family != file.family);
            files.push(file);
        }
        let mut warnings = Vec::new();
        let mut slot = |family: Family| -> anyhow::Result<Credential> {
            if let Some(file) = files.iter().find(|f| f.family == family) {
                let key = loaded
                    .iter_mut()
                    .find(|(_, k)| k.as_ref().is_some_and(|k| k.matches(&file.subject_public_key)))
                    .and_then(|(_, k)| k.take());
                if key.is_none() {
                    warnings.push(format!(
                        "no --key for the {} leaf of {}: its ServerKeyExchange signatures are filler, which a client refuses",
                        family_name(family),
                        file.path.display()
                    ));
                }
                return Ok(Credential {
                    chain: file.ders.clone(),
                    key,
                    curve: file.curve,
                });
            }
            // No --cert of this type: the generated leaf, on a --key of
            // this type if one is left.
            let mut own = loaded
                .iter_mut()
                .filter(|(_, k)| k.as_ref().is_some_and(|k| k.family() == family));
            let key = match (own.next(), own.next()) {
                (Some((_, k)), None) => k.take(),
                (Some((a, _)), Some((b, _))) => bail!(
                    "--key {} and --key {} are both {} keys: give the --cert of each",
                    a.display(),
                    b.display(),
                    family_name(family)
                ),
                (None, _) => None,
            };
            let key = match (key, family) {
                (Some(k), _) => k,
                (None, Family::Rsa) => PrivateKey::emulator_rsa()?,
                (None, Family::Ec) => {
                    let pair = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).context("leaf key")?;
                    PrivateKey::from_pkcs8_der(&pair.serialize_der()).context("the generated leaf key")?
                }
            };
            issuer.leaf(hostname, key)
        };
        let rsa = slot(Family::Rsa)?;
        let ecdsa = slot(Family::Ec)?;
        if let Some((path, Some(key))) = loaded.iter().find(|(_, k)| k.is_some()) {
            bail!(
                "--key {}: the {} key is the key of no --cert leaf",
                path.display(),
                key.describe()
            );
        }
        Ok((Self { rsa, ecdsa }, warnings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf_key(c: &Credential) -> Vec<u8> {
        let (_, leaf) = x509_parser::parse_x509_certificate(&c.chain[0]).unwrap();
        leaf.public_key().subject_public_key.data.to_vec()
    }

    #[test]
    fn generated_chains_parse_with_the_right_keys() {
        let c = Chains::generate("mx.emulated.test").unwrap();
        let (_, rsa) = x509_parser::parse_x509_certificate(&c.rsa.chain[0]).unwrap();
        let (_, ec) = x509_parser::parse_x509_certificate(&c.ecdsa.chain[0]).unwrap();
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
        assert_eq!(c.rsa.chain.len(), 2);
        // Each leaf carries the public half of the key that signs with it.
        assert!(c.rsa.key.as_ref().unwrap().matches(&leaf_key(&c.rsa)));
        assert!(c.ecdsa.key.as_ref().unwrap().matches(&leaf_key(&c.ecdsa)));
        assert_eq!(c.ecdsa.key.as_ref().unwrap().describe(), "ECDSA P-256");
        assert_eq!((c.ecdsa.curve, c.rsa.curve), (Some(NamedGroup::SECP256R1), None));
    }

    #[test]
    fn keys_are_matched_to_certificates_and_a_stray_key_is_an_error() {
        let dir = std::env::temp_dir().join(format!("hsscan-chain-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let key = write("p384-key.pem", p384.serialize_pem());
        let own = params("own", false, Some("mx.emulated.test"))
            .unwrap()
            .self_signed(&p384)
            .unwrap();
        let cert = write("p384-cert.pem", own.pem());
        let p256 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let other = params("other", false, Some("mx.emulated.test"))
            .unwrap()
            .self_signed(&p256)
            .unwrap();
        let other_cert = write("p256-cert.pem", other.pem());

        // A key alone: the generated leaf is made on it.
        let (c, warnings) = Chains::build("mx.emulated.test", &[], std::slice::from_ref(&key)).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.ecdsa.key.as_ref().unwrap().describe(), "ECDSA P-384");
        assert!(c.ecdsa.key.as_ref().unwrap().matches(&leaf_key(&c.ecdsa)));
        assert_eq!(c.ecdsa.chain.len(), 2);
        // A key with its certificate.
        let (c, warnings) = Chains::build(
            "mx.emulated.test",
            std::slice::from_ref(&cert),
            std::slice::from_ref(&key),
        )
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.ecdsa.chain, vec![own.der().to_vec()]);
        assert!(c.ecdsa.key.is_some());
        assert_eq!(c.ecdsa.curve, Some(NamedGroup::SECP384R1), "from the certificate");
        // A key that is not the certificate's.
        let e = Chains::build(
            "mx.emulated.test",
            std::slice::from_ref(&other_cert),
            std::slice::from_ref(&key),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("the key of no --cert leaf"), "{e:#}");
        // A certificate without its key: filler signatures, and a warning.
        let (c, warnings) = Chains::build("mx.emulated.test", &[other_cert], &[]).unwrap();
        assert!(c.ecdsa.key.is_none());
        assert!(warnings[0].contains("signatures are filler"), "{warnings:?}");
        assert!(c.rsa.key.is_some(), "the RSA slot keeps its generated chain");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
