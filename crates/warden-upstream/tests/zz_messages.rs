use serde_json::Map;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use warden_core::config::{Transport, Upstream};
use warden_upstream::UpstreamPool;

fn up(name: &str, transport: Transport) -> Upstream {
    Upstream {
        name: name.into(),
        vendor: "v".into(),
        transport,
        sandbox: None,
        trusted: true,
        prefix: None,
        timeout: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn print_messages() {
    let bin = env!("CARGO_BIN_EXE_warden-sample-stdio");
    let ups = vec![
        up(
            "faulty",
            Transport::Stdio {
                command: vec![bin.into(), "faulty".into()],
                env: BTreeMap::new(),
                cwd: None,
            },
        ),
        up(
            "ghost",
            Transport::Stdio {
                command: vec!["nope-cmd".into()],
                env: BTreeMap::new(),
                cwd: None,
            },
        ),
        up(
            "dead",
            Transport::Http {
                url: "http://127.0.0.1:9/mcp".into(),
                headers: BTreeMap::new(),
            },
        ),
        up(
            "badarg",
            Transport::Stdio {
                command: vec![bin.into(), "bogus".into()],
                env: BTreeMap::new(),
                cwd: None,
            },
        ),
    ];
    let pool = UpstreamPool::start(&ups, Path::new(""), Duration::from_secs(5));
    eprintln!(
        "discover faulty: {:?}",
        pool.discover("faulty", Duration::from_secs(5))
            .await
            .map(|t| t.len())
    );
    eprintln!(
        "crash: {}",
        pool.call("faulty", "crash", Map::new(), None)
            .await
            .unwrap_err()
    );
    eprintln!(
        "right after: {:?}",
        pool.call("faulty", "ok", Map::new(), None)
            .await
            .map(|o| o.result)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    eprintln!(
        "garbage: {:?}",
        pool.call("faulty", "garbage", Map::new(), None)
            .await
            .map(|o| o.result)
    );
    eprintln!(
        "unknown tool: {:?}",
        pool.call("faulty", "nope", Map::new(), None).await
    );
    eprintln!(
        "ghost: {:?}",
        pool.discover("ghost", Duration::from_secs(1)).await
    );
    eprintln!(
        "dead: {:?}",
        pool.discover("dead", Duration::from_secs(1)).await
    );
    eprintln!(
        "badarg: {:?}",
        pool.discover("badarg", Duration::from_secs(1)).await
    );
    eprintln!("{:#?}", pool.status());
    let t = std::time::Instant::now();
    pool.shutdown().await;
    eprintln!("shutdown took {:?}", t.elapsed());
}
