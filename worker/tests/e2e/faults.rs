//! Faults against a real server: a restart of the server on its database, and
//! one of two workers on a queue killed. After each, the handoff goes on, each
//! effect is in the ledger once, and no due instant moved.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{
    BIN, bundle, describe, free_port, keep_alive, stack, temporal_bin, unique, wait_for_log,
    wait_until,
};

const QUICK: Duration = Duration::from_secs(60);

/// A `handoff dev` stack of its own, restartable on the same state.
struct OwnStack {
    dir: PathBuf,
    port: u16,
    pid: Option<u32>,
}

impl OwnStack {
    fn start(dir: &Path) -> Self {
        let mut stack = Self {
            dir: dir.to_owned(),
            port: free_port(),
            pid: None,
        };
        stack.up();
        stack
    }

    fn up(&mut self) {
        let mut command = Command::new(BIN);
        command
            .args(["dev", "--port", &self.port.to_string()])
            .args(["--ui-port", &free_port().to_string()])
            .arg("--state-dir")
            .arg(self.dir.join("state"));
        self.configure(&mut command);
        command.env("HANDOFF_METRICS_ADDR", format!("127.0.0.1:{}", free_port()));
        let log = self.dir.join(format!("dev-{}.log", unique("run")));
        self.pid = Some(keep_alive(command, &log));
        wait_for_log(&log, "worker started", Duration::from_secs(90));
    }

    /// SIGTERM, then waits until the server's port is free again.
    fn down(&mut self) {
        if let Some(pid) = self.pid.take() {
            // SAFETY: signalling a process this test started.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
        wait_until("the server to stop", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", self.port))
                .is_err()
                .then_some(())
        });
    }

    fn configure(&self, command: &mut Command) {
        command
            .env("TEMPORAL_ADDRESS", format!("127.0.0.1:{}", self.port))
            .env(
                "HANDOFF_DATABASE_URL",
                format!("sqlite://{}/ledger.db", self.dir.display()),
            )
            .env("HANDOFF_TEMPORAL_BIN", temporal_bin())
            .env("HANDOFF_LOG_FORMAT", "human")
            .env_remove("HANDOFF_CONFIG")
            .env_remove("HANDOFF_TASK_QUEUE")
            .current_dir(&self.dir);
    }

    fn handoff(&self, args: &[&str]) -> Output {
        let mut command = Command::new(BIN);
        command.args(args);
        self.configure(&mut command);
        command.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.handoff(args);
        assert!(output.status.success(), "{args:?}: {}", describe(&output));
        String::from_utf8(output.stdout).unwrap()
    }

    fn status(&self, deal: &str) -> Option<Value> {
        serde_json::from_slice(&self.handoff(&["deal", "status", deal, "--json"]).stdout).ok()
    }
}

impl Drop for OwnStack {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            // SAFETY: signalling a process this test started.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
    }
}

pub(crate) fn due_instants(status: &Value) -> Vec<String> {
    status["milestones"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| format!("{}={}", m["name"], m["due_at"]))
        .collect()
}

/// Each key once: the ledger's rows for a deal, by `field`.
pub(crate) fn assert_each_once(rows: &[Value], field: &str) {
    let mut keys: Vec<&str> = rows.iter().map(|r| r[field].as_str().unwrap()).collect();
    let total = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), total, "duplicates in {rows:#?}");
}

#[test]
fn a_server_restarted_on_its_database_mid_handoff_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut own = OwnStack::start(dir.path());
    let id = unique("restart");
    let deal = format!("manual:{id}");
    let file = dir.path().join("bundle.json");
    std::fs::write(&file, bundle(&id, "smb").to_string()).unwrap();
    own.ok(&[
        "deal",
        "start",
        file.to_str().unwrap(),
        "--time-scale",
        "3600",
    ]);
    own.ok(&["deal", "signal", &deal, "contract_signed"]);
    let before = wait_until("day 0", QUICK, || {
        own.status(&deal).filter(|s| s["milestones"][4].is_object())
    });

    own.down();
    own.up();

    own.ok(&["deal", "signal", &deal, "kickoff_held"]);
    let after = wait_until("the kickoff met after the restart", QUICK, || {
        own.status(&deal).filter(|s| s["stage"] == "onboarding")
    });
    assert_eq!(due_instants(&after), due_instants(&before));
    // Four day-0 tasks and the success plan.
    let tasks: Vec<Value> = wait_until("the ledger", QUICK, || {
        serde_json::from_str::<Vec<Value>>(&own.ok(&["tasks", "list", "--deal", &deal, "--json"]))
            .ok()
            .filter(|t| t.len() >= 5)
    });
    assert_each_once(&tasks, "key");
    assert_eq!(tasks.len(), 5);
    let notes: Vec<Value> =
        serde_json::from_str(&own.ok(&["notifications", "list", "--deal", &deal, "--json"]))
            .unwrap();
    assert_each_once(&notes, "key");
}

#[test]
fn two_workers_on_one_queue_carry_on_when_one_is_killed() {
    let stack = stack();
    let queue = unique("pair");
    let mut first = stack.spawn_worker(&queue);
    let mut second = stack.spawn_worker(&queue);
    let deals: Vec<String> = (0..4).map(|_| unique("pair-deal")).collect();
    for id in &deals {
        stack.start(&bundle(id, "smb"), &["--task-queue", &queue]);
        stack.signal(&format!("manual:{id}"), "contract_signed", json!({}), &[]);
    }
    let before: Vec<Vec<String>> = deals
        .iter()
        .map(|id| {
            let status = stack.wait_status(&format!("manual:{id}"), "day 0", QUICK, |s| {
                s["milestones"][4].is_object()
            });
            due_instants(&status)
        })
        .collect();

    first.kill().unwrap();
    first.wait().unwrap();
    for id in &deals {
        stack.signal(&format!("manual:{id}"), "kickoff_held", json!({}), &[]);
    }
    for (id, due) in deals.iter().zip(before) {
        let deal = format!("manual:{id}");
        let status = stack.wait_status(&deal, "onboarding on the survivor", QUICK, |s| {
            s["stage"] == "onboarding" && s["tasks"]["created"] == 5
        });
        assert_eq!(due_instants(&status), due);
        let tasks = wait_until("the ledger", QUICK, || {
            Some(stack.tasks(&deal)).filter(|t| t.len() == 5)
        });
        assert_each_once(&tasks, "key");
        assert_each_once(&stack.notifications(&deal), "key");
    }
    second.kill().unwrap();
    second.wait().unwrap();
}

// Regression (#3): a signal sent before a deadline but handled after it, by
// a worker that was stalled, counted as late and escalated.
#[test]
fn a_signal_sent_before_a_deadline_counts_as_on_time_after_a_stalled_worker() {
    let stack = stack();
    let queue = unique("stalled");
    let mut worker = stack.spawn_worker(&queue);
    let id = unique("stalled-deal");
    let deal = format!("manual:{id}");
    // 86400: a business day a second; the kickoff is due 3 to 5 s after day 0.
    stack.start(
        &bundle(&id, "smb"),
        &["--task-queue", &queue, "--time-scale", "86400"],
    );
    stack.signal(&deal, "contract_signed", json!({}), &[]);
    stack.wait_status(&deal, "day 0", QUICK, |s| !s["day0"].is_null());

    // SAFETY: signalling our own child.
    unsafe { libc::kill(worker.id() as libc::pid_t, libc::SIGSTOP) };
    stack.signal(&deal, "kickoff_held", json!({}), &[]);
    // Well past the kickoff's due instant before the worker wakes up.
    std::thread::sleep(Duration::from_secs(10));
    // SAFETY: as above.
    unsafe { libc::kill(worker.id() as libc::pid_t, libc::SIGCONT) };

    let status = stack.wait_status(&deal, "the kickoff resolved", QUICK, |s| {
        s["milestones"][0]["status"] != "pending"
    });
    assert_eq!(status["milestones"][0]["status"], "met", "{status:#}");
    assert_eq!(status["milestones"][0]["escalation_level"], 0);
    let escalations: Vec<Value> = stack
        .notifications(&deal)
        .into_iter()
        .filter(|n| n["key"].as_str().unwrap().contains("escalate/kickoff"))
        .collect();
    assert!(escalations.is_empty(), "{escalations:#?}");
    worker.kill().unwrap();
    worker.wait().unwrap();
}
