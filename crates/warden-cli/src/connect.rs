//! `warden connect`: a stdio MCP server on one side, the gateway's Streamable HTTP endpoint on
//! the other. Messages are piped unchanged at the transport level, so every MCP method and
//! notification passes through and the gateway alone decides.

use anyhow::Context;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{IntoTransport, StreamableHttpClientTransport, Transport};
use rmcp::{RoleClient, RoleServer};

pub async fn run(url: &str, key: &str) -> anyhow::Result<()> {
    let mut local = IntoTransport::<RoleServer, std::io::Error, _>::into_transport(
        rmcp::transport::io::stdio(),
    );
    let mut remote = IntoTransport::<RoleClient, _, _>::into_transport(
        StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(url.to_owned())
                .auth_header(key.to_owned()),
        ),
    );
    loop {
        tokio::select! {
            from_client = local.receive() => match from_client {
                Some(message) => remote.send(message).await.context("cannot forward to the gateway")?,
                None => break,
            },
            from_gateway = remote.receive() => match from_gateway {
                Some(message) => local.send(message).await.context("cannot write to stdout")?,
                None => anyhow::bail!("the gateway closed the connection"),
            },
        }
    }
    let _ = remote.close().await;
    Ok(())
}
