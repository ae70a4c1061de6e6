//! Terminal styling: grade colours, on only for a terminal without
//! `NO_COLOR`, and the one escape every piece of network text goes through
//! before it is printed on a terminal ([`escape`]).

use hsscan_wire::catalog::Grade;
use std::io::IsTerminal;

/// Whether to colour output written to stdout.
pub fn colour_stdout(no_color_flag: bool) -> bool {
    !no_color_flag && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// `text` in the colour of `grade`, or plain.
pub fn grade(text: &str, grade: Option<Grade>, colour: bool) -> String {
    let code = match grade {
        _ if !colour => return text.to_owned(),
        Some(Grade::Insecure) => "31",
        Some(Grade::Weak) => "33",
        Some(Grade::Secure) => "32",
        Some(Grade::Recommended) => "1;32",
        None => return text.to_owned(),
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// Network text made safe for a terminal (SPEC §2): what a server, a
/// client or a capture sent (banners, replies, certificate names, SNI,
/// ALPN, evidence) must never reach the terminal raw, or a remote MX could
/// clear the screen, set the window title or forge report lines. C0 and C1
/// control characters and DEL become `\xNN` (`\t`, `\r`, `\n` by name), and
/// the Unicode bidirectional overrides and isolates, which reorder what
/// follows them on the line, become `\u{NNNN}`. JSON output never goes
/// through this: it stays byte-exact (SPEC §3).
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    std::borrow::Cow::Owned(out)
}

/// [`escape`] for bytes that may not be UTF-8: each byte of an invalid
/// sequence becomes `\xNN`.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_escaped(&mut out, c);
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        '\n' => out.push_str("\\n"),
        c if c.is_control() && u32::from(c) < 0x100 => out.push_str(&format!("\\x{:02x}", u32::from(c))),
        c if needs_escape(c) => out.push_str(&format!("\\u{{{:04x}}}", u32::from(c))),
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bytes_become_visible_escapes() {
        assert_eq!(escape("220 mx ESMTP"), "220 mx ESMTP");
        assert!(matches!(escape("plain"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(
            escape("220 \x1b]0;pwned\x07\x1b[2J\r\n"),
            "220 \\x1b]0;pwned\\x07\\x1b[2J\\r\\n"
        );
        assert_eq!(escape("a\u{7f}b\u{9b}c\td"), "a\\x7fb\\x9bc\\td");
        assert_eq!(escape("ok \u{202e}txt.exe"), "ok \\u{202e}txt.exe");
        assert_eq!(escape("Müller GmbH ✓"), "Müller GmbH ✓");
    }

    #[test]
    fn invalid_utf8_becomes_hex_escapes() {
        assert_eq!(escape_bytes(b"M\xfcller \x1b[31m"), "M\\xfcller \\x1b[31m");
        assert_eq!(escape_bytes("é".as_bytes()), "é");
        assert_eq!(escape_bytes(b"\xe2\x82"), "\\xe2\\x82");
    }

    #[test]
    fn nothing_escaped_holds_a_control_character() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        let bytes: Vec<u8> = (0u8..=255).collect();
        for text in [escape(&all).into_owned(), escape_bytes(&bytes)] {
            assert!(!text.chars().any(needs_escape), "{text:?}");
        }
    }
}
