//! Undo through a running server and the sample upstreams: compensating calls, capture before
//! write, once per event, refusals, and the undo of an undo.

mod common;

use common::TestServer;
use serde_json::{Value, json};

async fn call(base: &str, key: &str, tool: &str, args: Value, user: Option<&str>) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/tools/call"))
        .bearer_auth(key)
        .json(&json!({"name": tool, "arguments": args, "user": user}))
        .send()
        .await
        .expect("the gateway answers");
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

async fn undo(server: &TestServer, event: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/events/{event}/undo", server.base))
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .expect("the gateway answers");
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

async fn event(server: &TestServer, id: &str) -> Value {
    let resp = reqwest::Client::new()
        .get(format!("{}/v1/events/{id}", server.base))
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(resp.status().as_u16(), 200, "event {id} is stored");
    resp.json::<Value>().await.expect("json")["event"].clone()
}

async fn events(server: &TestServer) -> Vec<Value> {
    let resp = reqwest::Client::new()
        .get(format!("{}/v1/events?limit=500", server.base))
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .expect("the gateway answers");
    resp.json::<Value>().await.expect("json")["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn refund(amount: u64, customer: &str) -> Value {
    json!({"amount": amount, "currency": "EUR", "customer_id": customer})
}

async fn refunds(server: &TestServer, key: &str) -> Vec<Value> {
    let (_, body) = call(&server.base, key, "payments.list_refunds", json!({}), None).await;
    body["result"]["structuredContent"]["refunds"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn customer(server: &TestServer, key: &str, id: &str) -> Value {
    let (code, body) = call(
        &server.base,
        key,
        "crm.get_customer",
        json!({"customer_id": id}),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    body["result"]["structuredContent"].clone()
}

fn ok_event(body: &Value) -> String {
    assert_eq!(body["outcome"], "ok", "{body}");
    body["event_id"].as_str().expect("an event id").to_owned()
}

#[tokio::test]
async fn a_refund_is_undone_by_cancel_refund_and_the_undo_links_the_original() {
    let server = TestServer::quickstart(|c| c);
    let key = server.create_key("refund-bot");
    let (code, body) = call(
        &server.base,
        &key,
        "payments.refund",
        refund(1500, "C001"),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let original = ok_event(&body);
    let refund_id = body["result"]["structuredContent"]["refund_id"].clone();

    let out = server.cli(&["undo", &original]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("undid event {original}")), "{said}");

    let listed = refunds(&server, &key).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["refund_id"], refund_id);
    assert_eq!(listed[0]["status"], "cancelled", "{listed:?}");

    let undo_event = events(&server)
        .await
        .into_iter()
        .find(|e| e["parent_id"] == original.as_str() && e["kind"] == "tool_call")
        .expect("the undo is audited, linked to the original");
    assert_eq!(undo_event["action"], "payments.cancel_refund");
    assert_eq!(
        undo_event["agent"], "refund-bot",
        "run as the original agent"
    );
    assert_eq!(undo_event["outcome"], "ok");
    assert_eq!(undo_event["verdict"], "allow");
    assert_eq!(undo_event["policies"], json!(["finance-cancels-refunds"]));
    assert!(
        undo_event["operator"]
            .as_str()
            .is_some_and(|o| !o.is_empty()),
        "the operator who asked is recorded: {undo_event}"
    );
    assert!(undo_event["args_digest"].is_string());
}

#[tokio::test]
async fn a_customer_update_is_restored_to_its_prior_state_by_undo() {
    let server = TestServer::quickstart(|c| c);
    let support = server.create_key("support-bot");
    // The finance agent is cleared for the phone numbers support sees masked.
    let reader = server.create_key("refund-bot");
    let before = customer(&server, &reader, "C003").await;
    let (code, body) = call(
        &server.base,
        &support,
        "crm.update_customer",
        json!({"customer_id": "C003", "phone": "+1-206-555-0999", "notes": "moved to Tacoma"}),
        Some("alice"),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let original = ok_event(&body);
    let changed = customer(&server, &reader, "C003").await;
    assert_eq!(changed["phone"], "+1-206-555-0999");

    let log = events(&server).await;
    let capture = log
        .iter()
        .find(|e| e["parent_id"] == original.as_str())
        .expect("the capture read is its own audit event, linked to the write");
    assert_eq!(capture["action"], "crm.get_customer");
    assert_eq!(capture["operator"], "warden", "read as Warden: {capture}");
    assert_eq!(capture["outcome"], "ok");
    assert_eq!(capture["policies"], json!(["warden:undo-capture"]));
    let capture_seq = log.iter().position(|e| e["id"] == capture["id"]);
    let write_seq = log.iter().position(|e| e["id"] == original.as_str());
    assert!(
        capture_seq > write_seq,
        "newest first: the capture committed before the write"
    );

    let (code, body) = undo(&server, &original).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["undo_of"], original.as_str());
    let undo_id = ok_event(&body);
    let after = customer(&server, &reader, "C003").await;
    assert_eq!(after, before, "every field is back as it was");

    let undone = event(&server, &undo_id).await;
    assert_eq!(undone["parent_id"], original.as_str());
    assert_eq!(undone["action"], "crm.update_customer");
    assert_eq!(undone["agent"], "support-bot");
    assert_eq!(undone["user"], "alice", "run for the original user too");
}

#[tokio::test]
async fn an_event_is_undone_only_once_even_by_two_concurrent_undos() {
    let server = TestServer::quickstart(|c| c);
    let key = server.create_key("refund-bot");
    let (_, body) = call(
        &server.base,
        &key,
        "payments.refund",
        refund(2000, "C002"),
        None,
    )
    .await;
    let original = ok_event(&body);

    let (a, b) = tokio::join!(undo(&server, &original), undo(&server, &original));
    let codes = [a.0, b.0];
    assert_eq!(
        codes.iter().filter(|c| **c == 200).count(),
        1,
        "exactly one undo runs: {a:?} {b:?}"
    );
    let loser = if a.0 == 200 { &b } else { &a };
    assert_eq!(loser.0, 409, "{loser:?}");
    assert!(
        ["already_undone", "undo_in_progress"]
            .contains(&loser.1["error"]["code"].as_str().unwrap_or("")),
        "{loser:?}"
    );
    assert!(
        loser.1["error"]["event_id"].is_string(),
        "the refusal is audited: {loser:?}"
    );

    let (code, body) = undo(&server, &original).await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["error"]["code"], "already_undone", "{body}");
    let cancels = events(&server)
        .await
        .into_iter()
        .filter(|e| e["action"] == "payments.cancel_refund")
        .count();
    assert_eq!(cancels, 1, "one compensating call in the log");
    assert_eq!(refunds(&server, &key).await[0]["status"], "cancelled");
}

#[tokio::test]
async fn undo_of_an_irreversible_email_an_unknown_event_or_a_denied_call_is_refused() {
    let server = TestServer::quickstart(|c| c);
    let support = server.create_key("support-bot");
    let mail = json!({"to": "c001@example.com", "subject": "Your refund", "body": "On its way."});
    let (code, body) = call(&server.base, &support, "email.send", mail, None).await;
    assert_eq!(code, 200, "{body}");
    let sent = ok_event(&body);

    let (code, body) = undo(&server, &sent).await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["error"]["code"], "not_undoable");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("irreversible") && message.contains("email.send"),
        "{message}"
    );
    let refusal = event(
        &server,
        body["error"]["event_id"].as_str().expect("audited"),
    )
    .await;
    assert_eq!(refusal["action"], format!("events.undo:{sent}"));
    assert_eq!(refusal["outcome"], "denied");
    assert_eq!(refusal["parent_id"], sent.as_str());

    let out = server.cli(&["undo", &sent]);
    assert!(!out.status.success(), "the CLI fails too");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("irreversible"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (code, body) = undo(&server, "no-such-event").await;
    assert_eq!(code, 404, "{body}");

    let (code, body) = call(
        &server.base,
        &support,
        "payments.refund",
        refund(100, "C001"),
        None,
    )
    .await;
    assert_eq!(code, 403, "{body}");
    let denied = body["event_id"].as_str().unwrap().to_owned();
    let (code, body) = undo(&server, &denied).await;
    assert_eq!(code, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("only a call that succeeded"),
        "{body}"
    );
    let outbox = call(&server.base, &support, "email.list_outbox", json!({}), None)
        .await
        .1;
    assert_eq!(
        outbox["result"]["structuredContent"]["messages"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn an_undo_is_denied_while_the_agent_is_paused_and_runs_once_it_is_resumed() {
    let server = TestServer::quickstart(|c| c);
    let key = server.create_key("refund-bot");
    let (_, body) = call(
        &server.base,
        &key,
        "payments.refund",
        refund(1200, "C004"),
        None,
    )
    .await;
    let original = ok_event(&body);

    let out = server.cli(&["agents", "pause", "refund-bot", "--reason", "audit"]);
    assert!(out.status.success());
    let (code, body) = undo(&server, &original).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(body["outcome"], "denied");
    assert_eq!(body["error"]["policies"], json!(["warden:kill-switch"]));

    let out = server.cli(&["agents", "resume", "refund-bot"]);
    assert!(out.status.success());
    assert_eq!(
        refunds(&server, &key).await[0]["status"],
        "succeeded",
        "the denied undo did nothing"
    );
    let (code, body) = undo(&server, &original).await;
    assert_eq!(
        code, 200,
        "a denied undo did not use the event's one undo up: {body}"
    );
    assert_eq!(refunds(&server, &key).await[0]["status"], "cancelled");
}

#[tokio::test]
async fn an_undo_is_denied_when_policy_forbids_the_compensating_tool() {
    let server = TestServer::quickstart_with(
        |c| c,
        |dir| {
            std::fs::write(
                dir.join("policies/no-cancel.cedar"),
                "@id(\"refunds-are-final\")\nforbid (principal, action == Warden::Action::\"payments.cancel_refund\", resource);\n",
            )
            .expect("policy");
        },
    );
    let key = server.create_key("refund-bot");
    let (_, body) = call(
        &server.base,
        &key,
        "payments.refund",
        refund(900, "C005"),
        None,
    )
    .await;
    let original = ok_event(&body);
    let (code, body) = undo(&server, &original).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(body["error"]["policies"], json!(["refunds-are-final"]));
    let undo_event = event(&server, body["event_id"].as_str().unwrap()).await;
    assert_eq!(undo_event["parent_id"], original.as_str());
    assert_eq!(undo_event["verdict"], "deny");
    assert_eq!(refunds(&server, &key).await[0]["status"], "succeeded");
}

#[tokio::test]
async fn undo_of_an_undo_reapplies_a_captured_write_once_and_is_refused_for_cancel_refund() {
    let server = TestServer::quickstart(|c| c);
    let support = server.create_key("support-bot");
    let refunder = server.create_key("refund-bot");
    let before = customer(&server, &support, "C006").await;
    let (_, body) = call(
        &server.base,
        &support,
        "crm.update_customer",
        json!({"customer_id": "C006", "tier": "platinum"}),
        None,
    )
    .await;
    let original = ok_event(&body);
    let (code, body) = undo(&server, &original).await;
    assert_eq!(code, 200, "{body}");
    let first_undo = ok_event(&body);
    assert_eq!(
        customer(&server, &support, "C006").await["tier"],
        before["tier"]
    );

    // The restore is itself a captured write: undoing it puts the change back.
    let (code, body) = undo(&server, &first_undo).await;
    assert_eq!(code, 200, "{body}");
    let redo = ok_event(&body);
    assert_eq!(
        customer(&server, &support, "C006").await["tier"],
        "platinum"
    );
    assert_eq!(
        event(&server, &redo).await["parent_id"],
        first_undo.as_str()
    );

    // Once per event, at every level.
    assert_eq!(undo(&server, &first_undo).await.0, 409);
    assert_eq!(undo(&server, &original).await.0, 409);
    assert_eq!(
        customer(&server, &support, "C006").await["tier"],
        "platinum"
    );

    // A cancel_refund has no recipe: the undo of a refund's undo is refused.
    let (_, body) = call(
        &server.base,
        &refunder,
        "payments.refund",
        refund(700, "C006"),
        None,
    )
    .await;
    let refunded = ok_event(&body);
    let (_, body) = undo(&server, &refunded).await;
    let cancel = ok_event(&body);
    let (code, body) = undo(&server, &cancel).await;
    assert_eq!(code, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no undo recipe"),
        "{body}"
    );
}

#[tokio::test]
async fn a_write_whose_prior_state_cannot_be_captured_is_not_executed() {
    // search_customers needs a `query` the update does not have: the capture read fails.
    let server = TestServer::quickstart(|c| {
        c.replacen(
            "undo = { capture = \"crm.get_customer\", tool = \"crm.update_customer\" }",
            "undo = { capture = \"crm.search_customers\", tool = \"crm.update_customer\" }",
            1,
        )
    });
    let support = server.create_key("support-bot");
    let reader = server.create_key("refund-bot");
    let before = customer(&server, &reader, "C007").await;
    let (code, body) = call(
        &server.base,
        &support,
        "crm.update_customer",
        json!({"customer_id": "C007", "notes": "overwritten"}),
        None,
    )
    .await;
    assert_eq!(code, 502, "{body}");
    assert_eq!(body["outcome"], "failed");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("the write was not executed"), "{message}");
    assert_eq!(
        customer(&server, &reader, "C007").await,
        before,
        "nothing changed"
    );
    let write = body["event_id"].as_str().unwrap().to_owned();
    let capture = events(&server)
        .await
        .into_iter()
        .find(|e| e["parent_id"] == write.as_str())
        .expect("the failed capture is audited");
    assert_ne!(capture["outcome"], "ok", "{capture}");
}

#[tokio::test]
async fn with_irreversible_actions_needing_approval_an_email_waits_and_an_undo_runs_once_approved()
{
    let example = common::quickstart_dir().join("irreversible-needs-approval.cedar");
    let server = TestServer::quickstart_with(
        |c| c,
        |dir| {
            std::fs::copy(
                &example,
                dir.join("policies/irreversible-needs-approval.cedar"),
            )
            .expect("copy the example policy");
        },
    );
    let check = server.cli(&["check"]);
    assert!(
        check.status.success(),
        "the example policy validates: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let support = server.create_key("support-bot");
    let refunder = server.create_key("refund-bot");

    let mail = json!({"to": "c001@example.com", "subject": "Hi", "body": "Hello"});
    let (code, body) = call(&server.base, &support, "email.send", mail, None).await;
    assert_eq!(code, 202, "an irreversible send waits: {body}");
    assert_eq!(
        body["error"]["policies"],
        json!(["irreversible-needs-approval"])
    );
    let (code, body) = call(
        &server.base,
        &support,
        "crm.update_customer",
        json!({"customer_id": "C008", "notes": "verified"}),
        None,
    )
    .await;
    assert_eq!(code, 200, "a write with an undo recipe runs: {body}");

    // cancel_refund has no recipe, so the undo of a refund needs approval too.
    let (_, body) = call(
        &server.base,
        &refunder,
        "payments.refund",
        refund(800, "C008"),
        None,
    )
    .await;
    let original = ok_event(&body);
    let (code, body) = undo(&server, &original).await;
    assert_eq!(code, 202, "{body}");
    let approval = body["approval_id"]
        .as_str()
        .expect("an approval id")
        .to_owned();
    let (code, body) = undo(&server, &original).await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["error"]["code"], "pending_approval");
    assert_eq!(refunds(&server, &refunder).await[0]["status"], "succeeded");

    let out = server.cli(&["operators", "create", "alice", "--role", "approver"]);
    assert!(out.status.success());
    let alice = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/approvals/{approval}/approve", server.base))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    let (code, body) = undo(&server, &original).await;
    assert_eq!(code, 200, "the approved undo runs: {body}");
    assert_eq!(refunds(&server, &refunder).await[0]["status"], "cancelled");
    let ran = event(&server, body["event_id"].as_str().unwrap()).await;
    assert_eq!(ran["approvers"], json!(["alice"]));
    assert_eq!(undo(&server, &original).await.0, 409, "and only once");
}

#[tokio::test]
async fn undos_count_against_the_compensating_tools_rate_limit() {
    let server = TestServer::quickstart(|c| {
        c.replacen(
            "[[tools]]\nname = \"payments.list_refunds\"",
            "[[tools]]\nname = \"payments.cancel_refund\"\nrisk = \"high\"\nlimits = [{ calls = 1, per_secs = 3600 }]\n\n[[tools]]\nname = \"payments.list_refunds\"",
            1,
        )
    });
    let key = server.create_key("refund-bot");
    let mut originals = Vec::new();
    for customer in ["C001", "C002"] {
        let (code, body) = call(
            &server.base,
            &key,
            "payments.refund",
            refund(1500, customer),
            None,
        )
        .await;
        assert_eq!(code, 200, "{body}");
        originals.push(ok_event(&body));
    }
    let (code, body) = undo(&server, &originals[0]).await;
    assert_eq!(code, 200, "the first undo fits the limit: {body}");
    let (code, body) = undo(&server, &originals[1]).await;
    assert_eq!(code, 403, "the second undo is over 1 call per hour: {body}");
    assert_eq!(
        body["error"]["policies"],
        json!(["warden:rate-limit"]),
        "{body}"
    );
    let listed = refunds(&server, &key).await;
    let cancelled = listed.iter().filter(|r| r["status"] == "cancelled").count();
    assert_eq!(
        cancelled, 1,
        "only the first refund was cancelled: {listed:?}"
    );
}
