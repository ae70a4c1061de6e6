//! The certificate hello over one connection: connect (and STARTTLS),
//! write the hello, feed the server's bytes to [`flight`](super::flight)
//! until it has the chain or gives up, then close without a Finished.
//! Every connection goes through the endpoint's gate, like a probe.

use super::flight::{self, CertificateHello, Decrypted, HelloParams, KeyPair, Step};
use crate::gate::HostGate;
use crate::outcome::{Failure, FailureKind, Stage};
use crate::probe::{self, Endpoint, ProbeConfig};
use crate::smtp::Dialog;
use hsscan_wire::{ServerHello, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the certificate hello got.
#[derive(Debug, Clone)]
pub struct Fetch {
    pub smtp: Option<Dialog>,
    /// The ServerHello, when one came (also when decryption then failed).
    pub server_hello: Option<ServerHello>,
    pub decrypted: Option<Box<Decrypted>>,
    /// Why the flight could not be read or decrypted.
    pub error: Option<flight::Error>,
    /// Why the connection did not get as far as the flight.
    pub failure: Option<Failure>,
}

impl Fetch {
    /// Why there is no chain, in a sentence; `None` when there is one.
    pub fn why_not(&self) -> Option<String> {
        if self.decrypted.as_ref().is_some_and(|d| !d.certificates.is_empty()) {
            return None;
        }
        Some(match (&self.error, &self.failure, &self.decrypted) {
            (Some(e), _, _) => e.to_string(),
            (_, Some(f), _) => format!("{}: {}", f.kind, f.detail),
            (_, _, Some(_)) => "the server's first flight carried no certificate".to_owned(),
            _ => "no answer".to_owned(),
        })
    }
}

fn random<const N: usize>() -> Result<[u8; N], Failure> {
    let mut out = [0u8; N];
    getrandom::getrandom(&mut out).map_err(|e| {
        Failure::new(
            Stage::Local,
            FailureKind::LocalError,
            format!("drawing a key share: {e}"),
        )
    })?;
    Ok(out)
}

/// Fresh X25519 and P-256 key pairs, in the order the hello offers them.
fn key_pairs() -> Result<Vec<KeyPair>, Failure> {
    let x25519 = KeyPair::x25519(random()?);
    // A P-256 scalar of 32 random bytes is out of range with probability
    // about 2^-32; draw again then.
    for _ in 0..4 {
        if let Some(p256) = KeyPair::p256(random()?) {
            return Ok(vec![x25519, p256]);
        }
    }
    Err(Failure::new(
        Stage::Local,
        FailureKind::InternalError,
        "no valid P-256 scalar in four draws",
    ))
}

/// Sends the certificate hello through `gate`; `None` when the budget is
/// spent. `schemes` steers which certificate a server with several picks.
pub async fn fetch(
    gate: &HostGate,
    endpoint: &Endpoint,
    sni: Option<&str>,
    schemes: &[SignatureScheme],
    cfg: &ProbeConfig,
) -> Option<Fetch> {
    let cfg = gate.tuned(cfg);
    gate.connection(run(endpoint, sni, schemes, &cfg)).await
}

async fn run(endpoint: &Endpoint, sni: Option<&str>, schemes: &[SignatureScheme], cfg: &ProbeConfig) -> Fetch {
    let mut out = Fetch {
        smtp: None,
        server_hello: None,
        decrypted: None,
        error: None,
        failure: None,
    };
    if let Err(f) = exchange(endpoint, sni, schemes, cfg, &mut out).await {
        out.failure = Some(f);
    }
    out
}

async fn exchange(
    endpoint: &Endpoint,
    sni: Option<&str>,
    schemes: &[SignatureScheme],
    cfg: &ProbeConfig,
    out: &mut Fetch,
) -> Result<(), Failure> {
    let params = HelloParams {
        random: random()?,
        session_id: random::<32>()?.to_vec(),
        sni: sni.map(str::to_owned),
        signature_schemes: schemes.to_vec(),
    };
    let (mut hello, record) = CertificateHello::new(&params, key_pairs()?).map_err(|e| {
        Failure::new(
            Stage::Local,
            FailureKind::InternalError,
            format!("building the certificate hello: {e}"),
        )
    })?;
    let (mut stream, leftover) = probe::open(endpoint, cfg, &mut out.smtp).await?;
    let result = converse(&mut stream, &mut hello, &record, leftover, cfg).await;
    out.server_hello = hello.server_hello().cloned();
    match result {
        Ok(Ok(d)) => out.decrypted = Some(d),
        Ok(Err(e)) => out.error = Some(e),
        Err(f) => out.failure = Some(f),
    }
    // After a TLS 1.3 ServerHello only an encrypted alert would be valid,
    // and we hold no client keys: the connection is just closed.
    probe::close(&mut stream, cfg.close_wait).await;
    Ok(())
}

/// Writes the hello and reads until the flight is decrypted, fails, or
/// the server falls silent (three read timeouts at most in all).
async fn converse(
    stream: &mut tokio::net::TcpStream,
    hello: &mut CertificateHello,
    record: &[u8],
    leftover: Vec<u8>,
    cfg: &ProbeConfig,
) -> Result<Result<Box<Decrypted>, flight::Error>, Failure> {
    let write_failed = |e: std::io::Error| probe::io_failure(&e, false);
    tokio::time::timeout(cfg.read_timeout, stream.write_all(record))
        .await
        .map_err(|_| timeout("writing the certificate hello timed out"))?
        .map_err(write_failed)?;
    let deadline = tokio::time::Instant::now() + 3 * cfg.read_timeout;
    let mut pending = leftover;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match hello.push(&pending) {
            Ok(Step::More) => {}
            Ok(Step::Send(second)) => {
                tokio::time::timeout(cfg.read_timeout, stream.write_all(&second))
                    .await
                    .map_err(|_| timeout("writing the second hello timed out"))?
                    .map_err(write_failed)?;
            }
            Ok(Step::Done(d)) => return Ok(Ok(d)),
            Err(e) => return Ok(Err(e)),
        }
        pending.clear();
        let wait = (tokio::time::Instant::now() + cfg.read_timeout).min(deadline);
        match tokio::time::timeout_at(wait, stream.read(&mut buf)).await {
            Err(_) => return Err(timeout("the server's first flight stopped before its certificate")),
            Ok(Err(e)) => return Err(probe::io_failure(&e, hello.server_hello().is_some())),
            Ok(Ok(0)) => {
                return Err(Failure::new(
                    Stage::Handshake,
                    FailureKind::ClosedAfterHello,
                    "the server closed the connection before its certificate",
                ))
            }
            Ok(Ok(n)) => pending.extend_from_slice(buf.get(..n).unwrap_or(&[])),
        }
    }
}

fn timeout(what: &str) -> Failure {
    Failure::new(Stage::Handshake, FailureKind::TimeoutAfterHello, what)
}
