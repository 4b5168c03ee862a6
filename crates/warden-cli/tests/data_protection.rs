//! Data minimization and inspection through a running server, on the quickstart's demo data:
//! what an agent may see of a result, what a vendor may receive of the arguments, injected
//! instructions, and policies on data classes.

mod common;

use std::time::Duration;

use common::TestServer;
use serde_json::{Value, json};

/// Seeded customer C001's SSN and card number (fake), and what an AWS key looks like.
const SSN: &str = "123-45-6789";
const CARD: &str = "4111111111111111";
const AWS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----";

/// The quickstart plus an echo upstream, an auditor cleared for everything, and a small
/// result limit.
const EXTRA: &str = r#"
[[upstreams]]
name = "echo"
vendor = "internal"
command = ["warden", "sample-upstream", "echo"]

[[agents]]
id = "auditor-bot"
owner = "dpo@example.com"
purpose = "Check what reached the vendors"
roles = ["support"]
mode = "execute"
clearance = "restricted"

[dlp]
max_result_bytes = 65536
"#;

const ECHO_POLICY: &str = "@id(\"support-echoes\")\npermit (principal in Warden::Role::\"support\", action == Warden::Action::\"echo.echo\", resource);\n";

fn server_with(
    dlp: &str,
    tools: impl FnOnce(String) -> String,
    policies: &[(&str, &str)],
) -> TestServer {
    let policies: Vec<(String, String)> = policies
        .iter()
        .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
        .collect();
    TestServer::quickstart_with(
        |c| format!("{}\n{}\n{dlp}", tools(c), EXTRA),
        move |dir| {
            std::fs::write(dir.join("policies/echo.cedar"), ECHO_POLICY).expect("echo policy");
            for (name, text) in &policies {
                std::fs::write(dir.join("policies").join(name), text).expect("policy");
            }
        },
    )
}

struct Client {
    http: reqwest::Client,
    base: String,
    admin: String,
}

impl Client {
    fn new(server: &TestServer) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("http client"),
            base: server.base.clone(),
            admin: server.admin_token.clone(),
        }
    }

    async fn call(&self, key: &str, tool: &str, args: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/v1/tools/call", self.base))
            .bearer_auth(key)
            .json(&json!({"name": tool, "arguments": args}))
            .send()
            .await
            .expect("the gateway answers");
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }

    /// A call that must succeed; its body.
    async fn ok(&self, key: &str, tool: &str, args: Value) -> Value {
        let (status, body) = self.call(key, tool, args).await;
        assert_eq!(status, 200, "{tool}: {body}");
        assert_eq!(body["outcome"], "ok", "{tool}: {body}");
        body
    }

    async fn event(&self, body: &Value) -> Value {
        let id = body["event_id"].as_str().expect("an event id");
        let resp = self
            .http
            .get(format!("{}/v1/events/{id}", self.base))
            .bearer_auth(&self.admin)
            .send()
            .await
            .expect("events answer");
        assert_eq!(resp.status().as_u16(), 200, "event {id} must be in the log");
        resp.json::<Value>().await.expect("json")["event"].clone()
    }

    async fn task_token(&self, key: &str, tools: &[&str], max_class: &str) -> String {
        let resp = self
            .http
            .post(format!("{}/v1/tasks", self.base))
            .bearer_auth(key)
            .json(&json!({"tools": tools, "max_class": max_class}))
            .send()
            .await
            .expect("tasks answer");
        assert_eq!(resp.status().as_u16(), 201);
        resp.json::<Value>().await.expect("json")["token"]
            .as_str()
            .expect("a token")
            .to_owned()
    }
}

/// Whether `kind` was recorded on the event with `action`.
fn has_finding(event: &Value, kind: &str, action: &str) -> bool {
    event["findings"]
        .as_array()
        .is_some_and(|f| f.iter().any(|f| f["kind"] == kind && f["action"] == action))
}

fn text_of(result: &Value) -> String {
    result["content"]
        .as_array()
        .map(|blocks| {
            blocks
                .iter()
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn results_reach_an_agent_only_up_to_its_clearance() {
    let server = server_with("", |c| c, &[]);
    let c = Client::new(&server);
    let support = server.create_key("support-bot");
    let refund = server.create_key("refund-bot");
    let auditor = server.create_key("auditor-bot");

    // Support (internal) gets the record without the SSN or the card number, either way.
    let body = c
        .ok(&support, "crm.get_customer", json!({"customer_id": "C001"}))
        .await;
    let raw = body.to_string();
    assert!(!raw.contains(SSN) && !raw.contains(CARD), "{raw}");
    assert!(!raw.contains("4111 1111") && !raw.contains("6789"), "{raw}");
    let sc = &body["result"]["structuredContent"];
    assert_eq!(sc["id"], "C001");
    assert_eq!(sc["name"], "Alice Johnson");
    assert_eq!(sc["ssn"], "[REDACTED:regulated]");
    assert_eq!(sc["card_number"], "[REDACTED:regulated]");
    assert_eq!(sc["email"], "[REDACTED:confidential]");
    let text: Value = serde_json::from_str(&text_of(&body["result"])).expect("JSON text block");
    assert_eq!(text["ssn"], "[REDACTED:regulated]", "the text mirror too");
    let event = c.event(&body).await;
    assert!(
        has_finding(&event, "field.regulated", "redacted"),
        "{event}"
    );
    assert!(
        !event.to_string().contains(SSN),
        "no values in the audit event"
    );

    // Search has no field rules: the detectors find the e-mail addresses.
    let body = c
        .ok(&support, "crm.search_customers", json!({"query": "alice"}))
        .await;
    assert!(
        !body.to_string().contains("alice.johnson@example.com"),
        "{body}"
    );

    // Finance (confidential) sees the e-mail address, still not the SSN.
    let body = c
        .ok(&refund, "crm.get_customer", json!({"customer_id": "C001"}))
        .await;
    let sc = &body["result"]["structuredContent"];
    assert_eq!(sc["email"], "alice.johnson@example.com");
    assert_eq!(sc["ssn"], "[REDACTED:regulated]");

    // The auditor sees everything; a task token lowers what it sees.
    let body = c
        .ok(&auditor, "crm.get_customer", json!({"customer_id": "C001"}))
        .await;
    assert_eq!(body["result"]["structuredContent"]["ssn"], SSN);
    let task = c
        .task_token(&auditor, &["crm.get_customer"], "internal")
        .await;
    let body = c
        .ok(&task, "crm.get_customer", json!({"customer_id": "C001"}))
        .await;
    assert_eq!(
        body["result"]["structuredContent"]["ssn"],
        "[REDACTED:regulated]"
    );
    assert_eq!(
        body["result"]["structuredContent"]["email"],
        "[REDACTED:confidential]"
    );
}

#[tokio::test]
async fn a_secret_planted_upstream_never_reaches_the_agent() {
    let server = server_with("", |c| c, &[]);
    let c = Client::new(&server);
    let support = server.create_key("support-bot");
    let auditor = server.create_key("auditor-bot");
    let notes = format!("Temp creds for the migration: {AWS_KEY}\n{PEM}\nCall back Monday.");
    let body = c
        .ok(
            &support,
            "crm.update_customer",
            json!({"customer_id": "C002", "notes": notes}),
        )
        .await;
    let raw = body.to_string();
    assert!(
        !raw.contains(AWS_KEY) && !raw.contains("BEGIN PRIVATE KEY"),
        "{raw}"
    );

    let body = c
        .ok(&support, "crm.get_customer", json!({"customer_id": "C002"}))
        .await;
    let raw = body.to_string();
    assert!(!raw.contains(AWS_KEY), "{raw}");
    assert!(
        !raw.contains("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"),
        "{raw}"
    );
    let notes = body["result"]["structuredContent"]["notes"]
        .as_str()
        .unwrap_or_default();
    assert!(
        notes.contains("[REDACTED:restricted]") && notes.contains("Call back Monday."),
        "{notes}"
    );
    let event = c.event(&body).await;
    assert!(
        has_finding(&event, "dlp.aws_access_key", "redacted"),
        "{event}"
    );
    assert!(
        has_finding(&event, "dlp.private_key", "redacted"),
        "{event}"
    );

    // It is there: the CRM's vendor is cleared for it, and so is the auditor.
    let body = c
        .ok(&auditor, "crm.get_customer", json!({"customer_id": "C002"}))
        .await;
    assert!(
        body.to_string().contains(AWS_KEY),
        "the update reached the CRM"
    );
}

#[tokio::test]
async fn a_card_number_in_an_email_is_redacted_before_it_reaches_mailco() {
    let server = server_with("", |c| c, &[]);
    let c = Client::new(&server);
    let support = server.create_key("support-bot");
    let auditor = server.create_key("auditor-bot");
    let mail = json!({
        "to": "c001@example.com",
        "subject": "Your card",
        "body": "We charged the card 4111 1111 1111 1111 today.",
    });
    let body = c.ok(&support, "email.send", mail.clone()).await;
    let event = c.event(&body).await;
    assert!(
        has_finding(&event, "dlp.payment_card", "redacted"),
        "{event}"
    );
    assert!(
        has_finding(&event, "dlp.email", "flagged"),
        "mailco receives addresses: {event}"
    );
    assert!(event["args_digest"].is_string());

    // What mailco holds, read by someone cleared for everything: the card never left.
    let outbox = c.ok(&auditor, "email.list_outbox", json!({})).await;
    let sent = &outbox["result"]["structuredContent"]["messages"][0];
    assert_eq!(
        sent["to"], "c001@example.com",
        "the recipient is what mailco receives"
    );
    assert_eq!(
        sent["body"],
        "We charged the card [REDACTED:regulated] today."
    );
    assert!(!outbox.to_string().contains("4111"), "{outbox}");

    // A message with nothing above `internal` goes out as written.
    c.ok(
        &support,
        "email.send",
        json!({"to": "c002@example.com", "subject": "Hi", "body": "Your order shipped."}),
    )
    .await;
    let outbox = c.ok(&auditor, "email.list_outbox", json!({})).await;
    assert_eq!(
        outbox["result"]["structuredContent"]["messages"][1]["body"],
        "Your order shipped."
    );
}

#[tokio::test]
async fn the_injected_inbox_message_is_quarantined_by_default() {
    let server = server_with("", |c| c, &[]);
    let c = Client::new(&server);
    let support = server.create_key("support-bot");
    let body = c.ok(&support, "email.read_inbox", json!({})).await;
    let raw = body.to_string();
    assert!(
        !raw.to_lowercase().contains("ignore previous instructions"),
        "{raw}"
    );
    assert!(!raw.contains("attacker@evil.example"), "{raw}");
    let result = &body["result"];
    // read_inbox declares an output schema, so the notice is an error result: MCP clients check
    // structured content against the schema otherwise.
    assert_eq!(result["isError"], true);
    assert!(result.get("structuredContent").is_none(), "{result}");
    let notice = text_of(result);
    assert!(
        notice.contains("quarantined") && notice.contains("injection.instruction_override"),
        "{notice}"
    );
    assert_eq!(result["_meta"]["warden"]["quarantined"], true);
    let event = c.event(&body).await;
    assert!(
        has_finding(&event, "injection.instruction_override", "quarantined"),
        "{event}"
    );
    assert_eq!(event["outcome"], "ok");
}

#[tokio::test]
async fn deny_settings_refuse_the_call_and_withhold_the_result() {
    let server = server_with(
        "on_vendor_excess = \"deny\"\non_injection = \"deny\"",
        |c| c,
        &[],
    );
    let c = Client::new(&server);
    let support = server.create_key("support-bot");
    let auditor = server.create_key("auditor-bot");
    let (status, body) = c
        .call(
            &support,
            "email.send",
            json!({"to": "c001@example.com", "subject": "SSN", "body": "Your SSN is 123-45-6789."}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"]["policies"],
        json!(["warden:vendor-clearance"])
    );
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("regulated") && message.contains("mailco") && message.contains("internal"),
        "{message}"
    );
    assert!(
        !body.to_string().contains(SSN),
        "the reason never names the value: {body}"
    );
    let event = c.event(&body).await;
    assert!(has_finding(&event, "dlp.ssn", "denied"), "{event}");
    let outbox = c.ok(&auditor, "email.list_outbox", json!({})).await;
    assert_eq!(
        outbox["result"]["structuredContent"]["messages"],
        json!([]),
        "nothing was sent"
    );

    let (status, body) = c.call(&support, "email.read_inbox", json!({})).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"]["policies"],
        json!(["warden:prompt-injection"])
    );
    assert!(body["result"].is_null());
    let event = c.event(&body).await;
    assert_eq!(event["outcome"], "denied");
    assert!(
        event["result_digest"].is_string(),
        "the digest covers what the upstream returned"
    );
}

#[tokio::test]
async fn a_policy_on_data_classes_keeps_regulated_data_from_a_vendor() {
    let policy = "@id(\"no-regulated-to-mailco\")\nforbid (principal, action, resource)\nwhen { context.classes.contains(\"regulated\") && resource.vendor == \"mailco\" };\n";
    let server = server_with("on_injection = \"warn\"", |c| c, &[("dlp.cedar", policy)]);
    let c = Client::new(&server);
    let support = server.create_key("support-bot");
    let (status, body) = c
        .call(
            &support,
            "email.send",
            json!({"to": "c001@example.com", "subject": "Card", "body": "Card 4111 1111 1111 1111."}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["policies"], json!(["no-regulated-to-mailco"]));
    let event = c.event(&body).await;
    assert!(
        has_finding(&event, "dlp.payment_card", "flagged"),
        "{event}"
    );
    c.ok(
        &support,
        "email.send",
        json!({"to": "c001@example.com", "subject": "Hi", "body": "All good."}),
    )
    .await;

    // Warn lets the injected message through, flagged.
    let body = c.ok(&support, "email.read_inbox", json!({})).await;
    let warnings = &body["result"]["_meta"]["warden"]["warnings"];
    assert!(
        warnings[0]
            .as_str()
            .unwrap_or_default()
            .contains("injection.instruction_override"),
        "{body}"
    );
    assert!(body.to_string().contains("Ignore previous instructions"));
    let event = c.event(&body).await;
    assert!(
        has_finding(&event, "injection.instruction_override", "flagged"),
        "{event}"
    );
}

#[tokio::test]
async fn pseudonyms_projections_and_output_schemas_shape_what_the_agent_gets() {
    let server = server_with(
        "",
        |c| {
            c.replacen(
                "[[tools]]\nname = \"crm.get_customer\"\nrisk = \"read\"",
                "[[tools]]\nname = \"crm.search_customers\"\nrisk = \"read\"\nprojection = [\"result/customers/*/id\", \"result/customers/*/name\"]\n\n[[tools]]\nname = \"crm.get_customer\"\nrisk = \"read\"\non_excess = \"pseudonym\"",
                1,
            )
            .replacen(
                "[[tools]]\nname = \"crm.update_customer\"\nrisk = \"high\"",
                "[[tools]]\nname = \"crm.update_customer\"\nrisk = \"high\"\noutput_schema = { type = \"object\", properties = { id = { type = \"string\" }, tier = { type = \"string\" } } }",
                1,
            )
            .replacen(
                "[[tools]]\nname = \"email.read_inbox\"\nrisk = \"read\"",
                "[[tools]]\nname = \"email.read_inbox\"\nrisk = \"read\"\n\n[[tools]]\nname = \"email.list_outbox\"\nrisk = \"read\"\noutput = \"fail_unexpected\"\noutput_schema = { type = \"object\", properties = { count = { type = \"integer\" } } }",
                1,
            )
        },
        &[],
    );
    let c = Client::new(&server);
    let support = server.create_key("support-bot");

    let one = c
        .ok(&support, "crm.get_customer", json!({"customer_id": "C001"}))
        .await;
    let again = c
        .ok(&support, "crm.get_customer", json!({"customer_id": "C001"}))
        .await;
    let other = c
        .ok(&support, "crm.get_customer", json!({"customer_id": "C002"}))
        .await;
    let ssn = |b: &Value| {
        b["result"]["structuredContent"]["ssn"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(ssn(&one).starts_with("pii_"), "{one}");
    assert_eq!(ssn(&one), ssn(&again), "stable pseudonyms stay joinable");
    assert_ne!(ssn(&one), ssn(&other));
    assert!(!one.to_string().contains(SSN));

    let body = c
        .ok(
            &support,
            "crm.search_customers",
            json!({"query": "", "limit": 3}),
        )
        .await;
    let customers = &body["result"]["structuredContent"]["customers"];
    assert_eq!(customers.as_array().map(Vec::len), Some(3));
    assert_eq!(customers[0], json!({"id": "C001", "name": "Alice Johnson"}));
    let text: Value = serde_json::from_str(&text_of(&body["result"])).expect("JSON text");
    assert_eq!(
        text["customers"][0],
        json!({"id": "C001", "name": "Alice Johnson"})
    );
    assert!(
        !body.to_string().contains("555"),
        "no phone numbers: {body}"
    );

    let body = c
        .ok(
            &support,
            "crm.update_customer",
            json!({"customer_id": "C004", "tier": "gold"}),
        )
        .await;
    assert_eq!(
        body["result"]["structuredContent"],
        json!({"id": "C004", "tier": "gold"})
    );
    let event = c.event(&body).await;
    assert!(
        has_finding(&event, "output.undeclared_field", "dropped"),
        "{event}"
    );

    let (status, body) = c.call(&support, "email.list_outbox", json!({})).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("output schema"),
        "{body}"
    );
    assert!(body["result"].is_null());
}

#[tokio::test]
async fn huge_and_odd_payloads_get_a_clear_answer() {
    let server = server_with("", |c| c, &[]);
    let c = Client::new(&server);
    let support = server.create_key("support-bot");

    // Over the result limit: withheld, with the sizes.
    let (status, body) = c
        .call(
            &support,
            "echo.echo",
            json!({"payload": "x".repeat(70_000)}),
        )
        .await;
    assert_eq!(status, 502, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("65536 byte limit"), "{message}");
    assert!(body["result"].is_null());
    assert!(c.event(&body).await["result_digest"].is_string());

    // A large text full of number-like runs is scanned, not choked on; cards are masked.
    let payload = "4111 1111 1111 1111 1234567890 ".repeat(900);
    let body = c
        .ok(&support, "echo.echo", json!({"payload": payload}))
        .await;
    let echoed = body["result"]["structuredContent"]["payload"]
        .as_str()
        .unwrap_or_default();
    assert!(!echoed.contains("4111 1111") && echoed.contains("[REDACTED:regulated]"));

    // Arguments of the wrong shape, deeply nested ones, and invisible characters.
    let mut nested = json!("leaf");
    for _ in 0..100 {
        nested = json!({ "a": nested });
    }
    let (status, body) = c
        .call(&support, "echo.echo", json!({"payload": nested}))
        .await;
    assert!(status == 403 || status == 400, "{status} {body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    let body = c
        .ok(
            &support,
            "echo.echo",
            json!({"payload": "a\u{200b}b\u{202e}c"}),
        )
        .await;
    assert!(text_of(&body["result"]).contains("quarantined"), "{body}");
}
