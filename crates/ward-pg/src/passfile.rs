//! libpq's password file (`~/.pgpass`, `PGPASSFILE`, `passfile`): lines of
//! `hostname:port:database:username:password`, each of the first four fields either `*` or
//! a literal that must equal the connection's value, `\:` and `\\` escaping `:` and `\`,
//! lines starting with `#` ignored, the first matching line winning. As in libpq, a file
//! that group or others can access is ignored with a warning, and it is consulted only
//! when no password is given.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Whether a password file may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassfileCheck {
    /// It exists and only its owner can access it.
    Usable,
    /// It does not exist (libpq then silently has no password).
    Missing,
    /// libpq's warning, word for word with the fix added: the file is not a plain file or
    /// has group or world access, and is ignored.
    Ignored(String),
}

/// libpq's checks before reading a password file.
pub fn check(path: &Path) -> PassfileCheck {
    let Ok(meta) = std::fs::metadata(path) else {
        return PassfileCheck::Missing;
    };
    if !meta.is_file() {
        return PassfileCheck::Ignored(format!(
            "password file \"{}\" is not a plain file; it is ignored",
            path.display()
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return PassfileCheck::Ignored(format!(
            "password file \"{}\" has group or world access; permissions should be u=rw (0600) or less; it is ignored: fix with chmod 600 {}",
            path.display(),
            path.display()
        ));
    }
    PassfileCheck::Usable
}

/// The connection values a password file line is matched against.
#[derive(Debug, Clone, Copy)]
pub struct PassfileKey<'a> {
    /// The host name, or `localhost` for the default socket directory (as libpq does).
    pub host: &'a str,
    pub port: u16,
    pub database: &'a str,
    pub user: &'a str,
}

/// The password of the first line of `text` matching `key`.
pub fn find(text: &str, key: &PassfileKey<'_>) -> Option<String> {
    let port = key.port.to_string();
    let wanted = [key.host, port.as_str(), key.database, key.user];
    text.lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .find_map(|line| {
            let mut rest = line;
            for w in wanted {
                rest = field_matches(rest, w)?;
            }
            Some(unescape_password(rest))
        })
}

/// Reads `path` and looks `key` up in it; an unreadable file is no password (libpq).
pub fn lookup(path: &Path, key: &PassfileKey<'_>) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| find(&text, key))
}

/// libpq's `pwdfMatchesString`: the field at the start of `line` is `*` or equals `value`
/// (after unescaping); returns what follows its `:`.
fn field_matches<'l>(line: &'l str, value: &str) -> Option<&'l str> {
    if let Some(rest) = line.strip_prefix("*:") {
        return Some(rest);
    }
    let mut field = String::new();
    let mut chars = line.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, n)) => field.push(n),
                None => return None,
            },
            ':' => return (field == value).then(|| &line[i + 1..]),
            c => field.push(c),
        }
    }
    None
}

/// The password runs to the first unescaped `:` or the end of the line.
fn unescape_password(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n) => out.push(n),
                None => out.push('\\'),
            },
            ':' => break,
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn key<'a>(host: &'a str, port: u16, database: &'a str, user: &'a str) -> PassfileKey<'a> {
        PassfileKey {
            host,
            port,
            database,
            user,
        }
    }

    #[test]
    fn the_first_matching_line_wins_and_stars_match_anything() {
        let text = "# a comment:*:*:*:nope\n\
                    db.example.com:5432:ward_events:ward:first\n\
                    *:*:ward_events:ward:second\n\
                    *:*:*:*:fallback\n";
        assert_eq!(
            find(text, &key("db.example.com", 5432, "ward_events", "ward")).as_deref(),
            Some("first")
        );
        assert_eq!(
            find(text, &key("other", 5433, "ward_events", "ward")).as_deref(),
            Some("second")
        );
        assert_eq!(
            find(text, &key("other", 5433, "postgres", "alice")).as_deref(),
            Some("fallback")
        );
        assert_eq!(find("", &key("h", 1, "d", "u")), None);
    }

    #[test]
    fn a_star_is_a_wildcard_only_as_the_whole_field() {
        let text = "db*:5432:d:u:pw\n";
        assert_eq!(find(text, &key("db1", 5432, "d", "u")), None);
        assert_eq!(
            find(text, &key("db*", 5432, "d", "u")).as_deref(),
            Some("pw")
        );
    }

    #[test]
    fn backslash_escapes_colons_and_backslashes() {
        let text = "h:5432:my\\:db:u:pa\\:ss\\\\word:ignored\r\n";
        assert_eq!(
            find(text, &key("h", 5432, "my:db", "u")).as_deref(),
            Some("pa:ss\\word")
        );
        // Every field must match, a line with too few fields never does.
        assert_eq!(find("h:5432:d\n", &key("h", 5432, "d", "u")), None);
        assert_eq!(find(text, &key("h", 5433, "my:db", "u")), None);
    }

    #[test]
    fn a_file_with_group_or_world_access_is_ignored_with_libpqs_warning() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("pgpass");
        assert_eq!(check(&f), PassfileCheck::Missing);
        std::fs::write(&f, "*:*:*:*:pw\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(check(&f), PassfileCheck::Usable);
        assert_eq!(lookup(&f, &key("h", 5432, "d", "u")).as_deref(), Some("pw"));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        match check(&f) {
            PassfileCheck::Ignored(w) => {
                assert!(
                    w.contains(
                        "has group or world access; permissions should be u=rw (0600) or less"
                    ) && w.contains(&format!("chmod 600 {}", f.display())),
                    "{w}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(check(d.path()), PassfileCheck::Ignored(w) if w.contains("not a plain file"))
        );
    }
}
