//! sensu-agent's execution allow list (`allow-list`): a YAML or JSON file naming the
//! commands this agent may run as checks and hooks, each `{exec, args, sha512,
//! enable_env}`. Sensu Go 6.12's rules (agent/allow_list.go, check_handler.go, hook.go,
//! helpers.go), kept:
//!
//! - The file is YAML when its name says `.yaml` or `.yml`, JSON when `.json`; any other
//!   name is refused. Keys other than those four are ignored (with a warning at start).
//! - A command, after token substitution, matches an entry when it contains `exec` and
//!   nothing but whitespace is left once every occurrence of `exec`, and of each of `args`
//!   the command contains, is removed. Plain substrings, not patterns: `args: [""]` allows
//!   the bare command; arguments may come in any order, or be left out. The first entry
//!   that matches is used. This is not a security boundary (`exec` may appear anywhere in
//!   the command): it stops commands nobody listed, not a hostile check author.
//! - `sha512`: the command's first word, found as Sensu finds it (as written when it holds
//!   a `/`, else in the PATH the command runs with, the assets' `bin/` included), must be a
//!   file whose SHA-512 it is (hex, any case). Checked once the assets are installed.
//! - `enable_env` (default false): unless true, a check's `env_vars` are not set.
//! - A command that matches no entry, or whose executable does not hash right, is not run:
//!   status 3 (or the check's or hook's annotation `allow_list_on_deny_status`), and
//!   Sensu's output `check command denied by the agent allow list` (`check hook command
//!   denied by the agent allow list` for a hook), followed here by why.
//!
//! Refused at start, where Sensu would take the file and then act surprisingly: an empty
//! list (Sensu then runs every command), a `sha512` that is not 128 hex digits (Sensu would
//! deny every run), and values of another type than the key's.

use crate::check::CheckResult;
use serde_json::Value;
use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use ward_types::settings::{ConfigError, Settings};

/// Sensu's output for a check the list does not let run.
pub const CHECK_DENIED: &str = "check command denied by the agent allow list";
/// Sensu's output for a hook the list does not let run.
pub const HOOK_DENIED: &str = "check hook command denied by the agent allow list";
/// The check's or hook's annotation that replaces status 3 on a denial (Sensu's).
pub const DENY_STATUS_ANNOTATION: &str = "allow_list_on_deny_status";

/// One entry of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Must be in the command (Sensu: "Command to allow the Sensu agent to run").
    pub exec: String,
    /// Substrings the command may hold besides `exec`; never empty (`[""]`: none).
    pub args: Vec<String>,
    /// The executable's SHA-512, lower-case hex; None: not checked.
    pub sha512: Option<String>,
    /// Whether a check's `env_vars` are set.
    pub enable_env: bool,
}

/// What makes a cached hash stale: another file at the path, or the file changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// The list, read and checked at start.
#[derive(Debug)]
pub struct AllowList {
    path: PathBuf,
    entries: Vec<Entry>,
    /// Keys the entries have that Sensu ignores, each a line for the start-up log.
    ignored: Vec<String>,
    /// The SHA-512 of executables already hashed, by path.
    hashes: Mutex<HashMap<PathBuf, (Stamp, String)>>,
}

/// What is about to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Check,
    Hook,
}

/// The list named by the key `allow-list`, if set: read under the configuration cap and
/// checked. Errors name the key, the file, and the entry.
pub fn from_settings(s: &Settings) -> Result<Option<Arc<AllowList>>, ConfigError> {
    let Some((path, bytes)) = s.read_file("allow-list", ward_io::files::CONFIG)? else {
        return Ok(None);
    };
    AllowList::parse(&path, &bytes)
        .map(|l| Some(Arc::new(l)))
        .map_err(|e| s.error("allow-list", e))
}

const SHAPE: &str = "{exec, args, sha512, enable_env}";

impl AllowList {
    /// Parses the file `path` holds (`bytes`). The error is one line: the file, the entry
    /// (counting from 1) and what is wrong.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<AllowList, String> {
        let p = path.display();
        let name = path.to_string_lossy();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let json = match ext {
            "json" => true,
            "yaml" | "yml" => false,
            _ if name.contains(".json") => true,
            _ if name.contains(".yaml") || name.contains(".yml") => false,
            _ => {
                return Err(format!(
                    "{p}: the file name must end in .yaml, .yml or .json (the format is chosen by it, as in Sensu)"
                ))
            }
        };
        let doc: Value = if json {
            serde_json::from_slice(bytes).map_err(|e| format!("{p}: malformed JSON: {e}"))?
        } else {
            let text = std::str::from_utf8(bytes).map_err(|_| format!("{p}: not UTF-8 text"))?;
            if text.trim().is_empty() {
                Value::Null
            } else {
                serde_saphyr::from_str(text).map_err(|e| {
                    format!(
                        "{p}: malformed YAML: {}",
                        e.to_string().lines().next().unwrap_or_default()
                    )
                })?
            }
        };
        let items = match doc {
            Value::Array(a) => a,
            Value::Null => Vec::new(),
            other => {
                return Err(format!(
                    "{p}: must be a list of entries {SHAPE}, not {}",
                    ward_types::type_of(&other)
                ))
            }
        };
        if items.is_empty() {
            return Err(format!(
                "{p}: the list is empty, and Sensu then runs every command; list the commands this agent may run, or remove allow-list"
            ));
        }
        let mut entries = Vec::with_capacity(items.len());
        let mut ignored = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let n = i + 1;
            let e = |why: String| format!("{p}: entry {n}: {why}");
            let Value::Object(m) = item else {
                return Err(e(format!(
                    "is {}, not a mapping {SHAPE}",
                    ward_types::type_of(item)
                )));
            };
            let exec = match m.get("exec") {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                None | Some(Value::Null) | Some(Value::String(_)) => {
                    return Err(e(
                        "exec is required: the command's executable, such as /usr/local/bin/check_memory.sh".into(),
                    ))
                }
                Some(v) => return Err(e(format!("exec is {}, not a string", ward_types::type_of(v)))),
            };
            let args = match m.get("args") {
                Some(Value::Array(a)) if !a.is_empty() => a
                    .iter()
                    .enumerate()
                    .map(|(j, v)| match v {
                        Value::String(s) => Ok(s.clone()),
                        v => Err(e(format!(
                            "args[{j}] is {}, not a string (quote it)",
                            ward_types::type_of(v)
                        ))),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                None | Some(Value::Null) | Some(Value::Array(_)) => {
                    return Err(e(
                        "args is required and may not be empty: the arguments the command may have, or [\"\"] for none".into(),
                    ))
                }
                Some(v) => return Err(e(format!("args is {}, not a list of strings", ward_types::type_of(v)))),
            };
            let sha512 = match m.get("sha512") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.is_empty() => None,
                Some(Value::String(s)) => {
                    if s.len() != 128 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(e(format!(
                            "sha512 {s:?} is not 128 hex digits (sha512sum's output)"
                        )));
                    }
                    Some(s.to_ascii_lowercase())
                }
                Some(v) => {
                    return Err(e(format!(
                        "sha512 is {}, not a string",
                        ward_types::type_of(v)
                    )))
                }
            };
            let enable_env = match m.get("enable_env") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(v) => {
                    return Err(e(format!(
                        "enable_env is {}, not true or false",
                        ward_types::type_of(v)
                    )))
                }
            };
            for k in m.keys() {
                if !["exec", "args", "sha512", "enable_env"].contains(&k.as_str()) {
                    ignored.push(format!(
                        "allow-list: {p}: entry {n}: the key {k:?} is ignored (an entry has exec, args, sha512 and enable_env)"
                    ));
                }
            }
            entries.push(Entry {
                exec,
                args,
                sha512,
                enable_env,
            });
        }
        Ok(AllowList {
            path: path.to_path_buf(),
            entries,
            ignored,
            hashes: Mutex::new(HashMap::new()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Lines for the start-up log: the keys Sensu ignores.
    pub fn ignored(&self) -> &[String] {
        &self.ignored
    }

    /// The first entry `command` matches, by index: Sensu's `matchAllowList` (what follows
    /// `exec` is made only of the entry's `args`, in any order, each optional), made
    /// stricter on purpose: the command must begin with `exec` as its first word, where
    /// Sensu accepts `exec` anywhere in it (`-w 75 check_cpu.rb`, or `exec` twice).
    pub fn find(&self, command: &str) -> Option<usize> {
        let command = command.trim_start();
        self.entries.iter().position(|e| {
            let Some(after) = command.strip_prefix(e.exec.as_str()) else {
                return false;
            };
            if !(after.is_empty() || after.starts_with(char::is_whitespace)) {
                return false;
            }
            let mut rest = after.to_string();
            for a in &e.args {
                // As Sensu: each arg is removed wherever it is in what follows.
                if !a.is_empty() {
                    rest = rest.replace(a.as_str(), "");
                }
            }
            rest.trim().is_empty()
        })
    }

    /// The SHA-512 of the file `exe` (lower-case hex), from the cache while the file is
    /// the same one, unchanged. Blocking: call it on the blocking pool.
    fn sha512_of(&self, exe: &Path) -> Result<String, String> {
        let mut f =
            std::fs::File::open(exe).map_err(|e| format!("cannot read {}: {e}", exe.display()))?;
        let meta = f
            .metadata()
            .map_err(|e| format!("cannot read {}: {e}", exe.display()))?;
        let stamp = Stamp::of(&meta);
        let cached = self
            .hashes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(exe)
            .filter(|(s, _)| *s == stamp)
            .map(|(_, sum)| sum.clone());
        if let Some(sum) = cached {
            return Ok(sum);
        }
        struct Digest(aws_lc_rs::digest::Context);
        impl std::io::Write for Digest {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.update(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut d = Digest(aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA512));
        std::io::copy(&mut f, &mut d).map_err(|e| format!("cannot read {}: {e}", exe.display()))?;
        let sum = ward_io::text::hex(d.0.finish().as_ref());
        self.hashes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(exe.to_path_buf(), (stamp, sum.clone()));
        Ok(sum)
    }
}

/// A command the list lets run so far: its entry, if there is a list.
#[derive(Debug, Clone)]
pub struct Admitted {
    matched: Option<(Arc<AllowList>, usize)>,
    kind: Kind,
    status: u32,
}

/// The allow list's decision on a check's or hook's `command` (tokens already
/// substituted), before its assets are installed: without a list everything is admitted;
/// with one, the command must match an entry. `metadata` is the check's or hook's (its
/// annotation `allow_list_on_deny_status` replaces status 3 on a denial). A denial is the
/// result to report instead of running.
pub fn admit(
    list: Option<&Arc<AllowList>>,
    kind: Kind,
    command: &str,
    metadata: Option<&Value>,
) -> Result<Admitted, CheckResult> {
    let status = metadata
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(DENY_STATUS_ANNOTATION))
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<u32>().ok())
        .unwrap_or(3);
    let admitted = Admitted {
        matched: None,
        kind,
        status,
    };
    let Some(list) = list else {
        return Ok(admitted);
    };
    match list.find(command) {
        Some(i) => Ok(Admitted {
            matched: Some((list.clone(), i)),
            ..admitted
        }),
        None => {
            // Logged at debug, as Sensu does: the event says it at every run.
            let denied = admitted.denied(format!(
                "{command:?} matches no entry of {}",
                list.path.display()
            ));
            tracing::debug!("{}", denied.output);
            Err(denied)
        }
    }
}

impl Admitted {
    /// Whether the check's `env_vars` are set: without a list, yes; with one, when the
    /// entry says `enable_env: true`.
    pub fn env_vars(&self) -> bool {
        self.matched
            .as_ref()
            .is_none_or(|(l, i)| l.entries[*i].enable_env)
    }

    /// The entry's `sha512`, if it has one, against the command's executable: its first
    /// word, as written when it holds a `/`, else looked up in the `PATH` of `env` (the
    /// command's whole environment; None: the agent's own). Hashes on the blocking pool.
    pub async fn verify(
        &self,
        command: &str,
        env: Option<&[(String, String)]>,
    ) -> Result<(), CheckResult> {
        let Some((list, i)) = &self.matched else {
            return Ok(());
        };
        let Some(want) = list.entries[*i].sha512.clone() else {
            return Ok(());
        };
        let which = format!("entry {} of {}", i + 1, list.path.display());
        let program = command.split_whitespace().next().unwrap_or("").to_string();
        let path = match env {
            Some(env) => env
                .iter()
                .find(|(k, _)| k == "PATH")
                .map(|(_, v)| v.clone()),
            None => std::env::var("PATH").ok(),
        };
        let l = list.clone();
        let got = tokio::task::spawn_blocking(move || {
            let exe = executable(&program, path.as_deref())?;
            let sum = l.sha512_of(&exe)?;
            Ok::<_, String>((exe, sum))
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        let denied = match got {
            Ok((_, sum)) if sum == want => return Ok(()),
            Ok((exe, sum)) => self.denied(format!(
                "the SHA-512 of {} is {sum}, not the {}… {which} gives",
                exe.display(),
                &want[..16]
            )),
            Err(why) => self.denied(format!("{which} gives a sha512, and {why}")),
        };
        // A listed executable that changed: an error in Sensu's log too.
        tracing::warn!("{}", denied.output);
        Err(denied)
    }

    /// The result of a command not run: Sensu's words, then why.
    fn denied(&self, why: String) -> CheckResult {
        let head = match self.kind {
            Kind::Check => CHECK_DENIED,
            Kind::Hook => HOOK_DENIED,
        };
        CheckResult {
            status: self.status,
            output: format!("{head}: {why}"),
            executed: crate::check::unix_now(),
            duration: 0.0,
        }
    }
}

/// Sensu's `lookPath`: `program` as written when it holds a `/`, else the first directory
/// of `path` (an empty element is `.`) holding it; in both cases a file with an execute bit.
fn executable(program: &str, path: Option<&str>) -> Result<PathBuf, String> {
    let check = |p: &Path| -> Result<(), String> {
        let m = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if m.is_file() && m.permissions().mode() & 0o111 != 0 {
            Ok(())
        } else {
            Err(format!("{} is not an executable file", p.display()))
        }
    };
    if program.contains('/') {
        check(Path::new(program))?;
        return Ok(PathBuf::from(program));
    }
    let path = path.unwrap_or("");
    if !path.is_empty() {
        for dir in path.split(':') {
            let p = Path::new(if dir.is_empty() { "." } else { dir }).join(program);
            if check(&p).is_ok() {
                return Ok(p);
            }
        }
    }
    Err(format!(
        "{program:?} is not an executable file in any directory of PATH ({path:?})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SHA_A: &str = "736ac120323772543fd3a08ee54afdd54d214e58c280707b63ce652424313ef9084ca5b247d226aa09be8f831034ff4991bfb95553291c8b3dc32cad034b4706";
    /// SHA-512("abc"), FIPS 180-2's example.
    const SHA_ABC: &str = "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";

    fn list(entries: Value) -> AllowList {
        AllowList::parse(
            Path::new("/etc/ward/allow.json"),
            entries.to_string().as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn sensus_example_lists_parse_in_yaml_and_json() {
        // agent.md's "Example allow list configuration", both languages.
        let yaml = format!("- exec: /usr/local/bin/check_memory.sh\n  args:\n  - \"\"\n  sha512: {}\n  enable_env: true\n  foo: bar\n- exec: /usr/local/bin/show_process_table.sh\n  args:\n  - \"\"\n- exec: echo-asset.sh\n  args:\n  - \"foo\"\n", SHA_A.to_uppercase());
        let y = AllowList::parse(
            Path::new("/etc/sensu/check-allow-list.yaml"),
            yaml.as_bytes(),
        )
        .unwrap();
        let j = list(json!([
            {"exec": "/usr/local/bin/check_memory.sh", "args": [""], "sha512": SHA_A, "enable_env": true, "foo": "bar"},
            {"exec": "/usr/local/bin/show_process_table.sh", "args": [""]},
            {"exec": "echo-asset.sh", "args": ["foo"]},
        ]));
        for l in [&y, &j] {
            assert_eq!(l.entries().len(), 3);
            assert_eq!(
                l.entries()[0],
                Entry {
                    exec: "/usr/local/bin/check_memory.sh".into(),
                    args: vec![String::new()],
                    sha512: Some(SHA_A.into()),
                    enable_env: true,
                }
            );
            assert_eq!(l.entries()[1].sha512, None);
            assert!(!l.entries()[1].enable_env, "enable_env defaults to false");
            assert_eq!(l.entries()[2].args, ["foo"]);
            assert_eq!(l.ignored().len(), 1, "{:?}", l.ignored());
            assert!(
                l.ignored()[0].contains("entry 1: the key \"foo\" is ignored"),
                "{:?}",
                l.ignored()
            );
        }
        assert!(y.path().ends_with("check-allow-list.yaml"));
    }

    #[test]
    fn a_bad_file_or_entry_is_refused_naming_the_file_the_entry_and_what() {
        let ok_sha = SHA_A;
        let cases: &[(&str, &str, &str)] = &[
            ("allow.txt", "[]", "/x/allow.txt: the file name must end in .yaml, .yml or .json"),
            ("allow.json", "[{\"exec\": ", "/x/allow.json: malformed JSON"),
            ("allow.yaml", "- exec: [unclosed\n", "/x/allow.yaml: malformed YAML"),
            ("allow.yaml", "", "/x/allow.yaml: the list is empty, and Sensu then runs every command"),
            ("allow.json", "[]", "/x/allow.json: the list is empty"),
            ("allow.yaml", "exec: /bin/echo\n", "/x/allow.yaml: must be a list of entries {exec, args, sha512, enable_env}, not a mapping"),
            ("allow.yaml", "- /bin/echo\n", "/x/allow.yaml: entry 1: is a string, not a mapping"),
            ("allow.yaml", "- exec: /bin/true\n  args: [\"\"]\n- args: [x]\n", "/x/allow.yaml: entry 2: exec is required"),
            ("allow.yaml", "- exec: \"\"\n  args: [x]\n", "entry 1: exec is required"),
            ("allow.yaml", "- exec: [a]\n  args: [x]\n", "entry 1: exec is a list, not a string"),
            ("allow.yaml", "- exec: /bin/echo\n", "entry 1: args is required and may not be empty"),
            ("allow.yaml", "- exec: /bin/echo\n  args: []\n", "entry 1: args is required and may not be empty"),
            ("allow.yaml", "- exec: /bin/echo\n  args: x\n", "entry 1: args is a string, not a list of strings"),
            ("allow.yaml", "- exec: /bin/echo\n  args: [-n, 5]\n", "entry 1: args[1] is a number, not a string (quote it)"),
            ("allow.yaml", "- exec: /bin/echo\n  args: [\"\"]\n  sha512: abc\n", "entry 1: sha512 \"abc\" is not 128 hex digits"),
            ("allow.yaml", &format!("- exec: /bin/echo\n  args: [\"\"]\n  sha512: {}zz\n", &ok_sha[..126]), "is not 128 hex digits"),
            ("allow.yaml", "- exec: /bin/echo\n  args: [\"\"]\n  enable_env: \"yes\"\n", "entry 1: enable_env is a string, not true or false"),
        ];
        for (name, text, want) in cases {
            let path = Path::new("/x").join(name);
            let e = AllowList::parse(&path, text.as_bytes()).unwrap_err();
            assert!(e.contains(want), "{name} {text:?}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn commands_match_by_sensus_substring_removal() {
        let l = list(json!([
            {"exec": "my_scripf.sh", "args": ["-h foo.com"]},
            {"exec": "my_script.sh", "args": ["-h foo.com", "-h bar.ca"]},
            {"exec": "/usr/local/bin/check_memory.sh", "args": [""]},
            {"exec": "/bin/echo", "args": ["allowed"]},
        ]));
        // Sensu's TestMatchAllowList, and the cases Ward's docs give.
        for (command, want) in [
            ("my_script.sh -h bar.ca -h foo.com", Some(1)),
            ("my_script.sh -h bar.ca  -h foo.com  ", Some(1)),
            ("my_script.sh -h foo.com", Some(1)),
            ("my_scripf.sh -h foo.com", Some(0)),
            ("my_script.sh -h foo.com -h baz.de", None),
            ("my_script.sh -h bar.ca -x", None),
            ("my_scripf.sh -h bar.ca", None),
            ("", None),
            ("/usr/local/bin/check_memory.sh", Some(2)),
            ("  /usr/local/bin/check_memory.sh  ", Some(2)),
            ("/usr/local/bin/check_memory.sh -w 80", None),
            ("/usr/local/bin/check_memory.sh; rm -rf /", None),
            ("/bin/echo allowed", Some(3)),
            ("/bin/echo", Some(3)),
            ("/bin/echo other", None),
            ("/bin/echo allowed other", None),
            ("/bin/sh -c true", None),
            ("/usr/bin/echo allowed", None),
            // Stricter than Sensu on purpose: exec is the first word, once.
            ("-h foo.com my_script.sh", None),
            ("my_script.sh my_script.sh", None),
            ("/bin/echoallowed", None),
        ] {
            assert_eq!(l.find(command), want, "{command:?}");
        }
    }

    #[test]
    fn without_a_list_everything_runs_with_its_env_vars() {
        let a = admit(None, Kind::Check, "anything at all", None).unwrap();
        assert!(a.env_vars());
    }

    #[test]
    fn a_command_not_listed_is_not_run_and_the_output_says_why() {
        let l = Arc::new(list(json!([{"exec": "/bin/echo", "args": ["allowed"]}])));
        let denied = admit(Some(&l), Kind::Check, "/bin/echo other", None).unwrap_err();
        assert_eq!(denied.status, 3);
        assert_eq!(
            denied.output,
            "check command denied by the agent allow list: \"/bin/echo other\" matches no entry of /etc/ward/allow.json"
        );
        assert_eq!(denied.duration, 0.0);
        assert!(denied.executed > 0);
        let hook = admit(Some(&l), Kind::Hook, "ps aux", None).unwrap_err();
        assert!(
            hook.output.starts_with(
                "check hook command denied by the agent allow list: \"ps aux\" matches no entry"
            ),
            "{}",
            hook.output
        );
        // Sensu's annotation replaces status 3; a value that is not a status is ignored.
        for (value, status) in [("0", 0), ("2", 2), ("x", 3), ("-1", 3)] {
            let md = json!({"name": "c", "annotations": {"allow_list_on_deny_status": value}});
            let d = admit(Some(&l), Kind::Check, "/bin/sh -c true", Some(&md)).unwrap_err();
            assert_eq!(d.status, status, "{value}");
        }
        assert!(admit(Some(&l), Kind::Check, "/bin/echo allowed", None).is_ok());
    }

    #[test]
    fn enable_env_says_whether_the_checks_env_vars_are_set() {
        let l = Arc::new(list(json!([
            {"exec": "/bin/echo", "args": ["off"]},
            {"exec": "/bin/echo", "args": ["on"], "enable_env": true},
            {"exec": "/bin/echo", "args": ["explicit"], "enable_env": false},
        ])));
        for (command, env) in [
            ("/bin/echo off", false),
            ("/bin/echo on", true),
            ("/bin/echo explicit", false),
        ] {
            let a = admit(Some(&l), Kind::Check, command, None).unwrap();
            assert_eq!(a.env_vars(), env, "{command}");
        }
    }

    fn script(path: &Path, body: &[u8]) {
        std::fs::write(path, body).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[tokio::test]
    async fn sha512_is_checked_on_the_executable_found_as_sensu_finds_it() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let tool = bin.join("tool");
        script(&tool, b"abc");
        script(&bin.join("other"), b"abd");
        std::fs::write(bin.join("plain"), b"abc").unwrap();
        let at = |name: &str| bin.join(name).display().to_string();
        // Sensu matches substrings: a full path is its own entry, a bare name another.
        let l = Arc::new(list(json!([
            {"exec": at("tool"), "args": [""], "sha512": SHA_ABC.to_uppercase()},
            {"exec": "tool", "args": [""], "sha512": SHA_ABC},
            {"exec": at("other"), "args": [""], "sha512": SHA_ABC},
            {"exec": at("plain"), "args": [""], "sha512": SHA_ABC},
            {"exec": "nowhere", "args": [""], "sha512": SHA_ABC},
            {"exec": "unhashed", "args": [""]},
        ])));
        let path_env = vec![
            ("HOME".to_string(), "/".to_string()),
            (
                "PATH".to_string(),
                format!("/nonexistent::{}", bin.display()),
            ),
        ];
        let run = |command: String, env: Option<Vec<(String, String)>>| {
            let l = l.clone();
            async move {
                let a = admit(Some(&l), Kind::Check, &command, None)?;
                a.verify(&command, env.as_deref()).await
            }
        };
        // By its path, and found on the command's PATH.
        run(tool.display().to_string(), None).await.unwrap();
        run("tool".into(), Some(path_env.clone())).await.unwrap();
        // Without a sha512, nothing is looked up.
        run("unhashed".into(), None).await.unwrap();
        // Another file's hash.
        let e = run(bin.join("other").display().to_string(), None)
            .await
            .unwrap_err();
        assert_eq!(e.status, 3);
        assert!(
            e.output.starts_with(&format!(
                "check command denied by the agent allow list: the SHA-512 of {}/other is ",
                bin.display()
            )) && e.output.ends_with(&format!(
                ", not the {}… entry 3 of /etc/ward/allow.json gives",
                &SHA_ABC[..16]
            )),
            "{}",
            e.output
        );
        // Not executable, not there, not on this PATH.
        let e = run(bin.join("plain").display().to_string(), None)
            .await
            .unwrap_err();
        assert!(
            e.output
                .contains("entry 4 of /etc/ward/allow.json gives a sha512, and")
                && e.output.ends_with("/bin/plain is not an executable file"),
            "{}",
            e.output
        );
        let e = run("nowhere".into(), Some(path_env.clone()))
            .await
            .unwrap_err();
        assert!(
            e.output
                .contains("\"nowhere\" is not an executable file in any directory of PATH"),
            "{}",
            e.output
        );
        let no_path = vec![("HOME".to_string(), "/".to_string())];
        let e = run("tool".into(), Some(no_path)).await.unwrap_err();
        assert!(
            e.output.contains("\"tool\" is not an executable file"),
            "{}",
            e.output
        );
        // A changed file is hashed again (the cache keys on the file and its times).
        script(&tool, b"abcd");
        let e = run("tool".into(), Some(path_env.clone()))
            .await
            .unwrap_err();
        assert!(e.output.contains("the SHA-512 of"), "{}", e.output);
        // A hook is checked the same way, in its own words.
        let a = admit(Some(&l), Kind::Hook, "tool", None).unwrap();
        let e = a.verify("tool", Some(&path_env)).await.unwrap_err();
        assert!(
            e.output
                .starts_with("check hook command denied by the agent allow list: the SHA-512 of"),
            "{}",
            e.output
        );
    }
}
