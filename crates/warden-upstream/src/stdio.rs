//! stdio upstreams: a child process speaking MCP over its stdin and stdout.
//!
//! The child gets a clean environment: a few variables every program expects (`PATH`, `HOME`,
//! locale...) plus the upstream's configured `env`, whose secrets Warden resolves when it spawns
//! the process. Warden's own environment (database URLs, keys) never reaches a vendor's tool.
//! Relative `cwd` and program paths resolve against the config's folder, which is also the
//! default working directory. The child runs in its own process group, so a Ctrl-C at Warden's
//! terminal does not kill it before Warden has shut down in order.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};
use warden_core::config::SecretValue;

use crate::redact::Redactor;
use crate::session::{ConnectFailure, Lifecycle, Live, Notices, handshake};

/// Variables passed from Warden's environment to every child.
const PASSTHROUGH_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "TEMP",
    "TMP",
    "RUST_LOG",
    "SYSTEMROOT",
    "WINDIR",
    "COMSPEC",
    "PATHEXT",
    "USERPROFILE",
    "APPDATA",
    "LOCALAPPDATA",
];

/// Longest stderr line forwarded to the log; the rest of a longer line is dropped.
const MAX_STDERR_LINE: usize = 8 * 1024;

/// How long to wait for a child that has closed its stdout (or failed its handshake) to exit,
/// so its exit status can be reported.
const EXIT_GRACE: Duration = Duration::from_millis(500);

/// How long a child may take to exit after its stdin closes before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// How to start one stdio upstream.
pub(crate) struct StdioConnector {
    name: Arc<str>,
    command: Vec<String>,
    env: BTreeMap<String, SecretValue>,
    cwd: Option<PathBuf>,
    base_dir: PathBuf,
}

impl StdioConnector {
    pub(crate) fn new(
        name: Arc<str>,
        command: Vec<String>,
        env: BTreeMap<String, SecretValue>,
        cwd: Option<PathBuf>,
        base_dir: PathBuf,
    ) -> Self {
        Self {
            name,
            command,
            env,
            cwd,
            base_dir,
        }
    }

    /// Spawn the process and run the MCP handshake over its stdio.
    pub(crate) async fn connect(
        &self,
        redactor: &Arc<Redactor>,
        notices: &Arc<Notices>,
        lifecycle: Lifecycle,
    ) -> Result<Live, ConnectFailure> {
        let mut command = self.command(redactor)?;
        let mut child = command.spawn().map_err(|e| self.spawn_failure(&e))?;
        let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take()) else {
            return Err(ConnectFailure::transient(
                "the child's stdin/stdout were not piped",
            ));
        };
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(forward_stderr(self.name.clone(), stderr, redactor.clone()));
        }
        match handshake((stdout, stdin), lifecycle, notices).await {
            Ok(client) => Ok(Live::new(client, Some(child))),
            Err(error) => {
                let mut failure = ConnectFailure::handshake("MCP handshake failed", &error);
                if let Some(status) = exit_status(&mut child, EXIT_GRACE).await {
                    failure.reason = format!(
                        "the process exited during the MCP handshake ({status}); {}",
                        failure.reason
                    );
                }
                stop_child(child).await;
                Err(failure)
            }
        }
    }

    /// The command line, environment and working directory of the child.
    fn command(&self, redactor: &Redactor) -> Result<Command, ConnectFailure> {
        let Some((program, args)) = self.command.split_first() else {
            return Err(ConnectFailure::permanent(
                "the upstream's `command` is empty",
            ));
        };
        let cwd = self.working_dir()?;
        let mut command = Command::new(resolve_program(program, cwd.as_deref()));
        command
            .args(args)
            .env_clear()
            .envs(
                PASSTHROUGH_ENV
                    .iter()
                    .filter_map(|k| std::env::var_os(k).map(|v| (*k, v))),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(dir) = &cwd {
            command.current_dir(dir);
        }
        #[cfg(unix)]
        command.process_group(0);
        for (key, value) in &self.env {
            let resolved = value.resolve(&self.base_dir).map_err(|e| {
                ConnectFailure::permanent(format!("cannot resolve `env.{key}`: {e}"))
            })?;
            redactor.remember(&resolved);
            command.env(key, resolved);
        }
        Ok(command)
    }

    /// `cwd` resolved against the config's folder; the folder itself when `cwd` is not set.
    fn working_dir(&self) -> Result<Option<PathBuf>, ConnectFailure> {
        let dir = match &self.cwd {
            Some(cwd) => self.base_dir.join(cwd),
            None if self.base_dir.as_os_str().is_empty() => return Ok(None),
            None => self.base_dir.clone(),
        };
        if !dir.is_dir() {
            return Err(ConnectFailure::permanent(format!(
                "the working directory {} does not exist",
                dir.display()
            )));
        }
        Ok(Some(dir))
    }

    fn spawn_failure(&self, error: &io::Error) -> ConnectFailure {
        let program = self.command.first().map(String::as_str).unwrap_or_default();
        let reason = match error.kind() {
            io::ErrorKind::NotFound => {
                format!("cannot start `{program}`: command not found ({error})")
            }
            _ => format!("cannot start `{program}`: {error}"),
        };
        match error.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => {
                ConnectFailure::permanent(reason)
            }
            _ => ConnectFailure::transient(reason),
        }
    }
}

/// A relative program path with a directory part (`./server`, `bin/server`) is taken relative to
/// the child's working directory; a bare name is looked up on `PATH`.
fn resolve_program(program: &str, cwd: Option<&Path>) -> PathBuf {
    let path = Path::new(program);
    match cwd {
        Some(cwd) if path.is_relative() && path.components().count() > 1 => cwd.join(path),
        _ => path.to_path_buf(),
    }
}

/// Wait for `child` to exit, forever if there is no child (an HTTP upstream).
pub(crate) async fn wait_child(child: &mut Option<Child>) -> io::Result<ExitStatus> {
    match child {
        Some(child) => child.wait().await,
        None => std::future::pending().await,
    }
}

/// The child's exit status, if it exits within `grace`.
pub(crate) async fn exit_status(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    tokio::time::timeout(grace, child.wait()).await.ok()?.ok()
}

/// Why a session whose process ended is over.
pub(crate) fn exited(status: io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => format!("the process exited ({status})"),
        Err(e) => format!("the process ended; its status is unknown ({e})"),
    }
}

/// Let the child exit on its own now that its stdin is closed; kill it after [`STOP_GRACE`].
pub(crate) async fn stop_child(mut child: Child) {
    if exit_status(&mut child, STOP_GRACE).await.is_some() {
        return;
    }
    if let Err(e) = child.kill().await {
        tracing::warn!(error = %e, "could not kill an upstream process");
    }
}

/// Forward the child's stderr to the log at debug level, line by line, secrets redacted. Reads
/// until the child closes stderr, so a chatty child never blocks on a full pipe.
async fn forward_stderr(name: Arc<str>, stderr: ChildStderr, redactor: Arc<Redactor>) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::with_capacity(256);
    loop {
        let buf = match reader.fill_buf().await {
            Ok(buf) if !buf.is_empty() => buf,
            _ => break,
        };
        let (take, complete) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let room = MAX_STDERR_LINE.saturating_sub(line.len());
        line.extend_from_slice(&buf[..take.min(room)]);
        reader.consume(take);
        if complete {
            log_stderr_line(&name, &line, &redactor);
            line.clear();
        }
    }
    log_stderr_line(&name, &line, &redactor);
}

fn log_stderr_line(name: &str, line: &[u8], redactor: &Redactor) {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end();
    if !text.is_empty() {
        tracing::debug!(upstream = %name, line = %redactor.apply(text), "upstream stderr");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_program_paths_resolve_against_the_working_directory() {
        let cwd = Path::new("/srv/tools");
        assert_eq!(
            resolve_program("./server", Some(cwd)),
            Path::new("/srv/tools/./server")
        );
        assert_eq!(
            resolve_program("bin/server", Some(cwd)),
            Path::new("/srv/tools/bin/server")
        );
        assert_eq!(resolve_program("python3", Some(cwd)), Path::new("python3"));
        assert_eq!(
            resolve_program("/usr/bin/env", Some(cwd)),
            Path::new("/usr/bin/env")
        );
        assert_eq!(resolve_program("./server", None), Path::new("./server"));
    }
}
