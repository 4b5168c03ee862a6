//! A plain HTTP reverse proxy in front of the echo upstream: the bench's reference for what one
//! more HTTP hop costs by itself, with no policy, no inspection and no audit.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use tokio_util::sync::CancellationToken;

/// The largest request body the proxy buffers before forwarding it.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

#[derive(Clone)]
struct Upstream {
    client: reqwest::Client,
    url: Arc<str>,
}

/// Forward every request received on `listener` to `upstream_url` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    upstream_url: String,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let upstream = Upstream {
        client,
        url: upstream_url.into(),
    };
    let app = axum::Router::new().fallback(forward).with_state(upstream);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}

async fn forward(State(upstream): State<Upstream>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("cannot read the body: {e}"),
            )
                .into_response();
        }
    };
    let sent = upstream
        .client
        .request(parts.method, &*upstream.url)
        .headers(end_to_end(parts.headers))
        .body(body)
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(e) => return (StatusCode::BAD_GATEWAY, format!("upstream: {e}")).into_response(),
    };
    let mut answer = Response::builder().status(response.status());
    if let Some(headers) = answer.headers_mut() {
        *headers = end_to_end(response.headers().clone());
    }
    // Streamed as it arrives, so an event stream passes through as one.
    let chunks = futures::stream::unfold(response, |mut response| async move {
        response
            .chunk()
            .await
            .transpose()
            .map(|chunk| (chunk, response))
    });
    answer
        .body(Body::from_stream(chunks))
        .unwrap_or_else(|e| (StatusCode::BAD_GATEWAY, e.to_string()).into_response())
}

/// `headers` without those that describe one connection rather than the message (RFC 9110
/// section 7.6.1), nor `Host` and `Content-Length`, which the next hop sets for itself.
fn end_to_end(mut headers: HeaderMap) -> HeaderMap {
    for name in [
        header::CONNECTION,
        header::HOST,
        header::CONTENT_LENGTH,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers
}
