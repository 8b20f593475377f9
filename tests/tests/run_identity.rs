//! Every snapshot says which process run it belongs to: this process's
//! snapshots all carry one run identity (its pid, a start time the kernel
//! recorded a moment ago, 32 hex digits of randomness); a forked child's
//! and another process's snapshots carry others; and a series of this
//! process's files with another process's files interleaved (a real child
//! of this binary) is refused naming the first file of the other run,
//! while each process's own files read as a series.

use alloc_core::{advance_epoch, snapshot, untracked, EpochAlloc, Jemalloc};
use alloc_report::format::{encode, Problem};
use alloc_snapshot::{RunIdentity, SnapshotFile};
use alloc_tests::{exit_on_panic, say, watchdog};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[global_allocator]
static GLOBAL: EpochAlloc<Jemalloc> = EpochAlloc::new(Jemalloc);

/// Set in the child: the directory to write its snapshots to.
const CHILD: &str = "RUN_IDENTITY_CHILD";
const FILES: u32 = 4;

/// Writes `FILES` snapshots, one epoch apart, as `{prefix}-{k}.json`.
fn write_snapshots(dir: &Path, prefix: &str) -> RunIdentity {
    let mut run = None;
    for k in 0..FILES {
        advance_epoch();
        let s = snapshot();
        run.get_or_insert_with(|| s.run.clone().expect("a run identity"));
        let file = SnapshotFile {
            cycles: Some(u64::from(k) * 10),
            snapshot: s,
        };
        untracked(|| std::fs::write(dir.join(format!("{prefix}-{k}.json")), encode(&file)))
            .unwrap();
    }
    run.unwrap()
}

fn main() {
    exit_on_panic();
    if let Some(dir) = std::env::var_os(CHILD) {
        write_snapshots(Path::new(&dir), "child");
        return;
    }
    watchdog(Duration::from_secs(120), "run_identity");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let a = snapshot();
    let b = snapshot();
    let run = a.run.clone().expect("alloc-core fills the run identity");
    assert_eq!(b.run.as_ref(), Some(&run));
    assert_eq!(run.pid, std::process::id());
    assert!(
        run.id.len() == 32 && run.id.bytes().all(|c| c.is_ascii_hexdigit()),
        "{run:?}"
    );
    // Started a moment ago (the boot time has whole seconds; ticks are
    // 10 ms): within the last ten minutes, not in the future.
    let started = run.started_unix_ns;
    assert!(
        started <= now + 2_000_000_000 && started + 600_000_000_000 > now,
        "started {started}, now {now}"
    );

    // A forked child is another run: its own pid and random bits.
    // SAFETY: the child only takes a snapshot (alloc-core's fork handlers
    // leave its locks usable) and leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let child = snapshot().run;
        let ok = child
            .as_ref()
            .is_some_and(|c| c.pid == std::process::id() && c.pid != run.pid && c.id != run.id);
        // SAFETY: ends the forked child at once, running nothing of the parent's.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above; `status` is a valid pointer.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the forked child's snapshot had the parent's run identity (status {status})"
    );

    // Another process of this binary, and a series of both interleaved.
    let dir = std::env::temp_dir().join(format!("run-identity-{}", std::process::id()));
    untracked(|| {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
    });
    let ours = write_snapshots(&dir, "parent");
    assert_eq!(ours, run);
    let status = untracked(|| {
        std::process::Command::new(std::env::current_exe().unwrap())
            .env(CHILD, &dir)
            .status()
            .unwrap()
    });
    assert!(status.success(), "the child: {status}");
    let series = |name: &str, files: &[String]| {
        let s = dir.join(name);
        untracked(|| {
            std::fs::create_dir_all(&s).unwrap();
            for (k, f) in files.iter().enumerate() {
                std::fs::copy(dir.join(f), s.join(format!("{k:06}.json"))).unwrap();
            }
        });
        untracked(|| alloc_report::read_series(&s)).map(|v| v.len())
    };
    let names = |who: &str| -> Vec<String> {
        (0..FILES)
            .map(|k| untracked(|| format!("{who}-{k}.json")))
            .collect()
    };
    assert_eq!(series("parent", &names("parent")), Ok(FILES as usize));
    assert_eq!(series("child", &names("child")), Ok(FILES as usize));
    let mixed: Vec<String> = untracked(|| {
        names("parent")
            .into_iter()
            .zip(names("child"))
            .flat_map(|(p, c)| [p, c])
            .collect()
    });
    let e = series("mixed", &mixed).unwrap_err();
    assert_eq!(e.path, dir.join("mixed/000001.json"));
    let msg = untracked(|| e.to_string());
    assert!(matches!(e.problem, Problem::OtherRun(_)), "{msg}");
    assert!(msg.contains(&format!("pid {}", run.pid)), "{msg}");
    untracked(|| std::fs::remove_dir_all(&dir).unwrap());
    say!(
        "run_identity: pid {} run {} started {:.1} s before the test read the clock; \
         a forked child and another process are other runs; the mixed series refused: {msg}",
        run.pid,
        run.id,
        now.saturating_sub(started) as f64 / 1e9
    );
}
