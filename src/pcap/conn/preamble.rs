//! The stream classifier: which cleartext protocol a connection speaks
//! before its TLS, and where in each direction that cleartext ends.
//!
//! Text protocols (SMTP, IMAP, POP3, XMPP, IRC, FTP, HTTP CONNECT) are read
//! line by line by [`Conn`](super::Conn); this module names them from their
//! first lines and says which client line asks for TLS and which server line
//! grants it, so that one protocol's words are never read with another's
//! rules (an IRC `670` numeric grants STARTTLS, an SMTP `220` does, an IMAP
//! `a1 OK` does only for tag `a1`). Binary preambles (SOCKS4/4a, SOCKS5, an
//! LDAP StartTLS extended operation in BER) are parsed here message by
//! message. Anything else falls back to [`tls_start`]: the first offset
//! where a plausible ClientHello record begins.

/// A cleartext protocol seen before TLS (SPEC §3b `preamble.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Smtp,
    Imap,
    Pop3,
    Xmpp,
    Irc,
    Ftp,
    Ldap,
    Socks4,
    Socks5,
    HttpConnect,
    Other,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Smtp => "smtp",
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
            Protocol::Xmpp => "xmpp",
            Protocol::Irc => "irc",
            Protocol::Ftp => "ftp",
            Protocol::Ldap => "ldap",
            Protocol::Socks4 => "socks4",
            Protocol::Socks5 => "socks5",
            Protocol::HttpConnect => "http-connect",
            Protocol::Other => "other",
        }
    }

    /// Whether the preamble opens a tunnel (its payload may be any protocol,
    /// even another preamble) rather than asking for TLS itself.
    pub fn is_tunnel(self) -> bool {
        matches!(self, Protocol::Socks4 | Protocol::Socks5 | Protocol::HttpConnect)
    }
}

/// The protocol a server's first text line belongs to, as far as it tells.
pub fn from_server_line(line: &str) -> Protocol {
    let t = line.trim_start();
    let digits = t.len() >= 3 && t.bytes().take(3).all(|b| b.is_ascii_digit());
    if digits && matches!(t.as_bytes().get(3), None | Some(b' ' | b'-')) {
        // 220 opens SMTP and FTP alike; the client's first command tells them apart.
        Protocol::Smtp
    } else if t.starts_with("* ") {
        Protocol::Imap
    } else if t.starts_with("+OK") || t.starts_with("-ERR") {
        Protocol::Pop3
    } else if t.starts_with(':') || t.starts_with("NOTICE ") || t.starts_with("PING ") {
        Protocol::Irc
    } else if t.starts_with("HTTP/") {
        Protocol::HttpConnect
    } else if t.starts_with('<') {
        Protocol::Xmpp
    } else {
        Protocol::Other
    }
}

/// The protocol a client's text line belongs to, given what the server
/// said first (`server`, `None` when it has said nothing yet).
pub fn from_client_line(line: &str, server: Option<Protocol>) -> Option<Protocol> {
    let t = line.trim_start();
    if t.starts_with('<') {
        return Some(Protocol::Xmpp);
    }
    let mut words = t.split_ascii_whitespace();
    let first = words.next().unwrap_or("").to_ascii_uppercase();
    let second = words.next().unwrap_or("").to_ascii_uppercase();
    let p = match first.as_str() {
        "EHLO" | "HELO" | "LHLO" => Protocol::Smtp,
        "CONNECT" if t.contains(" HTTP/") => Protocol::HttpConnect,
        "AUTH" if matches!(second.as_str(), "TLS" | "SSL" | "TLS-C" | "TLS-P") => Protocol::Ftp,
        "FEAT" | "PBSZ" | "SYST" | "PASV" => Protocol::Ftp,
        "STLS" | "CAPA" => Protocol::Pop3,
        "NICK" | "CAP" => Protocol::Irc,
        // SMTP clients wait for the banner; an IRC client asks at once.
        "STARTTLS" if server.is_none() => Protocol::Irc,
        "STARTTLS" | "USER" => return server.filter(|s| *s != Protocol::Other),
        _ if is_imap_tag(&first) && matches!(second.as_str(), "STARTTLS" | "CAPABILITY" | "LOGIN" | "NOOP") => {
            Protocol::Imap
        }
        _ => return None,
    };
    Some(p)
}

fn is_imap_tag(word: &str) -> bool {
    !word.is_empty() && word.len() <= 32 && word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
}

/// A client line that asks to start TLS (or to open the tunnel), in `proto`.
/// For IMAP the tag is returned, since only the tagged reply grants it.
pub fn upgrade_command(proto: Protocol, line: &str) -> Option<String> {
    let t = line.trim();
    let mut words = t.split_ascii_whitespace();
    let first = words.next().unwrap_or("");
    let second = words.next().unwrap_or("");
    let yes = match proto {
        Protocol::Smtp | Protocol::Irc => first.eq_ignore_ascii_case("STARTTLS") && second.is_empty(),
        Protocol::Pop3 => first.eq_ignore_ascii_case("STLS"),
        Protocol::Ftp => {
            first.eq_ignore_ascii_case("AUTH")
                && ["TLS", "SSL", "TLS-C", "TLS-P"]
                    .iter()
                    .any(|w| second.eq_ignore_ascii_case(w))
        }
        Protocol::Imap => second.eq_ignore_ascii_case("STARTTLS") && is_imap_tag(first),
        Protocol::Xmpp => t.starts_with("<starttls") || t.contains("<starttls "),
        Protocol::HttpConnect => first.eq_ignore_ascii_case("CONNECT"),
        _ => false,
    };
    yes.then(|| {
        if proto == Protocol::Imap {
            first.to_owned()
        } else {
            String::new()
        }
    })
}

/// What a server line says to an outstanding upgrade request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// TLS (or the tunnel) starts after this line.
    Granted,
    /// Refused: the dialog goes on in cleartext.
    Refused,
    /// Not the answer (an untagged IMAP line, an IRC notice, a continuation).
    Other,
}

/// The answer a server line gives to an upgrade request in `proto`; `tag`
/// is the IMAP command's tag.
pub fn upgrade_answer(proto: Protocol, tag: &str, line: &str) -> Answer {
    let t = line.trim_start();
    let b = t.as_bytes();
    let code = |s: &str| -> Option<u16> {
        let d = s.get(..3)?;
        d.bytes().all(|c| c.is_ascii_digit()).then(|| d.parse().ok())?
    };
    match proto {
        Protocol::Smtp | Protocol::Ftp | Protocol::Irc if t.starts_with(':') => {
            // An IRC server's numeric reply: ":server 670 nick :STARTTLS successful".
            match t.split_ascii_whitespace().nth(1) {
                Some("670") => Answer::Granted,
                Some("691") => Answer::Refused,
                _ => Answer::Other,
            }
        }
        Protocol::Irc if t.starts_with("NOTICE ") || t.starts_with("PING ") => Answer::Other,
        Protocol::Smtp | Protocol::Ftp | Protocol::Irc => match code(t) {
            Some(_) if b.get(3) == Some(&b'-') => Answer::Other,
            Some(234) if proto == Protocol::Ftp => Answer::Granted,
            Some(c) if proto == Protocol::Ftp && c < 200 => Answer::Other,
            Some(_) if proto == Protocol::Ftp => Answer::Refused,
            Some(c) if (200..300).contains(&c) => Answer::Granted,
            Some(_) => Answer::Refused,
            None => Answer::Other,
        },
        Protocol::Pop3 if t.starts_with("+OK") => Answer::Granted,
        Protocol::Pop3 if t.starts_with("-ERR") => Answer::Refused,
        Protocol::Imap => {
            let mut w = t.split_ascii_whitespace();
            if w.next() != Some(tag) {
                return Answer::Other;
            }
            match w.next().map(str::to_ascii_uppercase).as_deref() {
                Some("OK") => Answer::Granted,
                Some(_) => Answer::Refused,
                None => Answer::Other,
            }
        }
        Protocol::Xmpp if t.starts_with("<proceed") => Answer::Granted,
        Protocol::Xmpp if t.starts_with("<failure") => Answer::Refused,
        Protocol::HttpConnect if t.starts_with("HTTP/") => match t.split_ascii_whitespace().nth(1).and_then(code) {
            Some(c) if (200..300).contains(&c) => Answer::Granted,
            Some(c) if c < 200 => Answer::Other,
            _ => Answer::Refused,
        },
        _ => Answer::Other,
    }
}

/// Whether `bytes` begin with what a ClientHello's first record looks
/// like: a TLS handshake record (content type 22, version 3.0–3.4, a length
/// a hello fits in) holding a client_hello whose version is 3.x, or an
/// SSLv2-format CLIENT-HELLO. Bytes not yet received are given the benefit
/// of the doubt; what is there must fit.
pub fn plausible_hello(bytes: &[u8]) -> bool {
    match bytes {
        [0x16, rest @ ..] => {
            let fits = |i: usize, ok: &dyn Fn(u8) -> bool| rest.get(i).is_none_or(|&b| ok(b));
            let rec_len = match (rest.get(2), rest.get(3)) {
                (Some(&a), Some(&b)) => Some(usize::from(u16::from_be_bytes([a, b]))),
                _ => None,
            };
            fits(0, &|b| b == 3)
                && fits(1, &|b| b <= 4)
                && rec_len.is_none_or(|l| (4 + 38..=18_432).contains(&l))
                && fits(4, &|b| b == 1)
                && fits(8, &|b| b == 3)
                && fits(9, &|b| b <= 4)
        }
        // SSLv2 record header (2-byte length, top bit set), CLIENT-HELLO, version 2 or 3.x.
        [h, l, rest @ ..] if h & 0x80 != 0 => {
            let len = usize::from(u16::from_be_bytes([h & 0x7f, *l]));
            (9..=16_384).contains(&len)
                && rest.first().is_none_or(|&t| t == 1)
                && rest.get(1).is_none_or(|&v| v == 0 || v == 3)
                && rest.get(2).is_none_or(|&v| v <= 4)
        }
        [h] => *h == 0x16 || *h & 0x80 != 0,
        _ => false,
    }
}

/// The first offset in `bytes` at which a plausible ClientHello begins.
pub fn tls_start(bytes: &[u8]) -> Option<usize> {
    // Need the record header, the handshake type and the hello version to
    // judge: an offset too close to the end waits for more bytes.
    let last = bytes.len().checked_sub(11)?;
    (0..=last).find(|&i| matches!(bytes.get(i), Some(0x16 | 0x80..)) && plausible_hello(bytes.get(i..).unwrap_or(&[])))
}

/// Where one binary preamble message ends in `bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse {
    /// The message is not whole yet.
    More,
    /// It ends at this offset.
    End(usize),
    /// The bytes are not this protocol.
    No,
}

/// Whether bytes starting with `0` (0x30, BER's SEQUENCE) are an LDAP
/// message rather than text: a BER length, then the messageID's INTEGER tag.
pub fn looks_like_ldap(b: &[u8]) -> bool {
    match b.get(1) {
        Some(&l) if l < 0x80 => b.get(2).is_none_or(|&t| t == 2),
        Some(&l) if (0x81..=0x84).contains(&l) => b.get(2 + usize::from(l & 0x7f)).is_none_or(|&t| t == 2),
        Some(_) => false,
        None => false,
    }
}

/// The binary protocol a client's first byte suggests.
pub fn binary_protocol(first: u8) -> Protocol {
    match first {
        4 => Protocol::Socks4,
        5 => Protocol::Socks5,
        0x30 => Protocol::Ldap,
        _ => Protocol::Other,
    }
}

/// The client's part of a binary preamble: where it ends in `bytes` (the
/// whole preamble, every message, so that the next byte is the tunnel's or
/// the TLS's first).
pub fn client_binary_end(proto: Protocol, bytes: &[u8]) -> Parse {
    match proto {
        Protocol::Socks4 => socks4_request(bytes),
        Protocol::Socks5 => socks5_client(bytes),
        Protocol::Ldap => ldap_until_starttls(bytes),
        _ => Parse::No,
    }
}

/// The server's part: its replies, up to the one that grants the request.
pub fn server_binary_end(proto: Protocol, bytes: &[u8]) -> Parse {
    match proto {
        // SOCKS4 reply: VN 0, CD (90 granted), port, address.
        Protocol::Socks4 => match bytes.get(..8) {
            None => Parse::More,
            Some([0, 90, ..]) => Parse::End(8),
            Some(_) => Parse::No,
        },
        Protocol::Socks5 => socks5_server(bytes),
        Protocol::Ldap => ldap_server(bytes),
        _ => Parse::No,
    }
}

/// SOCKS4 (and 4a): VN 4, CD 1 (connect) or 2 (bind), DSTPORT, DSTIP,
/// USERID NUL, and for 4a (DSTIP 0.0.0.x, x ≠ 0) the host name NUL.
fn socks4_request(b: &[u8]) -> Parse {
    let Some(head) = b.get(..8) else {
        return if b.get(1).is_none_or(|&cd| cd == 1 || cd == 2) {
            Parse::More
        } else {
            Parse::No
        };
    };
    if !matches!(head.get(1), Some(1 | 2)) {
        return Parse::No;
    }
    let socks4a = matches!(head.get(4..8), Some([0, 0, 0, x]) if *x != 0);
    let mut at = 8;
    for _ in 0..if socks4a { 2 } else { 1 } {
        let rest = b.get(at..).unwrap_or(&[]);
        match rest.iter().take(256).position(|&c| c == 0) {
            Some(i) => at += i + 1,
            None if rest.len() >= 256 => return Parse::No,
            None => return Parse::More,
        }
    }
    Parse::End(at)
}

/// SOCKS5 (RFC 1928, RFC 1929): the greeting (VER 5, NMETHODS, METHODS),
/// a username/password sub-negotiation when one follows (VER 1), then the
/// request (VER 5, CMD, RSV 0, an address, a port).
fn socks5_client(b: &[u8]) -> Parse {
    let Some(&n) = b.get(1) else { return Parse::More };
    if n == 0 {
        return Parse::No;
    }
    let mut at = 2 + usize::from(n);
    if b.len() < at {
        return Parse::More;
    }
    if b.get(at) == Some(&1) {
        // RFC 1929: VER 1, ULEN, UNAME, PLEN, PASSWD.
        let Some(&ulen) = b.get(at + 1) else { return Parse::More };
        let Some(&plen) = b.get(at + 2 + usize::from(ulen)) else {
            return Parse::More;
        };
        at += 3 + usize::from(ulen) + usize::from(plen);
    }
    socks5_request(b, at)
}

/// A SOCKS5 request or reply at `at`: VER 5, CMD/REP, RSV 0, ATYP, address, port.
fn socks5_request(b: &[u8], at: usize) -> Parse {
    let Some(head) = b.get(at..at + 5) else {
        return if b.get(at).is_none_or(|&v| v == 5) {
            Parse::More
        } else {
            Parse::No
        };
    };
    let (ver, rsv, atyp, first) = (head[0], head[2], head[3], head[4]);
    if ver != 5 || rsv != 0 {
        return Parse::No;
    }
    let addr = match atyp {
        1 => 4,
        3 => 1 + usize::from(first),
        4 => 16,
        _ => return Parse::No,
    };
    let end = at + 4 + addr + 2;
    if b.len() < end {
        Parse::More
    } else {
        Parse::End(end)
    }
}

/// The SOCKS5 server: method selection (VER 5, METHOD), the sub-negotiation
/// status when the method was 2 (VER 1, STATUS 0), then a reply with REP 0.
fn socks5_server(b: &[u8]) -> Parse {
    let Some(&[ver, method]) = b.get(..2) else {
        return Parse::More;
    };
    if ver != 5 || method == 0xff {
        return Parse::No;
    }
    let mut at = 2;
    if method == 2 {
        match b.get(2..4) {
            None => return Parse::More,
            Some([1, 0]) => at = 4,
            Some(_) => return Parse::No,
        }
    }
    match (b.get(at + 1), socks5_request(b, at)) {
        (Some(&rep), _) if rep != 0 => Parse::No,
        (_, p) => p,
    }
}

/// The StartTLS extended operation's OID (RFC 4511 §4.14.1).
const LDAP_STARTTLS_OID: &[u8] = b"1.3.6.1.4.1.1466.20037";

/// One BER element at the front of `b`: where it ends.
fn ber_element(b: &[u8]) -> Parse {
    let Some(&l0) = b.get(1) else { return Parse::More };
    let (len, head) = match l0 {
        0..=0x7f => (usize::from(l0), 2),
        0x81..=0x84 => {
            let n = usize::from(l0 & 0x7f);
            let Some(digits) = b.get(2..2 + n) else {
                return Parse::More;
            };
            (digits.iter().fold(0usize, |a, &d| (a << 8) | usize::from(d)), 2 + n)
        }
        _ => return Parse::No,
    };
    if len > 1 << 20 {
        return Parse::No;
    }
    if b.len() < head + len {
        Parse::More
    } else {
        Parse::End(head + len)
    }
}

/// LDAP messages (each a BER SEQUENCE), up to and including an
/// ExtendedRequest ([APPLICATION 23]) naming the StartTLS OID.
fn ldap_until_starttls(b: &[u8]) -> Parse {
    let mut at = 0;
    loop {
        let rest = b.get(at..).unwrap_or(&[]);
        match rest.first() {
            None => return Parse::More,
            Some(0x30) => {}
            Some(_) => return Parse::No,
        }
        match ber_element(rest) {
            Parse::End(n) => {
                let msg = rest.get(..n).unwrap_or(&[]);
                at += n;
                if msg.contains(&0x77) && msg.windows(LDAP_STARTTLS_OID.len()).any(|w| w == LDAP_STARTTLS_OID) {
                    return Parse::End(at);
                }
            }
            other => return other,
        }
    }
}

/// The server's LDAP messages up to an ExtendedResponse ([APPLICATION 24])
/// with resultCode success (0).
fn ldap_server(b: &[u8]) -> Parse {
    let mut at = 0;
    loop {
        let rest = b.get(at..).unwrap_or(&[]);
        match rest.first() {
            None => return Parse::More,
            Some(0x30) => {}
            Some(_) => return Parse::No,
        }
        match ber_element(rest) {
            Parse::End(n) => {
                let msg = rest.get(..n).unwrap_or(&[]);
                at += n;
                // ExtendedResponse, then an ENUMERATED resultCode 0.
                if let Some(i) = msg.iter().position(|&t| t == 0x78) {
                    let after = msg.get(i..).unwrap_or(&[]);
                    if after.windows(3).any(|w| w == [0x0a, 1, 0]) {
                        return Parse::End(at);
                    }
                    return Parse::No;
                }
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socks4a_request_ends_after_the_host_name() {
        let mut b = vec![4, 1, 0, 25, 0, 0, 0, 1];
        b.extend_from_slice(b"user\0mx.example.net\0");
        assert_eq!(client_binary_end(Protocol::Socks4, &b[..10]), Parse::More);
        assert_eq!(client_binary_end(Protocol::Socks4, &b), Parse::End(b.len()));
        let plain = [4, 1, 0, 25, 192, 0, 2, 1, 0];
        assert_eq!(client_binary_end(Protocol::Socks4, &plain), Parse::End(9));
        assert_eq!(
            server_binary_end(Protocol::Socks4, &[0, 90, 0, 0, 0, 0, 0, 0]),
            Parse::End(8)
        );
        assert_eq!(
            server_binary_end(Protocol::Socks4, &[0, 91, 0, 0, 0, 0, 0, 0]),
            Parse::No
        );
    }

    #[test]
    fn socks5_with_password_and_a_domain_name() {
        let mut b = vec![5, 2, 0, 2, 1, 1, b'u', 2, b'p', b'w', 5, 1, 0, 3, 4];
        b.extend_from_slice(b"mx.e");
        b.extend_from_slice(&[0, 25]);
        assert_eq!(client_binary_end(Protocol::Socks5, &b), Parse::End(b.len()));
        assert_eq!(client_binary_end(Protocol::Socks5, &b[..b.len() - 1]), Parse::More);
        let reply = [5, 2, 1, 0, 5, 0, 0, 1, 127, 0, 0, 1, 0, 25];
        assert_eq!(server_binary_end(Protocol::Socks5, &reply), Parse::End(reply.len()));
        assert_eq!(server_binary_end(Protocol::Socks5, &[5, 0, 5, 5, 0, 1]), Parse::No);
    }

    #[test]
    fn ldap_starttls_request_and_its_success() {
        let mut op = vec![0x80, 22];
        op.extend_from_slice(LDAP_STARTTLS_OID);
        let mut msg = vec![0x30, (3 + 2 + op.len()) as u8, 2, 1, 1, 0x77, op.len() as u8];
        msg.extend_from_slice(&op);
        assert_eq!(client_binary_end(Protocol::Ldap, &msg), Parse::End(msg.len()));
        let resp = [0x30, 12, 2, 1, 1, 0x78, 7, 0x0a, 1, 0, 4, 0, 4, 0];
        assert_eq!(server_binary_end(Protocol::Ldap, &resp), Parse::End(14));
        let refused = [0x30, 12, 2, 1, 1, 0x78, 7, 0x0a, 1, 2, 4, 0, 4, 0];
        assert_eq!(server_binary_end(Protocol::Ldap, &refused), Parse::No);
    }

    #[test]
    fn a_plausible_hello_is_found_after_any_bytes_and_text_is_not_one() {
        let hello = [0x16, 3, 1, 0, 0xc8, 1, 0, 0, 0xc4, 3, 3, 0xaa];
        let mut b = b"\x00\x01garbage\x16\x03".to_vec();
        b.extend_from_slice(&hello);
        assert_eq!(tls_start(&b), Some(11));
        assert_eq!(tls_start(b"EHLO mx\r\n\xc3\xa9t\xc3\xa9 and more bytes"), None);
        assert!(!plausible_hello(&[0x16, 3, 1, 0, 2, 1]));
        assert!(plausible_hello(&[0x80, 0x2e, 1, 3, 1]));
    }

    #[test]
    fn one_protocols_words_are_not_read_with_anothers_rules() {
        assert_eq!(from_client_line("STARTTLS", None), Some(Protocol::Irc));
        assert_eq!(from_client_line("STARTTLS", Some(Protocol::Smtp)), Some(Protocol::Smtp));
        assert_eq!(from_client_line("AUTH TLS", Some(Protocol::Smtp)), Some(Protocol::Ftp));
        assert_eq!(from_client_line("AUTH PLAIN xyz", Some(Protocol::Smtp)), None);
        assert_eq!(
            from_client_line(". STARTTLS", Some(Protocol::Imap)),
            Some(Protocol::Imap)
        );
        assert_eq!(
            upgrade_answer(Protocol::Irc, "", ":irc.test 670 * :STARTTLS successful"),
            Answer::Granted
        );
        assert_eq!(
            upgrade_answer(Protocol::Irc, "", ":irc.test NOTICE * :hi"),
            Answer::Other
        );
        assert_eq!(upgrade_answer(Protocol::Imap, "a1", "* OK still here"), Answer::Other);
        assert_eq!(upgrade_answer(Protocol::Imap, "a1", "a1 OK Begin TLS"), Answer::Granted);
        assert_eq!(upgrade_answer(Protocol::Ftp, "", "234 AUTH TLS ok"), Answer::Granted);
        assert_eq!(upgrade_answer(Protocol::Ftp, "", "220 ready"), Answer::Refused);
        assert_eq!(
            upgrade_answer(Protocol::Smtp, "", "220 2.0.0 go ahead"),
            Answer::Granted
        );
        assert_eq!(
            upgrade_answer(Protocol::Xmpp, "", "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
            Answer::Granted
        );
        assert_eq!(
            upgrade_answer(Protocol::HttpConnect, "", "HTTP/1.1 200 Connection established"),
            Answer::Granted
        );
    }
}
