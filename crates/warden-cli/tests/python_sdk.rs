//! The official MCP Python SDK, as an agent, against `warden serve` over Streamable HTTP — with
//! Warden's sample upstreams and a third-party MCP server from PyPI (`mcp-server-git`) behind it.
//! Requires `python3 -m pip install mcp mcp-server-git` (done by `.ci/run`).

mod common;

use std::process::Command;

use common::TestServer;

const GIT_POLICY: &str = "@id(\"support-checks-git-status\")\npermit (principal in Warden::Role::\"support\", action == Warden::Action::\"git.git_status\", resource);\n";

/// Add the third-party git server as an upstream and let support check a repository's status.
fn with_git_upstream(config: String, repo: &str) -> String {
    format!(
        "{config}\n[[vendors]]\nname = \"oss\"\ncleared = \"internal\"\n\n[[upstreams]]\nname = \"git\"\nvendor = \"oss\"\ncommand = [\"mcp-server-git\", \"--repository\", \"{repo}\"]\n"
    )
}

/// Let a call that needs approval wait a little (and report progress) before it answers pending.
fn with_approval_wait(config: String) -> String {
    config.replace("[approvals]\n", "[approvals]\nwait_ms = 2500\n")
}

#[test]
fn the_python_sdk_lists_calls_and_is_denied_where_policy_says() {
    let repo = tempfile::tempdir().expect("repo dir");
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .args(args)
            .current_dir(repo.path())
            .output()
            .expect("git")
            .status
            .success();
        assert!(ok, "git {args:?} failed");
    };
    git(&["init", "-q", "-b", "main"]);
    git(&[
        "-c",
        "user.email=t@example.com",
        "-c",
        "user.name=t",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "init",
    ]);
    let repo_path = repo.path().display().to_string();

    let server = TestServer::quickstart_with(
        |c| with_approval_wait(with_git_upstream(c, &repo_path)),
        |dir| {
            std::fs::write(dir.join("policies/git.cedar"), GIT_POLICY).expect("write git policy");
        },
    );

    let support = server.create_key("support-bot");
    let refund = server.create_key("refund-bot");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/python/sdk_scenarios.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .args([
            "--url",
            &server.mcp_url(),
            "--support-key",
            &support,
            "--refund-key",
            &refund,
        ])
        .args(["--git-tool", "git.git_status", "--git-repo", &repo_path])
        .args(["--warden", common::WARDEN])
        .output()
        .expect("python3 runs (is the `mcp` package installed? see .ci/run)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "Python SDK scenarios failed:\n{stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");

    // The SDK's plain calls are answered by the edge itself, not by rmcp's service.
    let metrics = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            reqwest::get(format!("{}/metrics", server.base))
                .await?
                .text()
                .await
        })
        .expect("metrics");
    let edge_calls = metrics
        .lines()
        .find_map(|l| l.strip_prefix("warden_mcp_tool_calls_total{path=\"edge\"} "))
        .and_then(|n| n.parse::<u64>().ok());
    println!("{metrics}");
    assert!(edge_calls.is_some_and(|n| n > 0), "{metrics}");
}
