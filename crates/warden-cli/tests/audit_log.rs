//! The tamper-evident audit log end to end: calls through a real server, signed checkpoints,
//! proofs, and `warden audit verify` catching every kind of tampering done directly in the
//! database (SQLite and PostgreSQL), plus a crash in the middle of concurrent calls.
//!
//! PostgreSQL must be reachable (`WARDEN_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`): the PostgreSQL test fails, never skips, without it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{TestServer, WARDEN};
use serde_json::{Value, json};
use sqlx::Connection;
use warden_audit::canonical::canonical_bytes;
use warden_audit::merkle::leaf_hash;
use warden_core::event::{AuditEvent, EventKind, Outcome, Verdict};

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Checkpoints every 200 ms, so tests wait less.
fn fast_checkpoints(config: String) -> String {
    format!("{config}\n[audit]\ncheckpoint_interval_ms = 200\n")
}

async fn call(base: &str, key: &str) -> Result<(u16, Value), reqwest::Error> {
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/tools/call"))
        .bearer_auth(key)
        .json(&json!({"name": "crm.get_customer", "arguments": {"customer_id": "C001"}}))
        .send()
        .await?;
    Ok((
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    ))
}

async fn calls(server: &TestServer, key: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let (status, body) = call(&server.base, key).await.expect("the gateway answers");
        assert_eq!(status, 200, "{body}");
        ids.push(body["event_id"].as_str().expect("an event id").to_owned());
    }
    ids
}

async fn admin_get(server: &TestServer, path: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{}{path}", server.base))
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .expect("the server answers");
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

/// Wait until the latest checkpoint has exactly `size` leaves; returns its JSON.
async fn wait_for_checkpoint(server: &TestServer, size: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = admin_get(server, "/v1/audit/checkpoint").await;
        if status == 200 && body["size"].as_u64() == Some(size) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of size {size}; last answer {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn db_path(server: &TestServer) -> PathBuf {
    server.dir.path().join("warden.db")
}

async fn sqlite(path: &Path) -> sqlx::SqliteConnection {
    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("a raw SQLite connection")
}

async fn event_count(path: &Path) -> u64 {
    let mut c = sqlite(path).await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut c)
        .await
        .expect("count");
    u64::try_from(n).expect("a count")
}

/// Stop the server as an operator would (SIGTERM): it signs a final checkpoint.
fn stop(server: &mut TestServer) {
    let pid = server.child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(sent.is_ok_and(|s| s.success()), "SIGTERM to the server");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = server.child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the server did not stop:\n{}", server.log());
}

fn warden(args: &[&str]) -> Output {
    Command::new(WARDEN)
        .args(args)
        .output()
        .expect("run warden")
}

/// `warden audit verify --json ARGS`: the exit code and the JSON report.
fn verify(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["audit", "verify", "--json"];
    all.extend_from_slice(args);
    let out = warden(&all);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "verify printed no JSON: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

/// A copy of the stopped server's database files in a fresh folder.
fn copy_db(from: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let to = dir.path().join("copy.db");
    std::fs::copy(from, &to).expect("copy the database");
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", from.display()));
        if side.exists() {
            std::fs::copy(&side, format!("{}{suffix}", to.display())).expect("copy a WAL file");
        }
    }
    (dir, to)
}

/// A copy of the database at `db` with `sql` run on it.
async fn tampered_copy(db: &Path, sql: &str) -> (tempfile::TempDir, PathBuf) {
    let (dir, copy) = copy_db(db);
    exec(&copy, sql).await;
    (dir, copy)
}

async fn exec(path: &Path, sql: &str) {
    let mut c = sqlite(path).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = c.close().await;
}

async fn canonical_of(path: &Path, seq: u64) -> Vec<u8> {
    let mut c = sqlite(path).await;
    sqlx::query_scalar("SELECT canonical FROM events WHERE seq = ?")
        .bind(i64::try_from(seq).expect("seq"))
        .fetch_one(&mut c)
        .await
        .expect("canonical")
}

/// An event the attacker writes in, with consistent canonical bytes and leaf hash.
fn forged_event() -> AuditEvent {
    let mut e = AuditEvent::begin(EventKind::ToolCall, "rest", None);
    e.agent = Some("support-bot".into());
    e.action = Some("crm.get_customer".into());
    e.verdict = Verdict::Allow;
    e.outcome = Outcome::Ok;
    e
}

async fn insert_row(path: &Path, seq: u64, e: &AuditEvent) {
    let canonical = canonical_bytes(e);
    let hash = leaf_hash(&canonical);
    let mut c = sqlite(path).await;
    sqlx::query(
        "INSERT INTO events (seq, id, correlation_id, kind, started_at, finished_at, agent, \
         action, verdict, outcome, body, canonical, leaf_hash) \
         VALUES (?, ?, ?, 'tool_call', ?, ?, ?, ?, 'allow', 'ok', ?, ?, ?)",
    )
    .bind(i64::try_from(seq).expect("seq"))
    .bind(&e.id)
    .bind(&e.correlation_id)
    .bind(e.started_at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
    .bind(e.finished_at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
    .bind(&e.agent)
    .bind(&e.action)
    .bind(serde_json::to_string(e).expect("json"))
    .bind(canonical)
    .bind(hash.as_slice())
    .execute(&mut c)
    .await
    .expect("insert the forged row");
}

/// Verify a tampered copy, in full and with `--quick`: both must exit 1 naming `index` as the
/// first bad one.
fn assert_tampered(what: &str, db: &Path, key: &Path, index: u64) {
    for quick in [false, true] {
        assert_verify_finds(what, db, key, quick, index);
    }
}

/// A copy tampered outside the Merkle log (a JSON copy, an indexed column): the full verify
/// names `index`; `--quick`, which checks only what the log covers, passes it.
fn assert_tampered_beside_the_log(what: &str, db: &Path, key: &Path, index: u64) {
    assert_verify_finds(what, db, key, false, index);
    let (code, report) = verify_db(db, key, true);
    assert_eq!(code, 0, "{what}: --quick reads only the log: {report}");
}

fn assert_verify_finds(what: &str, db: &Path, key: &Path, quick: bool, index: u64) {
    let (code, report) = verify_db(db, key, quick);
    assert_eq!(
        code, 1,
        "{what} (quick: {quick}): verify must fail: {report}"
    );
    assert_eq!(
        report["ok"],
        json!(false),
        "{what} (quick: {quick}): {report}"
    );
    assert_eq!(
        report["first_bad_index"].as_u64(),
        Some(index),
        "{what} (quick: {quick}): wrong first bad index: {report}"
    );
}

fn verify_db(db: &Path, key: &Path, quick: bool) -> (i32, Value) {
    let url = format!("sqlite://{}", db.display());
    let key = key.display().to_string();
    let mut args = vec!["--db", &url, "--key", &key];
    if quick {
        args.push("--quick");
    }
    verify(&args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_an_honest_log_and_names_the_first_bad_index_of_each_tampering() {
    let mut server = TestServer::quickstart(fast_checkpoints);
    let key = server.create_key("support-bot");
    let first = calls(&server, &key, 6).await;
    let db = db_path(&server);
    let a = event_count(&db).await;
    let cp_a = wait_for_checkpoint(&server, a).await;
    let second = calls(&server, &key, 6).await;
    let n = event_count(&db).await;
    assert_eq!(n, a + 6);
    wait_for_checkpoint(&server, n).await;

    // Served checkpoint and proofs check out with the published verifier key.
    let out = server.cli(&["audit", "checkpoint", "--key"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verifier = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(verifier.starts_with("warden.local/log+"), "{verifier}");
    let pub_path = server.dir.path().join(".warden/checkpoint.pub");
    assert_eq!(
        std::fs::read_to_string(&pub_path)
            .expect("checkpoint.pub")
            .trim(),
        verifier
    );
    assert!(
        cp_a["note"]
            .as_str()
            .is_some_and(|n| n.starts_with("warden.local/log\n"))
    );
    for id in [&first[0], &second[5]] {
        let out = server.cli(&["audit", "prove", id]);
        assert!(
            out.status.success(),
            "prove {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("verified against the checkpoint signed by"),
            "{text}"
        );
    }
    let (status, proof) = admin_get(&server, &format!("/v1/audit/proof/{}", second[0])).await;
    assert_eq!(status, 200, "{proof}");
    assert_eq!(
        proof["index"].as_u64(),
        Some(a),
        "leaf index = seq: {proof}"
    );
    let (status, consistency) =
        admin_get(&server, &format!("/v1/audit/consistency?from={a}&to={n}")).await;
    assert_eq!(status, 200, "{consistency}");
    let (status, _) = admin_get(&server, "/v1/audit/proof/no-such-event").await;
    assert_eq!(status, 404);
    let (status, _) = admin_get(&server, "/v1/audit/consistency?from=x").await;
    assert_eq!(status, 400);

    stop(&mut server);
    assert!(
        !server.log().contains("PRIVATE+KEY"),
        "the signing key never reaches the log"
    );

    // The honest log verifies, from the config and from an exported bundle.
    let config = server.config_path().display().to_string();
    for quick in [&[][..], &["--quick"][..]] {
        let (code, report) = verify(&[&["-c", &config][..], quick].concat());
        assert_eq!(code, 0, "{report}");
        assert_eq!(report["events_verified"].as_u64(), Some(n), "{report}");
        assert_eq!(report["covered"].as_u64(), Some(n), "{report}");
    }
    let export = warden(&["audit", "export", "-c", &config]);
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let bundle = server.dir.path().join("bundle.jsonl");
    std::fs::write(&bundle, &export.stdout).expect("write the bundle");
    let (code, report) = verify(&["--bundle", &bundle.display().to_string(), "-c", &config]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["events_verified"].as_u64(), Some(n), "{report}");
    let since = warden(&[
        "audit",
        "export",
        "--since",
        &(a + 2).to_string(),
        "-c",
        &config,
    ]);
    assert!(since.status.success());
    std::fs::write(&bundle, &since.stdout).expect("write the bundle");
    let (code, report) = verify(&["--bundle", &bundle.display().to_string(), "-c", &config]);
    assert_eq!(
        code, 0,
        "a bundle from a later checkpoint verifies: {report}"
    );
    // A tampered bundle does not.
    let text = String::from_utf8_lossy(&export.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let mut tampered: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    tampered.remove(4); // the event at seq 3
    std::fs::write(&bundle, tampered.join("\n")).expect("write the bundle");
    let (code, report) = verify(&["--bundle", &bundle.display().to_string(), "-c", &config]);
    assert_eq!(
        (code, report["first_bad_index"].as_u64()),
        (1, Some(3)),
        "{report}"
    );

    // Tampering, each on a fresh copy of the database.
    let k = a + 2;
    let (_d, copy) = copy_db(&db);
    let mut canonical = canonical_of(&copy, k).await;
    let at = canonical.len() - 10;
    canonical[at] ^= 0x01;
    let mut c = sqlite(&copy).await;
    sqlx::query("UPDATE events SET canonical = ? WHERE seq = ?")
        .bind(canonical)
        .bind(i64::try_from(k).expect("seq"))
        .execute(&mut c)
        .await
        .expect("edit canonical");
    drop(c);
    assert_tampered("a modified canonical record", &copy, &pub_path, k);

    // Rows no longer keep a JSON copy of the event (older rows do): a copy added beside the
    // log must tell the same event as the canonical bytes.
    let (_d, copy) = tampered_copy(
        &db,
        &format!(
            "UPDATE events SET body = replace(substr(CAST(canonical AS TEXT), 17), \
             '\"outcome\":\"ok\"', '\"outcome\":\"denied\"') WHERE seq = {}",
            a + 3
        ),
    )
    .await;
    assert_tampered_beside_the_log("a JSON copy that disagrees", &copy, &pub_path, a + 3);
    let (_, report) = verify_db(&copy, &pub_path, false);
    assert!(
        report
            .to_string()
            .contains("disagrees with its canonical record in: outcome"),
        "the copy is read as an event and compared: {report}"
    );

    let (_d, copy) = tampered_copy(
        &db,
        &format!(
            "UPDATE events SET agent = 'refund-bot' WHERE seq = {}",
            a + 1
        ),
    )
    .await;
    assert_tampered_beside_the_log("a modified indexed column", &copy, &pub_path, a + 1);

    let (_d, copy) = tampered_copy(&db, &format!("DELETE FROM events WHERE seq = {}", a + 1)).await;
    assert_tampered("a deleted event", &copy, &pub_path, a + 1);

    let (_d, copy) = tampered_copy(
        &db,
        &format!("UPDATE events SET canonical = NULL WHERE seq = {}", a + 4),
    )
    .await;
    assert_tampered("a canonical record erased", &copy, &pub_path, a + 4);

    let (_d, copy) = tampered_copy(
        &db,
        &format!(
            "UPDATE events SET leaf_hash = substr(leaf_hash, 1, 31) WHERE seq = {}",
            a + 5
        ),
    )
    .await;
    assert_tampered("a leaf hash cut short", &copy, &pub_path, a + 5);

    // Inserted at seq `a` (where the first checkpoint ends), the later events moved up.
    let (_d, copy) = tampered_copy(
        &db,
        &format!(
            "UPDATE events SET seq = seq + 1000000 WHERE seq >= {a}; \
             UPDATE events SET seq = seq - 1000000 + 1 WHERE seq >= 1000000;"
        ),
    )
    .await;
    insert_row(&copy, a, &forged_event()).await;
    assert_tampered("an inserted event", &copy, &pub_path, a);

    let (_d, copy) = tampered_copy(
        &db,
        &format!(
            "UPDATE events SET seq = 1000000 WHERE seq = {a}; \
             UPDATE events SET seq = {a} WHERE seq = {b}; \
             UPDATE events SET seq = {b} WHERE seq = 1000000;",
            b = a + 1
        ),
    )
    .await;
    assert_tampered("two events swapped", &copy, &pub_path, a);

    let (_d, copy) =
        tampered_copy(&db, &format!("DELETE FROM events WHERE seq >= {}", n - 3)).await;
    assert_tampered("a truncated tail", &copy, &pub_path, n - 3);

    // A forged note: the signed root replaced.
    let (_d, copy) = copy_db(&db);
    let zero = STANDARD.encode([0u8; 32]);
    let mut c = sqlite(&copy).await;
    let note: String = sqlx::query_scalar("SELECT note FROM checkpoints WHERE size = ?")
        .bind(i64::try_from(n).expect("size"))
        .fetch_one(&mut c)
        .await
        .expect("note");
    let mut lines: Vec<&str> = note.split('\n').collect();
    lines[2] = &zero;
    sqlx::query("UPDATE checkpoints SET note = ?, root = ? WHERE size = ?")
        .bind(lines.join("\n"))
        .bind([0u8; 32].as_slice())
        .bind(i64::try_from(n).expect("size"))
        .execute(&mut c)
        .await
        .expect("forge the note");
    drop(c);
    assert_tampered("a forged checkpoint note", &copy, &pub_path, n);

    // The stored root edited, the note left alone.
    let (_d, copy) = tampered_copy(
        &db,
        &format!("UPDATE checkpoints SET root = zeroblob(32) WHERE size = {a}"),
    )
    .await;
    assert_tampered("a forged checkpoint root", &copy, &pub_path, a);

    // Two problems: the first one is named.
    let (_d, copy) = tampered_copy(
        &db,
        &format!("DELETE FROM events WHERE seq IN (2, {})", n - 2),
    )
    .await;
    assert_tampered("two deletions", &copy, &pub_path, 2);

    // Usage errors exit 2.
    let out = warden(&[
        "audit",
        "verify",
        "--db",
        "sqlite:///nonexistent/warden.db",
        "--key",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let out = warden(&[
        "audit",
        "verify",
        "--db",
        "sqlite:///nonexistent/warden.db",
        "--key",
        &pub_path.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

/// Drops the test schema when the test ends, whatever happened.
struct Schema {
    admin_url: String,
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Runtime::new() else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut c) = sqlx::PgConnection::connect(&url).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS {name} CASCADE"
                    )))
                    .execute(&mut c)
                    .await;
                }
            });
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_catches_tampering_on_postgres() {
    let admin_url = std::env::var("WARDEN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let schema = Schema {
        admin_url: admin_url.clone(),
        name: format!("warden_cli_{}", uuid::Uuid::new_v4().simple()),
    };
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL is required by this test and is unreachable: {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA {}",
        schema.name
    )))
    .execute(&mut admin)
    .await
    .expect("create the test schema");
    let sep = if admin_url.contains('?') { '&' } else { '?' };
    let url = format!("{admin_url}{sep}options[search_path]={}", schema.name);

    let db_line = format!("database = \"{url}\"");
    let mut server = TestServer::quickstart(|c| {
        fast_checkpoints(c.replace("database = \"sqlite://warden.db\"", &db_line))
    });
    let key = server.create_key("support-bot");
    calls(&server, &key, 5).await;
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    let n = u64::try_from(count).expect("count");
    wait_for_checkpoint(&server, n).await;
    stop(&mut server);

    let config = server.config_path().display().to_string();
    let full = ["-c", config.as_str()];
    let quick = ["-c", config.as_str(), "--quick"];
    for args in [&full[..], &quick[..]] {
        let (code, report) = verify(args);
        assert_eq!(code, 0, "{args:?}: {report}");
        assert_eq!(report["events_verified"].as_u64(), Some(n), "{report}");
    }

    sqlx::query("DELETE FROM events WHERE seq = 4")
        .execute(&mut conn)
        .await
        .expect("delete");
    for args in [&full[..], &quick[..]] {
        let (code, report) = verify(args);
        assert_eq!(
            (code, report["first_bad_index"].as_u64()),
            (1, Some(4)),
            "{args:?}: {report}"
        );
    }

    sqlx::query(
        "UPDATE events SET canonical = overlay(canonical placing '\\x58'::bytea from 40) \
         WHERE seq = 2",
    )
    .execute(&mut conn)
    .await
    .expect("edit canonical");
    for args in [&full[..], &quick[..]] {
        let (code, report) = verify(args);
        assert_eq!(
            (code, report["first_bad_index"].as_u64()),
            (1, Some(2)),
            "{args:?}: {report}"
        );
    }
    let _ = conn.close().await;
    let _ = admin.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_answered_call_survives_a_kill_9_and_is_checkpointed_after_restart() {
    let mut server = TestServer::quickstart(|c| c);
    let key = server.create_key("support-bot");
    let answered = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (base, key, answered) = (server.base.clone(), key.clone(), answered.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for _ in 0..50 {
                    match call(&base, &key).await {
                        Ok((200, body)) => {
                            if let Some(id) = body["event_id"].as_str() {
                                ids.push(id.to_owned());
                            }
                            answered.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok((status, body)) => panic!("unexpected answer {status}: {body}"),
                        // The server died under us: this call's fate is unknown.
                        Err(_) => break,
                    }
                }
                ids
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered.load(Ordering::SeqCst) < 150 {
        assert!(Instant::now() < deadline, "calls are too slow");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.child.kill().expect("SIGKILL the server");
    let _ = server.child.wait();
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await.expect("a caller"));
    }
    assert!(
        ids.len() >= 150 && ids.len() < 400,
        "killed mid-run: {} answered",
        ids.len()
    );

    let restarted = Instant::now();
    tokio::task::block_in_place(|| server.kill_and_restart());
    for id in &ids {
        let (status, body) = admin_get(&server, &format!("/v1/events/{id}")).await;
        assert_eq!(status, 200, "answered call {id} lost its event: {body}");
    }
    let n = event_count(&db_path(&server)).await;
    assert!(n >= ids.len() as u64);
    let cp = wait_for_checkpoint(&server, n).await;
    eprintln!(
        "{} calls answered before the kill; {n} events; a checkpoint covered them {:?} after the restart began",
        ids.len(),
        restarted.elapsed()
    );
    assert!(cp["note"].as_str().is_some());
    let (code, report) = verify(&["-c", &server.config_path().display().to_string()]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["covered"].as_u64(), Some(n), "{report}");
    let last = ids.last().expect("an answered call");
    let out = server.cli(&["audit", "prove", last]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// With one checkpoint over 1000 events, a swap deep inside is placed within 16 events by the
/// stored subtree hashes (authenticated by the signed root), not just "somewhere below 1000".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorder_under_a_sparse_checkpoint_is_placed_within_16_events() {
    use warden_server::checkpointer::Checkpointer;
    use warden_store::{StoreOptions, open_warden_store};

    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("log.db");
    let url = format!("sqlite://{}", db.display());
    let store = open_warden_store(&url, StoreOptions::default())
        .await
        .expect("store");
    let events: Vec<AuditEvent> = (0..1000).map(|_| forged_event()).collect();
    let appends: Vec<_> = events
        .iter()
        .map(|e| {
            let (store, e) = (store.clone(), e.clone());
            tokio::spawn(async move { store.append(&e).await })
        })
        .collect();
    for append in appends {
        append.await.expect("task").expect("append");
    }
    let key = warden_audit::SigningKey::from_seed("warden.test/log", [4; 32]).expect("key");
    let pub_path = dir.path().join("checkpoint.pub");
    std::fs::write(&pub_path, key.verifier().to_string()).expect("pub");
    let checkpointer = Checkpointer::start(
        store.clone(),
        key,
        "warden.test/log".into(),
        Duration::from_secs(3600),
    )
    .await
    .expect("checkpointer");
    assert_eq!(
        checkpointer.checkpoint_now().await.expect("sign"),
        Some(1000)
    );
    checkpointer.shutdown().await;
    store.close().await;

    let url = format!("sqlite://{}", db.display());
    let (code, report) = verify(&["--db", &url, "--key", &pub_path.display().to_string()]);
    assert_eq!(code, 0, "{report}");
    exec(
        &db,
        "UPDATE events SET seq = 1000000 WHERE seq = 700; \
         UPDATE events SET seq = 700 WHERE seq = 701; \
         UPDATE events SET seq = 701 WHERE seq = 1000000;",
    )
    .await;
    // 1000 = 512 + 256 + ...: the node [512, 768) differs; below it the stored level-4 hashes
    // name [688, 704).
    assert_tampered("a swap under a sparse checkpoint", &db, &pub_path, 688);
}
