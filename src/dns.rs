//! DNS for bulk scans (hickory-resolver): a domain's MX hosts in
//! preference order, the RFC 5321 §5.1 implicit MX, the RFC 7505 null MX,
//! and every address of a host. Failures are results with the DNS kinds
//! of SPEC §3: `nxdomain`, `no-mx`, `dns-error`.

use crate::outcome::{Failure, FailureKind, Stage};
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::{ResolveError, TokioResolver};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// One MX host of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxHost {
    /// Lowercase, without the final dot.
    pub host: String,
    pub preference: u16,
}

/// What a domain's MX lookup says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxAnswer {
    /// MX records, lowest preference first.
    Hosts(Vec<MxHost>),
    /// No MX records, but the domain has an address: it is its own MX
    /// (RFC 5321 §5.1).
    Implicit(MxHost),
    /// `MX 0 .`: the domain accepts no mail (RFC 7505).
    Null,
}

/// Address family restriction (`-4`, `-6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Any,
    V4,
    V6,
}

pub struct Dns {
    resolver: TokioResolver,
    overrides: HashMap<String, Vec<IpAddr>>,
    family: Family,
    /// Addresses of MX hosts already looked up: many domains share a few
    /// providers' hosts. Bounded; cleared when full.
    hosts: std::sync::Mutex<HashMap<String, Result<Vec<IpAddr>, Failure>>>,
}

/// MX hosts whose addresses are remembered at most.
const HOST_CACHE: usize = 100_000;

/// A host name as compared and reported: lowercase, no final dot.
pub fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// NOERROR with no answer (NODATA): the name exists without that type.
/// hickory reports SERVFAIL, REFUSED and the like as "no records" too,
/// with their response code: those are DNS errors, not answers.
fn nodata(e: &ResolveError) -> bool {
    use hickory_resolver::proto::op::ResponseCode;
    use hickory_resolver::proto::ProtoErrorKind;
    matches!(
        e.proto().map(|p| p.kind()),
        Some(ProtoErrorKind::NoRecordsFound {
            response_code: ResponseCode::NoError,
            ..
        })
    )
}

fn classify(what: &str, e: &ResolveError) -> Failure {
    if e.is_nx_domain() {
        Failure::new(
            Stage::Dns,
            FailureKind::Nxdomain,
            format!("{what}: the domain does not exist (NXDOMAIN)"),
        )
    } else {
        Failure::new(Stage::Dns, FailureKind::DnsError, format!("{what}: {e}"))
    }
}

impl Dns {
    /// A resolver asking `server` (`--dns`), else the system's.
    pub fn new(
        server: Option<SocketAddr>,
        overrides: HashMap<String, Vec<IpAddr>>,
        family: Family,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let mut builder = match server {
            Some(addr) => {
                let mut config = ResolverConfig::new();
                config.add_name_server(NameServerConfig::new(addr, Protocol::Udp));
                config.add_name_server(NameServerConfig::new(addr, Protocol::Tcp));
                TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
            }
            None => TokioResolver::builder_tokio().context("reading the system's DNS configuration")?,
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.timeout = timeout;
        opts.attempts = 2;
        // Names are absolute: never try the search list.
        opts.ndots = 0;
        opts.cache_size = 4096;
        // The system's resolver reads /etc/hosts first, as getaddrinfo does;
        // a named --dns server alone decides.
        opts.use_hosts_file = if server.is_some() {
            hickory_resolver::config::ResolveHosts::Never
        } else {
            hickory_resolver::config::ResolveHosts::Always
        };
        Ok(Self {
            resolver: builder.build(),
            overrides,
            family,
            hosts: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The MX answer for `domain`.
    pub async fn mx(&self, domain: &str) -> Result<MxAnswer, Failure> {
        let fqdn = format!("{}.", normalise(domain));
        match self.resolver.mx_lookup(fqdn.as_str()).await {
            Ok(lookup) => {
                let mut hosts: Vec<MxHost> = Vec::new();
                let mut null = false;
                for mx in lookup.iter() {
                    if mx.exchange().is_root() {
                        null = true;
                        continue;
                    }
                    // The ASCII (punycode) form: it is what SNI and certificates use.
                    let host = normalise(&mx.exchange().to_ascii());
                    if !hosts.iter().any(|h| h.host == host) {
                        hosts.push(MxHost {
                            host,
                            preference: mx.preference(),
                        });
                    }
                }
                if null && hosts.is_empty() {
                    return Ok(MxAnswer::Null);
                }
                // Stable: equal preferences keep the server's order.
                hosts.sort_by_key(|h| h.preference);
                if hosts.is_empty() {
                    return self.implicit(domain).await;
                }
                Ok(MxAnswer::Hosts(hosts))
            }
            Err(e) if e.is_nx_domain() => Err(classify(&format!("looking up MX of {domain}"), &e)),
            Err(e) if nodata(&e) => self.implicit(domain).await,
            Err(e) => Err(classify(&format!("looking up MX of {domain}"), &e)),
        }
    }

    /// No MX: the domain itself, if it has an address.
    async fn implicit(&self, domain: &str) -> Result<MxAnswer, Failure> {
        match self.addresses(domain).await {
            Ok(ips) if !ips.is_empty() => Ok(MxAnswer::Implicit(MxHost {
                host: normalise(domain),
                preference: 0,
            })),
            Ok(_) => Err(Failure::new(
                Stage::Dns,
                FailureKind::NoMx,
                format!("{domain} has no MX record and no address"),
            )),
            Err(f) if f.kind == FailureKind::Nxdomain => Err(Failure::new(
                Stage::Dns,
                FailureKind::NoMx,
                format!("{domain} has no MX record and no address"),
            )),
            Err(f) => Err(f),
        }
    }

    /// Every address of `host` of the allowed family: `--resolve` first,
    /// then A and AAAA (CNAMEs are followed by the resolver). Empty when
    /// the name exists with no address of that family.
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, Failure> {
        let name = normalise(host);
        if let Some(hit) = self.hosts.lock().ok().and_then(|m| m.get(&name).cloned()) {
            return hit;
        }
        let answer = self.lookup_addresses(&name).await;
        // Transient failures (timeouts, SERVFAIL) are not remembered.
        let lasting = answer
            .as_ref()
            .map_or_else(|f| f.kind == FailureKind::Nxdomain, |_| true);
        if let (true, Ok(mut m)) = (lasting, self.hosts.lock()) {
            if m.len() >= HOST_CACHE {
                m.clear();
            }
            m.insert(name, answer.clone());
        }
        answer
    }

    async fn lookup_addresses(&self, name: &str) -> Result<Vec<IpAddr>, Failure> {
        let name = name.to_owned();
        if let Some(ips) = self.overrides.get(&name) {
            return Ok(self.keep(ips.clone()));
        }
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(self.keep(vec![ip]));
        }
        let fqdn = format!("{name}.");
        let mut ips = Vec::new();
        let mut last_error = None;
        let mut nx = 0;
        if self.family != Family::V6 {
            match self.resolver.ipv4_lookup(fqdn.as_str()).await {
                Ok(l) => ips.extend(l.iter().map(|a| IpAddr::V4(a.0))),
                Err(e) if e.is_nx_domain() => nx += 1,
                Err(e) if nodata(&e) => {}
                Err(e) => last_error = Some(e),
            }
        }
        if self.family != Family::V4 {
            match self.resolver.ipv6_lookup(fqdn.as_str()).await {
                Ok(l) => ips.extend(l.iter().map(|a| IpAddr::V6(a.0))),
                Err(e) if e.is_nx_domain() => nx += 1,
                Err(e) if nodata(&e) => {}
                Err(e) => last_error = Some(e),
            }
        }
        if !ips.is_empty() {
            return Ok(self.keep(ips));
        }
        if let Some(e) = last_error {
            return Err(classify(&format!("resolving {name}"), &e));
        }
        if nx > 0 {
            return Err(Failure::new(
                Stage::Dns,
                FailureKind::Nxdomain,
                format!("resolving {name}: the name does not exist (NXDOMAIN)"),
            ));
        }
        Ok(Vec::new())
    }

    fn keep(&self, ips: Vec<IpAddr>) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> = Vec::new();
        for ip in ips {
            let ok = match self.family {
                Family::Any => true,
                Family::V4 => ip.is_ipv4(),
                Family::V6 => ip.is_ipv6(),
            };
            if ok && !out.contains(&ip) {
                out.push(ip);
            }
        }
        out
    }
}
