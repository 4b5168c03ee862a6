//! Action control through a running server: the kill switch.

mod common;

use common::{TestServer, rest_call as call};
use serde_json::{Value, json};

fn ok(out: std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_paused_agent_is_denied_at_once_and_stays_paused_across_a_crash() {
    let mut server = TestServer::quickstart(|c| c);
    let support = server.create_key("support-bot");
    let refund = server.create_key("refund-bot");
    let get = json!({"customer_id": "C001"});
    assert_eq!(
        call(&server.base, &support, "crm.get_customer", get.clone())
            .await
            .0,
        200
    );

    ok(server.cli(&[
        "agents",
        "pause",
        "support-bot",
        "--reason",
        "investigating a leak",
    ]));
    let (status, body) = call(&server.base, &support, "crm.get_customer", get.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["policies"], json!(["warden:kill-switch"]));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("investigating a leak"),
        "{body}"
    );
    assert_eq!(
        call(&server.base, &refund, "payments.list_refunds", json!({}))
            .await
            .0,
        200,
        "other agents go on"
    );

    server.kill_and_restart();
    let (status, _) = call(&server.base, &support, "crm.get_customer", get.clone()).await;
    assert_eq!(status, 403, "the pause survives a kill -9");

    ok(server.cli(&["agents", "resume", "support-bot"]));
    assert_eq!(
        call(&server.base, &support, "crm.get_customer", get)
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn a_freeze_stops_everything_and_an_upstream_pause_stops_only_its_tools() {
    let server = TestServer::quickstart(|c| c);
    let support = server.create_key("support-bot");
    let refund = server.create_key("refund-bot");

    ok(server.cli(&["upstreams", "pause", "crm"]));
    assert_eq!(
        call(
            &server.base,
            &support,
            "crm.get_customer",
            json!({"customer_id": "C001"})
        )
        .await
        .0,
        403
    );
    assert_eq!(
        call(&server.base, &support, "email.read_inbox", json!({}))
            .await
            .0,
        200
    );
    ok(server.cli(&["upstreams", "resume", "crm"]));

    ok(server.cli(&["freeze", "--reason", "incident 42"]));
    let (status, body) = call(&server.base, &refund, "payments.list_refunds", json!({})).await;
    assert_eq!(status, 403);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("frozen"),
        "{body}"
    );
    ok(server.cli(&["unfreeze"]));
    assert_eq!(
        call(&server.base, &refund, "payments.list_refunds", json!({}))
            .await
            .0,
        200
    );

    let tail = server.cli(&["audit", "tail", "-n", "50", "--json"]);
    let text = String::from_utf8_lossy(&tail.stdout);
    assert!(
        text.contains("switch.pause:global") && text.contains("switch.resume:upstream:crm"),
        "{text}"
    );
}

struct Approvals<'a> {
    server: &'a TestServer,
}

impl Approvals<'_> {
    /// An operator token for `name` with `role`, made by the bootstrap admin.
    fn token(&self, name: &str, role: &str) -> String {
        let out = self
            .server
            .cli(&["operators", "create", name, "--role", role]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    async fn vote(&self, token: &str, id: &str, action: &str) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/approvals/{id}/{action}", self.server.base))
            .bearer_auth(token)
            .json(&json!({"reason": "checked the order"}))
            .send()
            .await
            .unwrap();
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }
}

async fn status(base: &str, key: &str, id: &str) -> (u16, Value) {
    call(
        base,
        key,
        "warden.approval_status",
        json!({"approval_id": id}),
    )
    .await
}

fn big_refund() -> Value {
    json!({"amount": 20000, "currency": "EUR", "customer_id": "C003"})
}

#[tokio::test]
async fn a_refund_over_100_waits_for_finance_and_runs_once_approved() {
    let server = TestServer::quickstart(|c| c);
    let key = server.create_key("refund-bot");
    let a = Approvals { server: &server };

    let (status_code, body) = call(&server.base, &key, "payments.refund", big_refund()).await;
    assert_eq!(status_code, 202, "{body}");
    assert_eq!(body["outcome"], "pending");
    assert_eq!(
        body["error"]["policies"],
        json!(["large-refunds-need-finance"])
    );
    let id = body["approval_id"]
        .as_str()
        .expect("an approval id")
        .to_owned();
    let held_event = body["event_id"].as_str().unwrap().to_owned();

    let (_, s) = status(&server.base, &key, &id).await;
    assert_eq!(s["result"]["structuredContent"]["status"], "pending", "{s}");

    // The agent's owner and a user without the finance role may not approve.
    let owner = a.token("finance-lead@example.com", "approver");
    assert_eq!(a.vote(&owner, &id, "approve").await.0, 403);
    let bob = a.token("bob", "approver");
    let (code, body) = a.vote(&bob, &id, "approve").await;
    assert_eq!(code, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("finance"),
        "{body}"
    );
    // An auditor is not an approver at all.
    let auditor = a.token("carol", "auditor");
    assert_eq!(a.vote(&auditor, &id, "approve").await.0, 403);

    let carol = a.token("carol", "approver");
    let (code, body) = a.vote(&carol, &id, "approve").await;
    assert_eq!(code, 200, "{body}");

    // Replaying the call with other arguments is a new request, not the approved one.
    let (code, body) = call(
        &server.base,
        &key,
        "payments.refund",
        json!({"amount": 30000, "currency": "EUR", "customer_id": "C003"}),
    )
    .await;
    assert_eq!(
        code, 202,
        "different arguments need their own approval: {body}"
    );

    let (code, ran) = status(&server.base, &key, &id).await;
    assert_eq!(code, 200, "{ran}");
    assert_eq!(ran["outcome"], "ok", "{ran}");
    assert!(
        ran["result"]["structuredContent"]["refund_id"].is_string(),
        "the approved refund ran: {ran}"
    );
    assert_eq!(ran["result"]["structuredContent"]["amount"], 20000);

    let (_, again) = status(&server.base, &key, &id).await;
    assert_eq!(
        again["result"]["structuredContent"]["status"], "executed",
        "it runs once: {again}"
    );

    let out = server.cli(&["audit", "tail", "-n", "40", "--json"]);
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let executed = events
        .iter()
        .find(|e| e["id"] == ran["event_id"])
        .expect("the execution is audited");
    assert_eq!(
        executed["parent_id"],
        held_event.as_str(),
        "linked to the held call"
    );
    assert_eq!(executed["approvers"], json!(["carol"]));
    assert!(
        events
            .iter()
            .any(|e| e["action"] == format!("approvals.approve:{id}").as_str()),
        "the vote is audited"
    );
}

#[tokio::test]
async fn two_approvers_at_once_with_n_1_run_the_call_once() {
    let server = TestServer::quickstart(|c| {
        format!("{c}\n[[users]]\nid = \"dave\"\nroles = [\"finance\"]\n")
    });
    let key = server.create_key("refund-bot");
    let a = Approvals { server: &server };
    let (_, body) = call(&server.base, &key, "payments.refund", big_refund()).await;
    let id = body["approval_id"].as_str().unwrap().to_owned();
    let (carol, dave) = (a.token("carol", "approver"), a.token("dave", "approver"));
    let (r1, r2) = tokio::join!(
        a.vote(&carol, &id, "approve"),
        a.vote(&dave, &id, "approve")
    );
    let codes = [r1.0, r2.0];
    assert!(codes.contains(&200), "{r1:?} {r2:?}");
    let (s1, s2) = tokio::join!(
        status(&server.base, &key, &id),
        status(&server.base, &key, &id)
    );
    let ran = [&s1.1, &s2.1]
        .iter()
        .filter(|s| s["result"]["structuredContent"]["refund_id"].is_string())
        .count();
    assert_eq!(ran, 1, "exactly one status call runs it: {s1:?} {s2:?}");
    let refunds = call(
        &server.base,
        &key,
        "payments.list_refunds",
        json!({"customer_id": "C003"}),
    )
    .await
    .1;
    assert_eq!(
        refunds["result"]["structuredContent"]["refunds"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{refunds}"
    );
}

#[tokio::test]
async fn pausing_the_agent_cancels_its_pending_approvals_and_stops_approved_ones() {
    let server = TestServer::quickstart(|c| c);
    let key = server.create_key("refund-bot");
    let a = Approvals { server: &server };
    let carol = a.token("carol", "approver");

    // Approved, then the agent is paused before it runs: it must not execute.
    let (_, body) = call(&server.base, &key, "payments.refund", big_refund()).await;
    let approved = body["approval_id"].as_str().unwrap().to_owned();
    assert_eq!(a.vote(&carol, &approved, "approve").await.0, 200);
    // Pending when the pause lands: cancelled.
    let (_, body) = call(
        &server.base,
        &key,
        "payments.refund",
        json!({"amount": 15000, "currency": "EUR", "customer_id": "C004"}),
    )
    .await;
    let pending = body["approval_id"].as_str().unwrap().to_owned();

    ok(server.cli(&["agents", "pause", "refund-bot"]));
    let (code, body) = a.vote(&carol, &pending, "approve").await;
    assert_eq!(code, 409, "a cancelled request takes no votes: {body}");
    let (_, ran) = status(&server.base, &key, &approved).await;
    assert_ne!(
        ran["outcome"], "ok",
        "a paused agent's approved call does not run: {ran}"
    );
    ok(server.cli(&["agents", "resume", "refund-bot"]));
    let refunds = call(&server.base, &key, "payments.list_refunds", json!({}))
        .await
        .1;
    assert_eq!(
        refunds["result"]["structuredContent"]["refunds"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "{refunds}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_approval_granted_at_the_same_moment_the_agent_is_paused_does_not_execute() {
    let server = TestServer::quickstart(|c| c);
    let key = server.create_key("refund-bot");
    let a = Approvals { server: &server };
    let carol = a.token("carol", "approver");
    let http = reqwest::Client::new();
    for round in 0..8 {
        let (_, body) = call(&server.base, &key, "payments.refund", big_refund()).await;
        let id = body["approval_id"]
            .as_str()
            .unwrap_or_else(|| panic!("round {round}: held for approval: {body}"))
            .to_owned();
        // The vote and the pause are sent together, so either may land first.
        let pause = http
            .post(format!("{}/v1/agents/refund-bot/pause", server.base))
            .bearer_auth(&server.admin_token)
            .json(&json!({"reason": "incident"}))
            .send();
        let (vote, paused) = tokio::join!(a.vote(&carol, &id, "approve"), pause);
        let paused = paused.expect("the gateway answers");
        assert_eq!(paused.status().as_u16(), 200, "round {round}: pause");
        assert!(
            vote.0 == 200 || vote.0 == 409,
            "round {round}: the vote is taken or refused as cancelled: {vote:?}"
        );
        // Polling while paused: either the request was cancelled (the status says so) or the
        // approved call is refused at re-authorization; it never runs.
        let (_, ran) = status(&server.base, &key, &id).await;
        let state = &ran["result"]["structuredContent"];
        assert!(
            state["result_event_id"].is_null() && state["status"] != "executed",
            "round {round}: must not execute: {ran}"
        );
        ok(server.cli(&["agents", "resume", "refund-bot"]));
        // Once resumed, a request cancelled by the pause stays cancelled, and an approved one
        // is re-authorized at that moment: either way the refund never ran during the pause.
        let refunds = call(&server.base, &key, "payments.list_refunds", json!({}))
            .await
            .1;
        let ran_refunds = refunds["result"]["structuredContent"]["refunds"]
            .as_array()
            .map_or(usize::MAX, Vec::len);
        assert_eq!(ran_refunds, 0, "round {round}: {refunds}");
    }
}

#[tokio::test]
async fn pending_approvals_survive_a_crash_and_expire_into_a_deny() {
    let mut server = TestServer::quickstart(|c| c.replace("ttl_secs = 3600", "ttl_secs = 4"));
    let key = server.create_key("refund-bot");
    let (_, body) = call(&server.base, &key, "payments.refund", big_refund()).await;
    let first = body["approval_id"].as_str().unwrap().to_owned();
    server.kill_and_restart();
    let a = Approvals { server: &server };
    let list = server.cli(&["approvals", "list"]);
    assert!(
        String::from_utf8_lossy(&list.stdout).contains(&first),
        "kept across kill -9"
    );
    let carol = a.token("carol", "approver");
    assert_eq!(a.vote(&carol, &first, "approve").await.0, 200);
    let (_, ran) = status(&server.base, &key, &first).await;
    assert_eq!(ran["outcome"], "ok", "{ran}");

    let (_, body) = call(&server.base, &key, "payments.refund", big_refund()).await;
    let second = body["approval_id"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
    let (code, body) = a.vote(&carol, &second, "approve").await;
    assert_eq!(code, 409, "expired means denied: {body}");
}

#[tokio::test]
async fn a_suggest_mode_proposal_runs_only_when_an_operator_executes_it() {
    let server = TestServer::quickstart(|c| c);
    let drafter = server.create_key("drafting-bot");
    let support = server.create_key("support-bot");
    let mail =
        json!({"to": "c001@example.com", "subject": "Your refund", "body": "It is on its way."});
    let (code, body) = call(&server.base, &drafter, "email.send", mail).await;
    assert_eq!(code, 202, "{body}");
    assert_eq!(body["outcome"], "proposed");
    let id = body["approval_id"]
        .as_str()
        .expect("a proposal id")
        .to_owned();
    let outbox = |b: Value| {
        b["result"]["structuredContent"]["messages"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(usize::MAX)
    };
    assert_eq!(
        outbox(
            call(&server.base, &support, "email.list_outbox", json!({}))
                .await
                .1
        ),
        0,
        "nothing sent yet"
    );

    let a = Approvals { server: &server };
    let (code, body) = a.vote(&server.admin_token, &id, "approve").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["execution"]["outcome"], "ok", "{body}");
    assert_eq!(
        outbox(
            call(&server.base, &support, "email.list_outbox", json!({}))
                .await
                .1
        ),
        1,
        "sent once executed"
    );
}

#[tokio::test]
async fn rate_limits_and_budgets_deny_with_a_clear_reason() {
    let server = TestServer::quickstart(|c| {
        c.replacen(
            "[[tools]]\nname = \"payments.list_refunds\"\nrisk = \"read\"",
            "[[tools]]\nname = \"payments.list_refunds\"\nrisk = \"read\"\nlimits = [{ calls = 2, per_secs = 3600 }]",
            1,
        )
        .replacen(
            "[[tools]]\nname = \"payments.refund\"\nrisk = \"critical\"",
            "[[tools]]\nname = \"payments.refund\"\nrisk = \"critical\"\nbudget = { argument = \"amount\", max = 3000, per_secs = 86400 }",
            1,
        )
    });
    let key = server.create_key("refund-bot");
    for _ in 0..2 {
        assert_eq!(
            call(&server.base, &key, "payments.list_refunds", json!({}))
                .await
                .0,
            200
        );
    }
    let (code, body) = call(&server.base, &key, "payments.list_refunds", json!({})).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(body["error"]["policies"], json!(["warden:rate-limit"]));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2 call(s) every 3600 s"),
        "{body}"
    );

    let refund = |amount: u64| json!({"amount": amount, "currency": "EUR", "customer_id": "C005"});
    assert_eq!(
        call(&server.base, &key, "payments.refund", refund(1500))
            .await
            .0,
        200
    );
    assert_eq!(
        call(&server.base, &key, "payments.refund", refund(1000))
            .await
            .0,
        200
    );
    let (code, body) = call(&server.base, &key, "payments.refund", refund(1000)).await;
    assert_eq!(code, 403, "2500 + 1000 is over the daily 3000: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("budget"),
        "{body}"
    );
    // The refused call did not use the budget up: 500 still fits exactly.
    let (code, body) = call(&server.base, &key, "payments.refund", refund(500)).await;
    assert_eq!(code, 200, "{body}");
}
