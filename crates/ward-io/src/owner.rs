//! `--owner USER[:GROUP]` for the commands that write keys: the user and group a key and
//! its certificate are given before they become visible, so that the service that reads
//! them (PostgreSQL, an agent running as its own user) can, without a `chown` by hand.
//!
//! Names are looked up in /etc/passwd and /etc/group (numeric ids are taken as they are);
//! a user without `:GROUP` gets its primary group. `root:GROUP` makes keys 0640 so that
//! GROUP reads them: the one exception Ward's key rule ([`crate::files::check_private_key_mode`],
//! libpq's and PostgreSQL's) allows, as Debian's `root:ssl-cert` keys are.

use crate::error::{Error, Result};
use crate::files::{PlannedFile, KEY_MODE};
use std::path::Path;

/// Who the written files belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
    /// Root owns the keys and the group reads them (0640).
    pub group_reads_keys: bool,
}

impl Owner {
    /// Parses `USER[:GROUP]` against /etc/passwd and /etc/group.
    pub fn parse(spec: &str) -> Result<Owner> {
        Self::parse_with(
            spec,
            &read_db(Path::new("/etc/passwd"))?,
            &read_db(Path::new("/etc/group"))?,
        )
    }

    /// [`Owner::parse`] with the databases' texts given.
    pub fn parse_with(spec: &str, passwd: &str, group: &str) -> Result<Owner> {
        let bad = |reason: String| Error::Invalid {
            what: format!("--owner {spec}"),
            reason,
        };
        let (user, grp) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        if user.is_empty() || grp == Some("") {
            return Err(bad("give USER or USER:GROUP".into()));
        }
        let (uid, primary) = match lookup(passwd, user, 2) {
            Some(fields) => (
                fields[2]
                    .parse::<u32>()
                    .map_err(|_| bad(format!("/etc/passwd: bad uid for {user:?}")))?,
                fields[3]
                    .parse::<u32>()
                    .map_err(|_| bad(format!("/etc/passwd: bad gid for {user:?}")))?,
            ),
            None => match user.parse::<u32>() {
                Ok(id) => (id, id),
                Err(_) => return Err(bad(format!("no user {user:?} in /etc/passwd"))),
            },
        };
        let gid = match grp {
            None => primary,
            Some(g) => match lookup(group, g, 2) {
                Some(fields) => fields[2]
                    .parse::<u32>()
                    .map_err(|_| bad(format!("/etc/group: bad gid for {g:?}")))?,
                None => g
                    .parse::<u32>()
                    .map_err(|_| bad(format!("no group {g:?} in /etc/group")))?,
            },
        };
        Ok(Owner {
            uid,
            gid,
            group_reads_keys: uid == 0 && grp.is_some() && gid != 0,
        })
    }

    /// `files` given to this owner; keys 0640 when the group reads them.
    pub fn apply(self, files: Vec<PlannedFile>) -> Vec<PlannedFile> {
        files
            .into_iter()
            .map(|f| {
                let key = f.mode == KEY_MODE;
                let f = f.owned_by(self.uid, self.gid);
                if key && self.group_reads_keys {
                    f.with_mode(0o640)
                } else {
                    f
                }
            })
            .collect()
    }
}

/// `files` given to `owner`, if any.
pub fn owned(files: Vec<PlannedFile>, owner: Option<Owner>) -> Vec<PlannedFile> {
    match owner {
        Some(o) => o.apply(files),
        None => files,
    }
}

fn read_db(path: &Path) -> Result<String> {
    let bytes = crate::files::read_bounded(path, crate::files::CONFIG)?;
    String::from_utf8(bytes).map_err(|_| Error::Invalid {
        what: path.display().to_string(),
        reason: "not UTF-8".into(),
    })
}

/// The fields of the line of `db` (colon-separated) whose first field is `name`, with at
/// least `min + 1` fields.
fn lookup<'a>(db: &'a str, name: &str, min: usize) -> Option<Vec<&'a str>> {
    db.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > min && f[0] == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/bash\npostgres:x:104:110::/var/lib/postgresql:/bin/bash\n";
    const GROUP: &str = "root:x:0:\nssl-cert:x:109:postgres\npostgres:x:110:\n";

    #[test]
    fn users_and_groups_by_name_or_number() {
        let o = |s| Owner::parse_with(s, PASSWD, GROUP);
        assert_eq!(
            o("postgres").unwrap(),
            Owner {
                uid: 104,
                gid: 110,
                group_reads_keys: false
            }
        );
        assert_eq!(
            o("root:ssl-cert").unwrap(),
            Owner {
                uid: 0,
                gid: 109,
                group_reads_keys: true
            }
        );
        assert_eq!(
            o("1000:1000").unwrap(),
            Owner {
                uid: 1000,
                gid: 1000,
                group_reads_keys: false
            }
        );
        assert!(!o("root").unwrap().group_reads_keys);
        for bad in ["nobody-here", "postgres:nogroup", "", ":x", "postgres:"] {
            let e = o(bad).unwrap_err().to_string();
            assert!(e.starts_with(&format!("--owner {bad}")), "{e}");
        }
    }

    #[test]
    fn root_with_a_group_makes_keys_group_readable() {
        let files = vec![
            PlannedFile::key("k.pem", "k"),
            PlannedFile::public("c.pem", "c"),
        ];
        let o = Owner::parse_with("root:ssl-cert", PASSWD, GROUP).unwrap();
        let out = o.apply(files);
        assert_eq!((out[0].mode, out[0].owner), (0o640, Some((0, 109))));
        assert_eq!((out[1].mode, out[1].owner), (0o644, Some((0, 109))));
    }
}
