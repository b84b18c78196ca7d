//! One `handoff dev` stack per test binary, and helpers that drive the
//! `handoff` binary the way an operator does.
//!
//! The stack runs on free ports with its state in a temporary directory. It
//! is started from a keeper thread that lives as long as the test process, so
//! `PR_SET_PDEATHSIG` takes it (and, through it, the Temporal server) down
//! when the tests end, however they end.

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_handoff");

/// The shared stack.
pub(crate) struct Stack {
    pub(crate) dir: PathBuf,
    pub(crate) address: String,
    pub(crate) task_queue: String,
    pub(crate) database_url: String,
}

static STACK: OnceLock<Stack> = OnceLock::new();

/// The shared stack, started on first use.
pub(crate) fn stack() -> &'static Stack {
    STACK.get_or_init(start_shared_stack)
}

/// The installed Temporal CLI, as `make test` exports it.
pub(crate) fn temporal_bin() -> PathBuf {
    std::env::var_os("HANDOFF_TEMPORAL_BIN")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/temporal"))
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_shared_stack() -> Stack {
    let dir = tempfile::Builder::new()
        .prefix("handoff-e2e-")
        .tempdir()
        .unwrap()
        .keep();
    let port = free_port();
    let stack = Stack {
        address: format!("127.0.0.1:{port}"),
        task_queue: "e2e-shared".to_owned(),
        database_url: format!("sqlite://{}/ledger.db", dir.display()),
        dir,
    };
    let mut command = Command::new(BIN);
    command
        .args([
            "dev",
            "--port",
            &port.to_string(),
            "--ui-port",
            &free_port().to_string(),
        ])
        .arg("--state-dir")
        .arg(stack.dir.join("dev"));
    stack.configure(&mut command);
    command.env("HANDOFF_METRICS_ADDR", format!("127.0.0.1:{}", free_port()));
    let log = stack.dir.join("dev.log");
    keep_alive(command, &log);
    wait_for_log(&log, "worker started", Duration::from_secs(90));
    stack
}

/// Spawns `command` from a thread that never exits, so the child's
/// parent-death signal fires only when the test process ends.
pub(crate) fn keep_alive(mut command: Command, log: &Path) -> u32 {
    let log_file = std::fs::File::create(log).unwrap();
    command
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .stdin(Stdio::null());
    with_parent_death_signal(&mut command);
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut child = command.spawn().expect("spawning a process");
        sender.send(child.id()).unwrap();
        let _ = child.wait();
        loop {
            std::thread::park();
        }
    });
    receiver.recv().unwrap()
}

pub(crate) fn with_parent_death_signal(command: &mut Command) {
    // SAFETY: prctl only changes the calling (child) process's own state.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

pub(crate) fn wait_for_log(log: &Path, needle: &str, timeout: Duration) {
    wait_until(&format!("{needle:?} in {}", log.display()), timeout, || {
        std::fs::read_to_string(log)
            .ok()
            .filter(|text| text.contains(needle))
            .map(|_| ())
    });
}

impl Stack {
    /// Points a `handoff` command at this stack.
    pub(crate) fn configure(&self, command: &mut Command) {
        command
            .env("TEMPORAL_ADDRESS", &self.address)
            .env("HANDOFF_DATABASE_URL", &self.database_url)
            .env("HANDOFF_TASK_QUEUE", &self.task_queue)
            .env("HANDOFF_TEMPORAL_BIN", temporal_bin())
            .env("HANDOFF_LOG_FORMAT", "human")
            .env_remove("HANDOFF_CONFIG")
            .env_remove("HANDOFF_TIME_SCALE")
            .current_dir(&self.dir);
    }

    /// Runs `handoff ARGS` against the stack.
    pub(crate) fn handoff(&self, args: &[&str]) -> Output {
        self.handoff_with(args, &[])
    }

    /// Runs `handoff ARGS` with extra environment.
    pub(crate) fn handoff_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(BIN);
        command.args(args);
        self.configure(&mut command);
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().unwrap()
    }

    /// Runs `handoff ARGS` and insists it succeeds; returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let output = self.handoff(args);
        assert!(
            output.status.success(),
            "handoff {args:?} failed: {}",
            describe(&output)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Starts a bundle (written to a file) and returns the `--json` answer.
    pub(crate) fn start(&self, bundle: &Value, extra: &[&str]) -> Value {
        let file = self.write_json(bundle);
        let mut args = vec!["deal", "start", file.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        serde_json::from_str(&self.ok(&args)).unwrap()
    }

    pub(crate) fn signal(&self, deal: &str, name: &str, data: Value, extra: &[&str]) {
        let data = data.to_string();
        let mut args = vec!["deal", "signal", deal, name, "--data", &data];
        args.extend_from_slice(extra);
        self.ok(&args);
    }

    /// Sends a signal straight through the Temporal CLI, past the checks of
    /// `deal signal`: what any other sender of the namespace can deliver.
    /// `deal` is `source:id`; `input` is the payload's JSON text.
    pub(crate) fn raw_signal(&self, deal: &str, name: &str, input: &str) {
        let (source, id) = deal.split_once(':').unwrap();
        let output = Command::new(temporal_bin())
            .args(["workflow", "signal", "--address", &self.address])
            .args(["--workflow-id", &format!("handoff-{source}-{id}")])
            .args(["--name", name, "--input", input])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", describe(&output));
    }

    /// Polls `status` until `done` holds.
    pub(crate) fn wait_status(
        &self,
        deal: &str,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        wait_until(what, timeout, || {
            let output = self.handoff(&["deal", "status", deal, "--json"]);
            let status: Value = serde_json::from_slice(&output.stdout).ok()?;
            done(&status).then_some(status)
        })
    }

    pub(crate) fn tasks(&self, deal: &str) -> Vec<Value> {
        serde_json::from_str(&self.ok(&["tasks", "list", "--deal", deal, "--json"])).unwrap()
    }

    pub(crate) fn notifications(&self, deal: &str) -> Vec<Value> {
        serde_json::from_str(&self.ok(&["notifications", "list", "--deal", deal, "--json"]))
            .unwrap()
    }

    pub(crate) fn write_json(&self, value: &Value) -> PathBuf {
        let path = self.dir.join(format!("input-{}.json", unique("f")));
        std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
        path
    }

    /// Starts a standalone `handoff worker` on `task_queue`.
    pub(crate) fn spawn_worker(&self, task_queue: &str) -> Child {
        self.spawn_worker_with(task_queue, &[])
    }

    /// Starts a standalone `handoff worker` on `task_queue`, with extra
    /// environment that overrides the stack's.
    pub(crate) fn spawn_worker_with(&self, task_queue: &str, env: &[(&str, String)]) -> Child {
        let mut command = Command::new(BIN);
        command.arg("worker");
        self.configure(&mut command);
        command
            .env("HANDOFF_TASK_QUEUE", task_queue)
            .env("HANDOFF_METRICS_ADDR", format!("127.0.0.1:{}", free_port()))
            .env("HANDOFF_SHUTDOWN_GRACE_SECONDS", "5");
        for (key, value) in env {
            command.env(key, value);
        }
        let log =
            std::fs::File::create(self.dir.join(format!("worker-{}.log", unique(task_queue))))
                .unwrap();
        command
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null());
        with_parent_death_signal(&mut command);
        command.spawn().unwrap()
    }
}

pub(crate) fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Polls `probe` every 200 ms until it answers or `timeout` passes.
pub(crate) fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An id no other test in this run uses.
pub(crate) fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// An RFC 3339 instant `seconds_ago` before now.
pub(crate) fn ago(seconds: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(seconds))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A complete bundle for a manual deal.
pub(crate) fn bundle(deal_id: &str, segment: &str) -> Value {
    json!({
        "deal": { "source": "manual", "id": deal_id, "name": "Test rollout", "amount": 50000,
                  "currency": "USD", "segment": segment, "closed_won_at": ago(3600) },
        "account": { "name": "Example Corp", "domain": "example.com", "industry": "Logistics" },
        "team": { "timezone": "America/New_York", "calendar": "US" },
        "contacts": [ { "name": "A. Person", "email": "a.person@example.com", "role": "champion" } ],
        "use_case": "Real-time sync",
        "success_metrics": [ { "name": "sync latency", "target": "5", "unit": "minutes" } ],
        "scope": { "products": ["sync"] },
        "baseline": { "current_systems": ["legacy"] },
        "value_timeline": { "expected_ttfv_days": 45 },
        "terms": { "security_review_required": false },
        "owners": { "account_executive": "ae-01", "sales_engineer": "se-02", "handoff_owner": "ho-03",
                    "onboarding_manager": "om-04", "customer_success_manager": "csm-05" }
    })
}

pub(crate) fn keys(rows: &[Value], field: &str) -> Vec<String> {
    let mut keys: Vec<String> = rows
        .iter()
        .map(|r| r[field].as_str().unwrap_or_default().to_owned())
        .collect();
    keys.sort();
    keys
}
