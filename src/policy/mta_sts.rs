//! MTA-STS (RFC 8461): the `_mta-sts.DOMAIN` TXT record, the policy
//! fetched over HTTPS from `https://mta-sts.DOMAIN/.well-known/mta-sts.txt`
//! with WebPKI validation, its syntax, whether each MX host matches one
//! of its `mx` patterns (a wildcard covers exactly one label, §4.1), and
//! whether each MX certificate is valid for its name — the result in
//! RFC 8460 terms (SPEC §3c).
//!
//! The fetch is an ordinary, full HTTPS request (reqwest on rustls), not
//! part of the scanning: redirects are not followed (§3.3), the body is
//! capped, and the name `mta-sts.DOMAIN` resolves through the run's
//! validating resolver and `--resolve`.

use super::dnssec::{Resolver, Security};
use hickory_resolver::proto::rr::{RData, RecordType};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// RFC 8461 §3.3: policies are small; a body past this is invalid.
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
/// RFC 8461 §3.2: `max_age` is at most a year.
const MAX_AGE_LIMIT: u64 = 31_557_600;

/// The `_mta-sts` TXT record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Txt {
    pub id: Option<String>,
    pub raw: String,
}

/// The policy as parsed (RFC 8461 §3.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub version: String,
    pub mode: String,
    pub mx: Vec<String>,
    pub max_age: u64,
}

/// The HTTPS fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fetch {
    pub url: String,
    /// The HTTP status (`null`: no response).
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// The RFC 8460 terms of SPEC §3c.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// `mode: enforce`, every MX matches and presents a valid certificate.
    EnforceOk,
    /// `mode: testing`: failures are reported, not enforced.
    Testing,
    /// No policy (no TXT record), or `mode: none`.
    None,
    StsPolicyFetchError,
    StsPolicyInvalid,
    /// The policy host's certificate does not validate.
    StsWebpkiInvalid,
    /// An MX no pattern covers, or whose certificate is not valid for its
    /// name (under `mode: enforce`).
    CertificateHostMismatch,
    /// The TXT lookup failed.
    Error,
}

impl Outcome {
    /// Whether a sender that honours MTA-STS defers mail.
    pub fn fails_delivery(self) -> bool {
        matches!(self, Self::CertificateHostMismatch)
    }
}

/// `policy.mta_sts` of SPEC §3c.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MtaSts {
    pub domain: String,
    pub txt: Option<Txt>,
    pub policy: Option<Policy>,
    pub fetch: Option<Fetch>,
    /// Each MX host: whether a pattern covers it.
    pub mx_matches: BTreeMap<String, bool>,
    /// Each MX host whose certificate is not valid for its name, and why.
    pub certificate_problems: BTreeMap<String, String>,
    pub result: Outcome,
    pub detail: String,
}

/// Parses a TXT record's text as RFC 8461 §3.1 says; `None` when it is not
/// an STSv1 record.
pub fn parse_txt(raw: &str) -> Option<Txt> {
    let mut fields = raw.split(';').map(str::trim).filter(|f| !f.is_empty());
    if fields.next()? != "v=STSv1" {
        return None;
    }
    let id = fields.find_map(|f| f.strip_prefix("id=").map(str::to_owned));
    Some(Txt {
        id,
        raw: raw.to_owned(),
    })
}

/// Parses a policy body (RFC 8461 §3.2); `Err` says what is wrong.
pub fn parse_policy(body: &str) -> Result<Policy, String> {
    let mut version = None;
    let mut mode = None;
    let mut max_age = None;
    let mut mx = Vec::new();
    for line in body
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
    {
        let Some((key, value)) = line.split_once(':') else {
            return Err(format!("line {line:?} is not key: value"));
        };
        let value = value.trim();
        match key.trim() {
            "version" => version = Some(value.to_owned()),
            "mode" => mode = Some(value.to_owned()),
            "max_age" => {
                max_age = Some(
                    value
                        .parse::<u64>()
                        .ok()
                        .filter(|v| *v <= MAX_AGE_LIMIT && value.len() <= 10)
                        .ok_or_else(|| format!("max_age {value:?} is not a number of seconds up to {MAX_AGE_LIMIT}"))?,
                )
            }
            "mx" => mx.push(value.to_ascii_lowercase()),
            // Unknown fields are ignored (§3.2).
            _ => {}
        }
    }
    let version = version.ok_or("no version field")?;
    if version != "STSv1" {
        return Err(format!("version {version:?} is not STSv1"));
    }
    let mode = mode.ok_or("no mode field")?;
    if !matches!(mode.as_str(), "enforce" | "testing" | "none") {
        return Err(format!("mode {mode:?} is not enforce, testing or none"));
    }
    let max_age = max_age.ok_or("no max_age field")?;
    if mx.is_empty() && mode != "none" {
        return Err("no mx field".to_owned());
    }
    Ok(Policy {
        version,
        mode,
        mx,
        max_age,
    })
}

/// Whether `pattern` covers `host` (RFC 8461 §4.1): the name itself, or
/// `*.` followed by its parent — a wildcard covers exactly one label.
pub fn mx_matches(pattern: &str, host: &str) -> bool {
    crate::certs::matches_hostname(pattern, host)
}

/// What the TXT lookup and the fetch found, before the MX hosts are judged.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub domain: String,
    pub txt: Result<Option<Txt>, String>,
    pub fetch: Option<Fetch>,
    /// The body parsed, or why not; `None` when not fetched.
    pub policy: Option<Result<Policy, String>>,
    /// The fetch failed on the policy host's certificate.
    pub webpki_invalid: bool,
}

/// TXT strings of `name` joined as RFC 7208-style records are (one
/// record = its strings concatenated), with the answer's status.
pub async fn txt_records(resolver: &Resolver, name: &str) -> Result<Vec<String>, String> {
    let a = resolver.lookup(name, RecordType::TXT).await;
    if a.security == Security::Error || a.security == Security::Bogus {
        return Err(a.detail.unwrap_or_else(|| "the lookup failed".to_owned()));
    }
    Ok(a.records
        .iter()
        .filter_map(|r| match r {
            RData::TXT(t) => Some(
                t.txt_data()
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect())
}

/// Looks up and fetches the policy of `domain`.
pub async fn lookup(
    resolver: &Resolver,
    overrides: &HashMap<String, Vec<IpAddr>>,
    ca_file: Option<&std::path::Path>,
    domain: &str,
) -> Lookup {
    let domain = crate::dns::normalise(domain);
    let mut out = Lookup {
        domain: domain.clone(),
        txt: Ok(None),
        fetch: None,
        policy: None,
        webpki_invalid: false,
    };
    let txts = match txt_records(resolver, &format!("_mta-sts.{domain}")).await {
        Ok(t) => t,
        Err(e) => {
            out.txt = Err(e);
            return out;
        }
    };
    let stsv1: Vec<Txt> = txts.iter().filter_map(|t| parse_txt(t)).collect();
    // RFC 8461 §3.1: more than one STSv1 record is as good as none.
    let Some(txt) = stsv1.first().cloned().filter(|_| stsv1.len() == 1) else {
        return out;
    };
    out.txt = Ok(Some(txt));
    let host = format!("mta-sts.{domain}");
    let url = format!("https://{host}/.well-known/mta-sts.txt");
    let ips = match overrides.get(&host) {
        Some(ips) => ips.clone(),
        None => {
            let (a, aaaa) = tokio::join!(
                resolver.lookup(&host, RecordType::A),
                resolver.lookup(&host, RecordType::AAAA)
            );
            a.records
                .iter()
                .chain(aaaa.records.iter())
                .filter_map(|r| match r {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                    _ => None,
                })
                .collect()
        }
    };
    let (fetch, body, webpki) = fetch(&url, &host, &ips, ca_file, resolver.timeout).await;
    out.webpki_invalid = webpki;
    out.policy = body.map(|b| parse_policy(&b));
    out.fetch = Some(fetch);
    out
}

/// GETs the policy; returns the fetch record, the body when it was a 200
/// text/plain response, and whether a certificate problem stopped it.
async fn fetch(
    url: &str,
    host: &str,
    ips: &[IpAddr],
    ca_file: Option<&std::path::Path>,
    timeout: Duration,
) -> (Fetch, Option<String>, bool) {
    let record = |status: Option<u16>, error: Option<String>| Fetch {
        url: url.to_owned(),
        status,
        error,
    };
    if ips.is_empty() {
        return (record(None, Some(format!("{host} has no address"))), None, false);
    }
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout * 2)
        .connect_timeout(timeout)
        .user_agent(concat!("hsscan/", env!("CARGO_PKG_VERSION")))
        .resolve_to_addrs(
            host,
            &ips.iter().map(|ip| SocketAddr::new(*ip, 443)).collect::<Vec<_>>(),
        );
    if let Some(path) = ca_file {
        let pem = match std::fs::read(path) {
            Ok(p) => p,
            Err(e) => {
                return (
                    record(None, Some(format!("reading {}: {e}", path.display()))),
                    None,
                    false,
                )
            }
        };
        match reqwest::Certificate::from_pem_bundle(&pem) {
            Ok(certs) => {
                builder = builder.tls_built_in_root_certs(false);
                for c in certs {
                    builder = builder.add_root_certificate(c);
                }
            }
            Err(e) => {
                return (
                    record(None, Some(format!("reading {}: {e}", path.display()))),
                    None,
                    false,
                )
            }
        }
    }
    let client = match builder.build() {
        Ok(c) => c,
        Err(e) => {
            return (
                record(None, Some(format!("building the HTTPS client: {e}"))),
                None,
                false,
            )
        }
    };
    let response = match client.get(url).send().await {
        Ok(r) => r,
        Err(e) => {
            let text = error_chain(&e);
            let webpki =
                text.contains("certificate") || text.contains("UnknownIssuer") || text.contains("NotValidForName");
            return (record(None, Some(text)), None, webpki);
        }
    };
    let status = response.status().as_u16();
    if status != 200 {
        let why = if response.status().is_redirection() {
            format!("HTTP {status}: a redirect, which RFC 8461 §3.3 forbids following")
        } else {
            format!("HTTP {status}")
        };
        return (record(Some(status), Some(why)), None, false);
    }
    let mut body = Vec::new();
    let mut response = response;
    loop {
        match response.chunk().await {
            Ok(Some(c)) => {
                body.extend_from_slice(&c);
                if body.len() > MAX_POLICY_BYTES {
                    return (
                        record(
                            Some(status),
                            Some(format!("the policy is over {MAX_POLICY_BYTES} bytes")),
                        ),
                        None,
                        false,
                    );
                }
            }
            Ok(None) => break,
            Err(e) => return (record(Some(status), Some(error_chain(&e))), None, false),
        }
    }
    (
        record(Some(status), None),
        Some(String::from_utf8_lossy(&body).into_owned()),
        false,
    )
}

/// An error with its causes, as one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Judges `lookup` for the MX hosts of the domain; `certificate_problems`
/// names each MX host whose certificate is not valid for it (expired,
/// wrong name, untrusted), from the scan.
pub fn evaluate(lookup: &Lookup, mx_hosts: &[String], certificate_problems: BTreeMap<String, String>) -> MtaSts {
    let mut out = MtaSts {
        domain: lookup.domain.clone(),
        txt: lookup.txt.clone().ok().flatten(),
        policy: None,
        fetch: lookup.fetch.clone(),
        mx_matches: BTreeMap::new(),
        certificate_problems: BTreeMap::new(),
        result: Outcome::None,
        detail: String::new(),
    };
    let (result, detail) = match (&lookup.txt, &lookup.policy) {
        (Err(e), _) => (
            Outcome::Error,
            format!("the _mta-sts.{} TXT lookup failed: {e}", lookup.domain),
        ),
        (Ok(None), _) => (
            Outcome::None,
            format!(
                "_mta-sts.{} has no single v=STSv1 record: no MTA-STS policy",
                lookup.domain
            ),
        ),
        (Ok(Some(_)), None) if lookup.webpki_invalid => (
            Outcome::StsWebpkiInvalid,
            format!(
                "the policy host's certificate does not validate: {}",
                lookup.fetch.as_ref().and_then(|f| f.error.clone()).unwrap_or_default()
            ),
        ),
        (Ok(Some(_)), None) => (
            Outcome::StsPolicyFetchError,
            format!(
                "fetching the policy failed: {}",
                lookup.fetch.as_ref().and_then(|f| f.error.clone()).unwrap_or_default()
            ),
        ),
        (Ok(Some(_)), Some(Err(e))) => (Outcome::StsPolicyInvalid, format!("the policy is malformed: {e}")),
        (Ok(Some(_)), Some(Ok(p))) => {
            out.policy = Some(p.clone());
            for host in mx_hosts {
                let covered = p.mx.iter().any(|pat| mx_matches(pat, host));
                out.mx_matches.insert(host.clone(), covered);
            }
            out.certificate_problems = certificate_problems;
            let uncovered: Vec<&String> = out.mx_matches.iter().filter(|(_, m)| !**m).map(|(h, _)| h).collect();
            let bad_certs: Vec<String> = out
                .certificate_problems
                .iter()
                .map(|(h, why)| format!("{h} ({why})"))
                .collect();
            let problems = if !uncovered.is_empty() {
                Some(format!(
                    "no mx pattern of the policy ({}) covers {}",
                    p.mx.join(", "),
                    uncovered.iter().map(|h| h.as_str()).collect::<Vec<_>>().join(", ")
                ))
            } else if !bad_certs.is_empty() {
                Some(format!("the certificate is not valid for {}", bad_certs.join(", ")))
            } else {
                None
            };
            match (p.mode.as_str(), problems) {
                ("none", _) => (Outcome::None, "the policy's mode is none".to_owned()),
                ("testing", Some(why)) => (
                    Outcome::Testing,
                    format!("mode testing: senders report but still deliver: {why}"),
                ),
                ("testing", None) => (
                    Outcome::Testing,
                    "mode testing: every MX matches and presents a valid certificate".to_owned(),
                ),
                (_, Some(why)) => (
                    Outcome::CertificateHostMismatch,
                    format!("mode enforce: senders that honour MTA-STS defer mail: {why}"),
                ),
                (_, None) => (
                    Outcome::EnforceOk,
                    "mode enforce: every MX matches a pattern and presents a valid certificate".to_owned(),
                ),
            }
        }
    };
    out.result = result;
    out.detail = detail;
    out
}

/// Findings of an MTA-STS result.
pub fn findings(m: &MtaSts) -> Vec<crate::finding::Finding> {
    use crate::finding::{Finding, Severity};
    let (id, severity, message) = match m.result {
        Outcome::CertificateHostMismatch => (
            "mta-sts-mx-mismatch",
            Severity::Critical,
            "an MTA-STS sender (Gmail, Microsoft 365) defers mail: the policy is enforced and an MX fails it",
        ),
        Outcome::StsPolicyFetchError | Outcome::StsPolicyInvalid | Outcome::StsWebpkiInvalid => (
            "mta-sts-policy-unusable",
            Severity::Medium,
            "the domain announces MTA-STS but its policy cannot be used",
        ),
        Outcome::Error => ("mta-sts-lookup-error", Severity::Low, "the MTA-STS TXT lookup failed"),
        Outcome::Testing if m.detail.contains("senders report") => (
            "mta-sts-testing-failures",
            Severity::Low,
            "MTA-STS in testing mode would fail if enforced",
        ),
        _ => return Vec::new(),
    };
    vec![Finding::new(id, severity, message, m.detail.clone())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_record_needs_stsv1_first() {
        assert_eq!(
            parse_txt("v=STSv1; id=20160831085700Z;").and_then(|t| t.id),
            Some("20160831085700Z".to_owned())
        );
        assert!(parse_txt("id=1; v=STSv1").is_none());
        assert!(parse_txt("v=spf1 -all").is_none());
    }

    #[test]
    fn policy_syntax() {
        let p = parse_policy(
            "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n",
        )
        .unwrap();
        assert_eq!(p.mode, "enforce");
        assert_eq!(p.mx, ["mail.example.com", "*.example.net"]);
        assert_eq!(p.max_age, 604800);
        assert!(parse_policy("version: STSv1\nmode: enforce\nmax_age: 1\n").is_err());
        assert!(parse_policy("version: STSv2\nmode: enforce\nmx: a\nmax_age: 1\n").is_err());
        assert!(parse_policy("version: STSv1\nmode: strict\nmx: a\nmax_age: 1\n").is_err());
        assert!(parse_policy("version: STSv1\nmode: enforce\nmx: a\nmax_age: 99999999999\n").is_err());
        assert!(parse_policy("<html>not a policy</html>").is_err());
        assert!(parse_policy("version: STSv1\nmode: none\nmax_age: 1\n").is_ok());
    }

    #[test]
    fn a_wildcard_covers_exactly_one_label() {
        assert!(mx_matches("*.example.net", "mx1.example.net"));
        assert!(!mx_matches("*.example.net", "a.b.example.net"));
        assert!(!mx_matches("*.example.net", "example.net"));
        assert!(mx_matches("mx.example.net", "MX.example.net."));
    }
}
