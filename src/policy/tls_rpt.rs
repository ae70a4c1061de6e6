//! TLS-RPT (RFC 8460 §3): the `_smtp._tls.DOMAIN` TXT record and where it
//! asks senders to send their reports (`rua`).

use super::dnssec::Resolver;
use serde::Serialize;

/// `policy.tls_rpt` of SPEC §3c.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsRpt {
    /// The v=TLSRPTv1 record as published (`null`: none).
    pub txt: Option<String>,
    /// Its `rua` addresses, `mailto:` and `https:` URIs.
    pub rua: Vec<String>,
    /// Why the record could not be read, when it could not.
    pub error: Option<String>,
}

/// The `rua` URIs of a TXT record's text; `None` when it is not TLSRPTv1.
pub fn parse(raw: &str) -> Option<Vec<String>> {
    let mut fields = raw.split(';').map(str::trim).filter(|f| !f.is_empty());
    if fields.next()? != "v=TLSRPTv1" {
        return None;
    }
    Some(
        fields
            .filter_map(|f| f.strip_prefix("rua="))
            .flat_map(|v| v.split(','))
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .collect(),
    )
}

/// Looks up the TLS-RPT record of `domain`.
pub async fn lookup(resolver: &Resolver, domain: &str) -> TlsRpt {
    let name = format!("_smtp._tls.{}", crate::dns::normalise(domain));
    match super::mta_sts::txt_records(resolver, &name).await {
        Err(e) => TlsRpt {
            txt: None,
            rua: Vec::new(),
            error: Some(format!("the {name} TXT lookup failed: {e}")),
        },
        Ok(records) => {
            let found: Vec<(String, Vec<String>)> = records
                .into_iter()
                .filter_map(|r| parse(&r).map(|rua| (r, rua)))
                .collect();
            match found.as_slice() {
                [(txt, rua)] => TlsRpt {
                    txt: Some(txt.clone()),
                    rua: rua.clone(),
                    error: None,
                },
                [] => TlsRpt {
                    txt: None,
                    rua: Vec::new(),
                    error: None,
                },
                _ => TlsRpt {
                    txt: None,
                    rua: Vec::new(),
                    error: Some(format!(
                        "{name} has {} v=TLSRPTv1 records; RFC 8460 §3 allows one",
                        found.len()
                    )),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rua_lists_mailto_and_https() {
        assert_eq!(
            parse("v=TLSRPTv1; rua=mailto:tls@example.net,https://r.example.net/v1"),
            Some(vec![
                "mailto:tls@example.net".to_owned(),
                "https://r.example.net/v1".to_owned()
            ])
        );
        assert_eq!(parse("v=STSv1; id=1"), None);
    }
}
