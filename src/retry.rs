//! `--retry-inconclusive FILE`: an earlier `--mx` output, rescanned only
//! where it was left inconclusive (rate limits, timeouts, DNS errors,
//! our own budget), merged into one result.
//!
//! A domain is retried when its record is inconclusive or one of its
//! endpoints' records is. Its old domain record and every inconclusive
//! endpoint record are dropped; every other line of FILE is written again
//! unchanged, first, and the retried domains' new records follow. Endpoint
//! records that were settled are not scanned again: the rerun reuses them
//! as `--resume` does, so the merged output has one record per endpoint.

use anyhow::Context as _;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::BufRead as _;

/// What the retry rescans and what it keeps.
#[derive(Debug, Default)]
pub struct Retry {
    /// FILE's lines that stay, in their order.
    pub kept: Vec<String>,
    /// The domains to scan again, sorted.
    pub domains: Vec<String>,
    /// Whether a kept record already says that some endpoint or domain
    /// does not get TLS (the merged result's exit code is 1 then).
    pub kept_not_ok: bool,
}

/// Reads FILE and decides what to retry.
pub fn read(path: &std::path::Path) -> anyhow::Result<Retry> {
    let what = || format!("reading --retry-inconclusive {}", path.display());
    let file = std::fs::File::open(path).with_context(what)?;
    let mut lines: Vec<(String, Option<Value>)> = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.with_context(what)?;
        let v = serde_json::from_str::<Value>(&line).ok();
        lines.push((line, v));
    }
    Ok(decide(lines))
}

fn inconclusive(v: &Value) -> bool {
    v["status"] == "inconclusive"
}

fn decide(lines: Vec<(String, Option<Value>)>) -> Retry {
    let mut retry_domains: BTreeSet<String> = BTreeSet::new();
    for v in lines.iter().filter_map(|(_, v)| v.as_ref()) {
        match v["record"].as_str() {
            Some("domain") if inconclusive(v) => {
                if let Some(d) = v["domain"].as_str() {
                    retry_domains.insert(crate::dns::normalise(d));
                }
            }
            Some("endpoint") if inconclusive(v) => {
                for d in v["target"]["mx_of"].as_array().into_iter().flatten() {
                    if let Some(d) = d.as_str() {
                        retry_domains.insert(crate::dns::normalise(d));
                    }
                }
            }
            _ => {}
        }
    }
    let mut r = Retry::default();
    for (line, v) in lines {
        // An incomplete last line (an interrupted run) is dropped.
        let Some(v) = v else { continue };
        let drop = match v["record"].as_str() {
            Some("domain") => v["domain"]
                .as_str()
                .is_some_and(|d| retry_domains.contains(&crate::dns::normalise(d))),
            Some("endpoint") => inconclusive(&v),
            _ => false,
        };
        if drop {
            continue;
        }
        if v["status"].as_str().is_some_and(|s| s != "negotiated") {
            r.kept_not_ok = true;
        }
        r.kept.push(line);
    }
    r.domains = retry_domains.into_iter().collect();
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(v: Value) -> (String, Option<Value>) {
        (v.to_string(), Some(v))
    }

    #[test]
    fn only_inconclusive_domains_and_their_endpoints_are_retried() {
        let lines = vec![
            line(
                json!({"record": "endpoint", "status": "negotiated", "target": {"host": "mx1", "mx_of": ["a.test", "b.test"]}}),
            ),
            line(
                json!({"record": "endpoint", "status": "inconclusive", "target": {"host": "mx2", "mx_of": ["b.test"]}}),
            ),
            line(json!({"record": "domain", "domain": "a.test", "status": "negotiated"})),
            line(json!({"record": "domain", "domain": "b.test", "status": "failed"})),
            line(json!({"record": "domain", "domain": "c.test", "status": "inconclusive"})),
            ("{\"record\": \"endp".to_owned(), None),
        ];
        let r = decide(lines);
        assert_eq!(r.domains, vec!["b.test", "c.test"], "b uses an inconclusive endpoint");
        assert_eq!(r.kept.len(), 2, "{:?}", r.kept);
        assert!(r.kept[0].contains("mx1") && r.kept[1].contains("a.test"));
        assert!(!r.kept_not_ok);
    }
}
