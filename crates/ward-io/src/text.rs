//! Text as Ward prints it: untrusted text made safe for a terminal, hex and times.
//!
//! Check output, certificate subjects and entity names come from agents, peers and files
//! that Ward does not control. Printed raw, an escape sequence in them can move the
//! cursor, rewrite what the screen shows, set the window title or (on some terminals)
//! answer back as if typed. Everything Ward prints to a terminal that it did not write
//! itself goes through [`one_line`] or [`multi_line`].

use std::borrow::Cow;
use std::fmt::Write;

/// `s` with every control character (C0, DEL, C1) and every bidirectional-override
/// character shown as an escape (`\n`, `\t`, `\r`, `\e`, `\x7f`, `\u{202e}`), so that it
/// prints as one inert line. Text without any is returned as it is, without a copy.
pub fn one_line(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// As [`one_line`], but line feeds and tabs are kept: for multi-line check output.
pub fn multi_line(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

fn needs_escape(c: char, keep_layout: bool) -> bool {
    if keep_layout && (c == '\n' || c == '\t') {
        return false;
    }
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape(s: &str, keep_layout: bool) -> Cow<'_, str> {
    if !s.chars().any(|c| needs_escape(c, keep_layout)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !needs_escape(c, keep_layout) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            c if (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// Lowercase hex, no separators (digests, identifiers).
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Colon-separated lowercase hex, as `ward pki info` prints serials and identifiers.
pub fn hex_colon(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A time as RFC 3339 in UTC with whole seconds (`2026-12-02T18:22:20Z`).
pub fn format_time(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_shown_not_sent() {
        assert_eq!(
            one_line("ok\u{1b}]0;pwned\u{7}\u{1b}[2J"),
            "ok\\e]0;pwned\\x07\\e[2J"
        );
        assert_eq!(one_line("a\nb\tc\r"), "a\\nb\\tc\\r");
        assert_eq!(multi_line("a\nb\tc\r"), "a\nb\tc\\r");
        assert_eq!(one_line("\u{9b}31m"), "\\x9b31m");
        assert_eq!(one_line("evil\u{202e}gpj.exe"), "evil\\u{202e}gpj.exe");
    }

    #[test]
    fn plain_text_is_not_copied() {
        assert!(matches!(
            one_line("CRITICAL: disk 91% — /var"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn hex_and_time() {
        assert_eq!(hex_colon(&[0x0a, 0xff, 0x00]), "0a:ff:00");
        assert_eq!(hex_colon(&[]), "");
        let t = time::OffsetDateTime::from_unix_timestamp(1_796_234_540).unwrap();
        assert_eq!(format_time(t), "2026-12-02T18:02:20Z");
    }
}
