//! Policy (SPEC §3c): what a sender that goes beyond opportunistic TLS
//! checks before it delivers — DANE/TLSA ([`dane`], RFC 7672), MTA-STS
//! ([`mta_sts`], RFC 8461) — and where failures are reported, TLS-RPT
//! ([`tls_rpt`], RFC 8460). DNS answers carry their DNSSEC status
//! ([`dnssec`]). Lookups are made once per MX host (DANE) or domain
//! (MTA-STS, TLS-RPT) and cached for the run.

pub mod dane;
pub mod dnssec;
pub mod mta_sts;
pub mod tls_rpt;

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::{Mutex, OnceCell};

/// Lookups made once per key, shared by every task that asks.
type Cache<K, V> = Mutex<HashMap<K, Arc<OnceCell<V>>>>;

/// Lookups remembered at most; past this the cache starts afresh.
const CACHE: usize = 100_000;

/// The cell of `key` in `cache`, made on first use.
async fn cell<K: std::hash::Hash + Eq, V>(cache: &Cache<K, V>, key: K) -> Arc<OnceCell<V>> {
    let mut map = cache.lock().await;
    if map.len() >= CACHE {
        map.clear();
    }
    map.entry(key).or_default().clone()
}

/// What the run checks, resolved once from the command line.
#[derive(Debug)]
pub struct PolicyConfig {
    pub resolver: dnssec::Resolver,
    pub dane: bool,
    pub mta_sts: bool,
    /// The run judges a sender that requires DANE (`dane-only`): DANE
    /// results of hosts without applicable TLSA records are
    /// `dane-required` rather than `no-tlsa` (RFC 8460 §4.3.2).
    pub require_dane: bool,
    /// Roots for the MTA-STS policy fetch (`--ca-file`, else the system's).
    pub ca_file: Option<std::path::PathBuf>,
    /// `--resolve`: the policy host `mta-sts.DOMAIN` may be pinned too.
    pub overrides: HashMap<String, Vec<std::net::IpAddr>>,
    /// TLSA lookups per (host, port), made once.
    tlsa: Cache<(String, u16), dane::Lookup>,
    /// MTA-STS lookups and fetches per domain, made once.
    sts: Cache<String, mta_sts::Lookup>,
    /// TLS-RPT records per domain.
    rpt: Cache<String, tls_rpt::TlsRpt>,
    /// The DNSSEC status of each domain's MX RRset.
    mx: Cache<String, dnssec::Security>,
}

impl PolicyConfig {
    pub fn new(
        resolver: dnssec::Resolver,
        dane: bool,
        mta_sts: bool,
        require_dane: bool,
        ca_file: Option<std::path::PathBuf>,
        overrides: HashMap<String, Vec<std::net::IpAddr>>,
    ) -> Self {
        Self {
            resolver,
            dane,
            mta_sts,
            require_dane,
            ca_file,
            overrides,
            tlsa: Mutex::new(HashMap::new()),
            sts: Mutex::new(HashMap::new()),
            rpt: Mutex::new(HashMap::new()),
            mx: Mutex::new(HashMap::new()),
        }
    }

    /// The TLSA lookup of `host`:`port`, made once for the run however
    /// many endpoints and domains share the host.
    pub async fn tlsa(&self, host: &str, port: u16) -> dane::Lookup {
        let c = cell(&self.tlsa, (crate::dns::normalise(host), port)).await;
        c.get_or_init(|| dane::lookup(&self.resolver, host, port, None))
            .await
            .clone()
    }

    /// The MTA-STS lookup and policy fetch of `domain`, made once.
    pub async fn mta_sts(&self, domain: &str) -> mta_sts::Lookup {
        let c = cell(&self.sts, crate::dns::normalise(domain)).await;
        c.get_or_init(|| mta_sts::lookup(&self.resolver, &self.overrides, self.ca_file.as_deref(), domain))
            .await
            .clone()
    }

    /// The TLS-RPT record of `domain`, looked up once.
    pub async fn tls_rpt(&self, domain: &str) -> tls_rpt::TlsRpt {
        let c = cell(&self.rpt, crate::dns::normalise(domain)).await;
        c.get_or_init(|| tls_rpt::lookup(&self.resolver, domain)).await.clone()
    }

    /// The DNSSEC status of `domain`'s MX RRset, looked up once.
    pub async fn mx_security(&self, domain: &str) -> dnssec::Security {
        let c = cell(&self.mx, crate::dns::normalise(domain)).await;
        *c.get_or_init(|| async {
            self.resolver
                .lookup(domain, hickory_resolver::proto::rr::RecordType::MX)
                .await
                .security
        })
        .await
    }

    /// `d` as the run's senders see it: `dane-required` for `no-tlsa`
    /// when one of them requires DANE.
    fn as_required(&self, d: dane::Dane) -> dane::Dane {
        if self.require_dane {
            dane::required(d)
        } else {
            d
        }
    }

    /// The domain whose MTA-STS policy applies to a single target `host`:
    /// the host name itself or the nearest parent (of two labels or more)
    /// that publishes an `_mta-sts` record; the host name when none does.
    pub async fn sts_domain_of(&self, host: &str) -> String {
        let host = crate::dns::normalise(host);
        let mut candidate = host.as_str();
        loop {
            if let Ok(records) = mta_sts::txt_records(&self.resolver, &format!("_mta-sts.{candidate}")).await {
                if records.iter().any(|r| mta_sts::parse_txt(r).is_some()) {
                    return candidate.to_owned();
                }
            }
            match candidate.split_once('.') {
                Some((_, parent)) if parent.contains('.') => candidate = parent,
                _ => return host,
            }
        }
    }
}

/// `policy` of an endpoint record: `null` members were not looked at.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointPolicy {
    pub dane: Option<dane::Dane>,
    pub mta_sts: Option<mta_sts::MtaSts>,
    pub tls_rpt: Option<tls_rpt::TlsRpt>,
}

impl EndpointPolicy {
    /// One line per policy for the terminal report.
    pub fn summary_lines(&self) -> Vec<String> {
        let name = |v: &dyn erased::Named| v.kebab();
        let mut out = Vec::new();
        if let Some(d) = &self.dane {
            out.push(format!(
                "DANE {} (DNSSEC {}): {}",
                name(&d.result),
                name(&d.dnssec),
                d.detail
            ));
        }
        if let Some(m) = &self.mta_sts {
            out.push(format!("MTA-STS {}: {}", name(&m.result), m.detail));
        }
        if let Some(t) = &self.tls_rpt {
            match &t.txt {
                Some(_) => out.push(format!("TLS-RPT reports to {}", t.rua.join(", "))),
                None => out.push("TLS-RPT: no record".to_owned()),
            }
        }
        out
    }

    /// The findings the policy results give.
    pub fn findings(&self) -> Vec<crate::finding::Finding> {
        let mut out = self.dane.as_ref().map(dane::findings).unwrap_or_default();
        out.extend(self.mta_sts.as_ref().map(mta_sts::findings).unwrap_or_default());
        out
    }
}

/// The DER chains an endpoint presented: none when it negotiated nothing.
pub fn chains_of(negotiated: bool, certificates: &[crate::certs::CertificateReport]) -> Vec<Vec<Vec<u8>>> {
    if !negotiated {
        return Vec::new();
    }
    certificates
        .iter()
        .map(|c| c.der.clone())
        .filter(|c| !c.is_empty())
        .collect()
}

/// The policy of one endpoint: DANE for its host and port, judged on the
/// chains this IP presented, and for a `single` target (not an MX host of
/// a --mx run, whose domain record carries them) MTA-STS and TLS-RPT of
/// its domain. `None` when both are off or the target is an IP address
/// (the records hang off host names).
pub async fn scan_endpoint_policy(
    policy: Option<&PolicyConfig>,
    target: &crate::target::Target,
    ip: std::net::IpAddr,
    status: crate::outcome::Status,
    certificates: &[crate::certs::CertificateReport],
    single: bool,
) -> Option<EndpointPolicy> {
    let policy = policy?;
    let host = target.host.name()?;
    let negotiated = status == crate::outcome::Status::Negotiated;
    let dane = if policy.dane {
        let lookup = policy.tlsa(host, target.port).await;
        Some(policy.as_required(dane::evaluate(
            &lookup,
            host,
            &[(ip, chains_of(negotiated, certificates))],
        )))
    } else {
        None
    };
    let (mta_sts, tls_rpt) = if policy.mta_sts && single {
        let domain = policy.sts_domain_of(host).await;
        let lookup = policy.mta_sts(&domain).await;
        let mut problems = BTreeMap::new();
        if let Some(why) = certificate_problem(negotiated, certificates) {
            problems.insert(crate::dns::normalise(host), why);
        }
        let m = mta_sts::evaluate(&lookup, &[crate::dns::normalise(host)], problems);
        (Some(m), Some(policy.tls_rpt(&domain).await))
    } else {
        (None, None)
    };
    if dane.is_none() && mta_sts.is_none() {
        return None;
    }
    Some(EndpointPolicy { dane, mta_sts, tls_rpt })
}

/// Why an MTA-STS sender would refuse this MX's certificate (RFC 8461
/// §4.2: valid for the MX host name, trusted, in date); `None` when every
/// chain is fine.
pub fn certificate_problem(negotiated: bool, certificates: &[crate::certs::CertificateReport]) -> Option<String> {
    problem_of(
        negotiated,
        certificates.len(),
        certificates.iter().flat_map(|c| c.verdicts.iter()).map(|v| v.id),
    )
}

/// [`certificate_problem`] from the number of chains and their verdict ids.
fn problem_of<'a>(negotiated: bool, chains: usize, verdicts: impl Iterator<Item = &'a str>) -> Option<String> {
    if !negotiated {
        return Some("no TLS".to_owned());
    }
    if chains == 0 {
        return Some("no certificate was seen".to_owned());
    }
    const REFUSED: [&str; 6] = [
        "cert-hostname-mismatch",
        "cert-expired",
        "cert-not-yet-valid",
        "cert-untrusted",
        "cert-self-signed",
        "cert-no-certificate",
    ];
    let why: std::collections::BTreeSet<&str> = verdicts.filter(|id| REFUSED.contains(id)).collect();
    (!why.is_empty()).then(|| why.into_iter().collect::<Vec<_>>().join(", "))
}

/// What a domain record's policy needs of one finished endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointInput {
    /// The chains it presented (none when it negotiated nothing).
    pub chains: Vec<Vec<dane::Cert>>,
    /// Why an MTA-STS sender would refuse its certificate.
    pub certificate_problem: Option<String>,
}

impl EndpointInput {
    /// From an endpoint's status and certificate chains.
    pub fn of(status: crate::outcome::Status, certificates: &[crate::certs::CertificateReport]) -> Self {
        let negotiated = status == crate::outcome::Status::Negotiated;
        Self {
            chains: chains_of(negotiated, certificates)
                .iter()
                .map(|c| c.iter().map(|d| dane::Cert::of_der(d)).collect())
                .collect(),
            certificate_problem: certificate_problem(negotiated, certificates),
        }
    }

    /// From an endpoint record an earlier run wrote (`--resume`): the
    /// chains from its `certificates` (digests, key and names: the record
    /// keeps no DER), the certificate problem from their verdicts, as
    /// [`EndpointInput::of`] derives them from the scan.
    pub fn from_json(v: &serde_json::Value) -> Self {
        let negotiated = v["status"].as_str() == Some("negotiated");
        let reports = v["certificates"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let chains: Vec<Vec<dane::Cert>> = if negotiated {
            reports
                .iter()
                .map(|r| {
                    r["chain"]
                        .as_array()
                        .map(|c| c.iter().filter_map(dane::Cert::from_json).collect())
                        .unwrap_or_default()
                })
                .filter(|c: &Vec<dane::Cert>| !c.is_empty())
                .collect()
        } else {
            Vec::new()
        };
        let verdicts: Vec<String> = reports
            .iter()
            .flat_map(|r| r["verdicts"].as_array().map(Vec::as_slice).unwrap_or(&[]))
            .filter_map(|f| f["id"].as_str().map(str::to_owned))
            .collect();
        Self {
            chains,
            certificate_problem: problem_of(negotiated, reports.len(), verdicts.iter().map(String::as_str)),
        }
    }
}

/// `policy.dane` of a domain record: one DANE result per MX host, and the
/// worst of them.
#[derive(Debug, Clone, Serialize)]
pub struct DomainDane {
    pub result: dane::Outcome,
    pub mx: Vec<dane::Dane>,
}

impl DomainDane {
    /// A domain some of whose MX hosts have TLSA records that apply and
    /// some not: a sender at `dane` delivers to the others unauthenticated
    /// (an attacker who blocks the protected hosts gets the mail), one at
    /// `dane-only` defers to them (`dane-required`).
    fn partial(&self) -> Option<crate::finding::Finding> {
        use dane::Outcome::{DaneRequired, NoTlsa};
        let (without, with): (Vec<&dane::Dane>, Vec<&dane::Dane>) =
            self.mx.iter().partition(|d| matches!(d.result, NoTlsa | DaneRequired));
        if without.is_empty() || with.is_empty() {
            return None;
        }
        let names = |v: &[&dane::Dane]| v.iter().map(|d| d.tlsa_name.as_str()).collect::<Vec<_>>().join(", ");
        Some(crate::finding::Finding::new(
            "dane-partial",
            crate::finding::Severity::Medium,
            "only some MX hosts of the domain are DANE-protected: senders at dane deliver to the others without authentication, senders at dane-only defer to them",
            format!("TLSA records apply at {}, none at {}", names(&with), names(&without)),
        ))
    }
}

/// `policy` of a domain record (SPEC §3c).
#[derive(Debug, Clone, Serialize)]
pub struct DomainPolicy {
    pub dane: Option<DomainDane>,
    pub mta_sts: Option<mta_sts::MtaSts>,
    pub tls_rpt: Option<tls_rpt::TlsRpt>,
}

impl DomainPolicy {
    pub fn findings(&self) -> Vec<crate::finding::Finding> {
        let mut out: Vec<crate::finding::Finding> = self
            .dane
            .iter()
            .flat_map(|d| d.mx.iter())
            .flat_map(dane::findings)
            .collect();
        out.extend(self.dane.as_ref().and_then(DomainDane::partial));
        out.extend(self.mta_sts.as_ref().map(mta_sts::findings).unwrap_or_default());
        out
    }
}

/// The policy of `domain`, whose MX hosts (in preference order) were
/// scanned at `port` with the endpoints `ips` gives per host. The TLSA
/// lookups come from the per-host cache; the MX RRset's DNSSEC status,
/// MTA-STS and TLS-RPT are looked up once for the domain.
pub async fn domain_policy(
    policy: &PolicyConfig,
    domain: &str,
    port: u16,
    hosts: &[(String, Vec<(std::net::IpAddr, EndpointInput)>)],
) -> DomainPolicy {
    let dane = if policy.dane {
        let mx = policy.mx_security(domain).await;
        let mut each = Vec::new();
        for (host, ips) in hosts {
            let mut lookup = policy.tlsa(host, port).await;
            lookup.mx = Some(mx);
            let chains: Vec<dane::IpCerts> = ips.iter().map(|(ip, e)| (*ip, e.chains.clone())).collect();
            each.push(policy.as_required(dane::evaluate_certs(&lookup, host, &chains)));
        }
        let result = each
            .iter()
            .map(|d| d.result)
            .find(|r| r.fails_dane() || *r == dane::Outcome::DaneRequired)
            .or_else(|| each.iter().map(|d| d.result).find(|r| *r == dane::Outcome::Valid))
            .unwrap_or(dane::Outcome::NoTlsa);
        Some(DomainDane { result, mx: each })
    } else {
        None
    };
    let (mta_sts, tls_rpt) = if policy.mta_sts {
        let lookup = policy.mta_sts(domain).await;
        let names: Vec<String> = hosts.iter().map(|(h, _)| crate::dns::normalise(h)).collect();
        let mut problems = BTreeMap::new();
        for (host, ips) in hosts {
            if let Some(why) = ips.iter().find_map(|(_, e)| e.certificate_problem.clone()) {
                problems.insert(crate::dns::normalise(host), why);
            }
        }
        (
            Some(mta_sts::evaluate(&lookup, &names, problems)),
            Some(policy.tls_rpt(domain).await),
        )
    } else {
        (None, None)
    };
    DomainPolicy { dane, mta_sts, tls_rpt }
}

/// The kebab-case names the JSON gives the policy enums, for text.
mod erased {
    pub trait Named {
        fn kebab(&self) -> String;
    }

    impl<T: serde::Serialize> Named for T {
        fn kebab(&self) -> String {
            serde_json::to_value(self)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        }
    }
}
