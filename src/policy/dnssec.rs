//! DNS answers with their DNSSEC status, for DANE (RFC 7672) and the
//! policy TXT records: one question to a validating resolver, whose AD bit
//! says whether the answer is secure.
//!
//! Why the AD bit of a resolver and not hickory's own validation: a
//! sender at `smtp_tls_security_level = dane` (Postfix, Exim) trusts
//! exactly the AD bit of its own validating resolver, so the resolver the
//! admin names with `--dns` (their MTA's) is the one whose view matters;
//! hickory's validator would need its own trust anchors and could
//! disagree with it. The system's resolver is asked otherwise, and the
//! report says which one answered.
//!
//! A validating resolver answers SERVFAIL both for a validation failure
//! and for a lookup it could not finish. The same question with CD
//! (checking disabled) tells them apart: data without validation is a
//! bogus answer (`bogus`), a second SERVFAIL a failed lookup (`error`).
//! SERVFAIL is never read as "no records".

use hickory_resolver::proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use serde::Serialize;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The DNSSEC status of an answer (SPEC §3c `dnssec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Security {
    /// Validated (AD set), records or a validated denial.
    Secure,
    /// Not signed, or not under a trust anchor of the resolver.
    Insecure,
    /// Signed, but the signatures do not validate.
    Bogus,
    /// The lookup failed (SERVFAIL, REFUSED, timeout): nothing is known.
    Error,
}

/// One answer: its status, response code and the records of the type asked.
#[derive(Debug, Clone)]
pub struct Answer {
    pub security: Security,
    pub rcode: ResponseCode,
    pub records: Vec<RData>,
    /// What the resolver said when the lookup failed.
    pub detail: Option<String>,
}

impl Answer {
    /// NXDOMAIN or NOERROR without records of the type.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// A validating resolver, asked over UDP (TCP when the answer is truncated).
#[derive(Debug, Clone)]
pub struct Resolver {
    pub server: SocketAddr,
    pub timeout: Duration,
}

/// How often a question is sent before the lookup is an `error`.
const ATTEMPTS: usize = 2;
/// A DNS message larger than this is not read (TLSA and TXT RRsets are small).
const MAX_MESSAGE: usize = 65535;

impl Resolver {
    /// `--dns` when given, else the first `nameserver` of /etc/resolv.conf,
    /// else 127.0.0.1:53.
    pub fn new(server: Option<SocketAddr>, timeout: Duration) -> Self {
        let server = server.unwrap_or_else(|| {
            std::fs::read_to_string("/etc/resolv.conf")
                .ok()
                .and_then(|text| {
                    text.lines().find_map(|l| {
                        let mut w = l.split_whitespace();
                        (w.next() == Some("nameserver"))
                            .then(|| w.next().and_then(|ip| ip.parse().ok()))
                            .flatten()
                    })
                })
                .map_or_else(|| SocketAddr::from(([127, 0, 0, 1], 53)), |ip| SocketAddr::new(ip, 53))
        });
        Self { server, timeout }
    }

    /// Asks for `rtype` records of `name`, with its DNSSEC status.
    pub async fn lookup(&self, name: &str, rtype: RecordType) -> Answer {
        let first = self.ask(name, rtype, false).await;
        match first {
            Ok(m) if m.response_code() == ResponseCode::ServFail => {
                // Bogus or broken: ask again without validation.
                match self.ask(name, rtype, true).await {
                    Ok(cd) if matches!(cd.response_code(), ResponseCode::NoError | ResponseCode::NXDomain) => Answer {
                        security: Security::Bogus,
                        rcode: ResponseCode::ServFail,
                        records: records_of(&cd, rtype),
                        detail: Some(format!(
                            "{} answered SERVFAIL, and with checking disabled {}: the signatures do not validate",
                            self.server,
                            cd.response_code()
                        )),
                    },
                    _ => failed(
                        self.server,
                        ResponseCode::ServFail,
                        "SERVFAIL, also with checking disabled",
                    ),
                }
            }
            Ok(m) if matches!(m.response_code(), ResponseCode::NoError | ResponseCode::NXDomain) => Answer {
                security: if m.authentic_data() {
                    Security::Secure
                } else {
                    Security::Insecure
                },
                rcode: m.response_code(),
                records: records_of(&m, rtype),
                detail: None,
            },
            Ok(m) => failed(self.server, m.response_code(), &m.response_code().to_string()),
            Err(e) => failed(self.server, ResponseCode::ServFail, &e),
        }
    }

    async fn ask(&self, name: &str, rtype: RecordType, checking_disabled: bool) -> Result<Message, String> {
        let fqdn = format!("{}.", crate::dns::normalise(name));
        let name = Name::from_ascii(&fqdn).map_err(|e| format!("{fqdn} is not a DNS name: {e}"))?;
        let mut id = [0u8; 2];
        getrandom::getrandom(&mut id).map_err(|e| e.to_string())?;
        let mut query = Message::new();
        query
            .set_id(u16::from_be_bytes(id))
            .set_message_type(MessageType::Query)
            .set_op_code(OpCode::Query)
            .set_recursion_desired(true)
            // RFC 6840 §5.7: AD in a query asks for AD in the answer.
            .set_authentic_data(true)
            .set_checking_disabled(checking_disabled)
            .add_query(Query::query(name, rtype));
        let mut edns = Edns::new();
        edns.set_max_payload(1232).set_dnssec_ok(true);
        query.set_edns(edns);
        let bytes = query.to_vec().map_err(|e| e.to_string())?;
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            match tokio::time::timeout(self.timeout, self.udp(&bytes, query.id())).await {
                Ok(Ok(m)) if m.truncated() => {
                    return tokio::time::timeout(self.timeout, self.tcp(&bytes))
                        .await
                        .map_err(|_| format!("no TCP answer from {} within {:?}", self.server, self.timeout))?;
                }
                Ok(Ok(m)) => return Ok(m),
                Ok(Err(e)) => last = e,
                Err(_) => last = format!("no answer from {} within {:?}", self.server, self.timeout),
            }
        }
        Err(last)
    }

    async fn udp(&self, query: &[u8], id: u16) -> Result<Message, String> {
        let local: SocketAddr = if self.server.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let socket = tokio::net::UdpSocket::bind(local).await.map_err(|e| e.to_string())?;
        socket.connect(self.server).await.map_err(|e| e.to_string())?;
        socket.send(query).await.map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 4096];
        loop {
            let n = socket
                .recv(&mut buf)
                .await
                .map_err(|e| format!("asking {}: {e}", self.server))?;
            let m = Message::from_vec(buf.get(..n).unwrap_or(&[])).map_err(|e| e.to_string())?;
            // A stray datagram with another id is not our answer.
            if m.id() == id {
                return Ok(m);
            }
        }
    }

    async fn tcp(&self, query: &[u8]) -> Result<Message, String> {
        let mut s = tokio::net::TcpStream::connect(self.server)
            .await
            .map_err(|e| format!("asking {} over TCP: {e}", self.server))?;
        let len = u16::try_from(query.len()).map_err(|e| e.to_string())?;
        s.write_all(&len.to_be_bytes()).await.map_err(|e| e.to_string())?;
        s.write_all(query).await.map_err(|e| e.to_string())?;
        let mut l = [0u8; 2];
        s.read_exact(&mut l).await.map_err(|e| e.to_string())?;
        let n = usize::from(u16::from_be_bytes(l)).min(MAX_MESSAGE);
        let mut buf = vec![0u8; n];
        s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        Message::from_vec(&buf).map_err(|e| e.to_string())
    }
}

fn records_of(m: &Message, rtype: RecordType) -> Vec<RData> {
    m.answers()
        .iter()
        .filter(|r: &&Record| r.record_type() == rtype)
        .map(|r| r.data().clone())
        .collect()
}

fn failed(server: SocketAddr, rcode: ResponseCode, what: &str) -> Answer {
    Answer {
        security: Security::Error,
        rcode,
        records: Vec::new(),
        detail: Some(format!("{server}: {what}")),
    }
}
