//! Ward's one subprocess runner, used by the agent for checks and by the backend for pipe
//! handlers: `/bin/sh -c COMMAND` in its own process group, optional input on stdin, its
//! output read into one capped buffer, under a timeout.
//!
//! Guarantees:
//! - the command leads a new process group; on timeout the whole group is killed with
//!   SIGKILL (children it started do not outlive it), and so is a run whose future is
//!   dropped before the command finished (agent shutdown, a panicking caller);
//! - at most [`Spec::max_output`] bytes of output are kept; the rest is read, counted in
//!   [`Finished::total`] and dropped, so a chatty command never blocks on a full pipe;
//! - after the command's own process exits, output is collected for at most
//!   [`OUTPUT_GRACE`] more: a background child that keeps the pipe open is not waited for;
//! - input is written from its own task: a command that does not read it neither blocks
//!   the run nor fails it (EPIPE is ignored).
//!
//! Failure: [`run`] returns the `io::Error` of starting or waiting for the command (no
//! `/bin/sh`, no pipes left); everything the command itself does is reported in [`Exit`].

#![forbid(unsafe_code)]

use std::io;
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long output may keep coming after the command's own process has exited (from
/// children it left running with the pipe open).
pub const OUTPUT_GRACE: Duration = Duration::from_secs(1);

/// What to run and how.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    /// The shell command (`/bin/sh -c`).
    pub command: &'a str,
    /// `None`: the caller's environment is inherited. `Some(vars)`: the environment is
    /// exactly `vars` (nothing inherited, not even `PATH`: put it in `vars`).
    pub env: Option<&'a [(String, String)]>,
    /// Written to the command's stdin (then closed); `None`: stdin is `/dev/null`.
    pub stdin: Option<Arc<[u8]>>,
    /// Zero means no timeout.
    pub timeout: Duration,
    /// Output bytes kept (at least 1).
    pub max_output: usize,
    /// What is read into `output`.
    pub capture: Capture,
}

/// What a run reads into its output; the rest is discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    /// stdout and stderr interleaved into one buffer (a check's output).
    Both,
    /// stderr only (a handler's, for its log line).
    Stderr,
    /// stdout only (a pipe mutator's payload).
    Stdout,
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// It was killed by this signal (not by us).
    Signal(i32),
    /// It ran past the timeout; its process group was killed.
    TimedOut,
}

/// The outcome of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub exit: Exit,
    /// The first [`Spec::max_output`] bytes of output.
    pub output: Vec<u8>,
    /// All output bytes read, kept or not (`total > output.len()` means it was cut).
    pub total: usize,
}

/// Kills the process group when dropped, unless the command finished.
struct GroupGuard(Option<rustix::process::Pid>);

impl GroupGuard {
    fn new(pid: Option<u32>) -> Self {
        // The child leads its own group, so its pid is the group id; 0 and 1 would signal
        // our own group or every process, so they are never used.
        GroupGuard(
            pid.and_then(|p| i32::try_from(p).ok())
                .filter(|p| *p > 1)
                .and_then(rustix::process::Pid::from_raw),
        )
    }

    fn kill(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `arg` as one word of a `/bin/sh` command line, whatever it holds (POSIX single quotes;
/// a `'` inside becomes `'\''`).
pub fn quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', "'\\''"))
}

/// `words` as a `/bin/sh` command line, each word quoted.
pub fn command_line<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `spec` to completion or its timeout. Must be called inside a Tokio runtime with
/// I/O and time enabled.
pub async fn run(spec: Spec<'_>) -> io::Result<Finished> {
    let (reader, writer) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg("-c").arg(spec.command).process_group(0);
    if let Some(vars) = spec.env {
        cmd.env_clear()
            .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    }
    cmd.stdin(if spec.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    match spec.capture {
        Capture::Both => {
            let writer2: OwnedFd = writer.try_clone()?;
            cmd.stdout(Stdio::from(writer2));
            cmd.stderr(Stdio::from(writer));
        }
        Capture::Stderr => {
            cmd.stdout(Stdio::null());
            cmd.stderr(Stdio::from(writer));
        }
        Capture::Stdout => {
            cmd.stdout(Stdio::from(writer));
            cmd.stderr(Stdio::null());
        }
    }
    let mut child = cmd.spawn()?;
    // The command holds our copies of the pipe's write end: drop it, or the read below
    // never sees end-of-file.
    drop(cmd);
    let mut guard = GroupGuard::new(child.id());
    if let (Some(input), Some(mut pipe)) = (spec.stdin, child.stdin.take()) {
        tokio::spawn(async move {
            // A command that does not read its input closes the pipe; that is its business.
            let _ = pipe.write_all(&input).await;
        });
    }
    let mut rx = tokio::net::unix::pipe::Receiver::from_owned_fd(reader)?;
    let max = spec.max_output.max(1);
    let mut output = Vec::new();
    let mut total = 0usize;
    let work = async {
        let mut reading = std::pin::pin!(async {
            let mut chunk = vec![0u8; 16 * 1024];
            loop {
                let n = rx.read(&mut chunk).await?;
                if n == 0 {
                    return Ok::<_, io::Error>(());
                }
                total += n;
                let room = max.saturating_sub(output.len());
                output.extend_from_slice(&chunk[..n.min(room)]);
            }
        });
        let exited = tokio::select! {
            s = child.wait() => Some(s?),
            r = &mut reading => { r?; None }
        };
        let status = match exited {
            Some(s) => {
                // Collect what is still in the pipe, but do not wait for children that
                // keep it open.
                let _ = tokio::time::timeout(OUTPUT_GRACE, &mut reading).await;
                s
            }
            None => child.wait().await?,
        };
        Ok::<_, io::Error>(status)
    };
    let finished = if spec.timeout.is_zero() {
        Some(work.await)
    } else {
        tokio::time::timeout(spec.timeout, work).await.ok()
    };
    let exit = match finished {
        Some(status) => {
            let status = status?;
            // Finished: whatever it left running in its group is its own business.
            guard.0 = None;
            use std::os::unix::process::ExitStatusExt;
            match (status.code(), status.signal()) {
                (Some(c), _) => Exit::Code(c),
                (None, sig) => Exit::Signal(sig.unwrap_or(0)),
            }
        }
        None => {
            guard.kill();
            let _ = child.wait().await;
            Exit::TimedOut
        }
    };
    Ok(Finished {
        exit,
        output,
        total,
    })
}

#[cfg(test)]
mod tests {

    #[tokio::test]
    async fn quoted_words_reach_the_command_unchanged() {
        let words = ["printf", "%s|", "it's", "$HOME", "a b", "`id`", ""];
        let done = run(Spec {
            command: &command_line(&words),
            env: None,
            stdin: None,
            timeout: Duration::from_secs(5),
            max_output: 1024,
            capture: Capture::Stdout,
        })
        .await
        .unwrap();
        assert_eq!(
            String::from_utf8(done.output).unwrap(),
            "it's|$HOME|a b|`id`||"
        );
    }

    use super::*;
    use std::time::Instant;

    fn spec(command: &str) -> Spec<'_> {
        Spec {
            command,
            env: None,
            stdin: None,
            timeout: Duration::from_secs(30),
            max_output: 1024,
            capture: Capture::Both,
        }
    }

    /// True once `pid` is gone or a zombie waiting for its reaper.
    fn dead(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(s) => s
                .rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z')),
        }
    }

    async fn wait_dead(pid: u32) {
        let until = Instant::now() + Duration::from_secs(10);
        while !dead(pid) {
            assert!(Instant::now() < until, "process {pid} still alive");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("bg.pid");
        let cmd = format!(
            "sleep 60 & echo $! > '{}'; echo started; sleep 60",
            pid_file.display()
        );
        let mut s = spec(&cmd);
        s.timeout = Duration::from_secs(1);
        let done = run(s).await.unwrap();
        assert_eq!(done.exit, Exit::TimedOut);
        assert_eq!(done.output, b"started\n");
        let pid: u32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        wait_dead(pid).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_run_kills_the_group() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("sh.pid");
        let cmd = format!("echo $$ > '{}'; sleep 60", pid_file.display());
        let task = tokio::spawn(async move { run(spec(&cmd)).await });
        let until = Instant::now() + Duration::from_secs(10);
        let pid: u32 = loop {
            if let Some(p) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                break p;
            }
            assert!(Instant::now() < until, "the command did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        task.abort();
        wait_dead(pid).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn output_is_capped_and_counted_and_stdout_can_be_discarded() {
        let mut s = spec("head -c 100000 /dev/zero; echo err >&2; exit 3");
        s.max_output = 10;
        let done = run(s).await.unwrap();
        assert_eq!(done.exit, Exit::Code(3));
        assert_eq!(done.output.len(), 10);
        assert_eq!(done.total, 100_004);
        let mut s = spec("echo out; echo err >&2");
        s.capture = Capture::Stderr;
        let done = run(s).await.unwrap();
        assert_eq!(done.output, b"err\n");
        let mut s = spec("echo out; echo err >&2");
        s.capture = Capture::Stdout;
        let done = run(s).await.unwrap();
        assert_eq!(done.output, b"out\n");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stdin_is_delivered_and_the_environment_is_exactly_what_was_given() {
        let input: Arc<[u8]> = Arc::from(vec![b'x'; 300_000]);
        let vars = vec![
            ("PATH".to_string(), "/usr/bin:/bin".to_string()),
            ("ONLY".to_string(), "this".to_string()),
        ];
        let mut s = spec("echo \"$ONLY ${HOME:-nohome}\"; wc -c");
        s.env = Some(&vars);
        s.stdin = Some(input);
        let done = run(s).await.unwrap();
        assert_eq!(done.exit, Exit::Code(0));
        let text = String::from_utf8(done.output).unwrap();
        assert_eq!(
            text.split_whitespace().collect::<Vec<_>>(),
            ["this", "nohome", "300000"]
        );
        // A command that ignores its input is not a failure.
        let mut s = spec("true");
        s.stdin = Some(Arc::from(vec![0u8; 1 << 20]));
        assert_eq!(run(s).await.unwrap().exit, Exit::Code(0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_signal_is_reported() {
        let done = run(spec("kill -TERM $$")).await.unwrap();
        assert_eq!(done.exit, Exit::Signal(15));
    }
}
