//! Advice (SPEC §3 `advice`, §8): for each sender that gets no TLS, the
//! narrowest change in its own syntax — a Postfix `smtp_tls_policy_maps`
//! line for that next hop, or a dedicated transport where a policy line
//! cannot say it — or the plain statement that no setting of that sender
//! can do TLS there, with the scoped exception and the receiver-side fix.
//! Advice never weakens a sender globally.

use super::{Level, Outcome, Profile, ReasonKind, SenderResult};
use hsscan_wire::ProtocolVersion;
use serde::Serialize;
use std::collections::BTreeMap;

/// `action` of an advice entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    PostfixPolicy,
    PostfixTransport,
    NoTlsPossible,
    ReceiverChange,
}

/// `expect`: what the sender gets once the advice is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    Tls,
    Plaintext,
}

/// One advice entry (SPEC §3).
#[derive(Debug, Clone, Serialize)]
pub struct Advice {
    pub for_sender: String,
    pub action: Action,
    pub text: String,
    pub expect: Option<Expect>,
    /// The `smtp_tls_policy_maps` line, verbatim (postmap-ready).
    pub policy_line: Option<String>,
    /// The `transport_maps` line.
    pub transport_line: Option<String>,
    /// The master.cf lines of a dedicated transport.
    pub master_cf: Vec<String>,
    /// main.cf settings the advice needs (e.g. the policy or transport map).
    pub main_cf: BTreeMap<String, String>,
    /// What showed the advice works: a probe with the advised hello, or null.
    pub verified_by: Option<String>,
}

impl Advice {
    /// An entry of `action` for `sender` saying `text`, with no lines yet.
    pub fn new(sender: &str, action: Action, text: String) -> Self {
        Self {
            for_sender: sender.to_owned(),
            action,
            text,
            expect: None,
            policy_line: None,
            transport_line: None,
            master_cf: Vec::new(),
            main_cf: BTreeMap::new(),
            verified_by: None,
        }
    }
}

/// What the scan knows that advice needs.
pub struct Facts<'a> {
    /// `host` and `port` of the next hop as Postfix writes it.
    pub host: &'a str,
    pub port: u16,
    /// The recipient domains routed to this MX (bulk runs), if known.
    pub domains: &'a [String],
    /// The best version any hello negotiated.
    pub best_version: Option<ProtocolVersion>,
    /// Suites the server chose for any hello, and whether the sender's
    /// library can negotiate any of them.
    pub server_suites: Vec<hsscan_wire::CipherSuite>,
    /// The UTC date advice expires (owner and removal date comments).
    pub today: time::Date,
    /// The name a sender puts in its SNI (when it sends one).
    pub sni: Option<&'a str>,
}

/// The result of a probe with a changed hello, per candidate.
pub struct Tried {
    pub what: Candidate,
    pub result: SenderResult,
}

/// A change that can be tried with a hello before it is advised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidate {
    /// protocols=>=TLSv1 (the library's lowest).
    LowerMinimum(ProtocolVersion),
    /// exclude=kEECDH:kEDH: static RSA, which needs no legacy signature.
    NoEphemeral,
    /// exclude=kEDH: no finite-field DH.
    NoDhe,
}

impl Candidate {
    /// The profile that would send the hello of this change.
    pub fn apply(self, p: &Profile) -> Profile {
        let kx = |s: hsscan_wire::CipherSuite| {
            hsscan_wire::catalog::suite(s)
                .and_then(|i| i.properties)
                .map_or("", |p| p.kx)
        };
        match self {
            Candidate::LowerMinimum(v) => p.with_min_version(v),
            Candidate::NoEphemeral => p.without_suites(|s| {
                let k = kx(s);
                k.starts_with("ECDHE") || k.starts_with("DHE")
            }),
            Candidate::NoDhe => p.without_suites(|s| kx(s).starts_with("DHE")),
        }
    }

    fn attribute(self, postfix_version: &str) -> String {
        match self {
            Candidate::LowerMinimum(v) => protocols_attr(v, postfix_version),
            Candidate::NoEphemeral => "exclude=kEECDH:kEDH".to_owned(),
            Candidate::NoDhe => "exclude=kEDH".to_owned(),
        }
    }
}

/// The changes worth trying for a failed sender, cheapest first.
pub fn candidates(p: &Profile, r: &SenderResult, best: Option<ProtocolVersion>) -> Vec<Candidate> {
    if !p.mta.starts_with("postfix") || r.outcome != Outcome::NoTls {
        return Vec::new();
    }
    let rank = hsscan_wire::catalog::version_rank;
    let lowest = if p.library.starts_with("OpenSSL") {
        ProtocolVersion::TLS10
    } else {
        p.accept.min_version
    };
    match r.reason.as_ref().map(|x| x.kind) {
        Some(ReasonKind::NoSharedProtocol) => match best {
            Some(v) if rank(v) < rank(p.accept.min_version) && rank(v) >= rank(lowest) => {
                vec![Candidate::LowerMinimum(v)]
            }
            _ => Vec::new(),
        },
        Some(ReasonKind::LegacySignature) => vec![Candidate::NoEphemeral],
        Some(ReasonKind::WeakDh) => vec![Candidate::NoDhe],
        _ => Vec::new(),
    }
}

/// Postfix's protocols attribute from `v` up, in the syntax of its version.
fn protocols_attr(v: ProtocolVersion, postfix_version: &str) -> String {
    let name = match v {
        ProtocolVersion::SSL3 => "SSLv3",
        ProtocolVersion::TLS10 => "TLSv1",
        ProtocolVersion::TLS11 => "TLSv1.1",
        ProtocolVersion::TLS12 => "TLSv1.2",
        _ => "TLSv1.3",
    };
    let modern = postfix_version
        .split('.')
        .take(2)
        .map(|x| x.parse::<u32>().unwrap_or(0))
        .collect::<Vec<_>>();
    if modern.first().copied().unwrap_or(0) > 3
        || (modern.first() == Some(&3) && modern.get(1).copied().unwrap_or(0) >= 6)
    {
        format!("protocols=>={name}")
    } else {
        // Before 3.6: exclusions only.
        let below: Vec<&str> = ["SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2"]
            .into_iter()
            .take_while(|n| *n != name)
            .collect();
        format!(
            "protocols={}",
            below.iter().map(|n| format!("!{n}")).collect::<Vec<_>>().join(":")
        )
    }
}

/// The policy table keys for this next hop: the recipient domains when
/// known (MX-routed mail is looked up by domain), else `[host]:port`.
fn keys(f: &Facts<'_>) -> Vec<String> {
    if f.domains.is_empty() {
        vec![format!("[{}]:{}", f.host, f.port)]
    } else {
        f.domains.to_vec()
    }
}

fn policy_main_cf() -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert(
        "smtp_tls_policy_maps".to_owned(),
        "hash:/etc/postfix/tls_policy".to_owned(),
    );
    m
}

/// The scoped-exception comment: an owner and a removal date.
fn exception_comment(f: &Facts<'_>, why: &str) -> String {
    let until = f.today.checked_add(time::Duration::days(90)).unwrap_or(f.today);
    format!(
        "# hsscan: exception for {} ({why}); owner: postmaster; remove by {until}",
        f.host
    )
}

/// Advice for one sender result; `tried` holds the probes of candidates.
pub fn advise(p: &Profile, r: &SenderResult, tried: &[Tried], f: &Facts<'_>) -> Vec<Advice> {
    let mut out = Vec::new();
    if r.outcome != Outcome::NoTls {
        return out;
    }
    let Some(reason) = r.reason.as_ref() else { return out };
    let postfix = p.mta.starts_with("postfix");
    let base = |action, text: String| Advice::new(&p.id, action, text);
    // A change that a probe showed to work: the narrowest fix.
    if let Some(t) = tried.iter().find(|t| t.result.outcome == Outcome::Tls) {
        let attr = t.what.attribute(&p.mta_version);
        let lines: Vec<String> = keys(f)
            .iter()
            .map(|k| format!("{k} {} {attr}", p.level.as_str()))
            .collect();
        let n = t.result.negotiated.as_ref();
        let mut a = base(
            Action::PostfixPolicy,
            format!(
                "add to the smtp_tls_policy_maps table (then postmap it): {}; with it this sender negotiates {}",
                lines.join(" / "),
                n.map_or_else(String::new, |n| format!(
                    "{} {}",
                    n.version.name().unwrap_or("?"),
                    n.cipher.name().map_or_else(|| n.cipher.hex(), str::to_owned)
                ))
            ),
        );
        a.expect = Some(Expect::Tls);
        a.policy_line = lines.first().cloned();
        a.main_cf = policy_main_cf();
        a.verified_by = Some("a probe with the hello this policy makes the sender send".to_owned());
        out.push(a);
        out.push(receiver(p, reason.kind, f));
        return out;
    }
    let level = p.level;
    let plaintext_anyway = level.falls_back_to_plaintext();
    match reason.kind {
        ReasonKind::TlsExpected if postfix => {
            let name = "smtps-wrapper";
            let mut a = base(
                Action::PostfixTransport,
                format!(
                    "{}:{} expects TLS at once (implicit TLS), not STARTTLS: route it through a transport in wrapper mode",
                    f.host, f.port
                ),
            );
            a.expect = Some(Expect::Tls);
            a.master_cf = vec![
                format!("{name} unix  -       -       n       -       -       smtp"),
                "  -o smtp_tls_wrappermode=yes".to_owned(),
                "  -o smtp_tls_security_level=encrypt".to_owned(),
            ];
            let key = f.domains.first().map_or(f.host, String::as_str);
            a.transport_line = Some(format!("{key} {name}:[{}]:{}", f.host, f.port));
            a.main_cf
                .insert("transport_maps".to_owned(), "hash:/etc/postfix/transport".to_owned());
            out.push(a);
            return out;
        }
        // The mirror image: an SMTP banner answered the ClientHello, so the
        // port speaks STARTTLS and the sender was told to start TLS at once
        // (wrapper mode, or port 465 habits applied to 25/587). Nothing is
        // wrong on the receiver.
        ReasonKind::PlaintextReply if postfix => {
            let name = "smtp-starttls";
            let mut a = base(
                Action::PostfixTransport,
                format!(
                    "{}:{} speaks SMTP and offers STARTTLS; it does not start TLS at once: deliver there without wrapper mode (a transport of its own, below), and check that smtp_tls_wrappermode is not set for it",
                    f.host, f.port
                ),
            );
            a.master_cf = vec![
                format!("{name} unix  -       -       n       -       -       smtp"),
                "  -o smtp_tls_wrappermode=no".to_owned(),
                format!("  -o smtp_tls_security_level={}", level.as_str()),
            ];
            let key = f.domains.first().map_or(f.host, String::as_str);
            a.transport_line = Some(format!("{key} {name}:[{}]:{}", f.host, f.port));
            a.main_cf
                .insert("transport_maps".to_owned(), "hash:/etc/postfix/transport".to_owned());
            out.push(a);
            return out;
        }
        ReasonKind::RateLimited | ReasonKind::Unreachable | ReasonKind::NotConfirmed => return out,
        _ => {}
    }
    // No setting of this sender works: say so, with the scoped exception.
    let why = reason.kind.as_str();
    let mut a = base(
        Action::NoTlsPossible,
        if plaintext_anyway {
            format!(
                "no setting of {} gets TLS to {}:{} ({why}: {}); at {} Postfix retries without TLS, so mail goes in plaintext; to skip the failing handshake each time, add the exception below",
                p.name, f.host, f.port, reason.detail, level.as_str()
            )
        } else {
            format!(
                "no setting of {} gets TLS to {}:{} ({why}: {}); at {} the mail is deferred; to deliver it in plaintext meanwhile, add the scoped exception below — or leave it deferred until the receiver is fixed",
                p.name, f.host, f.port, reason.detail, level.as_str()
            )
        },
    );
    a.expect = Some(Expect::Plaintext);
    if postfix {
        let exception = if plaintext_anyway { "none" } else { "may" };
        let key = keys(f).into_iter().next().unwrap_or_default();
        a.policy_line = Some(format!("{key} {exception}"));
        a.main_cf = policy_main_cf();
        a.text = format!("{}\n  {}\n  {key} {exception}", a.text, exception_comment(f, why));
    }
    out.push(a);
    // A verifying sender may still get (unverified) encryption.
    if postfix
        && level >= Level::Verify
        && matches!(
            reason.kind,
            ReasonKind::LegacySignature | ReasonKind::CertificateRejected | ReasonKind::WeakDh | ReasonKind::WeakKey
        )
    {
        let key = keys(f).into_iter().next().unwrap_or_default();
        let mut e = base(
            Action::PostfixPolicy,
            format!(
                "to keep encryption without verification for this destination only (Postfix runs OpenSSL at security level 0 below verify):\n  {}\n  {key} encrypt",
                exception_comment(f, why)
            ),
        );
        e.expect = Some(Expect::Tls);
        e.policy_line = Some(format!("{key} encrypt"));
        e.main_cf = policy_main_cf();
        out.push(e);
    }
    out.push(receiver(p, reason.kind, f));
    out
}

/// The receiver-side change that would fix it.
fn receiver(p: &Profile, kind: ReasonKind, f: &Facts<'_>) -> Advice {
    let best = f
        .best_version
        .and_then(|v| v.name())
        .unwrap_or("no TLS version hsscan could negotiate");
    let text = match kind {
        ReasonKind::NoSharedProtocol | ReasonKind::LegacySignature => format!(
            "on {}: enable TLS 1.2 (it negotiates {best}); on Windows/Exchange enable TLS 1.2 for Schannel (server side) and install the updates that add it; a TLS 1.2 ServerKeyExchange is signed with SHA-256",
            f.host
        ),
        ReasonKind::NoSharedCipher => format!(
            "on {}: offer AES-GCM or AES-CBC suites with ECDHE or RSA key exchange (the server chose only {}, which {} cannot negotiate); on Windows/Exchange re-enable the default Schannel cipher-suite order",
            f.host,
            if f.server_suites.is_empty() {
                "suites hsscan did not see".to_owned()
            } else {
                f.server_suites
                    .iter()
                    .map(|s| s.name().map_or_else(|| s.hex(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            p.library
        ),
        ReasonKind::WeakDh => format!("on {}: use a DH group of at least 2048 bits, or ECDHE", f.host),
        ReasonKind::WeakKey => format!("on {}: use an RSA key of at least 2048 bits", f.host),
        ReasonKind::CertificateRejected => format!(
            "on {}: serve a certificate valid for its name, with the intermediate certificates, from a CA senders trust (on Exchange: the SMTP certificate bound to the receive connector)",
            f.host
        ),
        ReasonKind::HelloIntolerance | ReasonKind::Dropped => format!(
            "on {}: the device in front of the mail server drops the ClientHello; update its firmware or disable its TLS/SMTP inspection",
            f.host
        ),
        ReasonKind::StarttlsAbsent | ReasonKind::StarttlsRejected => {
            format!("on {}: offer STARTTLS with a certificate", f.host)
        }
        _ => format!("on {}: fix the TLS service so a standard client can negotiate", f.host),
    };
    Advice::new(&p.id, Action::ReceiverChange, text)
}

/// Whether `g` is a post-quantum group (ML-KEM alone or in a hybrid).
fn post_quantum(g: hsscan_wire::NamedGroup) -> bool {
    use hsscan_wire::catalog::{group, GroupKind};
    group(g).is_some_and(|i| matches!(i.kind, GroupKind::MlKem | GroupKind::Hybrid))
}

/// A sender change that moves one hello property, for one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The post-quantum groups left out of the group list (and shares).
    NoPostQuantum,
    /// No RFC 7685 padding (Postfix: `tls_disable_workarounds =
    /// TLSEXT_PADDING`, OpenSSL's SSL_OP_TLSEXT_PADDING, which Postfix
    /// turns on with the rest of SSL_OP_ALL).
    NoPadding,
    /// A short cipher list with the server's suite first.
    ShortCiphers,
    /// Both of the above.
    ShortCiphersNoPadding,
    /// Up to TLS 1.2.
    NoTls13,
    /// No session_ticket extension (Postfix: `tls_ssl_options = NO_TICKET`).
    NoTicket,
}

/// Whether the sender's library pads hellos of 256 to 511 bytes to 512
/// (OpenSSL with SSL_OP_TLSEXT_PADDING: what Postfix sets): its hello
/// shows it, or Postfix on OpenSSL does it where the hello is longer.
fn pads(p: &Profile) -> bool {
    p.hello.extension(hsscan_wire::ExtensionType::PADDING_0015).is_some()
        || (p.mta.starts_with("postfix") && p.library.starts_with("OpenSSL"))
}

/// Marks a changed hello of a sender that pads as padded: the sender's
/// [`Profile::prepare`] then applies OpenSSL's rule to what is left (a
/// hello of 256 to 511 bytes becomes 512, others stay as they are).
fn keep_padding(hello: &mut hsscan_wire::ClientHello) {
    let ext = hello.extensions.get_or_insert_with(Vec::new);
    if !ext
        .iter()
        .any(|e| matches!(e, hsscan_wire::ClientExtension::Padding(_)))
    {
        ext.push(hsscan_wire::ClientExtension::Padding(0));
    }
}

/// The server's suite first, then the sender's ECDHE AEAD suites, after
/// the sender's TLS 1.3 suites (which no cipher list touches); `None` when
/// the suite has no OpenSSL name to write into a cipher list.
fn short_suites(p: &Profile, suite: hsscan_wire::CipherSuite) -> Option<Vec<hsscan_wire::CipherSuite>> {
    hsscan_wire::catalog::suite(suite)?.openssl_name?;
    let short = |s: hsscan_wire::CipherSuite| {
        hsscan_wire::catalog::suite(s)
            .and_then(|i| i.properties)
            .is_some_and(|x| x.kx.starts_with("ECDHE") && (x.cipher.contains("GCM") || x.cipher.contains("CHACHA")))
    };
    let all = &p.hello.cipher_suites;
    let mut suites: Vec<_> = all.iter().copied().filter(|s| (s.0 >> 8) == 0x13).collect();
    suites.push(suite);
    suites.extend(all.iter().copied().filter(|s| *s != suite && short(*s)));
    suites.extend(all.iter().copied().filter(|s| s.is_signal()));
    Some(suites)
}

/// `p` as it would be after `change`, or `None` where the change does
/// not apply to this sender's hello.
fn apply_change(p: &Profile, change: Change, suite: hsscan_wire::CipherSuite) -> Option<Profile> {
    use hsscan_wire::ClientExtension as E;
    let mut c = p.clone();
    let padded = pads(p);
    match change {
        Change::NoPostQuantum => {
            let ext = c.hello.extensions.get_or_insert_with(Vec::new);
            let pq = ext.iter().any(|e| match e {
                E::SupportedGroups(g) => g.iter().any(|x| post_quantum(*x)),
                _ => false,
            });
            if !pq {
                return None;
            }
            for e in ext.iter_mut() {
                match e {
                    E::SupportedGroups(g) => g.retain(|x| !post_quantum(*x)),
                    E::KeyShare(s) => {
                        s.retain(|x| !post_quantum(x.group));
                        if s.is_empty() {
                            *s = hsscan_wire::client_hello::key_shares(&[hsscan_wire::NamedGroup::X25519]);
                        }
                    }
                    _ => {}
                }
            }
            if padded {
                keep_padding(&mut c.hello);
            }
        }
        Change::NoPadding | Change::ShortCiphersNoPadding => {
            let ext = c.hello.extensions.get_or_insert_with(Vec::new);
            if !ext.iter().any(|e| matches!(e, E::Padding(_))) {
                return None;
            }
            ext.retain(|e| !matches!(e, E::Padding(_)));
            if change == Change::ShortCiphersNoPadding {
                c.hello.cipher_suites = short_suites(p, suite)?;
            }
        }
        Change::ShortCiphers => {
            c.hello.cipher_suites = short_suites(p, suite)?;
            if padded {
                keep_padding(&mut c.hello);
            }
        }
        Change::NoTicket => {
            let ext = c.hello.extensions.get_or_insert_with(Vec::new);
            let before = ext.len();
            ext.retain(|e| e.typ() != hsscan_wire::ExtensionType::SESSION_TICKET);
            if ext.len() == before {
                return None;
            }
            if padded {
                keep_padding(&mut c.hello);
            }
        }
        Change::NoTls13 => {
            let ext = c.hello.extensions.get_or_insert_with(Vec::new);
            let offers13 = ext
                .iter()
                .any(|e| matches!(e, E::SupportedVersions(v) if v.contains(&ProtocolVersion::TLS13)));
            if !offers13 {
                return None;
            }
            ext.retain(|e| !matches!(e, E::SupportedVersions(_) | E::KeyShare(_) | E::PskKeyExchangeModes(_)));
            c.hello.cipher_suites.retain(|s| (s.0 >> 8) != 0x13);
        }
    }
    Some(c)
}

/// The length of the hello `p` sends (its SNI, its padding), in one record.
fn record_bytes(p: &Profile, sni: Option<&str>) -> usize {
    p.prepare(sni).map_or(usize::MAX, |h| h.hello_bytes)
}

/// The sender change for an intolerance `found` by bisection (`suite`:
/// what the server negotiated), and the sender as it would be after it:
/// the hello to try before the change is advised. `None`: no sender
/// setting changes that property. A hello dropped above a length gets the
/// first change, smallest first, whose hello fits under it.
pub fn sender_change(
    p: &Profile,
    found: &crate::enumerate::Intolerance,
    suite: hsscan_wire::CipherSuite,
    sni: Option<&str>,
) -> Option<(Change, Profile)> {
    let try_ = |c: Change| apply_change(p, c, suite).map(|x| (c, x));
    match found.property {
        "key-share-size" => try_(Change::NoPostQuantum),
        "hello-length" => match found.longest_answered {
            Some(limit) => {
                let mut order = vec![Change::NoPostQuantum];
                if p.mta.starts_with("postfix") && version_at_least(&p.mta_version, 3, 4) {
                    order.push(Change::NoPadding);
                }
                order.push(Change::ShortCiphers);
                if p.mta.starts_with("postfix") && version_at_least(&p.mta_version, 3, 4) {
                    order.push(Change::ShortCiphersNoPadding);
                }
                order
                    .into_iter()
                    .filter_map(try_)
                    .find(|(_, x)| record_bytes(x, sni) <= limit)
            }
            None => try_(Change::NoPostQuantum),
        },
        "suite-position" | "suite-count" => try_(Change::ShortCiphers),
        "extension" => match found.extension {
            // What TLS 1.3 adds, or an extension not named: without TLS 1.3.
            None | Some(0x002b | 0x0033 | 0x002d) => try_(Change::NoTls13),
            Some(0x0023) => try_(Change::NoTicket),
            Some(0x0015) if version_at_least(&p.mta_version, 3, 4) => try_(Change::NoPadding),
            Some(_) => None,
        },
        _ => None,
    }
}

/// Whether a Postfix version string (`3.7`, `3.7.11`) is at least `major.minor`.
fn version_at_least(v: &str, major: u32, minor: u32) -> bool {
    let mut parts = v.split('.').map(|x| x.parse::<u32>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

/// Advice for a sender whose hello the server drops because of the
/// intolerance `found` by bisection (SPEC §8): the sender setting that
/// changes that property for this destination only, where one exists,
/// and the receiver-side fix. `suite`: what the server negotiated.
pub fn for_intolerance(
    p: &Profile,
    found: &crate::enumerate::Intolerance,
    suite: hsscan_wire::CipherSuite,
    f: &Facts<'_>,
) -> Vec<Advice> {
    let mut out = Vec::new();
    let property = found.property;
    let postfix = p.mta.starts_with("postfix");
    let base = |action, text: String| Advice::new(&p.id, action, text);
    let key = f.domains.first().map_or(f.host, String::as_str);
    let transport = |name: &str, overrides: Vec<String>, text: String| {
        let mut a = base(Action::PostfixTransport, text);
        a.expect = Some(Expect::Tls);
        a.master_cf = vec![format!("{name} unix  -       -       n       -       -       smtp")];
        a.master_cf.extend(overrides);
        a.transport_line = Some(format!("{key} {name}:[{}]:{}", f.host, f.port));
        a.main_cf
            .insert("transport_maps".to_owned(), "hash:/etc/postfix/transport".to_owned());
        a
    };
    let name = hsscan_wire::catalog::suite(suite)
        .and_then(|i| i.openssl_name)
        .unwrap_or("");
    let ciphers = || {
        vec![
            format!("  -o {{tls_medium_cipherlist = {name}:ECDHE+AESGCM:ECDHE+CHACHA20}}"),
            "  -o smtp_tls_ciphers=medium".to_owned(),
            "  -o smtp_tls_mandatory_ciphers=medium".to_owned(),
        ]
    };
    let no_padding = || "  -o tls_disable_workarounds=TLSEXT_PADDING".to_owned();
    let change = if postfix {
        sender_change(p, found, suite, f.sni)
    } else {
        None
    };
    let sizes = |x: &Profile| {
        format!(
            "this sender's hello is {} bytes, the changed one {} bytes",
            record_bytes(p, f.sni),
            record_bytes(x, f.sni)
        )
    };
    let dest = format!("{}:{}", f.host, f.port);
    match &change {
        Some((Change::NoPostQuantum, x)) => out.push(transport(
            "nopq",
            vec!["  -o {tls_eecdh_auto_curves = X25519 prime256v1 secp384r1}".to_owned()],
            format!(
                "{dest} drops this sender's hello because of its post-quantum key share ({property}): route it through a transport whose group list leaves out the post-quantum hybrid (X25519MLKEM768), which shrinks the hello by about 1,200 bytes ({}); other destinations keep it",
                sizes(x)
            ),
        )),
        Some((Change::NoTicket, x)) => out.push(transport(
            "noticket",
            vec!["  -o tls_ssl_options=NO_TICKET".to_owned()],
            format!(
                "{dest} drops hellos carrying the session_ticket extension ({property}): route it through a transport without it ({}; add any tls_ssl_options your main.cf sets; sessions to it are then not resumed by ticket); other destinations keep it",
                sizes(x)
            ),
        )),
        Some((Change::NoPadding, x)) if property == "extension" => out.push(transport(
            "nopadding",
            vec![no_padding()],
            format!(
                "{dest} drops hellos carrying the padding extension ({property}): route it through a transport without that padding ({}; add any tls_disable_workarounds your main.cf sets); other destinations keep it",
                sizes(x)
            ),
        )),
        Some((Change::NoPadding, x)) => out.push(transport(
            "nopadding",
            vec![no_padding()],
            format!(
                "{dest} drops hellos longer than {} bytes ({property}), and this sender pads its hello to 512 bytes (RFC 7685): route it through a transport without that padding ({}; add any tls_disable_workarounds your main.cf sets); other destinations keep it",
                found.longest_answered.unwrap_or(0),
                sizes(x)
            ),
        )),
        Some((Change::ShortCiphers | Change::ShortCiphersNoPadding, x)) if property == "hello-length" => {
            let mut o = ciphers();
            let mut how = "a short cipher list that puts the suite it takes first";
            if change.as_ref().is_some_and(|(c, _)| *c == Change::ShortCiphersNoPadding) {
                o.push(no_padding());
                how = "a short cipher list that puts the suite it takes first, and no padding";
            }
            out.push(transport(
                "shorthello",
                o,
                format!(
                    "{dest} drops hellos longer than {} bytes ({property}): route it through a transport with {how} ({name}; {})",
                    found.longest_answered.unwrap_or(0),
                    sizes(x)
                ),
            ));
        }
        Some((Change::ShortCiphers | Change::ShortCiphersNoPadding, _)) => out.push(transport(
            "shortciphers",
            ciphers(),
            format!(
                "{dest} reads only the first suites of a hello ({property}) and this sender offers the one it takes ({name}) too late: route it through a transport with a short cipher list that puts {name} first"
            ),
        )),
        Some((Change::NoTls13, _)) => {
            let attr = if protocols_attr(ProtocolVersion::TLS10, &p.mta_version).starts_with("protocols=>=") {
                "protocols=<=TLSv1.2".to_owned()
            } else {
                "protocols=!SSLv2:!SSLv3:!TLSv1.3".to_owned()
            };
            let line = format!("[{}]:{} {} {attr}", f.host, f.port, p.level.as_str());
            let mut a = base(
                Action::PostfixPolicy,
                format!(
                    "{dest} drops hellos that offer TLS 1.3 (TLS 1.3 intolerance): hold this destination at TLS 1.2 until the receiver is fixed:\n  {}\n  {line}",
                    exception_comment(f, "hello-intolerance")
                ),
            );
            a.expect = Some(Expect::Tls);
            a.policy_line = Some(line);
            a.main_cf = policy_main_cf();
            out.push(a);
        }
        None => {}
    }
    let fix = match property {
        "suite-position" | "suite-count" => "it reads only the first suites of a hello (Windows Server 2003 Schannel reads 64): move the service to a supported Windows/Exchange release, or put a TLS proxy in front",
        "hello-length" => "a device in front of it drops hellos of some lengths (F5 BIG-IP: 256 to 511 bytes; others: long hellos): update its firmware or disable its TLS/SMTP inspection",
        "key-share-size" => "it (or a device in front) drops hellos with a post-quantum key share: update the TLS stack or the device's firmware, or disable its TLS/SMTP inspection",
        "record-split" | "segment-split" => "a device in front of it does not reassemble a hello split over records or TCP segments: update its firmware or disable its TLS/SMTP inspection",
        "extension" => "it drops hellos carrying one extension: update its TLS stack (on Windows: the Schannel updates) or the device in front",
        _ => "it drops hellos of one record or protocol version (version intolerance): update its TLS stack or the device in front",
    };
    let mut r = base(Action::ReceiverChange, format!("on {}: {fix}", f.host));
    r.expect = None;
    out.push(r);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_attribute_follows_the_postfix_version() {
        assert_eq!(protocols_attr(ProtocolVersion::TLS10, "3.7.11"), "protocols=>=TLSv1");
        assert_eq!(
            protocols_attr(ProtocolVersion::TLS10, "3.4.14"),
            "protocols=!SSLv2:!SSLv3"
        );
        assert_eq!(
            protocols_attr(ProtocolVersion::TLS12, "3.1"),
            "protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1"
        );
    }

    fn found(property: &'static str) -> crate::enumerate::Intolerance {
        crate::enumerate::Intolerance {
            property,
            evidence: String::new(),
            longest_answered: None,
            extension: None,
        }
    }

    fn facts() -> Facts<'static> {
        Facts {
            host: "mx.example.net",
            port: 25,
            domains: &[],
            best_version: Some(ProtocolVersion::TLS12),
            server_suites: vec![],
            today: time::macros::date!(2026 - 01 - 01),
            sni: None,
        }
    }

    #[test]
    fn a_suite_window_is_advised_a_short_cipher_list_with_the_servers_suite_first() {
        let p = Profile::shipped("postfix-3.7-openssl-3.0-may").expect("profile");
        let theirs = p.hello.cipher_suites[70];
        let name = hsscan_wire::catalog::suite(theirs)
            .and_then(|i| i.openssl_name)
            .expect("OpenSSL name");
        let a = for_intolerance(&p, &found("suite-position"), theirs, &facts());
        assert_eq!(a[0].action, Action::PostfixTransport);
        assert!(
            a[0].master_cf[1].contains(&format!("tls_medium_cipherlist = {name}:")),
            "{:?}",
            a[0].master_cf
        );
        assert_eq!(
            a[0].transport_line.as_deref(),
            Some("mx.example.net shortciphers:[mx.example.net]:25")
        );
        assert_eq!(a.last().map(|x| x.action), Some(Action::ReceiverChange));
        let (_, changed) = sender_change(&p, &found("suite-position"), theirs, None).expect("a changed hello");
        let at = changed
            .hello
            .cipher_suites
            .iter()
            .position(|s| *s == theirs)
            .expect("offered");
        assert!(
            at < 64 && changed.hello.cipher_suites.len() < p.hello.cipher_suites.len(),
            "{at}"
        );
    }

    #[test]
    fn a_length_limit_gets_the_smallest_change_whose_hello_fits_under_it() {
        let p = Profile::shipped("postfix-3.7-openssl-3.0-may").expect("profile");
        assert_eq!(record_bytes(&p, None), 517, "the captured hello, padded");
        let suite = hsscan_wire::CipherSuite(0xc030);
        let limit = |n| crate::enumerate::Intolerance {
            longest_answered: Some(n),
            ..found("hello-length")
        };
        // Without its padding the hello is 405 bytes.
        let (c, x) = sender_change(&p, &limit(512), suite, None).expect("a change");
        assert_eq!((c, record_bytes(&x, None)), (Change::NoPadding, 405));
        let a = for_intolerance(&p, &limit(512), suite, &facts());
        assert_eq!(a[0].master_cf[1], "  -o tls_disable_workarounds=TLSEXT_PADDING");
        assert!(a[0].text.contains("longer than 512 bytes"), "{}", a[0].text);
        // A short list (the server's suite, then ECDHE AEAD) is under
        // 256 bytes, where OpenSSL does not pad.
        let (c, x) = sender_change(&p, &limit(300), suite, None).expect("a change");
        assert_eq!(c, Change::ShortCiphers);
        assert!(record_bytes(&x, None) < 256 + 5, "{}", record_bytes(&x, None));
        let a = for_intolerance(&p, &limit(300), suite, &facts());
        assert!(a[0]
            .master_cf
            .iter()
            .any(|l| l.contains("ECDHE-RSA-AES256-GCM-SHA384:")));
        assert_eq!(
            a[0].transport_line.as_deref(),
            Some("mx.example.net shorthello:[mx.example.net]:25")
        );
        // Nothing brings it under 200 bytes: only the receiver can help.
        assert!(sender_change(&p, &limit(200), suite, None).is_none());
        let a = for_intolerance(&p, &limit(200), suite, &facts());
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].action, Action::ReceiverChange);
        // Post-quantum: leaving the hybrid out is tried first.
        let pq = Profile::shipped("postfix-openssl-3.5-may").expect("profile");
        assert!(record_bytes(&pq, None) > 1024, "{}", record_bytes(&pq, None));
        let (c, x) = sender_change(&pq, &limit(1024), suite, None).expect("a change");
        assert_eq!(c, Change::NoPostQuantum);
        assert!(record_bytes(&x, None) < 256 + 5, "{}", record_bytes(&x, None));
    }

    #[test]
    fn a_changed_hello_is_padded_as_openssl_pads_it() {
        // A handshake message of 256 to 511 bytes becomes 512 (RFC 7685,
        // OpenSSL's tls_construct_ctos_padding); others stay as they are:
        // the sender's own prepare applies it to whatever a change leaves.
        let p = Profile::shipped("postfix-3.7-openssl-3.0-may").expect("profile");
        for (suites, want) in [(10u16, None), (100, Some(517)), (240, None)] {
            let mut c = p.clone();
            c.hello.cipher_suites = (0..suites).map(|i| hsscan_wire::CipherSuite(0x0100 + i)).collect();
            c.hello
                .extensions
                .get_or_insert_with(Vec::new)
                .retain(|e| !matches!(e, hsscan_wire::ClientExtension::Padding(_)));
            let bare = record_bytes(&c, None);
            keep_padding(&mut c.hello);
            let padded = record_bytes(&c, None);
            assert_eq!(padded, want.unwrap_or(bare), "{suites} suites: {bare} bytes bare");
        }
        // The SNI the sender sends counts: a long name takes a short list
        // into the padding window.
        let name = "mx1.partner-mail.example.net";
        let limit = crate::enumerate::Intolerance {
            longest_answered: Some(300),
            ..found("hello-length")
        };
        let mut sni = p.clone();
        sni.sni = true;
        let short = sender_change(&sni, &limit, hsscan_wire::CipherSuite(0xc030), None);
        assert_eq!(short.map(|(c, _)| c), Some(Change::ShortCiphers));
        let (c, x) = sender_change(&sni, &limit, hsscan_wire::CipherSuite(0xc030), Some(name)).expect("a change");
        assert_eq!(
            c,
            Change::ShortCiphersNoPadding,
            "{} bytes",
            record_bytes(&x, Some(name))
        );
        assert!(record_bytes(&x, Some(name)) <= 300);
    }

    #[test]
    fn tls13_intolerance_holds_that_destination_at_tls12_and_splits_only_ask_the_receiver() {
        let p = Profile::shipped("postfix-3.7-openssl-3.0-may").expect("profile");
        let suite = hsscan_wire::CipherSuite(0xc02f);
        let a = for_intolerance(&p, &found("extension"), suite, &facts());
        assert_eq!(
            a[0].policy_line.as_deref(),
            Some("[mx.example.net]:25 may protocols=<=TLSv1.2")
        );
        let (_, changed) = sender_change(&p, &found("extension"), suite, None).expect("changed");
        assert!(changed
            .hello
            .extension(hsscan_wire::ExtensionType::SUPPORTED_VERSIONS)
            .is_none());
        let old = Profile::shipped("postfix-openssl-1.1.1-may").expect("profile");
        let a = for_intolerance(&old, &found("extension"), suite, &facts());
        assert_eq!(
            a[0].policy_line.as_deref(),
            Some("[mx.example.net]:25 may protocols=!SSLv2:!SSLv3:!TLSv1.3")
        );
        // One named extension: the knob for it where Postfix has one.
        let ext = |t| crate::enumerate::Intolerance {
            extension: Some(t),
            ..found("extension")
        };
        let a = for_intolerance(&p, &ext(0x0023), suite, &facts());
        assert_eq!(a[0].master_cf[1], "  -o tls_ssl_options=NO_TICKET");
        assert_eq!(
            for_intolerance(&p, &ext(0x0033), suite, &facts())[0].action,
            Action::PostfixPolicy
        );
        let a = for_intolerance(&p, &ext(0x0017), suite, &facts());
        assert_eq!(a.len(), 1, "extended_master_secret: no Postfix setting, {a:?}");
        for property in ["record-split", "segment-split", "record-version", "hello-length"] {
            let a = for_intolerance(&p, &found(property), suite, &facts());
            assert_eq!(a.len(), 1, "{property}: {a:?}");
            assert_eq!(a[0].action, Action::ReceiverChange, "{property}");
        }
    }
}
