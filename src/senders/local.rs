//! `local`: this machine's Postfix as a sender profile, from `postconf`
//! (which honours `MAIL_CONFIG` like every Postfix command): its version,
//! the `smtp_tls_*` settings that shape the hello or what it accepts, and
//! the OpenSSL it runs on. The hello comes from the shipped profile of the
//! same Postfix/OpenSSL generation and security level, narrowed by the
//! configured protocols and cipher exclusions. Without a configured
//! Postfix, the default profile stands in, and the notes say so.

use super::{Level, Profile, DEFAULT};
use hsscan_wire::{catalog, ProtocolVersion};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

/// What `postconf` printed, parameter by value.
pub type Settings = BTreeMap<String, String>;

/// The parameters read, all of them shaping the hello or the acceptance.
const PARAMS: &[&str] = &[
    "mail_version",
    "smtp_tls_security_level",
    "smtp_tls_protocols",
    "smtp_tls_mandatory_protocols",
    "smtp_tls_ciphers",
    "smtp_tls_mandatory_ciphers",
    "smtp_tls_exclude_ciphers",
    "smtp_tls_mandatory_exclude_ciphers",
    "smtp_tls_servername",
    "smtp_tls_policy_maps",
    "tls_config_file",
    "tls_eecdh_auto_curves",
];

/// Runs `postconf PARAMS…` (with a time limit); `None` without Postfix or
/// without a main.cf (Debian's "No configuration").
pub fn postconf() -> Option<Settings> {
    let bin = ["/usr/sbin/postconf", "/usr/local/sbin/postconf"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    // Without a main.cf postconf fails, but only after the second Postfix
    // programs sleep on a fatal error: look first.
    // (The usual config_directory of each install; MAIL_CONFIG names another.)
    let dirs: Vec<std::path::PathBuf> = match std::env::var_os("MAIL_CONFIG") {
        Some(d) => vec![d.into()],
        None => vec!["/etc/postfix".into(), "/usr/local/etc/postfix".into()],
    };
    if !dirs.iter().any(|d| d.join("main.cf").is_file()) {
        return None;
    }
    let out = run_with_limit(Command::new(bin).args(PARAMS), Duration::from_secs(5))?;
    let mut s = Settings::new();
    for line in out.lines() {
        if let Some((k, v)) = line.split_once(" = ") {
            s.insert(k.trim().to_owned(), v.trim().to_owned());
        } else if let Some(k) = line.strip_suffix(" =") {
            s.insert(k.trim().to_owned(), String::new());
        }
    }
    s.contains_key("mail_version").then_some(s)
}

fn run_with_limit(cmd: &mut Command, limit: Duration) -> Option<String> {
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let deadline = std::time::Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => break,
            Ok(Some(_)) => return None,
            Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                return None;
            }
        }
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take()?, &mut text).ok()?;
    Some(text)
}

/// The OpenSSL version of this machine (`openssl version`), e.g. `3.0.19`.
fn openssl_version() -> Option<String> {
    let out = run_with_limit(Command::new("openssl").arg("version"), Duration::from_secs(5))?;
    out.split_whitespace().nth(1).map(str::to_owned)
}

/// Postfix's protocol syntax (`>=TLSv1.2`, `!SSLv2, !SSLv3`, `TLSv1.2 TLSv1.3`)
/// as the lowest version allowed.
pub fn min_protocol(spec: &str) -> Option<ProtocolVersion> {
    let all = [
        ("SSLv3", ProtocolVersion::SSL3),
        ("TLSv1", ProtocolVersion::TLS10),
        ("TLSv1.1", ProtocolVersion::TLS11),
        ("TLSv1.2", ProtocolVersion::TLS12),
        ("TLSv1.3", ProtocolVersion::TLS13),
    ];
    let name = |s: &str| all.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)).map(|(_, v)| *v);
    let mut allowed: Vec<ProtocolVersion> = all.iter().map(|(_, v)| *v).collect();
    let mut listed: Vec<ProtocolVersion> = Vec::new();
    for tok in spec
        .split(|c: char| c == ',' || c == ':' || c.is_whitespace())
        .filter(|t| !t.is_empty())
    {
        if let Some(v) = tok.strip_prefix(">=").and_then(name) {
            allowed.retain(|x| catalog::version_rank(*x) >= catalog::version_rank(v));
        } else if let Some(v) = tok.strip_prefix("<=").and_then(name) {
            allowed.retain(|x| catalog::version_rank(*x) <= catalog::version_rank(v));
        } else if let Some(v) = tok.strip_prefix('!').and_then(name) {
            allowed.retain(|x| *x != v);
        } else if let Some(v) = name(tok) {
            listed.push(v);
        }
    }
    if !listed.is_empty() {
        allowed.retain(|x| listed.contains(x));
    }
    allowed.into_iter().min_by_key(|v| catalog::version_rank(*v))
}

/// This machine's Postfix as a profile; the default profile (with a note
/// saying so) when there is none.
pub fn profile() -> Profile {
    match postconf() {
        Some(s) => from_settings(&s, openssl_version().as_deref()),
        None => {
            let mut p = Profile::shipped(DEFAULT).unwrap_or_else(|_| unreachable_default());
            p.notes.push(format!(
                "no configured Postfix on this machine (postconf found no main.cf): {} assumed",
                p.id
            ));
            p.id = format!("local:{}", p.id);
            p
        }
    }
}

#[allow(clippy::panic)]
fn unreachable_default() -> Profile {
    // The default profile is compiled in and parsed by a unit test.
    panic!("the shipped default sender profile does not parse")
}

/// The profile of a Postfix with settings `s` on OpenSSL `openssl`.
pub fn from_settings(s: &Settings, openssl: Option<&str>) -> Profile {
    let get = |k: &str| s.get(k).map(String::as_str).unwrap_or("");
    let mut notes = Vec::new();
    let level = match get("smtp_tls_security_level") {
        "" | "none" => {
            notes.push(
                "smtp_tls_security_level is empty or none: this Postfix sends no STARTTLS; judged as if it were may"
                    .to_owned(),
            );
            Level::May
        }
        "may" => Level::May,
        "encrypt" => Level::Encrypt,
        "dane" => Level::Dane,
        "dane-only" => Level::DaneOnly,
        "verify" | "fingerprint" => Level::Verify,
        "secure" => Level::Secure,
        other => {
            notes.push(format!(
                "smtp_tls_security_level = {other} is not modelled: judged as may"
            ));
            Level::May
        }
    };
    let generation = match openssl.map(|v| v.split('.').take(2).collect::<Vec<_>>().join(".")) {
        Some(g) if g == "1.0" => "1.0.2",
        Some(g) if g == "1.1" => "1.1.1",
        Some(g) if g.starts_with("3.") && g.as_str() >= "3.5" => "3.5",
        Some(_) => "3.0",
        None => {
            notes.push("the OpenSSL version is unknown (no openssl command): OpenSSL 3.0 assumed".to_owned());
            "3.0"
        }
    };
    let verifying = level >= Level::Verify;
    let base = match (generation, verifying, level) {
        ("3.0", false, Level::Encrypt) => "postfix-3.7-openssl-3.0-encrypt",
        ("3.0", false, _) => "postfix-3.7-openssl-3.0-may",
        ("3.0", true, _) => "postfix-3.7-openssl-3.0-verify",
        ("3.5", false, _) => "postfix-openssl-3.5-may",
        ("3.5", true, _) => "postfix-openssl-3.5-verify",
        ("1.1.1", false, _) => "postfix-openssl-1.1.1-may",
        ("1.1.1", true, _) => "postfix-openssl-1.1.1-verify",
        ("1.0.2", false, _) => "postfix-openssl-1.0.2-may",
        _ => "postfix-openssl-1.0.2-verify",
    };
    let mut p = Profile::shipped(base).unwrap_or_else(|_| unreachable_default());
    let mandatory = level >= Level::Encrypt && !matches!(level, Level::Dane | Level::DaneOnly);
    let protocols = if mandatory {
        get("smtp_tls_mandatory_protocols")
    } else {
        get("smtp_tls_protocols")
    };
    if let Some(min) = min_protocol(protocols) {
        if catalog::version_rank(min) > catalog::version_rank(p.accept.min_version) {
            p = p.with_min_version(min);
        }
    }
    let exclude = if mandatory {
        get("smtp_tls_mandatory_exclude_ciphers")
    } else {
        get("smtp_tls_exclude_ciphers")
    };
    let excluded: Vec<&str> = exclude
        .split(|c: char| c == ',' || c == ':' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .collect();
    if !excluded.is_empty() {
        p = p.without_suites(|s| {
            catalog::suite(s)
                .and_then(|i| i.openssl_name)
                .is_some_and(|n| excluded.iter().any(|x| x.eq_ignore_ascii_case(n)))
        });
        notes.push(format!(
            "excluded ciphers applied by OpenSSL name only: {}",
            excluded.join(", ")
        ));
    }
    let grade = if mandatory {
        get("smtp_tls_mandatory_ciphers")
    } else {
        get("smtp_tls_ciphers")
    };
    if !grade.is_empty() && grade != "medium" {
        notes.push(format!(
            "cipher grade {grade} is not modelled: the medium grade's hello is used"
        ));
    }
    if !get("smtp_tls_servername").is_empty() {
        p.sni = true;
    }
    p.id = "local".to_owned();
    p.name = format!(
        "this machine's Postfix {} on OpenSSL {} at smtp_tls_security_level = {}",
        get("mail_version"),
        openssl.unwrap_or("?"),
        level.as_str()
    );
    p.mta_version = get("mail_version").to_owned();
    p.level = level;
    if protocols != ">=TLSv1" && !protocols.is_empty() {
        notes.push(format!(
            "{} = {protocols}",
            if mandatory {
                "smtp_tls_mandatory_protocols"
            } else {
                "smtp_tls_protocols"
            }
        ));
    }
    notes.push(format!("from postconf; hello of {base}"));
    p.notes = notes;
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let mut s: Settings = [("mail_version", "3.7.11"), ("smtp_tls_protocols", ">=TLSv1")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        for (k, v) in pairs {
            s.insert((*k).to_owned(), (*v).to_owned());
        }
        s
    }

    #[test]
    fn protocol_syntax() {
        assert_eq!(min_protocol(">=TLSv1.2"), Some(ProtocolVersion::TLS12));
        assert_eq!(min_protocol("!SSLv2, !SSLv3"), Some(ProtocolVersion::TLS10));
        assert_eq!(
            min_protocol("!SSLv2:!SSLv3:!TLSv1:!TLSv1.1"),
            Some(ProtocolVersion::TLS12)
        );
        assert_eq!(min_protocol("TLSv1.2 TLSv1.3"), Some(ProtocolVersion::TLS12));
        assert_eq!(min_protocol(">=TLSv1"), Some(ProtocolVersion::TLS10));
    }

    #[test]
    fn settings_pick_the_profile_and_narrow_it() {
        let p = from_settings(&settings(&[("smtp_tls_security_level", "may")]), Some("3.0.19"));
        assert_eq!(p.prepare(None).expect("encodes").cipher_count, 86);
        assert_eq!(p.accept.min_version, ProtocolVersion::TLS10);
        let p = from_settings(
            &settings(&[("smtp_tls_security_level", "may"), ("smtp_tls_protocols", ">=TLSv1.2")]),
            Some("3.0.19"),
        );
        assert_eq!(p.accept.min_version, ProtocolVersion::TLS12);
        let p = from_settings(&settings(&[("smtp_tls_security_level", "verify")]), Some("3.0.19"));
        assert!(!p.accept.legacy_signatures);
        assert_eq!(p.prepare(None).expect("encodes").cipher_count, 74);
        let p = from_settings(&settings(&[]), Some("3.0.19"));
        assert_eq!(p.level, Level::May);
        assert!(p.notes.iter().any(|n| n.contains("judged as if it were may")));
    }
}
