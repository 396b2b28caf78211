//! The fault hooks: parsing `PISTON_FAULT_PAUSE`, and a process killed (SIGKILL) while paused
//! in a snapshot write or a prune leaves a log that opens, verifies and replays in full.
//!
//! The killed process is this test binary run again for one ignored test,
//! [`child_pauses_at_the_fault_point`], with the hook in its environment: the parent waits
//! for its `fault pause` log line, then kills it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::{Faults, Pause, PausePoint};
use crate::store::tests::{ev, even, log_with, n_of, PATIENCE};
use crate::store::OpenOptions;
use crate::EventLog;

#[test]
fn a_pause_parses_as_point_and_milliseconds() {
    assert_eq!(
        Pause::parse("snapshot.write:250"),
        Ok(Pause {
            point: PausePoint::SnapshotWrite,
            duration: Duration::from_millis(250),
        })
    );
    assert_eq!(
        Pause::parse(" prune.batch : 0 "),
        Ok(Pause {
            point: PausePoint::PruneBatch,
            duration: Duration::ZERO,
        })
    );
    for (value, says) in [
        ("snapshot.write", "is not <point>:<ms>"),
        ("", "is not <point>:<ms>"),
        (
            "compaction:5",
            "unknown point `compaction` (known: snapshot.write, prune.batch)",
        ),
        (":5", "unknown point"),
        ("prune.batch:soon", "is not a number of milliseconds"),
        ("prune.batch:-1", "is not a number of milliseconds"),
        ("prune.batch:", "is not a number of milliseconds"),
    ] {
        let error = Pause::parse(value).unwrap_err();
        assert!(error.contains(says), "{value:?}: {error}");
    }
}

#[test]
fn a_pause_elsewhere_or_none_does_not_stop_the_work() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 4);
    // Paused (for an hour) at the snapshot write only: the prune goes through.
    let faults = Faults {
        pause: Some(Pause {
            point: PausePoint::SnapshotWrite,
            duration: Duration::from_secs(3600),
        }),
        ..Faults::default()
    };
    let log = EventLog::open_with_faults(dir.path(), OpenOptions::default(), faults).unwrap();
    assert_eq!(log.prune(2, even).unwrap().removed, 1);
    drop(log);
    let log =
        EventLog::open_with_faults(dir.path(), OpenOptions::default(), Faults::default()).unwrap();
    log.save_snapshot(4, b"four").unwrap();
}

/// The environment of the child: which work it does, in which log directory.
const CHILD_WORK: &str = "EVENTLOG_FAULT_TEST_CHILD_WORK";
const CHILD_DIR: &str = "EVENTLOG_FAULT_TEST_CHILD_DIR";

/// The records the child appends before the paused work, on top of the log's 20.
const CHILD_APPENDS: std::ops::RangeInclusive<u64> = 21..=25;

/// Run only as the child of [`killed_at`]: appends [`CHILD_APPENDS`] (acknowledged, so they
/// must survive), then snapshots or prunes with `PISTON_FAULT_PAUSE` set, and is killed
/// while paused.
#[test]
#[ignore = "the child process that the killed-at-a-fault-pause tests run themselves"]
fn child_pauses_at_the_fault_point() {
    let (Some(work), Some(dir)) = (std::env::var_os(CHILD_WORK), std::env::var_os(CHILD_DIR))
    else {
        return;
    };
    // The parent reads the `fault pause` line on standard error.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .try_init();
    let log = EventLog::open_with(Path::new(&dir), OpenOptions::default()).unwrap();
    for n in CHILD_APPENDS {
        log.append_blocking(vec![ev(n)]).unwrap();
    }
    match work.to_str() {
        Some("snapshot") => log.save_snapshot(25, b"state at 25").unwrap(),
        Some("prune") => {
            log.prune(15, even).unwrap();
        }
        other => panic!("unknown work {other:?}"),
    }
    panic!("the work was not paused: is PISTON_FAULT_PAUSE set?");
}

/// Kills the child on drop, so a failing test leaves no process behind.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs [`child_pauses_at_the_fault_point`] on the log in `dir` for `work`, paused at
/// `point`, and kills it (SIGKILL) once it says it is paused.
fn killed_at(dir: &Path, work: &str, point: &str) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "store::fault::tests::child_pauses_at_the_fault_point",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_WORK, work)
        .env(CHILD_DIR, dir)
        .env("PISTON_FAULT_PAUSE", format!("{point}:600000"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut child = Killed(child);
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    loop {
        match lines.recv_timeout(PATIENCE) {
            Ok(line) if line.contains("fault pause") => {
                assert!(line.contains(point), "{line}");
                break;
            }
            Ok(line) => seen.push(line),
            Err(e) => panic!(
                "the child never paused at {point} ({e}); it wrote:\n{}",
                seen.join("\n")
            ),
        }
    }
    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    assert!(!status.success(), "{status}");
}

/// The log in `dir` as a restart finds it: opens, verifies, and replays records 1..=25
/// with their events in order.
fn reopened_whole(dir: &Path) -> EventLog {
    let log = EventLog::open(dir, None).unwrap();
    let summary = log.verify().unwrap();
    assert_eq!((summary.records, summary.last_seq), (25, 25));
    let replayed: Vec<u64> = log.iter_from(1).map(|r| n_of(&r.unwrap())).collect();
    assert_eq!(replayed, (1..=25).collect::<Vec<_>>());
    log
}

#[test]
fn a_snapshot_write_killed_at_its_fault_pause_leaves_a_whole_log_and_the_previous_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 20);
    let log = EventLog::open(dir.path(), None).unwrap();
    log.save_snapshot(10, b"state at 10").unwrap();
    drop(log);

    killed_at(dir.path(), "snapshot", "snapshot.write");

    let log = reopened_whole(dir.path());
    let snapshot = log.load_snapshot().unwrap().unwrap();
    assert_eq!(
        (snapshot.seq, snapshot.bytes.as_slice()),
        (10, &b"state at 10"[..])
    );
    log.save_snapshot(25, b"state at 25").unwrap();
    assert_eq!(log.load_snapshot().unwrap().unwrap().seq, 25);
}

#[test]
fn a_prune_killed_at_its_fault_pause_leaves_a_whole_log_that_prunes_again() {
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), 20);

    killed_at(dir.path(), "prune", "prune.batch");

    let log = reopened_whole(dir.path());
    assert_eq!(log.verify().unwrap().pruned_through, 0);
    let pruned = log.prune(15, even).unwrap();
    assert_eq!(pruned.removed, 7);
    let summary = log.verify().unwrap();
    assert_eq!((summary.pruned_through, summary.records), (15, 19));
}
