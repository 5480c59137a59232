//! Running real processes with captured output and readable failures.

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;

/// A command to run, with optional stdin.
pub struct Command {
    inner: std::process::Command,
    stdin: Option<Vec<u8>>,
    display: String,
}

/// What a process did.
#[derive(Debug, Clone)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub display: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics with the whole story unless the process exited 0.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert!(
            self.success(),
            "`{}` failed ({:?})\nstdout:\n{}\nstderr:\n{}",
            self.display,
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics unless the process failed with `code`; returns the output for more checks.
    #[track_caller]
    pub fn fails_with(self, code: i32) -> Self {
        assert_eq!(
            self.code,
            Some(code),
            "`{}` should exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.display,
            self.stdout,
            self.stderr
        );
        self
    }
}

impl Command {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        let display = program.as_ref().to_string_lossy().into_owned();
        Command {
            inner: std::process::Command::new(program),
            stdin: None,
            display,
        }
    }

    /// `bash -c SCRIPT`.
    pub fn shell(script: &str) -> Self {
        let mut c = Command::new("bash");
        c.inner.arg("-euo").arg("pipefail").arg("-c").arg(script);
        c.display = format!("bash -c {script:?}");
        c
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.display.push(' ');
        self.display.push_str(&a.as_ref().to_string_lossy());
        self.inner.arg(a);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self = self.arg(a);
        }
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.inner.current_dir(dir);
        self
    }

    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.inner.env(k, v);
        self
    }

    /// Starts the process with no inherited environment (then add what it needs with
    /// `env`), so the machine's `PG*` variables or `HOME` cannot leak into a test.
    pub fn env_clear(mut self) -> Self {
        self.inner.env_clear();
        self
    }

    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    /// Runs to completion.
    pub fn run(mut self) -> Output {
        self.inner
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self
            .inner
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", self.display));
        if let Some(data) = self.stdin.take() {
            let mut stdin = child.stdin.take().expect("piped stdin");
            std::thread::spawn(move || {
                let _ = stdin.write_all(&data);
            });
        }
        let out = child.wait_with_output().expect("wait for child");
        Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            display: self.display,
        }
    }
}
