//! The evidence vault and `explain` through a running server with the sample upstreams: raw
//! payloads sealed apart from the log, audited reads, retention by class with legal holds,
//! decision reconstruction, and the master key's failure modes.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{TestServer, WARDEN, rest_call as call};
use serde_json::{Value, json};

async fn get(base: &str, token: &str, path: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the server answers");
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn token(server: &TestServer, name: &str, role: &str) -> String {
    ok(&server.cli(&["operators", "create", name, "--role", role]))
        .trim()
        .to_owned()
}

/// A `warden` command against the server's config with another operator token.
fn cli_as(server: &TestServer, token: &str, args: &[&str]) -> Output {
    Command::new(WARDEN)
        .args(args)
        .arg("-c")
        .arg(server.config_path())
        .arg("--token")
        .arg(token)
        .output()
        .expect("run warden")
}

fn db_path(server: &TestServer) -> PathBuf {
    server.dir.path().join("warden.db")
}

/// Every byte SQLite holds for the database: the file and its write-ahead log.
fn raw_db_bytes(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).expect("the database file");
    if let Ok(wal) = std::fs::read(format!("{}-wal", path.display())) {
        bytes.extend(wal);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn sqlite(path: &Path) -> sqlx::SqliteConnection {
    use sqlx::Connection;
    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open the server's database")
}

/// The event bodies (JSON) of the audit table, all of them.
/// Every event as the log holds it: the JSON object of its canonical bytes.
async fn event_bodies(path: &Path) -> Vec<String> {
    let mut db = sqlite(path).await;
    sqlx::query_as::<_, (Vec<u8>,)>("SELECT canonical FROM events ORDER BY seq")
        .fetch_all(&mut db)
        .await
        .expect("read events")
        .into_iter()
        .map(|(canonical,)| {
            let json = canonical
                .strip_prefix(warden_audit::canonical::PREFIX_V1)
                .expect("canonical bytes start with the format prefix");
            String::from_utf8(json.to_vec()).expect("canonical JSON is UTF-8")
        })
        .collect()
}

fn audit_verify(server: &TestServer) -> (i32, String) {
    let out = Command::new(WARDEN)
        .args(["audit", "verify", "-c"])
        .arg(server.config_path())
        .output()
        .expect("run warden audit verify");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Wait until the latest checkpoint covers `event_id`, so its proof can be shown.
async fn wait_for_proof(server: &TestServer, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let (code, _) = get(
            &server.base,
            &server.admin_token,
            &format!("/v1/audit/proof/{id}"),
        )
        .await;
        if code == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no checkpoint covered event {id}");
}

fn record<'a>(show: &'a Value, artifact: &str) -> &'a Value {
    show["records"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["artifact"] == artifact))
        .unwrap_or_else(|| panic!("no {artifact} record in {show}"))
}

#[tokio::test]
async fn payloads_are_sealed_in_the_vault_and_never_reach_the_events_table() {
    let server = TestServer::quickstart(|c| c);
    let key = server.create_key("support-bot");
    let (code, body) = call(
        &server.base,
        &key,
        "crm.get_customer",
        json!({"customer_id": "C001"}),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let event_id = body["event_id"].as_str().expect("an event id").to_owned();
    let shown_to_agent = body["result"].to_string();

    // An auditor reads the raw result: the agent's copy was masked, the vault's is not.
    let auditor = token(&server, "ann@example.com", "auditor");
    let (code, show) = get(&server.base, &auditor, &format!("/v1/evidence/{event_id}")).await;
    assert_eq!(code, 200, "{show}");
    let args = record(&show, "arguments");
    assert_eq!(args["payload"]["value"], json!({"customer_id": "C001"}));
    let result = record(&show, "result");
    assert_eq!(
        result["class"], "regulated",
        "the SSN makes the result regulated: {result}"
    );
    let raw = &result["payload"]["value"]["structuredContent"];
    let ssn = raw["ssn"].as_str().expect("the raw SSN").to_owned();
    let card = raw["card_number"]
        .as_str()
        .expect("the raw card number")
        .to_owned();
    assert!(
        !shown_to_agent.contains(&ssn),
        "the agent never saw the SSN"
    );

    // Neither the SSN nor the card number is anywhere in the database's bytes: the events
    // table holds digests, the vault holds ciphertext.
    let bytes = raw_db_bytes(&db_path(&server));
    for secret in [&ssn, &card] {
        assert!(
            !contains(&bytes, secret),
            "{secret} found in the raw database bytes"
        );
    }
    let mut db = sqlite(&db_path(&server)).await;
    let (rows,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM evidence WHERE event_id = ? AND wrapped_key IS NOT NULL",
    )
    .bind(&event_id)
    .fetch_one(&mut db)
    .await
    .expect("count evidence");
    assert_eq!(rows, 2, "arguments and result are both kept");
    for b in event_bodies(&db_path(&server)).await {
        assert!(
            !b.contains(&ssn) && !b.contains("C001"),
            "a payload leaked into an event: {b}"
        );
    }
}

/// support-bot looks customer `customer` up; the call's event id.
async fn customer_lookup(server: &TestServer, customer: &str) -> String {
    let key = server.create_key("support-bot");
    let (code, body) = call(
        &server.base,
        &key,
        "crm.get_customer",
        json!({"customer_id": customer}),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    body["event_id"].as_str().expect("an event id").to_owned()
}

#[tokio::test]
async fn evidence_show_needs_an_auditor_or_admin_and_every_read_is_audited() {
    let server = TestServer::quickstart(|c| c);
    let event_id = customer_lookup(&server, "C002").await;

    for role in ["viewer", "approver"] {
        let t = token(&server, &format!("{role}@example.com"), role);
        let (code, answer) = get(&server.base, &t, &format!("/v1/evidence/{event_id}")).await;
        assert_eq!(code, 403, "a {role} may not read evidence: {answer}");
        let out = cli_as(&server, &t, &["evidence", "show", &event_id]);
        assert!(!out.status.success(), "the CLI refuses a {role} too");
    }
    let (code, _) = get(
        &server.base,
        "wdn_op_not-a-token",
        &format!("/v1/evidence/{event_id}"),
    )
    .await;
    assert_eq!(code, 401);

    let auditor = token(&server, "ann@example.com", "auditor");
    let printed = ok(&cli_as(&server, &auditor, &["evidence", "show", &event_id]));
    assert!(printed.contains("\"customer_id\": \"C002\""), "{printed}");
    assert!(printed.contains("result (class regulated"), "{printed}");
    let admin_read = ok(&server.cli(&["evidence", "show", &event_id, "--json"]));
    let admin_read: Value = serde_json::from_str(&admin_read).expect("json");
    let ssn = record(&admin_read, "result")["payload"]["value"]["structuredContent"]["ssn"]
        .as_str()
        .expect("raw ssn")
        .to_owned();

    // Two reads, two admin events naming the event read and the reader — and no payload.
    let bodies = event_bodies(&db_path(&server)).await;
    let reads: Vec<Value> = bodies
        .iter()
        .filter_map(|b| serde_json::from_str::<Value>(b).ok())
        .filter(|e| e["action"] == format!("evidence.show:{event_id}").as_str())
        .collect();
    assert_eq!(reads.len(), 2, "{reads:?}");
    assert_eq!(reads[0]["kind"], "admin");
    assert_eq!(reads[0]["operator"], "ann@example.com");
    assert_eq!(reads[0]["parent_id"], event_id.as_str());
    assert_eq!(reads[1]["operator"], "bootstrap-admin");
    for r in &reads {
        let text = r.to_string();
        assert!(!text.contains(&ssn) && !text.contains("C002"), "{text}");
    }
}

const RETENTION: &str = r#"
[retention]
default = "90d"
interval = "1h"

[retention.classes.regulated]
result = "0s"
approval = "365d"
"#;

#[tokio::test]
async fn retention_shreds_by_class_a_legal_hold_keeps_what_it_covers_and_the_log_still_verifies() {
    let server = TestServer::quickstart(|c| format!("{c}{RETENTION}"));
    let key = server.create_key("support-bot");
    let mut ids = Vec::new();
    for customer in ["C003", "C004"] {
        let (code, body) = call(
            &server.base,
            &key,
            "crm.get_customer",
            json!({"customer_id": customer}),
        )
        .await;
        assert_eq!(code, 200, "{body}");
        ids.push(body["event_id"].as_str().expect("id").to_owned());
    }
    let (shred, keep) = (&ids[0], &ids[1]);
    let held = ok(&server.cli(&["evidence", "hold", "--event", keep, "--reason", "case 17"]));
    assert!(held.contains(&format!("event:{keep}")), "{held}");
    let hold_id = held
        .split_whitespace()
        .nth(2)
        .expect("a hold id")
        .to_owned();
    let listed = ok(&server.cli(&["evidence", "holds"]));
    assert!(
        listed.contains(&hold_id) && listed.contains("case 17"),
        "{listed}"
    );

    // Only an admin runs retention.
    let auditor = token(&server, "ann@example.com", "auditor");
    assert!(
        !cli_as(&server, &auditor, &["retention", "run"])
            .status
            .success()
    );
    let ran = ok(&server.cli(&["retention", "run"]));
    assert!(
        ran.contains("shredded 1 evidence record(s); 1 expired record(s) kept by legal holds"),
        "{ran}"
    );

    // The regulated result is gone for good; its arguments (internal, 90 days) stay.
    let (_, show) = get(
        &server.base,
        &server.admin_token,
        &format!("/v1/evidence/{shred}"),
    )
    .await;
    let result = record(&show, "result");
    assert_eq!(result["payload"]["state"], "shredded", "{show}");
    let erased_at = result["payload"]["value"]["at"]
        .as_str()
        .expect("when")
        .to_owned();
    assert_eq!(record(&show, "arguments")["payload"]["state"], "present");
    let mut db = sqlite(&db_path(&server)).await;
    let (key_len, text_len): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT length(wrapped_key), length(ciphertext) FROM evidence WHERE event_id = ? AND artifact = 'result'",
    )
    .bind(shred)
    .fetch_one(&mut db)
    .await
    .expect("the shredded row is kept");
    assert_eq!(
        (key_len, text_len),
        (None, None),
        "the data key and ciphertext are destroyed"
    );
    let (_, held_show) = get(
        &server.base,
        &server.admin_token,
        &format!("/v1/evidence/{keep}"),
    )
    .await;
    assert_eq!(
        record(&held_show, "result")["payload"]["state"],
        "present",
        "the hold kept it"
    );

    // explain says the payload was erased and when.
    let explained = ok(&server.cli(&["explain", shred]));
    assert!(
        explained.contains(&format!("result:    erased at {erased_at}")),
        "{explained}"
    );

    // The log is untouched by shredding.
    let (code, report) = audit_verify(&server);
    assert_eq!(code, 0, "{report}");

    // Releasing the hold lets the next run shred it.
    ok(&server.cli(&["evidence", "release", &hold_id]));
    let ran = ok(&server.cli(&["retention", "run"]));
    assert!(ran.contains("shredded 1 "), "{ran}");
    let (code, report) = audit_verify(&server);
    assert_eq!(code, 0, "{report}");
    let runs = event_bodies(&db_path(&server))
        .await
        .into_iter()
        .filter(|b| b.contains("\"retention.run\""))
        .count();
    assert_eq!(runs, 2, "each run is audited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_who_the_deciding_policy_text_the_approvals_and_a_verified_proof() {
    let mut server = TestServer::quickstart(|c| c);
    let key = server.create_key("refund-bot");
    let refund = json!({"amount": 20000, "currency": "EUR", "customer_id": "C003"});
    let (code, body) = call(&server.base, &key, "payments.refund", refund).await;
    assert_eq!(code, 202, "{body}");
    let held = body["event_id"].as_str().expect("id").to_owned();
    let approval = body["approval_id"].as_str().expect("approval").to_owned();
    let carol = token(&server, "carol", "approver");
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/approvals/{approval}/approve", server.base))
        .bearer_auth(&carol)
        .json(&json!({"reason": "order 991 failed twice"}))
        .send()
        .await
        .expect("vote");
    assert_eq!(resp.status().as_u16(), 200);
    let (_, ran) = call(
        &server.base,
        &key,
        "warden.approval_status",
        json!({"approval_id": approval}),
    )
    .await;
    assert_eq!(ran["outcome"], "ok", "{ran}");
    let executed = ran["event_id"].as_str().expect("id").to_owned();
    wait_for_proof(&server, &executed).await;

    let auditor = token(&server, "ann@example.com", "auditor");
    let (code, x) = get(&server.base, &auditor, &format!("/v1/events/{held}")).await;
    assert_eq!(code, 200, "{x}");
    let x = &x["explanation"];
    assert_eq!(x["who"]["agent"], "refund-bot");
    assert_eq!(x["who"]["owner"], "finance-lead@example.com");
    assert_eq!(x["outcome"], "pending");
    let deciding = &x["policy"]["deciding"][0];
    assert_eq!(deciding["id"], "large-refunds-need-finance");
    assert!(
        deciding["text"]
            .as_str()
            .is_some_and(|t| t.contains("@approval(\"finance\")")
                && t.contains("unless { context.approved }")),
        "{deciding}"
    );
    // The auditor's read of the held request is on record, committed before it was shown.
    let read = x["reader"]["read_event_id"]
        .as_str()
        .expect("a read that decrypts evidence is recorded");
    let (code, r) = get(&server.base, &auditor, &format!("/v1/events/{read}")).await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["event"]["kind"], "admin", "{r}");
    assert_eq!(r["event"]["action"], format!("evidence.explain:{held}"));
    assert_eq!(r["event"]["operator"], "ann@example.com");
    assert_eq!(r["event"]["parent_id"], held.as_str());
    assert!(
        r["explanation"]["reader"]["read_event_id"].is_null(),
        "explaining the read itself decrypts nothing: {r}"
    );
    let a = &x["approvals"][0];
    assert_eq!(a["approval_id"], approval.as_str());
    assert_eq!(a["votes"][0]["approver"], "carol");
    assert_eq!(a["votes"][0]["reason"], "order 991 failed twice");
    let children: Vec<&str> = x["linked"]["children"]
        .as_array()
        .expect("children")
        .iter()
        .filter_map(|c| c["event_id"].as_str())
        .collect();
    assert!(
        children.contains(&executed.as_str()),
        "the execution is linked: {children:?}"
    );
    assert_eq!(x["proof"]["state"], "verified", "{}", x["proof"]);
    assert_eq!(x["proof"]["signature_checked"], true);

    // The executed call: approvers, its parent, its arguments from the vault.
    let printed = ok(&cli_as(&server, &auditor, &["explain", &executed]));
    for needle in [
        "agent:    refund-bot (owner finance-lead@example.com",
        "action:   payments.refund",
        "\"amount\":20000",
        "deciding policy finance-refunds",
        "approved by carol at",
        "order 991 failed twice",
        &format!("parent:   {held}"),
        "outcome\n  ok",
        "verified against the root",
        "this read of the evidence is recorded as event",
    ] {
        assert!(
            printed.contains(needle),
            "`{needle}` missing from:\n{printed}"
        );
    }

    // A viewer sees digests only.
    let viewer = token(&server, "vic@example.com", "viewer");
    let (code, v) = get(&server.base, &viewer, &format!("/v1/events/{executed}")).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        v["explanation"]["what"]["arguments"]["state"],
        "digest_only"
    );
    assert!(!v.to_string().contains("C003"), "{v}");
    assert!(
        v["explanation"]["reader"]["read_event_id"].is_null(),
        "a viewer decrypts nothing, so nothing is recorded: {v}"
    );

    // Policies change and the server restarts: the event still shows the text it was decided by.
    let policy = server.dir.path().join("policies/payments.cedar");
    let old = std::fs::read_to_string(&policy).expect("policy");
    std::fs::write(
        &policy,
        old.replace(
            "context.input.amount > 10000 &&",
            "context.input.amount > 20000 &&",
        ),
    )
    .expect("edit");
    tokio::task::block_in_place(|| server.kill_and_restart());
    let json_out = ok(&cli_as(&server, &auditor, &["explain", &held, "--json"]));
    let after: Value = serde_json::from_str(&json_out).expect("json");
    assert!(
        after["policy"]["deciding"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("context.input.amount > 10000 &&")),
        "{after}"
    );
}

#[tokio::test]
async fn an_auditor_sees_arguments_and_results_redacted_above_the_role_clearance() {
    let server =
        TestServer::quickstart(|c| format!("{c}\n[vault.clearance]\nauditor = \"confidential\"\n"));
    let id = customer_lookup(&server, "C005").await;
    let raw: Value =
        serde_json::from_str(&ok(&server.cli(&["evidence", "show", &id, "--json"]))).expect("json");
    let content = &record(&raw, "result")["payload"]["value"]["structuredContent"];
    let (ssn, email) = (
        content["ssn"].as_str().expect("ssn"),
        content["email"].as_str().expect("email"),
    );

    let auditor = token(&server, "ann@example.com", "auditor");
    let (_, x) = get(&server.base, &auditor, &format!("/v1/events/{id}")).await;
    let result = &x["explanation"]["what"]["result"];
    assert_eq!(result["state"], "shown", "{result}");
    let text = result["value"].to_string();
    assert!(
        !text.contains(ssn),
        "regulated data is above an auditor's clearance: {text}"
    );
    assert!(
        text.contains(email),
        "confidential data is within it: {text}"
    );
    assert!(result["redacted"].as_u64().is_some_and(|n| n >= 1));
    // The admin's clearance defaults to every class.
    let (_, x) = get(
        &server.base,
        &server.admin_token,
        &format!("/v1/events/{id}"),
    )
    .await;
    assert!(
        x["explanation"]["what"]["result"]["value"]
            .to_string()
            .contains(ssn)
    );
}

#[tokio::test]
async fn an_explanation_whose_read_cannot_be_recorded_decrypts_nothing() {
    let server = TestServer::quickstart(|c| c);
    let id = customer_lookup(&server, "C005").await;
    let raw: Value =
        serde_json::from_str(&ok(&server.cli(&["evidence", "show", &id, "--json"]))).expect("json");
    let email = record(&raw, "result")["payload"]["value"]["structuredContent"]["email"]
        .as_str()
        .expect("email")
        .to_owned();

    let mut db = sqlite(&db_path(&server)).await;
    sqlx::query(
        "CREATE TRIGGER reads_down BEFORE INSERT ON events \
         WHEN NEW.action LIKE 'evidence.explain:%' \
         BEGIN SELECT RAISE(ABORT, 'audit disk full'); END",
    )
    .execute(&mut db)
    .await
    .expect("break the audit of reads");
    let path = format!("/v1/events/{id}");
    let (code, refused) = get(&server.base, &server.admin_token, &path).await;
    assert_eq!(code, 503, "{refused}");
    assert_eq!(refused["error"]["code"], "audit_unavailable", "{refused}");
    assert!(!refused.to_string().contains(&email), "{refused}");

    sqlx::query("DROP TRIGGER reads_down")
        .execute(&mut db)
        .await
        .expect("repair");
    let (code, x) = get(&server.base, &server.admin_token, &path).await;
    assert_eq!(code, 200, "{x}");
    assert!(
        x["explanation"]["what"]["result"]["value"]
            .to_string()
            .contains(&email)
    );
    assert!(
        x["explanation"]["reader"]["read_event_id"].is_string(),
        "{x}"
    );
}

/// Make the database refuse every evidence record matching `when`, as a full disk would.
async fn fail_evidence_inserts(db: &mut sqlx::SqliteConnection, trigger: &str, when: &str) {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TRIGGER {trigger} BEFORE INSERT ON evidence WHEN {when} \
         BEGIN SELECT RAISE(ABORT, 'vault disk full'); END"
    )))
    .execute(&mut *db)
    .await
    .expect("break the vault");
}

/// A quickstart server where evidence records matching `when` are refused, and refund-bot's
/// answer to a refund of `amount` EUR there.
struct BrokenVault {
    server: TestServer,
    key: String,
    trigger: String,
    /// refund-bot's refunds before the refund.
    before: Value,
    db: sqlx::SqliteConnection,
    code: u16,
    body: Value,
}

impl BrokenVault {
    async fn refund(trigger: &str, when: &str, amount: u32) -> Self {
        let server = TestServer::quickstart(|c| c);
        let key = server.create_key("refund-bot");
        let (_, before) = call(&server.base, &key, "payments.list_refunds", json!({})).await;
        assert_eq!(before["outcome"], "ok", "{before}");
        let mut db = sqlite(&db_path(&server)).await;
        fail_evidence_inserts(&mut db, trigger, when).await;
        let refund = json!({"amount": amount, "currency": "EUR", "customer_id": "C001"});
        let (code, body) = call(&server.base, &key, "payments.refund", refund).await;
        Self {
            server,
            key,
            trigger: trigger.to_owned(),
            before,
            db,
            code,
            body,
        }
    }

    /// The error message of the refund, answered as failed and without a result.
    fn failure_message(&self) -> &str {
        let body = &self.body;
        assert_eq!(body["outcome"], "failed", "{body}");
        assert!(body["result"].is_null(), "{body}");
        body["error"]["message"].as_str().unwrap_or_default()
    }

    async fn repair(&mut self) {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP TRIGGER {}",
            self.trigger
        )))
        .execute(&mut self.db)
        .await
        .expect("repair the vault");
    }

    fn event_id(&self) -> &str {
        self.body["event_id"].as_str().expect("an event id")
    }

    /// `GET /v1/events/{id}` of the refund's event.
    async fn explained(&self) -> Value {
        let path = format!("/v1/events/{}", self.event_id());
        get(&self.server.base, &self.server.admin_token, &path)
            .await
            .1
    }

    /// refund-bot's refunds now.
    async fn refunds(&self) -> Value {
        let base = &self.server.base;
        let (_, now) = call(base, &self.key, "payments.list_refunds", json!({})).await;
        assert_eq!(now["outcome"], "ok", "{now}");
        now["result"]["structuredContent"].clone()
    }
}

#[tokio::test]
async fn when_the_vault_cannot_keep_a_record_the_call_fails_closed_and_the_event_says_why() {
    let mut v = BrokenVault::refund("vault_down", "1", 500).await;
    assert_eq!(v.code, 502, "{}", v.body);
    let message = v.failure_message();
    assert!(
        message.contains("evidence vault") && message.contains("not executed"),
        "{}",
        v.body
    );
    v.repair().await;
    assert_eq!(
        v.refunds().await,
        v.before["result"]["structuredContent"],
        "the refund never ran"
    );
    let e = v.explained().await;
    assert!(
        e["event"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("evidence vault")),
        "{e}"
    );
    assert_eq!(
        e["explanation"]["what"]["arguments"]["state"], "not_kept",
        "{e}"
    );
}

#[tokio::test]
async fn a_result_that_cannot_be_kept_is_withheld_and_its_call_recorded_failed() {
    // The arguments are kept (so the refund runs); the result, committed in one transaction
    // with the call's event, is not: that transaction fails as a whole.
    let mut v = BrokenVault::refund("results_down", "NEW.artifact = 'result'", 25).await;
    assert_ne!(v.code, 200, "{}", v.body);
    assert!(
        v.failure_message().contains("result is withheld"),
        "{}",
        v.body
    );
    v.repair().await;
    // The event was committed alone, as failed, with the reason; the log still verifies.
    let e = v.explained().await;
    assert_eq!(e["event"]["outcome"], "failed", "{e}");
    assert!(
        e["event"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("result is withheld")),
        "{e}"
    );
    let results: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM evidence WHERE event_id = ? AND artifact = 'result'",
    )
    .bind(v.event_id().to_owned())
    .fetch_one(&mut v.db)
    .await
    .expect("count results");
    assert_eq!(results, 0);
    // The upstream did run: the record says so by its upstream latency, and the refund is there.
    assert!(e["event"]["upstream_latency_us"].is_u64(), "{e}");
    assert_ne!(
        v.refunds().await,
        v.before["result"]["structuredContent"],
        "the refund ran"
    );
    let (code, out) = audit_verify(&v.server);
    assert_eq!(code, 0, "{out}");
}

fn serve_once(server: &TestServer, env: Option<(&str, &str)>) -> Output {
    let mut cmd = Command::new(WARDEN);
    cmd.args(["serve", "-c"]).arg(server.config_path());
    cmd.env_remove("WARDEN_VAULT_KEY");
    if let Some((k, v)) = env {
        cmd.env(k, v);
    }
    cmd.output().expect("run warden serve")
}

#[tokio::test]
async fn a_wrong_or_missing_master_key_stops_the_server_with_a_clear_error() {
    let mut server = TestServer::quickstart(|c| c);
    let key = server.create_key("support-bot");
    let (code, body) = call(
        &server.base,
        &key,
        "crm.get_customer",
        json!({"customer_id": "C001"}),
    )
    .await;
    assert_eq!(code, 200);
    let first = body["event_id"].as_str().expect("id").to_owned();
    let key_file = server.dir.path().join(".warden/vault.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let original = std::fs::read_to_string(&key_file).expect("key");
    assert!(
        !contains(&raw_db_bytes(&db_path(&server)), original.trim()),
        "the key is not in the database"
    );
    assert!(
        !server.log().contains(original.trim()),
        "the key is not logged"
    );
    let _ = server.child.kill();
    let _ = server.child.wait();

    // Another key: refused, naming both key ids.
    std::fs::write(&key_file, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n").expect("swap key");
    let out = serve_once(&server, None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot open the evidence stored with key"),
        "{err}"
    );

    // No key file at all: refused, not silently replaced.
    std::fs::remove_file(&key_file).expect("remove key");
    let out = serve_once(&server, None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("does not exist, but the evidence vault holds records"),
        "{err}"
    );
    assert!(!key_file.exists(), "no new key was made");

    // A malformed key in the environment is named as such.
    let out = serve_once(&server, Some(("WARDEN_VAULT_KEY", "not base64!")));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("WARDEN_VAULT_KEY"),
        "{err}"
    );

    // The right key again: the server starts and the old evidence opens.
    std::fs::write(&key_file, &original).expect("restore");
    server.kill_and_restart();
    let (code, _) = call(
        &server.base,
        &key,
        "crm.get_customer",
        json!({"customer_id": "C002"}),
    )
    .await;
    assert_eq!(code, 200);
    let (_, show) = get(
        &server.base,
        &server.admin_token,
        &format!("/v1/evidence/{first}"),
    )
    .await;
    assert_eq!(
        record(&show, "arguments")["payload"]["value"],
        json!({"customer_id": "C001"})
    );
}
