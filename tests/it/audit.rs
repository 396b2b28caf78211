//! The audit CLI (`piston-webhooks log replay | verify | state`) against a real daemon's
//! data dir: while the daemon runs (a RocksDB secondary) and after it stops, on an intact
//! log and on logs damaged on purpose.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::support::*;

/// Runs `piston-webhooks log <args...>` on `data_dir` and waits for it.
fn log_cli(data_dir: &Path, args: &[&str]) -> Output {
    let (sub, rest) = args.split_first().expect("a subcommand");
    Command::new(env!("CARGO_BIN_EXE_piston-webhooks"))
        .arg("log")
        .arg(sub)
        .arg("--data-dir")
        .arg(data_dir)
        .args(rest)
        .env("RUST_LOG", "warn")
        .env_remove("PISTON_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("run piston-webhooks log")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("UTF-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs a command that must succeed; returns its standard output.
#[track_caller]
fn ok(data_dir: &Path, args: &[&str]) -> String {
    let o = log_cli(data_dir, args);
    assert!(
        o.status.success(),
        "log {args:?} failed with {}: {}",
        o.status,
        stderr(&o)
    );
    stdout(&o)
}

/// Parses NDJSON, checking that every line is one JSON object with the record fields.
#[track_caller]
fn ndjson(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| {
            let v: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
            assert!(v["seq"].is_u64(), "{line}");
            assert!(v["time_ms"].is_u64(), "{line}");
            assert!(v["kind"].is_string(), "{line}");
            // RFC 3339 UTC with milliseconds, the same instant as time_ms.
            let time = v["time"].as_str().expect("time");
            assert_eq!(time.len(), 24, "{time}");
            let parsed =
                time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339)
                    .expect("time is RFC 3339");
            assert_eq!(
                parsed.unix_timestamp_nanos() / 1_000_000,
                i128::from(v["time_ms"].as_u64().unwrap()),
                "{line}"
            );
            v
        })
        .collect()
}

fn seqs(records: &[Value]) -> Vec<u64> {
    records.iter().map(|r| r["seq"].as_u64().unwrap()).collect()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Waits until just after the next whole second and returns that second (Unix seconds):
/// everything logged before the call is at or before it, everything logged after the call
/// is after it. This sleep is setup (`--at` takes seconds), not an assertion.
async fn second_boundary() -> u64 {
    let now = now_ms();
    let boundary = now / 1000 + 1;
    tokio::time::sleep(Duration::from_millis(boundary * 1000 + 150 - now)).await;
    boundary
}

/// RFC 3339 text of Unix seconds.
fn rfc3339(secs: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// A known history, built through the API with a second boundary between its steps.
struct History {
    master: String,
    acme: String,
    doomed: String,
    /// In acme: created as "New Calls" with 3 retries, patched at step 2.
    calls: String,
    /// In acme: deleted at step 2.
    temp: String,
    /// In doomed: gone with its account at step 3.
    doomed_hook: String,
    acme_key: String,
    /// Boundaries: after step 1, after step 2, after step 3.
    t1: u64,
    t2: u64,
    t3: u64,
}

async fn build_history(d: &Daemon) -> History {
    let master_client = d.master().await;
    let master = master_client.own_account().await;
    // Step 1: two accounts and three webhooks.
    let acme = master_client.create_account(&master, "Acme").await;
    let doomed = master_client.create_account(&master, "Doomed").await;
    let mut doc = hook_doc("New Calls");
    doc["retries"] = json!(3);
    let calls = master_client.create_webhook(&acme, doc).await;
    let temp = master_client
        .create_webhook(&acme, hook_doc("Temp Hook"))
        .await;
    let doomed_hook = master_client
        .create_webhook(&doomed, hook_doc("Doomed Hook"))
        .await;
    let key = master_client
        .get(&format!("/v2/accounts/{acme}/api_key"))
        .await
        .expect(200);
    let acme_key = key.data()["api_key"].as_str().unwrap().to_owned();
    let t1 = second_boundary().await;
    // Step 2: rename and re-tune one hook, delete another.
    master_client
        .patch(
            &format!("/v2/accounts/{acme}/webhooks/{calls}"),
            json!({"name": "Renamed Calls", "retries": 1}),
        )
        .await
        .expect(200);
    master_client
        .delete(&format!("/v2/accounts/{acme}/webhooks/{temp}"))
        .await
        .expect(200);
    let t2 = second_boundary().await;
    // Step 3: delete an account that still has a webhook.
    master_client
        .delete(&format!("/v2/accounts/{doomed}"))
        .await
        .expect(200);
    let t3 = second_boundary().await;
    History {
        master,
        acme,
        doomed,
        calls,
        temp,
        doomed_hook,
        acme_key,
        t1,
        t2,
        t3,
    }
}

fn ids(list: &Value) -> Vec<String> {
    let mut ids: Vec<String> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn find<'a>(list: &'a Value, id: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {list}"))
}

/// Every replay filter, checked against the full JSON replay.
fn check_replay(dir: &Path, h: &History) {
    let all = ndjson(&ok(dir, &["replay", "--json"]));
    let n = all.len() as u64;
    assert_eq!(
        seqs(&all),
        (1..=n).collect::<Vec<_>>(),
        "every record, in order"
    );
    let text = serde_json::to_string(&all).unwrap();
    for secret in [MASTER_KEY, h.acme_key.as_str()] {
        assert!(!text.contains(secret), "a secret in replay --json");
    }
    let first = &all[0];
    assert_eq!(first["kind"], "account_created");
    assert_eq!(first["account_id"], h.master.as_str());
    assert_eq!(first["doc"]["name"], "Master Account");

    // Readable: one line per record, `#seq time kind fields`.
    let human = ok(dir, &["replay"]);
    assert_eq!(human.lines().count() as u64, n);
    for (line, record) in human.lines().zip(&all) {
        let expected = format!(
            "#{} {} {}",
            record["seq"],
            record["time"].as_str().unwrap(),
            record["kind"].as_str().unwrap()
        );
        assert!(line.starts_with(&expected), "{line:?} vs {expected:?}");
    }
    assert!(
        human.lines().any(|l| l.contains("webhook_created")
            && l.contains(&format!("account={} webhook={}", h.acme, h.calls))
            && l.contains("name=\"New Calls\"")),
        "{human}"
    );
    for secret in [MASTER_KEY, h.acme_key.as_str()] {
        assert!(!human.contains(secret), "a secret in replay");
    }

    // --kind, repeated or comma-separated.
    let created = ndjson(&ok(dir, &["replay", "--json", "--kind", "webhook_created"]));
    assert_eq!(
        sorted(
            created
                .iter()
                .map(|r| r["webhook_id"].as_str().unwrap().to_owned())
                .collect()
        ),
        sorted(vec![h.calls.clone(), h.temp.clone(), h.doomed_hook.clone()])
    );
    let repeated = ok(
        dir,
        &[
            "replay",
            "--json",
            "--kind",
            "webhook_updated",
            "--kind",
            "webhook_deleted",
        ],
    );
    let commas = ok(
        dir,
        &[
            "replay",
            "--json",
            "--kind",
            "webhook_updated,webhook_deleted",
        ],
    );
    assert_eq!(repeated, commas);
    let changed = ndjson(&repeated);
    assert_eq!(
        changed
            .iter()
            .map(|r| (
                r["kind"].as_str().unwrap(),
                r["webhook_id"].as_str().unwrap()
            ))
            .collect::<Vec<_>>(),
        vec![
            ("webhook_updated", h.calls.as_str()),
            ("webhook_deleted", h.temp.as_str())
        ]
    );
    assert_eq!(changed[0]["doc"]["name"], "Renamed Calls");
    assert_eq!(changed[0]["doc"]["retries"], 1);

    // --account: exactly the records naming acme (or created as its child, none here).
    let acme = ndjson(&ok(dir, &["replay", "--json", "--account", &h.acme]));
    let expected: Vec<u64> = all
        .iter()
        .filter(|r| r["account_id"] == h.acme.as_str() || r["parent_id"] == h.acme.as_str())
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs(&acme), expected);
    for kind in [
        "account_created",
        "webhook_created",
        "webhook_updated",
        "webhook_deleted",
    ] {
        assert!(acme.iter().any(|r| r["kind"] == kind), "no {kind} for acme");
    }
    // The master's filter includes its children's creation.
    let master = ndjson(&ok(dir, &["replay", "--json", "--account", &h.master]));
    let children: Vec<&str> = master
        .iter()
        .filter(|r| r["kind"] == "account_created" && r["parent_id"] == h.master.as_str())
        .map(|r| r["account_id"].as_str().unwrap())
        .collect();
    assert_eq!(children, vec![h.acme.as_str(), h.doomed.as_str()]);

    // --webhook: the hook's own records; a hook deleted with its account gets that deletion.
    let calls = ndjson(&ok(dir, &["replay", "--json", "--webhook", &h.calls]));
    assert_eq!(
        calls
            .iter()
            .map(|r| r["kind"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["webhook_created", "webhook_secret_set", "webhook_updated"]
    );
    let doomed = ndjson(&ok(dir, &["replay", "--json", "--webhook", &h.doomed_hook]));
    assert_eq!(
        doomed
            .iter()
            .map(|r| r["kind"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["webhook_created", "webhook_secret_set", "account_deleted"]
    );
    assert_eq!(doomed[2]["account_id"], h.doomed.as_str());

    // --from.
    let from = n / 2;
    let tail = ndjson(&ok(dir, &["replay", "--json", "--from", &from.to_string()]));
    assert_eq!(seqs(&tail), (from..=n).collect::<Vec<_>>());

    // --since / --until: step 2's records exactly (RFC 3339 and Unix seconds both work).
    let window = ndjson(&ok(
        dir,
        &[
            "replay",
            "--json",
            "--since",
            &rfc3339(h.t1),
            "--until",
            &h.t2.to_string(),
        ],
    ));
    let expected: Vec<u64> = all
        .iter()
        .filter(|r| {
            let t = r["time_ms"].as_u64().unwrap();
            t >= h.t1 * 1000 && t <= h.t2 * 1000
        })
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs(&window), expected);
    let kinds: Vec<&str> = window.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"webhook_updated") && kinds.contains(&"webhook_deleted"));
    assert!(!kinds.contains(&"webhook_created") && !kinds.contains(&"account_deleted"));
    let since_t2 = ndjson(&ok(
        dir,
        &["replay", "--json", "--since", &h.t2.to_string()],
    ));
    assert!(since_t2.iter().any(|r| r["kind"] == "account_deleted"));
    assert!(since_t2
        .iter()
        .all(|r| r["time_ms"].as_u64().unwrap() >= h.t2 * 1000));

    // Filters combine.
    let combined = ndjson(&ok(
        dir,
        &[
            "replay",
            "--json",
            "--account",
            &h.acme,
            "--kind",
            "webhook_deleted",
        ],
    ));
    assert_eq!(combined.len(), 1);
    assert_eq!(combined[0]["webhook_id"], h.temp.as_str());
}

/// `log state --at` at each boundary reproduces the configuration of that moment.
fn check_state(dir: &Path, h: &History) {
    let state = |at: &str, extra: &[&str]| -> Value {
        let mut args = vec!["state", "--json", "--at", at];
        args.extend_from_slice(extra);
        serde_json::from_str(&ok(dir, &args)).expect("state --json is JSON")
    };
    let all = ndjson(&ok(dir, &["replay", "--json"]));
    let last_before = |secs: u64| {
        all.iter()
            .filter(|r| r["time_ms"].as_u64().unwrap() <= secs * 1000)
            .map(|r| r["seq"].as_u64().unwrap())
            .max()
            .unwrap_or(0)
    };

    // After step 1: the first configuration.
    let s1 = state(&h.t1.to_string(), &[]);
    assert_eq!(s1["at_ms"], h.t1 * 1000);
    assert_eq!(s1["seq"], last_before(h.t1));
    assert_eq!(
        ids(&s1["accounts"]),
        sorted(vec![h.master.clone(), h.acme.clone(), h.doomed.clone()])
    );
    assert_eq!(
        ids(&s1["webhooks"]),
        sorted(vec![h.calls.clone(), h.temp.clone(), h.doomed_hook.clone()])
    );
    let calls = find(&s1["webhooks"], &h.calls);
    assert_eq!(calls["doc"]["name"], "New Calls");
    assert_eq!(calls["doc"]["retries"], 3);
    assert_eq!(calls["account_id"], h.acme.as_str());
    assert_eq!(calls["enabled"], true);
    assert_eq!(calls["disable_reason"], Value::Null);
    let acme = find(&s1["accounts"], &h.acme);
    assert_eq!(acme["name"], "Acme");
    assert_eq!(acme["parent_id"], h.master.as_str());
    assert_eq!(acme["doc"]["name"], "Acme");
    // The same moment as RFC 3339.
    assert_eq!(state(&rfc3339(h.t1), &[]), s1);

    // After step 2: the patch shows, the deleted hook is gone.
    let s2 = state(&h.t2.to_string(), &[]);
    assert_eq!(s2["seq"], last_before(h.t2));
    let calls = find(&s2["webhooks"], &h.calls);
    assert_eq!(calls["doc"]["name"], "Renamed Calls");
    assert_eq!(calls["doc"]["retries"], 1);
    assert_eq!(
        ids(&s2["webhooks"]),
        sorted(vec![h.calls.clone(), h.doomed_hook.clone()])
    );
    assert!(ids(&s2["accounts"]).contains(&h.doomed));

    // After step 3: the deleted account and its hook are gone.
    let s3 = state(&h.t3.to_string(), &[]);
    assert_eq!(
        ids(&s3["accounts"]),
        sorted(vec![h.master.clone(), h.acme.clone()])
    );
    assert_eq!(ids(&s3["webhooks"]), vec![h.calls.clone()]);

    // Before anything: nothing.
    let s0 = state("1970-01-01T00:00:00Z", &[]);
    assert_eq!(s0["seq"], 0);
    assert_eq!(s0["accounts"], json!([]));

    // --account: the subtree only.
    let acme1 = state(&h.t1.to_string(), &["--account", &h.acme]);
    assert_eq!(ids(&acme1["accounts"]), vec![h.acme.clone()]);
    assert_eq!(
        ids(&acme1["webhooks"]),
        sorted(vec![h.calls.clone(), h.temp.clone()])
    );
    let doomed3 = state(&h.t3.to_string(), &["--account", &h.doomed]);
    assert_eq!(doomed3["accounts"], json!([]));
    assert_eq!(doomed3["webhooks"], json!([]));

    // The readable tree at step 1.
    let tree = ok(dir, &["state", "--at", &h.t1.to_string()]);
    assert!(tree.starts_with("state at "), "{tree}");
    assert!(tree.contains("3 accounts, 3 webhooks"), "{tree}");
    assert!(
        tree.contains(&format!("\naccount {} \"Master Account\"", h.master)),
        "{tree}"
    );
    assert!(
        tree.contains(&format!(
            "\n  account {} \"Acme\" (parent {})",
            h.acme, h.master
        )),
        "{tree}"
    );
    assert!(
        tree.contains(&format!("\n    webhook {} \"New Calls\" enabled", h.calls)),
        "{tree}"
    );
    let tree3 = ok(
        dir,
        &["state", "--at", &h.t3.to_string(), "--account", &h.doomed],
    );
    assert!(tree3.contains("did not exist"), "{tree3}");

    // No secrets in either form.
    let full = serde_json::to_string(&state(&h.t3.to_string(), &[])).unwrap() + &tree;
    for secret in [MASTER_KEY, h.acme_key.as_str()] {
        assert!(!full.contains(secret), "a secret in log state");
    }
    assert!(
        !full.contains("api_key") && !full.contains("token"),
        "{full}"
    );
}

#[tokio::test]
async fn replay_filters_and_state_at_past_moments_while_running_and_after_stop() {
    let mut d = Daemon::start(&[]);
    let h = build_history(&d).await;

    // While the daemon runs: a secondary instance sees everything committed.
    check_replay(&d.data_dir, &h);
    check_state(&d.data_dir, &h);
    let intact = ok(&d.data_dir, &["verify"]);
    assert!(intact.starts_with("intact: "), "{intact}");

    assert!(d.stop().success());
    check_replay(&d.data_dir, &h);
    check_state(&d.data_dir, &h);
    let after = ok(&d.data_dir, &["verify"]);
    let n = ndjson(&ok(&d.data_dir, &["replay", "--json"])).len();
    assert!(
        after.starts_with(&format!("intact: {n} records, seq 1..{n}, last hash ")),
        "{after}"
    );
}

#[tokio::test]
async fn a_closed_pipe_ends_replay_quietly() {
    let d = Daemon::start(&[]);
    let master = d.master().await;
    let root = master.own_account().await;
    // More output than a pipe buffers (64 KiB), so the writer meets the closed pipe.
    let notes = "x".repeat(400);
    for i in 0..100 {
        master
            .put(
                &format!("/v2/accounts/{root}"),
                serde_json::json!({"name": format!("a{i}"), "notes": notes}),
            )
            .await
            .expect(201);
    }
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_piston-webhooks"))
            .args(["log", "replay", "--json", "--data-dir"])
            .arg(&d.data_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // `| head -1`: read one line, then close the pipe.
    let mut child = spawn();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut reader, &mut first).unwrap();
    assert!(first.starts_with("{\"seq\":1,"), "{first}");
    drop(reader);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}: {}", out.status, stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    // `| true`: closed before the first write.
    let mut child = spawn();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}: {}", out.status, stderr(&out));
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn a_missing_or_empty_data_dir_is_a_clear_error() {
    let temp = tempfile::tempdir().unwrap();
    let missing = temp.path().join("nope");
    for sub in ["verify", "replay"] {
        let o = log_cli(&missing, &[sub]);
        assert_eq!(o.status.code(), Some(2), "{sub}: {}", stderr(&o));
        assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
        assert!(stdout(&o).is_empty());
    }
    let o = log_cli(temp.path(), &["state", "--at", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no event log at"), "{}", stderr(&o));
    // A bad time is a usage error.
    let o = log_cli(temp.path(), &["state", "--at", "yesterday"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("RFC 3339"), "{}", stderr(&o));
}

/// The stopped daemon's log, opened directly to damage it (records are in the default
/// column family; the others must be opened too).
fn raw_db(data_dir: &Path) -> rocksdb::DB {
    let path = data_dir.join("eventlog");
    let options = rocksdb::Options::default();
    let families = rocksdb::DB::list_cf(&options, &path).expect("list the column families");
    rocksdb::DB::open_cf(&options, &path, families).expect("open the log with RocksDB")
}

fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Runs `log verify`: must fail with exit 1 naming `seq`. Also checks that replay prints
/// the records before it and fails the same way, and that state fails.
#[track_caller]
fn assert_damaged_at(dir: &Path, seq: u64, what: &str) {
    let needle = format!("damaged at record {seq}:");
    let o = log_cli(dir, &["verify"]);
    assert_eq!(o.status.code(), Some(1), "{what}: {}", stderr(&o));
    assert!(stderr(&o).contains(&needle), "{what}: {}", stderr(&o));
    assert!(stdout(&o).is_empty(), "{what}: {}", stdout(&o));

    let o = log_cli(dir, &["replay", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{what}: {}", stderr(&o));
    assert!(stderr(&o).contains(&needle), "{what}: {}", stderr(&o));
    assert_eq!(
        seqs(&ndjson(&stdout(&o))),
        (1..seq).collect::<Vec<_>>(),
        "{what}: replay prints the records before the damage"
    );

    let o = log_cli(dir, &["state", "--at", &(now_ms() / 1000 + 1).to_string()]);
    assert_eq!(o.status.code(), Some(1), "{what}: {}", stderr(&o));
    assert!(stderr(&o).contains(&needle), "{what}: {}", stderr(&o));
}

#[track_caller]
fn assert_intact(dir: &Path, records: u64) {
    let out = ok(dir, &["verify"]);
    assert!(
        out.starts_with(&format!("intact: {records} records, seq 1..{records}, ")),
        "{out}"
    );
}

#[tokio::test]
async fn verify_names_the_first_bad_record_of_a_damaged_log() {
    let mut d = Daemon::start(&[]);
    let master = d.master().await;
    let root = master.own_account().await;
    let acme = master.create_account(&root, "Acme").await;
    for i in 0..3 {
        master
            .create_webhook(&acme, hook_doc(&format!("hook {i}")))
            .await;
    }
    assert!(d.stop().success());
    let dir = d.data_dir.clone();
    let n = ndjson(&ok(&dir, &["replay", "--json"])).len() as u64;
    assert!(n >= 8, "{n} records");
    assert_intact(&dir, n);
    let k = n / 2;

    let db = raw_db(&dir);
    let original: Vec<Vec<u8>> = (1..=n)
        .map(|s| db.get(key(s)).unwrap().expect("every record stored"))
        .collect();
    let value = |s: u64| original[(s - 1) as usize].clone();
    drop(db);
    let damage = |f: &dyn Fn(&rocksdb::DB)| {
        let db = raw_db(&dir);
        f(&db);
        db.flush().unwrap();
    };
    let restore = || {
        let db = raw_db(&dir);
        for s in 1..=n {
            db.put(key(s), value(s)).unwrap();
        }
        for extra in n + 1..n + 3 {
            db.delete(key(extra)).unwrap();
        }
        db.flush().unwrap();
        drop(db);
        assert_intact(&dir, n);
    };

    // 1. One bit flipped in the middle of a record (its body).
    for (at, what) in [
        (value(k).len() / 2, "a flipped bit in the body"),
        (value(k).len() - 3, "a flipped bit in the hash"),
    ] {
        damage(&|db| {
            let mut v = value(k);
            v[at] ^= 0x01;
            db.put(key(k), v).unwrap();
        });
        assert_damaged_at(&dir, k, what);
        restore();
    }

    // 2. A record deleted: a gap.
    damage(&|db| db.delete(key(k)).unwrap());
    assert_damaged_at(&dir, k, "a deleted record");
    let o = log_cli(&dir, &["verify"]);
    assert!(
        stderr(&o).contains(&format!("record {k} is missing")),
        "{}",
        stderr(&o)
    );
    restore();

    // 3. Two records swapped: the first of them fails (its seq is in the hash).
    damage(&|db| {
        db.put(key(k), value(k + 1)).unwrap();
        db.put(key(k + 1), value(k)).unwrap();
    });
    assert_damaged_at(&dir, k, "two swapped records");
    restore();

    // 4. A record rewritten with garbage.
    damage(&|db| db.put(key(k), b"not a record").unwrap());
    assert_damaged_at(&dir, k, "garbage");
    restore();

    // 5. An earlier record copied over a later one (a replay of history).
    damage(&|db| db.put(key(n), value(2)).unwrap());
    assert_damaged_at(&dir, n, "a copied record");
    restore();

    // 6. A record appended after the end without continuing the chain.
    damage(&|db| db.put(key(n + 1), value(n)).unwrap());
    assert_damaged_at(&dir, n + 1, "an appended copy");
    restore();

    // 7. The first record damaged: nothing can be trusted.
    damage(&|db| {
        let mut v = value(1);
        let mid = v.len() / 2;
        v[mid] ^= 0x80;
        db.put(key(1), v).unwrap();
    });
    assert_damaged_at(&dir, 1, "the first record");
    restore();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_compacts_configuration_history_and_the_log_still_verifies() {
    let flags = [
        "--retention-seconds",
        "1",
        "--housekeeping-interval-ms",
        "200",
    ];
    let mut d = Daemon::start(&flags);
    let master = d.master().await;
    let account = master.own_account().await;
    let kept = master.create_webhook(&account, hook_doc("kept-0")).await;
    for n in 1..=20 {
        master
            .patch(
                &format!("/v2/accounts/{account}/webhooks/{kept}"),
                json!({"name": format!("kept-{n}")}),
            )
            .await
            .expect(200);
    }
    let gone = master.create_webhook(&account, hook_doc("gone-0")).await;
    master
        .patch(
            &format!("/v2/accounts/{account}/webhooks/{gone}"),
            json!({"name": "gone-1"}),
        )
        .await
        .expect(200);
    master
        .delete(&format!("/v2/accounts/{account}/webhooks/{gone}"))
        .await
        .expect(200);
    let updates =
        |dir: &Path| ndjson(&ok(dir, &["replay", "--json", "--kind", "webhook_updated"])).len();
    assert_eq!(updates(&d.data_dir), 21);
    // Newer records keep the tail above the cut while retention catches up.
    let compacted = eventually(Duration::from_secs(30), || async {
        master
            .send(
                "POST",
                "/v2/events",
                Some(json!({"data": {"hook_event": "channel_answer", "account_id": account}})),
            )
            .await
            .expect(202);
        (updates(&d.data_dir) == 1).then_some(())
    })
    .await;
    assert!(
        compacted.is_some(),
        "of 21 webhook updates only the current document's stays"
    );
    let status = d.stop();
    assert!(status.success());
    let verified = ok(&d.data_dir, &["verify"]);
    assert!(!verified.is_empty());
    let d = d.restart(&flags);
    let master = d.master().await;
    let r = master
        .get(&format!("/v2/accounts/{account}/webhooks/{kept}"))
        .await
        .expect(200);
    assert_eq!(r.data()["name"], "kept-20");
    master
        .get(&format!("/v2/accounts/{account}/webhooks/{gone}"))
        .await
        .expect(404);
    // The deleted hook's id is still taken.
    master
        .put(
            &format!("/v2/accounts/{account}/webhooks"),
            json!({"id": gone, "name": "again", "uri": "http://example.com/", "hook": "channel_create"}),
        )
        .await
        .expect(409);
}
