//! The queue survives a `kill -9`: a child process (this test binary again) appends events
//! and SIGKILLs itself without closing anything; the parent reopens the queue and finds
//! every appended event, in order.

use std::process::Command;
use ward_agent::queue::EventQueue;

const CHILD: &str = "WARD_AGENT_QUEUE_CRASH_DIR";

#[test]
fn appended_events_survive_a_kill_9_and_replay_in_order() {
    if let Ok(dir) = std::env::var(CHILD) {
        let q = EventQueue::open(std::path::Path::new(&dir), 100).unwrap();
        for i in 0..10 {
            q.append(format!("event-{i}").as_bytes()).unwrap();
        }
        let first = q.after(0, 1, usize::MAX).unwrap()[0].0;
        q.remove(&[first]).unwrap();
        // No drop, no close, no checkpoint: the process ends here.
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        unreachable!("SIGKILL did not stop the process");
    }
    let d = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "appended_events_survive_a_kill_9_and_replay_in_order",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(CHILD, d.path())
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(9),
        "the child should have killed itself: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let q = EventQueue::open(d.path(), 100).unwrap();
    assert_eq!(q.len(), 9);
    let bodies: Vec<String> = q
        .after(0, 100, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(_, b)| String::from_utf8(b).unwrap())
        .collect();
    let want: Vec<String> = (1..10).map(|i| format!("event-{i}")).collect();
    assert_eq!(bodies, want);
}
