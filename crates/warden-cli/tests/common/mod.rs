//! A real `warden serve` process for integration tests: its own folder, config, port and store.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const WARDEN: &str = env!("CARGO_BIN_EXE_warden");

/// The quickstart example, for tests to start from.
pub fn quickstart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/quickstart")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub base: String,
    pub child: Child,
    pub admin_token: String,
}

impl TestServer {
    /// A copy of the quickstart with `edit` applied to its config text, served on a free port.
    pub fn quickstart(edit: impl FnOnce(String) -> String) -> TestServer {
        Self::quickstart_with(edit, |_| {})
    }

    /// Like [`quickstart`](Self::quickstart), with `prepare` run on the folder before the start
    /// (to add policies, say).
    pub fn quickstart_with(
        edit: impl FnOnce(String) -> String,
        prepare: impl FnOnce(&Path),
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        copy_dir(&quickstart_dir(), dir.path());
        let port = free_port();
        let config =
            std::fs::read_to_string(dir.path().join("warden.toml")).expect("quickstart config");
        let config = config.replace("127.0.0.1:8700", &format!("127.0.0.1:{port}"));
        std::fs::write(dir.path().join("warden.toml"), edit(config)).expect("write config");
        prepare(dir.path());
        Self::start(dir, port)
    }

    fn spawn(dir: &Path) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .expect("log file");
        Command::new(WARDEN)
            .args(["serve", "-c"])
            .arg(dir.join("warden.toml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn warden serve")
    }

    /// Kill the server with SIGKILL and start it again on the same folder, store and port.
    pub fn kill_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(self.dir.path());
        self.wait_ready();
    }

    fn start(dir: tempfile::TempDir, port: u16) -> TestServer {
        let child = Self::spawn(dir.path());
        let base = format!("http://127.0.0.1:{port}");
        let mut server = TestServer {
            dir,
            base,
            child,
            admin_token: String::new(),
        };
        server.wait_ready();
        server.admin_token = std::fs::read_to_string(server.dir.path().join(".warden/admin.token"))
            .expect("bootstrap admin token")
            .trim()
            .to_owned();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("warden serve exited early ({status}):\n{}", self.log());
            }
            if http_get(&format!("{}/healthz", self.base)).is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("warden serve did not become healthy:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("warden.toml")
    }

    /// Run a `warden` CLI command against this server's config.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(WARDEN)
            .args(args)
            .arg("-c")
            .arg(self.config_path())
            .output()
            .expect("run warden")
    }

    /// Issue a key for `agent` through `warden agents create`.
    pub fn create_key(&self, agent: &str) -> String {
        let out = self.cli(&["agents", "create", agent]);
        assert!(
            out.status.success(),
            "agents create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf-8 key")
            .trim()
            .to_owned()
    }

    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != "warden.db" {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A minimal blocking GET for readiness polling (no client crate needed in tests for this).
fn http_get(url: &str) -> Option<String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut s = std::net::TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.starts_with("HTTP/1.1 200").then_some(body)
}

/// `tools/call` over REST as the agent holding `key`: the status and the JSON body.
pub async fn rest_call(
    base: &str,
    key: &str,
    tool: &str,
    args: serde_json::Value,
) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/tools/call"))
        .bearer_auth(key)
        .json(&serde_json::json!({"name": tool, "arguments": args}))
        .send()
        .await
        .expect("the gateway answers");
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(serde_json::Value::Null),
    )
}
