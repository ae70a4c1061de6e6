//! Policy (SPEC §3c): what a sender that goes beyond opportunistic TLS
//! checks before it delivers — DANE/TLSA ([`dane`], RFC 7672), MTA-STS
//! ([`mta_sts`], RFC 8461) — and where failures are reported, TLS-RPT
//! ([`tls_rpt`], RFC 8460). DNS answers carry their DNSSEC status
//! ([`dnssec`]). Lookups are made once per MX host (DANE) or domain
//! (MTA-STS, TLS-RPT) and cached for the run.

pub mod dane;
pub mod dnssec;

use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{Mutex, OnceCell};

/// Lookups made once per key, shared by every task that asks.
type Cache<K, V> = Mutex<HashMap<K, Arc<OnceCell<V>>>>;

/// What the run checks, resolved once from the command line.
#[derive(Debug)]
pub struct PolicyConfig {
    pub resolver: dnssec::Resolver,
    pub dane: bool,
    pub mta_sts: bool,
    /// Roots for the MTA-STS policy fetch (`--ca-file`, else the system's).
    pub ca_file: Option<std::path::PathBuf>,
    /// TLSA lookups per (host, port), made once.
    tlsa: Cache<(String, u16), dane::Lookup>,
}

/// Lookups remembered at most; past this the cache starts afresh.
const CACHE: usize = 100_000;

impl PolicyConfig {
    pub fn new(resolver: dnssec::Resolver, dane: bool, mta_sts: bool, ca_file: Option<std::path::PathBuf>) -> Self {
        Self {
            resolver,
            dane,
            mta_sts,
            ca_file,
            tlsa: Mutex::new(HashMap::new()),
        }
    }

    /// The TLSA lookup of `host`:`port`, made once for the run however
    /// many endpoints and domains share the host.
    pub async fn tlsa(&self, host: &str, port: u16) -> dane::Lookup {
        let key = (crate::dns::normalise(host), port);
        let cell = {
            let mut map = self.tlsa.lock().await;
            if map.len() >= CACHE {
                map.clear();
            }
            map.entry(key).or_default().clone()
        };
        cell.get_or_init(|| dane::lookup(&self.resolver, host, port, None))
            .await
            .clone()
    }
}

/// `policy` of an endpoint record: `null` members were not looked at.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointPolicy {
    pub dane: Option<dane::Dane>,
}

impl EndpointPolicy {
    /// The findings the policy results give.
    pub fn findings(&self) -> Vec<crate::finding::Finding> {
        self.dane.as_ref().map(dane::findings).unwrap_or_default()
    }
}

/// The policy of one endpoint: DANE for its host and port, judged on the
/// chains this IP presented. `None` when DANE is off or the target is an
/// IP address (TLSA records hang off host names).
pub async fn scan_endpoint_policy(
    cfg: &crate::scan::ScanConfig,
    target: &crate::target::Target,
    ip: std::net::IpAddr,
    status: crate::report::Status,
    certificates: &[crate::report::CertificateReport],
) -> Option<EndpointPolicy> {
    let policy = cfg.policy.as_ref()?;
    let host = target.host.name()?;
    if !policy.dane {
        return None;
    }
    let lookup = policy.tlsa(host, target.port).await;
    // An endpoint that negotiated nothing presents no chain.
    let chains: Vec<Vec<Vec<u8>>> = if status == crate::report::Status::Negotiated {
        certificates
            .iter()
            .map(|c| c.der.clone())
            .filter(|c| !c.is_empty())
            .collect()
    } else {
        Vec::new()
    };
    Some(EndpointPolicy {
        dane: Some(dane::evaluate(&lookup, host, &[(ip, chains)])),
    })
}
