//! Playbook validation at the edges, and tasks and messages reaching a
//! webhook once through a worker crash and a lost deal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::QUICK;
use crate::faults::{assert_each_once, due_instants};
use crate::harness::{BIN, bundle, describe, stack, unique, wait_until};
use crate::receiver::{Receiver, SECRET};

fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../playbooks")
}

/// A copy of the shipped playbooks with `smb.toml` broken twice.
fn broken_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "smb.toml",
        "mid_market.toml",
        "enterprise.toml",
        "directory.toml",
    ] {
        std::fs::copy(shipped().join(name), dir.path().join(name)).unwrap();
    }
    let smb = dir.path().join("smb.toml");
    let text = std::fs::read_to_string(&smb).unwrap();
    let text = text
        .replace("send_hour = 9", "send_hour = 25")
        .replace("trigger = \"kickoff_held\"", "trigger = \"kickoff_hold\"");
    std::fs::write(&smb, text).unwrap();
    dir
}

fn line_of(path: &Path, needle: &str) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn a_broken_playbook_fails_the_check_and_keeps_the_worker_from_starting() {
    let output = Command::new(BIN)
        .args(["playbook", "check"])
        .arg(shipped())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));

    let dir = broken_copy();
    let smb = dir.path().join("smb.toml");
    let expected = [
        format!(
            "{}:{}: send_hour 25",
            smb.display(),
            line_of(&smb, "send_hour = 25")
        ),
        format!(
            "{}:{}: unknown trigger `kickoff_hold`",
            smb.display(),
            line_of(&smb, "kickoff_hold")
        ),
    ];
    let output = Command::new(BIN)
        .args(["playbook", "check"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    for line in &expected {
        assert!(stdout.contains(line.as_str()), "{line} in {stdout}");
    }

    let output = Command::new(BIN)
        .arg("worker")
        .env("HANDOFF_PLAYBOOK_DIR", dir.path())
        .env("TEMPORAL_ADDRESS", "127.0.0.1:9")
        .env_remove("HANDOFF_CONFIG")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for line in &expected {
        assert!(stderr.contains(line.as_str()), "{line} in {stderr}");
    }
}

fn webhook_env(receiver: &Receiver) -> Vec<(&'static str, String)> {
    vec![
        ("HANDOFF_WEBHOOK_URL", receiver.url.clone()),
        ("HANDOFF_WEBHOOK_SECRET", SECRET.to_owned()),
        ("HANDOFF_SINK_TIMEOUT_SECONDS", "5".to_owned()),
    ]
}

#[test]
fn a_worker_killed_between_two_deliveries_leaves_each_task_delivered_once() {
    let stack = stack();
    // The second task is committed, then its answer never comes.
    let receiver = Receiver::start(Some(2));
    let env = webhook_env(&receiver);
    let queue = unique("kill-q");
    let mut worker = stack.spawn_worker_with(&queue, &env);
    let id = unique("kill");
    let deal = format!("manual:{id}");
    stack.start(&bundle(&id, "mid_market"), &["--task-queue", &queue]);
    stack.signal(
        &deal,
        "contract_signed",
        json!({}),
        &["--task-queue", &queue],
    );

    wait_until(
        "the second delivery in flight",
        Duration::from_secs(60),
        || (receiver.requests().len() >= 2).then_some(()),
    );
    // SAFETY: kill(2) on a child this test spawned.
    unsafe { libc::kill(worker.id() as libc::pid_t, libc::SIGKILL) };
    worker.wait().unwrap();

    let mut replacement = stack.spawn_worker_with(&queue, &env);
    // The activity is retried once its heartbeat times out (30 s).
    let committed = wait_until("all four day-0 tasks", Duration::from_secs(120), || {
        let committed = receiver.committed();
        (committed.len() == 4).then_some(committed)
    });
    replacement.kill().unwrap();
    replacement.wait().unwrap();

    let requests = receiver.requests();
    assert!(requests.iter().all(|r| r.signature_valid));
    let first = &requests[0].key;
    assert_eq!(
        requests.iter().filter(|r| &r.key == first).count(),
        1,
        "a delivery recorded before the crash is not sent again"
    );
    let second = &requests[1].key;
    assert_eq!(
        requests.iter().filter(|r| &r.key == second).count(),
        2,
        "the one in flight is sent again, with the same key"
    );
    assert!(
        committed
            .keys()
            .all(|k| k.starts_with(&format!("handoff-manual-{id}/task/")))
    );
}

#[test]
fn a_reopened_then_lost_deal_cancels_every_task_and_sends_nothing_after_the_loss() {
    let stack = stack();
    let receiver = Receiver::start(None);
    let env = webhook_env(&receiver);
    let queue = unique("lost-q");
    let mut worker = stack.spawn_worker_with(&queue, &env);
    let id = unique("lost");
    let deal = format!("manual:{id}");
    let on_queue = ["--task-queue", queue.as_str()];
    // A business day every second: the two-day grace passes in seconds.
    let started = ["--task-queue", queue.as_str(), "--time-scale", "86400"];
    stack.start(&bundle(&id, "smb"), &started);
    stack.signal(&deal, "contract_signed", json!({}), &on_queue);
    wait_until(
        "the day-0 tasks at the webhook",
        Duration::from_secs(60),
        || {
            let created = receiver
                .requests()
                .iter()
                .filter(|r| r.body["type"] == "task.created")
                .count();
            (created >= 4).then_some(())
        },
    );

    stack.signal(&deal, "deal_reopened", json!({}), &on_queue);
    stack.signal(&deal, "deal_lost", json!({ "reason": "lost" }), &on_queue);
    // Outbound work has been held since the reopen; only the cleanup may follow.
    let lost_at = receiver.requests().len();
    let status = stack.wait_status(&deal, "cancelled", Duration::from_secs(60), |s| {
        s["stage"] == "cancelled"
    });
    assert_eq!(status["cancel_reason"], "lost");
    let created: Vec<String> = receiver
        .requests()
        .iter()
        .filter(|r| r.body["type"] == "task.created")
        .map(|r| r.body["task"]["key"].as_str().unwrap().to_owned())
        .collect();
    wait_until(
        "every task cancelled at the webhook",
        Duration::from_secs(30),
        || {
            let cancelled = receiver
                .requests()
                .iter()
                .filter(|r| r.body["type"] == "task.cancelled")
                .count();
            (cancelled == created.len()).then_some(())
        },
    );
    wait_until("the cancellation notice", Duration::from_secs(30), || {
        receiver
            .requests()
            .iter()
            .any(|r| r.body["kind"] == "handoff_cancelled")
            .then_some(())
    });
    worker.kill().unwrap();
    worker.wait().unwrap();

    let after: Vec<String> = receiver.requests()[lost_at..]
        .iter()
        .map(|r| match r.body["type"].as_str() {
            Some("notification") => format!("notification:{}", r.body["kind"].as_str().unwrap()),
            other => other.unwrap_or("?").to_owned(),
        })
        .collect();
    assert!(
        after
            .iter()
            .all(|kind| kind == "task.cancelled" || kind == "notification:handoff_cancelled"),
        "only the cancellation goes out after the loss: {after:?}"
    );
    assert!(
        stack
            .tasks(&deal)
            .iter()
            .all(|t| t["status"] == "cancelled")
    );
}

/// How many requests each idempotency key took.
fn sends_per_key(receiver: &Receiver) -> BTreeMap<String, usize> {
    let mut sends = BTreeMap::new();
    for request in receiver.requests() {
        *sends.entry(request.key).or_insert(0) += 1;
    }
    sends
}

#[test]
fn a_sink_down_for_business_minutes_then_back_gets_each_task_once_and_moves_no_deadline() {
    let stack = stack();
    let receiver = Receiver::start(None);
    receiver.set_down(true);
    let env = webhook_env(&receiver);
    let queue = unique("down-q");
    let mut worker = stack.spawn_worker_with(&queue, &env);
    let id = unique("down");
    let deal = format!("manual:{id}");
    let on_queue = ["--task-queue", queue.as_str()];
    // A business minute a wall second: the outage below lasts about 15
    // business minutes.
    let started = ["--task-queue", queue.as_str(), "--time-scale", "60"];
    stack.start(&bundle(&id, "mid_market"), &started);
    stack.signal(&deal, "contract_signed", json!({}), &on_queue);
    let before = stack.wait_status(&deal, "day 0", QUICK, |s| s["milestones"][4].is_object());
    let due = due_instants(&before);
    let outage = Instant::now();

    wait_until(
        "retries against the outage",
        Duration::from_secs(60),
        || (receiver.requests().len() >= 3).then_some(()),
    );
    std::thread::sleep(Duration::from_secs(15).saturating_sub(outage.elapsed()));
    assert!(receiver.committed().is_empty());
    let during = stack.wait_status(&deal, "status during the outage", QUICK, |_| true);
    assert_eq!(
        during["delivery_failures"],
        json!([]),
        "an outage is retried"
    );
    assert_eq!(due_instants(&during), due);

    receiver.set_down(false);
    let back = receiver.requests().len();
    wait_until(
        "the day-0 tasks at the webhook",
        Duration::from_secs(90),
        || (receiver.committed().len() == 4).then_some(()),
    );
    let status = stack.wait_status(&deal, "status after the outage", QUICK, |_| true);
    assert_eq!(due_instants(&status), due, "the outage moved a deadline");
    assert_eq!(status["delivery_failures"], json!([]));
    stack.signal(&deal, "kickoff_held", json!({}), &on_queue);
    stack.wait_status(&deal, "onboarding", QUICK, |s| s["stage"] == "onboarding");
    worker.kill().unwrap();
    worker.wait().unwrap();

    let tasks = stack.tasks(&deal);
    assert_each_once(&tasks, "key");
    let committed = receiver.committed();
    let task_keys: Vec<&String> = committed.keys().filter(|k| k.contains("/task/")).collect();
    assert_eq!(task_keys.len(), tasks.len(), "{task_keys:?}");
    // After the outage every effect went out once: no key was sent twice.
    let mut after = BTreeMap::new();
    for request in &receiver.requests()[back..] {
        *after.entry(request.key.clone()).or_insert(0) += 1;
    }
    assert!(after.values().all(|&n| n == 1), "{after:?}");
}

#[test]
fn sigterm_while_tasks_go_to_a_slow_sink_drains_in_the_grace_period_and_the_rest_retries() {
    let stack = stack();
    let receiver = Receiver::start(None);
    // Each task takes 2 s to land, so the four day-0 tasks outlast the 5 s grace.
    receiver.set_delay(Duration::from_secs(2));
    let env = webhook_env(&receiver);
    let queue = unique("drain-q");
    let mut worker = stack.spawn_worker_with(&queue, &env);
    let id = unique("drain");
    let deal = format!("manual:{id}");
    let on_queue = ["--task-queue", queue.as_str()];
    stack.start(&bundle(&id, "mid_market"), &on_queue);
    stack.signal(&deal, "contract_signed", json!({}), &on_queue);
    wait_until("the first task on its way", Duration::from_secs(60), || {
        (!receiver.requests().is_empty()).then_some(())
    });
    let due =
        due_instants(&stack.wait_status(&deal, "day 0", QUICK, |s| s["milestones"][4].is_object()));

    let term = Instant::now();
    // SAFETY: kill(2) on a child this test spawned.
    unsafe { libc::kill(worker.id() as libc::pid_t, libc::SIGTERM) };
    let exit = wait_until("the worker to exit", Duration::from_secs(30), || {
        worker.try_wait().unwrap()
    });
    let took = term.elapsed();
    assert!(exit.success(), "{exit:?}");
    // The grace period is 5 s; the send in flight when it ends may finish.
    assert!(took < Duration::from_secs(9), "stopping took {took:?}");
    let drained = receiver.committed().len();
    assert!(
        (2..4).contains(&drained),
        "sends finish during the grace period, the rest waits: {drained}"
    );

    let mut replacement = stack.spawn_worker_with(&queue, &env);
    // The retry comes once the shutdown's failure is recorded, or at the
    // latest when the heartbeat times out.
    wait_until(
        "the rest of the batch at the webhook",
        Duration::from_secs(90),
        || (receiver.committed().len() == 4).then_some(()),
    );
    let status = stack.wait_status(&deal, "status after the retry", QUICK, |_| true);
    replacement.kill().unwrap();
    replacement.wait().unwrap();
    assert_eq!(due_instants(&status), due);
    let sends = sends_per_key(&receiver);
    assert!(
        sends.values().all(|&n| n == 1),
        "what landed before the shutdown is not sent again: {sends:?}"
    );
    assert_each_once(&stack.tasks(&deal), "key");
}
