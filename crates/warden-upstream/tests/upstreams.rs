//! Scenarios: Warden connecting to real MCP servers (the `warden-samples` servers, over stdio and
//! Streamable HTTP), and what happens when they crash, hang, or do not exist.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::response::IntoResponse as _;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, DiscoverResult, ErrorCode, ErrorData, ListToolsResult,
    PaginatedRequestParams, ProtocolVersion, ServerConfig, Tool,
};
use rmcp::service::{MaybeSendFuture, RequestContext};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{RoleServer, ServerHandler};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;
use warden_core::config::{SecretValue, Transport, Upstream};
use warden_samples::{SampleKind, SampleServer};
use warden_upstream::{LinkState, TransportKind, UpstreamError, UpstreamPool};

/// How long a scenario waits for an upstream to come up.
const WAIT: Duration = Duration::from_secs(15);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// stdio

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_upstream_lists_and_calls_its_tools() {
    let pool = start(vec![sample_over_stdio("crm", "crm")]);

    let tools = pool
        .discover("crm", WAIT)
        .await
        .expect("crm lists its tools");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    for expected in ["search_customers", "get_customer", "update_customer"] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let get = tools
        .iter()
        .find(|t| t.name == "get_customer")
        .expect("get_customer");
    assert_eq!(get.input_schema["type"], "object");
    assert!(get.input_schema["properties"]["customer_id"].is_object());
    assert!(get.output_schema.is_some());
    assert_eq!(
        get.annotations.as_ref().and_then(|a| a.get("readOnlyHint")),
        Some(&json!(true))
    );

    let outcome = pool
        .call(
            "crm",
            "get_customer",
            args(json!({"customer_id": "C001"})),
            None,
        )
        .await
        .expect("get_customer answers");
    assert!(!outcome.is_error());
    assert_eq!(outcome.result["structuredContent"]["name"], "Alice Johnson");
    assert!(outcome.latency > Duration::ZERO);

    // A tool that reports failure is an outcome, not an error.
    let missing = pool
        .call(
            "crm",
            "get_customer",
            args(json!({"customer_id": "C999"})),
            None,
        )
        .await
        .expect("an unknown customer is a tool-level error");
    assert!(missing.is_error());

    let status = only_status(&pool);
    assert_eq!(status.transport, TransportKind::Stdio);
    assert_eq!(status.state, LinkState::Ready);
    assert_eq!(status.tools, Some(3));
    assert_eq!(status.restarts, 0);
    assert_eq!(
        status.protocol_version.as_deref(),
        Some(ProtocolVersion::LATEST.as_str())
    );
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_calls_share_one_stdio_session() {
    let pool = Arc::new(start(vec![sample_over_stdio("echo", "echo")]));
    pool.discover("echo", WAIT).await.expect("echo is up");

    let mut calls = tokio::task::JoinSet::new();
    for i in 0..64 {
        let pool = pool.clone();
        calls.spawn(async move {
            let payload = format!("hello {i}");
            let outcome = pool
                .call("echo", "echo", args(json!({"payload": payload})), None)
                .await;
            (payload, outcome)
        });
    }
    while let Some(joined) = calls.join_next().await {
        let (payload, outcome) = joined.expect("call task");
        let outcome = outcome.expect("echo answers");
        assert_eq!(outcome.result["structuredContent"]["payload"], payload);
    }
    assert_eq!(only_status(&pool).restarts, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_stdio_upstream_fails_the_in_flight_call_and_comes_back() {
    let pool = start(vec![sample_over_stdio("faulty", "faulty")]);
    pool.discover("faulty", WAIT).await.expect("faulty is up");

    let started = Instant::now();
    let crash = pool
        .call("faulty", "crash", Map::new(), Some(Duration::from_secs(10)))
        .await;
    let Err(UpstreamError::Disconnected { name, reason }) = crash else {
        panic!("expected the in-flight call to fail with Disconnected, got {crash:?}");
    };
    assert_eq!(name, "faulty");
    assert!(
        reason.contains("exited") && reason.contains('3'),
        "reason: {reason}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );

    let back = retry_until_ok(
        || pool.call("faulty", "ok", Map::new(), None),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(back.result["structuredContent"]["ok"], true);
    let status = only_status(&pool);
    assert_eq!(status.state, LinkState::Ready);
    assert!(status.restarts >= 1, "{status:?}");
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("exited")),
        "{status:?}"
    );
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_call_times_out_and_other_calls_still_work() {
    let pool = Arc::new(start(vec![sample_over_stdio("faulty", "faulty")]));
    pool.discover("faulty", WAIT).await.expect("faulty is up");

    let hung = tokio::spawn({
        let pool = pool.clone();
        async move {
            let started = Instant::now();
            let result = pool
                .call(
                    "faulty",
                    "hang",
                    Map::new(),
                    Some(Duration::from_millis(500)),
                )
                .await;
            (result, started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    for _ in 0..5 {
        let ok = pool
            .call("faulty", "ok", Map::new(), None)
            .await
            .expect("ok answers");
        assert!(
            ok.latency < Duration::from_millis(450),
            "ok waited {:?}",
            ok.latency
        );
    }

    assert!(!hung.is_finished(), "the ok calls waited for the hung one");

    let (result, elapsed) = hung.await.expect("hang task");
    assert_eq!(
        result,
        Err(UpstreamError::Timeout {
            name: "faulty".into(),
            timeout: Duration::from_millis(500)
        })
    );
    assert!(elapsed >= Duration::from_millis(500) && elapsed < Duration::from_millis(1500));
    pool.call("faulty", "ok", Map::new(), None)
        .await
        .expect("still answering");
    assert_eq!(
        only_status(&pool).restarts,
        0,
        "a timeout does not restart the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_call_is_cancelled_and_the_upstream_keeps_serving() {
    let pool = start(vec![sample_over_stdio("faulty", "faulty")]);
    pool.discover("faulty", WAIT).await.expect("faulty is up");

    let call = pool.call("faulty", "hang", Map::new(), Some(Duration::from_secs(30)));
    assert!(
        tokio::time::timeout(Duration::from_millis(200), call)
            .await
            .is_err()
    );

    pool.call("faulty", "ok", Map::new(), None)
        .await
        .expect("ok answers after the drop");
    assert_eq!(only_status(&pool).state, LinkState::Ready);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_whose_command_does_not_exist_is_reported_down_with_a_clear_reason_and_calls_fail_fast()
 {
    let mut upstream = sample_over_stdio("ghost", "echo");
    upstream.transport = Transport::Stdio {
        command: vec!["/nonexistent/warden-no-such-upstream".into()],
        env: BTreeMap::new(),
        cwd: None,
    };
    let pool = start(vec![upstream]);

    // Discovery gives up at once on a misconfiguration instead of waiting out its budget.
    let started = Instant::now();
    let discovered = pool.discover("ghost", WAIT).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    let Err(UpstreamError::Unavailable { reason, .. }) = discovered else {
        panic!("expected Unavailable, got {discovered:?}");
    };
    assert!(reason.contains("command not found"), "reason: {reason}");
    assert!(
        reason.contains("/nonexistent/warden-no-such-upstream"),
        "reason: {reason}"
    );

    let status = only_status(&pool);
    assert_eq!(status.state, LinkState::Down);
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("command not found"))
    );

    let started = Instant::now();
    let call = pool.call("ghost", "echo", Map::new(), None).await;
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(&call, Err(e @ UpstreamError::Unavailable { .. }) if e.not_sent()),
        "{call:?}"
    );
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_env_reach_the_child_but_never_appear_in_errors_or_debug_output() {
    const SECRET: &str = "s3cr3t-token-9f8e7d6c";
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("api-token"), format!("{SECRET}\n")).expect("secret file");
    let seen = dir.path().join("seen-by-child");
    let token = SecretValue::File {
        file: PathBuf::from("api-token"),
    };

    // An upstream that records the token it was given, then serves `echo`.
    let honest = shell_upstream(
        "honest",
        r#"printf '%s' "$API_TOKEN" > "$SEEN"; exec "$SAMPLE" echo"#,
        [
            ("API_TOKEN", token.clone()),
            ("SEEN", literal(seen.to_string_lossy())),
        ],
    );
    // An upstream that quotes the token back in its handshake error and on stderr, then dies.
    let leaky = shell_upstream(
        "leaky",
        r#"read -r _
printf '{"jsonrpc":"2.0","error":{"code":-32000,"message":"invalid token %s"}}\n' "$API_TOKEN"
echo "token was $API_TOKEN" >&2
read -r _
exit 1"#,
        [("API_TOKEN", token)],
    );
    let config = vec![honest, leaky];
    let pool = UpstreamPool::start(&config, dir.path(), DEFAULT_TIMEOUT);

    pool.discover("honest", WAIT).await.expect("honest is up");
    let echoed = pool
        .call("honest", "echo", args(json!({"payload": "hi"})), None)
        .await;
    assert_eq!(
        echoed.expect("echo").result["structuredContent"]["payload"],
        "hi"
    );
    assert_eq!(
        std::fs::read_to_string(&seen).expect("the child wrote its token"),
        SECRET
    );

    let error = pool
        .discover("leaky", Duration::from_secs(2))
        .await
        .expect_err("leaky fails");
    let message = error.to_string();
    assert!(message.contains("invalid token <redacted>"), "{message}");
    let status = pool.status();
    let leaky_status = status
        .iter()
        .find(|s| s.name == "leaky")
        .expect("leaky status");
    assert!(
        leaky_status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("<redacted>"))
    );

    for text in [
        message,
        format!("{pool:?}"),
        format!("{status:?}"),
        format!("{config:?}"),
    ] {
        assert!(!text.contains(SECRET), "secret leaked into: {text}");
    }
    pool.shutdown().await;
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_the_child_processes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pid_file = dir.path().join("pid");
    let upstream = shell_upstream(
        "echo",
        r#"echo $$ > "$PID_FILE"; exec "$SAMPLE" echo"#,
        [("PID_FILE", literal(pid_file.to_string_lossy()))],
    );
    let pool = start(vec![upstream]);
    pool.discover("echo", WAIT).await.expect("echo is up");
    let pid = std::fs::read_to_string(&pid_file).expect("pid file");
    let proc_entry = PathBuf::from(format!("/proc/{}", pid.trim()));
    assert!(proc_entry.exists());

    pool.shutdown().await;
    assert!(!proc_entry.exists(), "the child outlived the pool");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_upstream_is_an_error_naming_it() {
    let pool = start(vec![]);
    let call = pool.call("nope", "tool", Map::new(), None).await;
    assert_eq!(
        call,
        Err(UpstreamError::Unknown {
            name: "nope".into()
        })
    );
    assert!(pool.discover("nope", WAIT).await.is_err());
}

// ---------------------------------------------------------------------------------------------
// Streamable HTTP

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_upstream_lists_and_calls_its_tools() {
    let server = HttpSample::serve(SampleKind::Crm).await;
    let pool = start(vec![http_upstream("crm", &server.url, [])]);

    let tools = pool
        .discover("crm", WAIT)
        .await
        .expect("crm lists its tools");
    assert_eq!(tools.len(), 3);
    let outcome = pool
        .call(
            "crm",
            "search_customers",
            args(json!({"query": "alice"})),
            None,
        )
        .await
        .expect("search answers");
    assert_eq!(
        outcome.result["structuredContent"]["customers"][0]["id"],
        "C001"
    );

    let status = only_status(&pool);
    assert_eq!(status.transport, TransportKind::Http);
    assert_eq!(status.state, LinkState::Ready);
    assert_eq!(
        status.protocol_version.as_deref(),
        Some(ProtocolVersion::LATEST.as_str())
    );
    pool.shutdown().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_upstream_receives_the_configured_headers_with_secrets_resolved() {
    const TOKEN: &str = "http-token-5a4b3c2d1e";
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("token"), format!("Bearer {TOKEN}\n")).expect("secret file");
    let server = HttpSample::serve_requiring(SampleKind::Echo, format!("Bearer {TOKEN}")).await;

    let headers = [(
        "Authorization",
        SecretValue::File {
            file: PathBuf::from("token"),
        },
    )];
    let config = vec![http_upstream("echo", &server.url, headers)];
    let pool = UpstreamPool::start(&config, dir.path(), DEFAULT_TIMEOUT);
    pool.discover("echo", WAIT)
        .await
        .expect("the server accepts Warden's header");
    let outcome = pool
        .call("echo", "echo", args(json!({"payload": "hi"})), None)
        .await;
    assert_eq!(
        outcome.expect("echo").result["structuredContent"]["payload"],
        "hi"
    );
    assert!(!format!("{pool:?}{config:?}").contains(TOKEN));

    // Without the header, the same server refuses, and the reason does not quote the token.
    let unauthenticated = start(vec![http_upstream("echo", &server.url, [])]);
    let refused = unauthenticated
        .discover("echo", Duration::from_secs(1))
        .await;
    assert!(
        matches!(refused, Err(UpstreamError::Unavailable { .. })),
        "{refused:?}"
    );
    pool.shutdown().await;
    unauthenticated.shutdown().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2025_11_25_http_upstream_is_spoken_to_with_the_initialize_handshake() {
    let server = HttpSample::serve_legacy(SampleKind::Echo).await;
    let pool = start(vec![http_upstream("echo", &server.url, [])]);

    pool.discover("echo", WAIT)
        .await
        .expect("legacy server lists its tools");
    let outcome = pool
        .call("echo", "echo", args(json!({"payload": "old"})), None)
        .await;
    assert_eq!(
        outcome.expect("echo").result["structuredContent"]["payload"],
        "old"
    );
    assert_eq!(
        only_status(&pool).protocol_version.as_deref(),
        Some("2025-11-25")
    );
    pool.shutdown().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_upstream_that_is_not_listening_is_down_and_back_when_it_listens_again() {
    // Reserve a port, then free it so nothing listens there yet.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let url = format!("http://{addr}/mcp");
    let pool = start(vec![http_upstream("echo", &url, [])]);
    let echo = || pool.call("echo", "echo", args(json!({"payload": "x"})), None);

    let call = echo().await;
    assert!(matches!(&call, Err(e) if e.not_sent()), "{call:?}");

    let server = HttpSample::serve_on(SampleKind::Echo, addr).await;
    let back = retry_until_ok(echo, Duration::from_secs(5)).await;
    assert_eq!(back.result["structuredContent"]["payload"], "x");
    assert!(only_status(&pool).restarts >= 1);

    // The server goes away: calls fail without being sent, and the upstream is reported down.
    // (A request racing the server's close of a kept-alive connection may instead fail as sent.)
    server.stop().await;
    let mut call = echo().await;
    for _ in 0..5 {
        if matches!(&call, Err(e) if e.not_sent()) {
            break;
        }
        call = echo().await;
    }
    assert!(matches!(&call, Err(e) if e.not_sent()), "{call:?}");
    let down = wait_until(
        || only_status(&pool).state == LinkState::Down,
        Duration::from_secs(5),
    );
    assert!(down.await, "{:?}", only_status(&pool));

    let _server = HttpSample::serve_on(SampleKind::Echo, addr).await;
    retry_until_ok(echo, Duration::from_secs(5)).await;
    assert_eq!(only_status(&pool).state, LinkState::Ready);
    pool.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn start(upstreams: Vec<Upstream>) -> UpstreamPool {
    UpstreamPool::start(&upstreams, Path::new(""), DEFAULT_TIMEOUT)
}

fn sample_binary() -> &'static str {
    env!("CARGO_BIN_EXE_warden-sample-stdio")
}

fn upstream(name: &str, transport: Transport) -> Upstream {
    Upstream {
        name: name.into(),
        vendor: "internal".into(),
        transport,
        sandbox: None,
        trusted: true,
        prefix: None,
        timeout: None,
        untrusted_output: false,
        pin: true,
    }
}

fn sample_over_stdio(name: &str, kind: &str) -> Upstream {
    let command = vec![sample_binary().into(), kind.into()];
    upstream(
        name,
        Transport::Stdio {
            command,
            env: BTreeMap::new(),
            cwd: None,
        },
    )
}

/// `env` plus `SAMPLE`, the path of the sample server binary.
fn shell_env<const N: usize>(env: [(&str, SecretValue); N]) -> BTreeMap<String, SecretValue> {
    let mut env: BTreeMap<String, SecretValue> =
        env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    env.insert("SAMPLE".into(), literal(sample_binary()));
    env
}

/// An upstream run by `sh -c script`, with `$SAMPLE` naming the sample server binary.
fn shell_upstream<const N: usize>(
    name: &str,
    script: &str,
    env: [(&str, SecretValue); N],
) -> Upstream {
    let command = vec!["sh".into(), "-c".into(), script.into()];
    upstream(
        name,
        Transport::Stdio {
            command,
            env: shell_env(env),
            cwd: None,
        },
    )
}

fn http_upstream<const N: usize>(
    name: &str,
    url: &str,
    headers: [(&str, SecretValue); N],
) -> Upstream {
    let headers = headers
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    upstream(
        name,
        Transport::Http {
            url: url.into(),
            headers,
        },
    )
}

fn literal(value: impl Into<String>) -> SecretValue {
    SecretValue::Literal(value.into())
}

fn args(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("arguments must be an object, not {other}"),
    }
}

fn only_status(pool: &UpstreamPool) -> warden_upstream::UpstreamStatus {
    let mut status = pool.status();
    assert_eq!(status.len(), 1);
    status.remove(0)
}

/// Call `attempt` until it succeeds, failing the test after `within`.
async fn retry_until_ok<F, Fut>(mut attempt: F, within: Duration) -> warden_upstream::CallOutcome
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<warden_upstream::CallOutcome, UpstreamError>>,
{
    let deadline = Instant::now() + within;
    loop {
        match attempt().await {
            Ok(outcome) => return outcome,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("still failing after {within:?}: {e}"),
        }
    }
}

/// Whether `condition` holds within `within`, checking every 20 ms.
async fn wait_until(condition: impl Fn() -> bool, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while !condition() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// A sample server on 127.0.0.1 over Streamable HTTP.
struct HttpSample {
    url: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl HttpSample {
    /// The sample as `warden_samples::serve_http` serves it (stateless, JSON responses).
    async fn serve(kind: SampleKind) -> Self {
        Self::serve_http(kind, bind().await)
    }

    /// [`HttpSample::serve`] on a given address.
    async fn serve_on(kind: SampleKind, addr: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind the address again");
        Self::serve_http(kind, listener)
    }

    fn serve_http(kind: SampleKind, listener: tokio::net::TcpListener) -> Self {
        let addr = listener.local_addr().expect("addr");
        let url = format!("http://{addr}{}", warden_samples::HTTP_PATH);
        let shutdown = CancellationToken::new();
        let serving = warden_samples::serve_http(kind, listener, shutdown.clone());
        let task = tokio::spawn(async move {
            let _ = serving.await;
        });
        Self {
            url,
            shutdown,
            task,
        }
    }

    /// The sample behind a check that refuses requests without `Authorization: <expected>`.
    async fn serve_requiring(kind: SampleKind, expected: String) -> Self {
        let shutdown = CancellationToken::new();
        let config = StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true)
            .with_cancellation_token(shutdown.child_token());
        let server = warden_samples::handler(kind);
        let service = StreamableHttpService::new(
            move || Ok(server.clone()),
            Arc::new(LocalSessionManager::default()),
            config,
        );
        let expected = Arc::new(expected);
        let router =
            axum::Router::new()
                .route_service("/mcp", service)
                .layer(axum::middleware::from_fn(
                    move |request: axum::extract::Request, next: axum::middleware::Next| {
                        let expected = expected.clone();
                        async move {
                            let given = request
                                .headers()
                                .get("authorization")
                                .and_then(|v| v.to_str().ok());
                            if given == Some(expected.as_str()) {
                                next.run(request).await
                            } else {
                                axum::http::StatusCode::UNAUTHORIZED.into_response()
                            }
                        }
                    },
                ));
        Self::serve_router(router, shutdown).await
    }

    /// The sample as a 2025-11-25 server: `initialize` handshake, `Mcp-Session-Id` sessions,
    /// SSE responses, and no `server/discover`.
    async fn serve_legacy(kind: SampleKind) -> Self {
        let shutdown = CancellationToken::new();
        let server = Legacy(warden_samples::handler(kind));
        let service = StreamableHttpService::new(
            move || Ok(server.clone()),
            Arc::new(LocalSessionManager::default()),
            StreamableHttpServerConfig::default().with_cancellation_token(shutdown.child_token()),
        );
        let router = axum::Router::new().route_service("/mcp", service);
        Self::serve_router(router, shutdown).await
    }

    async fn serve_router(router: axum::Router, shutdown: CancellationToken) -> Self {
        let listener = bind().await;
        let url = format!("http://{}/mcp", listener.local_addr().expect("addr"));
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
        });
        Self {
            url,
            shutdown,
            task,
        }
    }

    /// Stop serving and wait until the port is closed.
    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

async fn bind() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0")
}

/// A sample server that only speaks MCP up to 2025-11-25.
#[derive(Clone)]
struct Legacy(SampleServer);

impl ServerHandler for Legacy {
    fn get_info(&self) -> ServerConfig {
        self.0.get_info()
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(ProtocolVersion::known_up_to(&ProtocolVersion::V_2025_11_25))
    }

    fn discover(
        &self,
        _context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<DiscoverResult, ErrorData>> + MaybeSendFuture + '_ {
        std::future::ready(Err(ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            "Method not found",
            None,
        )))
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.0.list_tools(request, context).await
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.0.call_tool(request, context).await
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.0.get_tool(name)
    }
}
