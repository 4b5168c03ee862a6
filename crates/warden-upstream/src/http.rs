//! Streamable HTTP upstreams, through rmcp's reqwest-based client.
//!
//! One `reqwest::Client` per upstream, kept across reconnects: keep-alive connections are
//! pooled and every socket has `TCP_NODELAY`, so a call costs one request on a warm connection.
//! Redirects are not followed: a redirect would carry Warden's injected headers to another URL.
//! Configured headers (e.g. `Authorization`) are resolved at each connection and marked
//! sensitive, so their values never appear in `Debug` output.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use warden_core::config::SecretValue;

use crate::redact::Redactor;
use crate::session::{ConnectFailure, Lifecycle, Live, Notices, handshake};

/// Headers the MCP transport sets itself; configuring them would break the protocol.
const RESERVED_HEADERS: &[&str] = &[
    "accept",
    "content-type",
    "content-length",
    "host",
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "last-event-id",
];
/// Prefix of the per-argument headers of MCP 2026-07-28, also set by the transport.
const RESERVED_PREFIX: &str = "mcp-param-";

/// How long opening a TCP (and TLS) connection may take.
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle keep-alive connections are closed after this long.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Most requests in flight to one upstream at once (rmcp's default is 16).
const MAX_CONCURRENT_REQUESTS: usize = 256;

/// How to reach one HTTP upstream.
pub(crate) struct HttpConnector {
    url: String,
    headers: BTreeMap<String, SecretValue>,
    base_dir: PathBuf,
    client: Result<reqwest::Client, String>,
}

impl HttpConnector {
    pub(crate) fn new(
        url: String,
        headers: BTreeMap<String, SecretValue>,
        base_dir: PathBuf,
    ) -> Self {
        Self {
            url,
            headers,
            base_dir,
            client: build_client(),
        }
    }

    /// Run the MCP handshake with the server.
    pub(crate) async fn connect(
        &self,
        redactor: &Arc<Redactor>,
        notices: &Arc<Notices>,
        lifecycle: Lifecycle,
    ) -> Result<Live, ConnectFailure> {
        let client = self.client.clone().map_err(ConnectFailure::permanent)?;
        let url = self.checked_url(redactor)?;
        let config = StreamableHttpClientTransportConfig::with_uri(self.url.as_str())
            .custom_headers(self.resolve_headers(redactor)?)
            .max_concurrent_requests(MAX_CONCURRENT_REQUESTS);
        let transport = StreamableHttpClientTransport::with_client(client, config);
        match handshake(transport, lifecycle, notices).await {
            Ok(client) => Ok(Live::new(client, None)),
            Err(error) => Err(ConnectFailure::handshake(
                &format!("MCP handshake with {url} failed"),
                &error,
            )),
        }
    }

    /// The URL for messages: without credentials or query, which could hold secrets. Those parts
    /// are also remembered for redaction, since transport errors quote the full URL.
    fn checked_url(&self, redactor: &Redactor) -> Result<String, ConnectFailure> {
        let mut url = reqwest::Url::parse(&self.url)
            .map_err(|e| ConnectFailure::permanent(format!("`url` is not a valid URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConnectFailure::permanent(format!(
                "`url` must be http:// or https://, not {}://",
                url.scheme()
            )));
        }
        if let Some(password) = url.password() {
            redactor.remember(password);
        }
        if let Some(query) = url.query() {
            redactor.remember(query);
        }
        let _ = url.set_password(None);
        let _ = url.set_username("");
        url.set_query(None);
        Ok(url.to_string())
    }

    /// The configured headers with their secrets resolved.
    fn resolve_headers(
        &self,
        redactor: &Redactor,
    ) -> Result<HashMap<HeaderName, HeaderValue>, ConnectFailure> {
        let mut headers = HashMap::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ConnectFailure::permanent(format!("`{name}` is not a valid HTTP header name"))
            })?;
            if RESERVED_HEADERS.contains(&header.as_str())
                || header.as_str().starts_with(RESERVED_PREFIX)
            {
                return Err(ConnectFailure::permanent(format!(
                    "header `{name}` is set by the MCP transport and cannot be configured"
                )));
            }
            let resolved = value.resolve(&self.base_dir).map_err(|e| {
                ConnectFailure::permanent(format!("cannot resolve header `{name}`: {e}"))
            })?;
            remember_header_secret(redactor, &resolved);
            let mut value = HeaderValue::from_str(&resolved).map_err(|_| {
                ConnectFailure::permanent(format!(
                    "the value of header `{name}` is not a valid HTTP header value"
                ))
            })?;
            value.set_sensitive(true);
            headers.insert(header, value);
        }
        Ok(headers)
    }
}

/// Remember a header value, and its credential alone when it has a scheme (`Bearer <token>`):
/// a server may quote just the token.
fn remember_header_secret(redactor: &Redactor, value: &str) {
    redactor.remember(value);
    if let Some((_scheme, credential)) = value.trim().split_once(char::is_whitespace) {
        redactor.remember(credential.trim());
    }
}

fn build_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .connect_timeout(TCP_CONNECT_TIMEOUT)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connector(url: &str, headers: &[(&str, &str)]) -> HttpConnector {
        let headers = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), SecretValue::Literal((*v).to_owned())))
            .collect();
        HttpConnector::new(url.to_owned(), headers, PathBuf::new())
    }

    #[test]
    fn headers_are_resolved_and_marked_sensitive() {
        let redactor = Redactor::default();
        let c = connector(
            "http://127.0.0.1:1/mcp",
            &[("Authorization", "Bearer tok-123456")],
        );
        let headers = c.resolve_headers(&redactor).expect("valid headers");
        let value = &headers[&http::header::AUTHORIZATION];
        assert!(value.is_sensitive());
        assert!(!format!("{headers:?}").contains("tok-123456"));
        assert_eq!(
            redactor.apply("bad token tok-123456"),
            "bad token <redacted>"
        );
    }

    #[test]
    fn reserved_and_invalid_headers_are_refused_without_showing_values() {
        let redactor = Redactor::default();
        for (name, value) in [
            ("Accept", "x"),
            ("Mcp-Param-Foo", "x"),
            ("X-Key", "bad\nvalue"),
        ] {
            let c = connector("http://127.0.0.1:1/mcp", &[(name, value)]);
            let failure = c.resolve_headers(&redactor).expect_err("refused");
            assert!(failure.permanent);
            assert!(!failure.reason.contains("bad\nvalue"), "{}", failure.reason);
        }
    }

    #[test]
    fn urls_lose_credentials_and_query_in_messages() {
        let redactor = Redactor::default();
        let c = connector("https://user:pa55word@example.com/mcp?key=abcdef", &[]);
        assert_eq!(
            c.checked_url(&redactor).expect("valid"),
            "https://example.com/mcp"
        );
        assert_eq!(redactor.apply("GET /mcp?key=abcdef"), "GET /mcp?<redacted>");
        let bad = connector("ftp://example.com", &[]).checked_url(&redactor);
        assert!(bad.expect_err("refused").permanent);
    }
}
