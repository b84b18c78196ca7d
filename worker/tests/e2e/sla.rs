//! The whole schedule on a real server at a time scale: milestones, the
//! ladder, pauses, updates and continue-as-new.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use handoff_workflows::playbook::MILESTONES;

use crate::harness::{Stack, bundle, describe, stack, unique, wait_until};

const QUICK: Duration = Duration::from_secs(30);

fn instant(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap())
        .unwrap()
        .to_utc()
}

/// Waits in wall time, for business time to pass while a workflow sleeps.
fn wait_wall(duration: Duration) {
    let until = std::time::Instant::now() + duration;
    wait_until(
        "wall time to pass",
        duration + Duration::from_secs(5),
        || (std::time::Instant::now() >= until).then_some(()),
    );
}

fn milestone<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no milestone {name} in {status}"))
}

/// A bundle that passes both gates at once, started at `scale`.
fn started(stack: &Stack, prefix: &str, segment: &str, scale: &str) -> (String, String) {
    let id = unique(prefix);
    let deal = format!("manual:{id}");
    stack.start(&bundle(&id, segment), &["--time-scale", scale]);
    stack.signal(&deal, "contract_signed", json!({}), &[]);
    if segment == "enterprise" {
        stack.signal(&deal, "security_cleared", json!({}), &[]);
    }
    stack.wait_status(&deal, "day 0", QUICK, |s| !s["day0"].is_null());
    (id, deal)
}

fn notification_keys(stack: &Stack, deal: &str) -> Vec<String> {
    stack
        .notifications(deal)
        .iter()
        .map(|n| {
            let key = n["key"].as_str().unwrap();
            key.split_once('/').map_or(key, |(_, step)| step).to_owned()
        })
        .collect()
}

#[test]
fn every_milestone_met_completes_the_handoff_with_its_review() {
    let stack = stack();
    // 3600: a business day every 24 s, so every due instant is minutes away.
    let (id, deal) = started(stack, "full", "enterprise", "3600");
    stack.signal(&deal, "kickoff_held", json!({}), &[]);
    stack.signal(
        &deal,
        "milestone_reached",
        json!({"milestone": "data_mapping"}),
        &[],
    );
    stack.signal(
        &deal,
        "milestone_reached",
        json!({"milestone": "first_integration_test"}),
        &[],
    );
    stack.signal(
        &deal,
        "adoption_reported",
        json!({"active_users": 7, "licensed_users": 10}),
        &[],
    );
    stack.signal(
        &deal,
        "milestone_reached",
        json!({"milestone": "first_value", "evidence": "sync latency 4 minutes"}),
        &[],
    );
    let status = stack.wait_status(&deal, "completion", QUICK, |s| s["stage"] == "completed");
    let statuses: Vec<&str> = status["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["met"; 5]);
    assert_eq!(status["gates"]["security"]["status"], "passed");
    assert_eq!(status["breach_count"], 0);
    let keys = wait_until("the review", QUICK, || {
        let keys = notification_keys(stack, &deal);
        keys.contains(&"review".to_owned()).then_some(keys)
    });
    for milestone in MILESTONES {
        assert!(keys.contains(&format!("met/{milestone}")), "{keys:?}");
    }
    let tasks = stack.tasks(&deal);
    let kickoff = tasks.iter().find(|t| t["key"] == "kickoff").unwrap();
    assert_eq!(
        kickoff["status"], "done",
        "kickoff_held closes the kickoff task"
    );
    assert!(tasks.iter().any(|t| t["key"] == "success_plan"));
    assert!(id.starts_with("full"));
}

#[test]
fn missed_milestones_climb_the_ladder_to_level_3_until_acknowledged() {
    let stack = stack();
    // 21600: six business hours a second. smb escalates 3 and 5 business days
    // after a breach, so an acknowledgement sent right after data_mapping's
    // breach has about 20 s before its level 2 would be due.
    let (_, deal) = started(stack, "ladder", "smb", "21600");
    let status = stack.wait_status(
        &deal,
        "data_mapping breached",
        Duration::from_secs(120),
        |s| milestone(s, "data_mapping")["status"] == "breached",
    );
    assert_eq!(milestone(&status, "data_mapping")["escalation_level"], 1);
    stack.signal(
        &deal,
        "escalation_acknowledged",
        json!({"milestone": "data_mapping", "by": "om-04"}),
        &[],
    );
    let status = stack.wait_status(&deal, "kickoff at level 3", Duration::from_secs(120), |s| {
        milestone(s, "kickoff")["escalation_level"] == 3
    });
    assert_eq!(status["at_risk"], true);
    // Past the instant data_mapping's level 2 would have been due (3
    // business days, at most 5 calendar days, after its breach).
    let breached_at = instant(&milestone(&status, "data_mapping")["due_at"]);
    let business_now = instant(&status["business_now"]);
    let ahead = (breached_at + chrono::Duration::days(6) - business_now).num_seconds();
    wait_wall(Duration::from_secs((ahead.max(0) / 21600 + 2) as u64));
    let keys = notification_keys(stack, &deal);
    let count = |key: &str| keys.iter().filter(|k| *k == key).count();
    assert_eq!(count("escalate/kickoff/1"), 1);
    assert_eq!(count("escalate/kickoff/2"), 1);
    assert_eq!(count("escalate/kickoff/3"), 1);
    assert_eq!(count("escalate/data_mapping/1"), 1);
    assert_eq!(
        count("escalate/data_mapping/2"),
        0,
        "acknowledged: {keys:?}"
    );
    let tasks = stack.tasks(&deal);
    assert!(tasks.iter().any(|t| t["key"] == "remediate_kickoff"));
    assert!(tasks.iter().any(|t| t["key"] == "remediate_data_mapping"));
}

#[test]
fn a_blocked_customer_moves_the_open_due_dates_later() {
    let stack = stack();
    let (_, deal) = started(stack, "blocked", "smb", "3600");
    let before = stack.wait_status(&deal, "milestones", QUICK, |s| {
        s["milestones"][0].is_object()
    });
    let kickoff_before = instant(&milestone(&before, "kickoff")["due_at"]);
    stack.signal(
        &deal,
        "customer_blocked",
        json!({"reason": "waiting for VPN access"}),
        &[],
    );
    let paused = stack.wait_status(&deal, "paused", QUICK, |s| !s["paused"].is_null());
    assert_eq!(paused["paused"]["kind"], "customer_blocked");
    assert_eq!(
        paused["next_deadline"],
        Value::Null,
        "the clocks stand still"
    );
    // Let two business days pass (48 s at 3600), then unblock. Business
    // now only moves when the workflow wakes, and a paused one sleeps, so
    // the wait is in wall time.
    wait_wall(Duration::from_secs(50));
    stack.signal(&deal, "customer_unblocked", json!({}), &[]);
    let after = stack.wait_status(&deal, "resumed", QUICK, |s| s["paused"].is_null());
    let kickoff_after = instant(&milestone(&after, "kickoff")["due_at"]);
    assert!(
        kickoff_after >= kickoff_before + chrono::Duration::days(1),
        "{kickoff_before} → {kickoff_after}"
    );
    assert_eq!(milestone(&after, "kickoff")["status"], "pending");
}

#[test]
fn an_extension_is_rejected_then_accepted() {
    let stack = stack();
    let (_, deal) = started(stack, "extend", "smb", "3600");
    let status = stack.wait_status(&deal, "milestones", QUICK, |s| {
        s["milestones"][0].is_object()
    });
    let due = instant(&milestone(&status, "kickoff")["due_at"]);

    let earlier =
        json!({"milestone": "kickoff", "new_due": (due - chrono::Duration::days(1)).to_rfc3339(),
                         "reason": "customer travel"})
        .to_string();
    let rejected = stack.handoff(&[
        "deal",
        "update",
        &deal,
        "extend_deadline",
        "--data",
        &earlier,
    ]);
    assert_eq!(rejected.status.code(), Some(1), "{}", describe(&rejected));
    assert!(String::from_utf8_lossy(&rejected.stderr).contains("new_due"));

    let no_reason =
        json!({"milestone": "kickoff", "new_due": (due + chrono::Duration::days(2)).to_rfc3339()})
            .to_string();
    let refused = stack.handoff(&[
        "deal",
        "update",
        &deal,
        "extend_deadline",
        "--data",
        &no_reason,
    ]);
    assert_eq!(refused.status.code(), Some(65), "{}", describe(&refused));

    let later = (due + chrono::Duration::days(2)).to_rfc3339();
    let accepted =
        json!({"milestone": "kickoff", "new_due": later, "reason": "customer travel"}).to_string();
    let output = stack.ok(&[
        "deal",
        "update",
        &deal,
        "extend_deadline",
        "--data",
        &accepted,
        "--json",
    ]);
    let status: Value = serde_json::from_str(&output).unwrap();
    assert_eq!(
        instant(&milestone(&status, "kickoff")["due_at"]),
        due + chrono::Duration::days(2)
    );
}

#[test]
fn a_reopened_deal_holds_its_news_until_won_again() {
    let stack = stack();
    let (id, deal) = started(stack, "reopen", "smb", "3600");
    stack.signal(&deal, "deal_reopened", json!({}), &[]);
    stack.signal(&deal, "kickoff_held", json!({}), &[]);
    let status = stack.wait_status(&deal, "kickoff met while reopened", QUICK, |s| {
        milestone(s, "kickoff")["status"] == "met"
    });
    assert_eq!(status["paused"]["kind"], "reopened");
    assert!(!notification_keys(stack, &deal).contains(&"met/kickoff".to_owned()));

    stack.start(&bundle(&id, "smb"), &["--time-scale", "3600"]);
    wait_until("the held news", QUICK, || {
        notification_keys(stack, &deal)
            .contains(&"met/kickoff".to_owned())
            .then_some(())
    });
    let status = stack.wait_status(&deal, "resumed", QUICK, |s| s["paused"].is_null());
    assert_eq!(status["stage"], "onboarding");
}

#[test]
fn a_burst_of_signals_across_continue_as_new_loses_nothing() {
    let stack = stack();
    let id = unique("burst");
    let deal = format!("manual:{id}");
    let file = stack.write_json(&bundle(&id, "smb"));
    let output = stack.handoff_with(
        &[
            "deal",
            "start",
            file.to_str().unwrap(),
            "--time-scale",
            "3600",
        ],
        &[("HANDOFF_MAX_HISTORY_EVENTS", "30")],
    );
    assert!(output.status.success(), "{}", describe(&output));
    stack.signal(&deal, "contract_signed", json!({}), &[]);
    // The tasks must exist before they can be completed.
    stack.wait_status(&deal, "day 0", QUICK, |s| !s["day0"].is_null());

    // Twelve malformed signals and four task completions, all at once.
    let senders: Vec<_> = (0..16)
        .map(|n| {
            let deal = deal.clone();
            std::thread::spawn(move || {
                let stack = crate::harness::stack();
                if n < 12 {
                    // Past `deal signal`, which would refuse them.
                    stack.raw_signal(
                        &deal,
                        "kickoff_held",
                        &json!({"at": format!("bad-{n}")}).to_string(),
                    );
                } else {
                    let key = [
                        "kickoff",
                        "data_migration",
                        "integration_setup",
                        "user_enablement",
                    ][n - 12];
                    stack.signal(&deal, "task_completed", json!({"key": key}), &[]);
                }
            })
        })
        .collect();
    for sender in senders {
        sender.join().unwrap();
    }
    let status = stack.wait_status(
        &deal,
        "every signal counted",
        Duration::from_secs(90),
        |s| s["rejected_events"]["total"] == 12 && s["tasks"]["done"] == 4,
    );
    assert_eq!(
        milestone(&status, "kickoff")["status"],
        "met",
        "the kickoff task meets it"
    );
    let runs = wait_until("more than one run", QUICK, || {
        let output = std::process::Command::new(crate::harness::temporal_bin())
            .args(["workflow", "list", "--address", &stack.address, "--query"])
            .arg(format!("WorkflowId = 'handoff-manual-{id}'"))
            .args(["--output", "json"])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let runs = text.matches("\"runId\"").count();
        (runs > 1).then_some(runs)
    });
    assert!(runs > 1);
}

#[test]
fn no_contact_name_or_e_mail_reaches_the_logs() {
    let stack = stack();
    // A worker of its own, logging everything down to debug.
    let queue = unique("private-queue");
    let log = stack.dir.join(format!("{queue}.log"));
    let mut worker = std::process::Command::new(crate::harness::BIN);
    worker.arg("worker");
    stack.configure(&mut worker);
    worker
        .env("HANDOFF_TASK_QUEUE", &queue)
        .env("HANDOFF_LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .env(
            "HANDOFF_METRICS_ADDR",
            format!("127.0.0.1:{}", crate::harness::free_port()),
        );
    let pid = crate::harness::keep_alive(worker, &log);

    let id = unique("private");
    let deal = format!("manual:{id}");
    let mut private = bundle(&id, "smb");
    private["contacts"] = json!([{ "name": "Zelda Quintanilla-Okafor", "role": "champion",
                                   "email": "zelda.q-okafor@customer.example" }]);
    let on_queue = ["--task-queue", queue.as_str()];
    stack.start(&private, &["--time-scale", "3600", "--task-queue", &queue]);
    stack.signal(&deal, "contract_signed", json!({}), &on_queue);
    stack.signal(&deal, "kickoff_held", json!({}), &on_queue);
    // A malformed amendment with the contact in it, past `deal signal`'s
    // own check: rejected by the handoff, and not logged.
    stack.raw_signal(
        &deal,
        "closed_won",
        &json!({"bundle": {"contacts": private["contacts"]}}).to_string(),
    );
    waive_all(stack, &deal);
    stack.wait_status(&deal, "completion", QUICK, |s| s["stage"] == "completed");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(&id), "the log covers this handoff");
    assert!(!text.contains("Zelda") && !text.contains("Quintanilla"));
    assert!(!text.contains("zelda.q-okafor@customer.example"));
}

fn waive_all(stack: &Stack, deal: &str) {
    stack.wait_status(deal, "milestones armed", QUICK, |s| {
        s["milestones"][4].is_object()
    });
    for milestone in MILESTONES {
        let data = json!({"milestone": milestone, "reason": "pilot"}).to_string();
        // A milestone already met rejects its waiver; that is fine here.
        stack.handoff(&["deal", "update", deal, "waive_milestone", "--data", &data]);
    }
}

#[test]
fn a_handoff_lives_its_months_and_completes_when_first_value_arrives() {
    let stack = stack();
    // 172800: two business days a second, so day 90 is 45 s away and the
    // first value, sent 25 s in, has 20 s of margin.
    let (_, deal) = started(stack, "months", "mid_market", "172800");
    stack.signal(&deal, "kickoff_held", json!({}), &[]);
    stack.signal(
        &deal,
        "milestone_reached",
        json!({"milestone": "data_mapping"}),
        &[],
    );
    stack.signal(
        &deal,
        "milestone_reached",
        json!({"milestone": "first_integration_test"}),
        &[],
    );
    stack.signal(&deal, "adoption_reported", json!({"rate": 0.8}), &[]);
    wait_wall(Duration::from_secs(25));
    let status = stack.wait_status(&deal, "onboarding", QUICK, |s| s["stage"] == "onboarding");
    assert_eq!(milestone(&status, "first_value")["status"], "pending");
    stack.signal(
        &deal,
        "milestone_reached",
        json!({"milestone": "first_value", "evidence": "latency down to 4 minutes"}),
        &[],
    );
    let status = stack.wait_status(&deal, "completion", QUICK, |s| s["stage"] == "completed");
    let day0 = instant(&status["day0"]);
    let first_value = instant(&milestone(&status, "first_value")["met_at"]);
    assert!(
        first_value - day0 > chrono::Duration::days(40),
        "{day0} → {first_value}"
    );
    assert_eq!(status["breach_count"], 0);
    let keys = notification_keys(stack, &deal);
    assert!(
        keys.contains(&"remind/first_value/50pct".to_owned()),
        "{keys:?}"
    );
}
