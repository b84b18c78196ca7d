//! End-to-end tests: the `handoff` binary against a real Temporal dev server.

// Test support code panics on setup failures by design.
#![allow(clippy::unwrap_used)]

mod delivery;
mod faults;
mod harness;
mod histories;
mod hubspot_fake;
mod ingress;
mod ingress_crm;
mod lifecycle;
mod observability;
mod receiver;
mod sla;
mod versioning;

use std::time::Duration;

use serde_json::{Value, json};

use harness::{ago, bundle, describe, keys, stack, unique, wait_until};

const QUICK: Duration = Duration::from_secs(30);

fn stage_is(stage: &'static str) -> impl Fn(&Value) -> bool {
    move |status| status["stage"] == stage
}

#[test]
fn happy_path_runs_from_bundle_to_kickoff_met() {
    let stack = stack();
    let id = unique("happy");
    let deal = format!("manual:{id}");
    let started = stack.start(&bundle(&id, "mid_market"), &[]);
    assert_eq!(started["started"], true);
    assert_eq!(started["workflow_id"], format!("handoff-manual-{id}"));

    stack.signal(
        &deal,
        "contract_signed",
        json!({ "at": ago(1800), "by": "ae-01" }),
        &[],
    );
    let status = stack.wait_status(&deal, "kickoff stage", QUICK, stage_is("kickoff"));
    assert_eq!(status["segment"], "mid_market");
    assert_eq!(status["owner"], "ho-03");
    assert_eq!(status["bundle_completeness"], 1.0);
    assert_eq!(status["gates"]["signature"]["status"], "passed");
    assert_eq!(status["gates"]["security"]["status"], "not_required");
    assert_eq!(status["milestones"][0]["name"], "kickoff");
    assert_eq!(status["next_deadline"]["kind"], "reminder");
    assert!(
        status["playbook"]["hash"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );

    let tasks = wait_until("four day-0 tasks", QUICK, || {
        Some(stack.tasks(&deal)).filter(|t| t.len() == 4)
    });
    assert_eq!(
        keys(&tasks, "key"),
        [
            "data_migration",
            "integration_setup",
            "kickoff",
            "user_enablement"
        ]
    );
    let kickoff_task = tasks.iter().find(|t| t["key"] == "kickoff").unwrap();
    assert_eq!(
        (
            kickoff_task["owner"].as_str(),
            kickoff_task["status"].as_str()
        ),
        (Some("om-04"), Some("open"))
    );
    let blocked = tasks.iter().find(|t| t["key"] == "data_migration").unwrap();
    assert_eq!(blocked["status"], "blocked");
    assert_eq!(blocked["depends_on"], json!(["kickoff"]));

    stack.signal(&deal, "kickoff_held", json!({}), &[]);
    let status = stack.wait_status(&deal, "onboarding", QUICK, stage_is("onboarding"));
    assert_eq!(status["milestones"][0]["status"], "met");
    assert_eq!(status["milestones"][1]["status"], "pending");
    assert_eq!(status["at_risk"], false);
    let notes = wait_until("milestone news", QUICK, || {
        Some(stack.notifications(&deal)).filter(|n| !n.is_empty())
    });
    assert_eq!(keys(&notes, "kind"), ["milestone_met"]);
    assert_eq!(notes[0]["key"], format!("handoff-manual-{id}/met/kickoff"));

    // Visibility follows the stage and the next deadline.
    let listed: Vec<Value> = wait_until("visibility to catch up", QUICK, || {
        let rows: Vec<Value> =
            serde_json::from_str(&stack.ok(&["deal", "list", "--stage", "onboarding", "--json"]))
                .ok()?;
        rows.iter()
            .any(|r| r["deal_id"] == id.as_str())
            .then_some(rows)
    });
    let row = listed.iter().find(|r| r["deal_id"] == id.as_str()).unwrap();
    assert_eq!(row["segment"], "mid_market");
    assert!(row["next_deadline"].is_string(), "{row}");
}

#[test]
fn a_missed_kickoff_reminds_breaches_and_escalates_exactly_once() {
    let stack = stack();
    let id = unique("breach");
    let deal = format!("manual:{id}");
    // 20000 business seconds per second: three business days pass in 13 to 22 s.
    stack.start(&bundle(&id, "smb"), &["--time-scale", "20000"]);
    stack.signal(&deal, "contract_signed", json!({ "at": ago(60) }), &[]);

    // The breach fires, then its effects land in the ledger.
    let status = stack.wait_status(&deal, "the breach", Duration::from_secs(90), |s| {
        s["milestones"][0]["status"] == "breached"
    });
    assert!(status["milestones"][0]["escalation_level"].as_u64() >= Some(1));
    assert_eq!(status["at_risk"], true);
    assert_eq!(status["time_scale"], 20000);

    let kickoff_notes = |notes: &[Value]| -> Vec<Value> {
        notes
            .iter()
            .filter(|n| n["key"].as_str().unwrap().contains("/kickoff/"))
            .cloned()
            .collect()
    };
    let notes = wait_until("the breach's effects", QUICK, || {
        let notes = kickoff_notes(&stack.notifications(&deal));
        (notes.len() >= 2).then_some(notes)
    });
    let kinds = keys(&notes, "kind");
    assert_eq!(&kinds[kinds.len() - 1], "reminder", "{notes:#?}");
    assert_eq!(kinds.iter().filter(|k| *k == "reminder").count(), 1);
    let escalation = notes.iter().find(|n| n["kind"] == "escalation").unwrap();
    assert_eq!(escalation["owner"], "om-04,ho-03");
    assert_eq!(
        escalation["key"],
        format!("handoff-manual-{id}/escalate/kickoff/1")
    );
    let reminder = notes.iter().find(|n| n["kind"] == "reminder").unwrap();
    assert_eq!(
        reminder["key"],
        format!("handoff-manual-{id}/remind/kickoff/50pct")
    );

    let tasks = wait_until("the remediation task", QUICK, || {
        let tasks = stack.tasks(&deal);
        tasks
            .iter()
            .any(|t| t["key"] == "remediate_kickoff")
            .then_some(tasks)
    });
    assert_eq!(
        tasks
            .iter()
            .filter(|t| t["key"] == "remediate_kickoff")
            .count(),
        1
    );

    let listed: Vec<Value> = wait_until("AtRisk in visibility", QUICK, || {
        let rows: Vec<Value> =
            serde_json::from_str(&stack.ok(&["deal", "list", "--all", "--at-risk", "--json"]))
                .ok()?;
        rows.iter()
            .any(|r| r["deal_id"] == id.as_str())
            .then_some(rows)
    });
    assert!(listed.iter().all(|r| r["at_risk"] == true));
}

#[test]
fn the_same_deal_started_twice_at_once_is_one_workflow() {
    let stack = stack();
    let id = unique("twice");
    let file = stack.write_json(&bundle(&id, "smb"));
    let file = file.to_str().unwrap().to_owned();
    let answers: Vec<Value> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| stack.ok(&["deal", "start", &file, "--json"])))
            .collect();
        runs.into_iter()
            .map(|r| serde_json::from_str(&r.join().unwrap()).unwrap())
            .collect()
    });
    let started: Vec<bool> = answers
        .iter()
        .map(|a| a["started"].as_bool().unwrap())
        .collect();
    assert_eq!(
        started.iter().filter(|s| **s).count(),
        1,
        "exactly one call creates it: {answers:?}"
    );

    let deal = format!("manual:{id}");
    stack.signal(&deal, "contract_signed", json!({}), &[]);
    stack.wait_status(&deal, "kickoff", QUICK, stage_is("kickoff"));
    let again = stack.start(&bundle(&id, "smb"), &[]);
    assert_eq!(again["started"], false);
    let tasks = wait_until("tasks", QUICK, || {
        Some(stack.tasks(&deal)).filter(|t| t.len() == 4)
    });
    assert_eq!(tasks.len(), 4, "one set of tasks");
}

#[test]
fn contract_signed_before_the_bundle_is_kept() {
    let stack = stack();
    let id = unique("early");
    let deal = format!("manual:{id}");
    let signed_at = ago(900);
    stack.signal(&deal, "contract_signed", json!({ "at": signed_at }), &[]);
    let status = stack.wait_status(&deal, "awaiting_bundle", QUICK, stage_is("awaiting_bundle"));
    assert_eq!(status["gates"]["signature"]["status"], "passed");

    let started = stack.start(&bundle(&id, "smb"), &[]);
    assert_eq!(
        started["started"], false,
        "the signal already created the workflow"
    );
    let status = stack.wait_status(&deal, "kickoff", QUICK, stage_is("kickoff"));
    assert_eq!(status["day0"], json!(signed_at));
    assert_eq!(status["gates"]["signature"]["passed_at"], json!(signed_at));
}

#[test]
fn enterprise_gates_pass_in_either_order() {
    let stack = stack();
    for (first, second) in [
        ("contract_signed", "security_cleared"),
        ("security_cleared", "contract_signed"),
    ] {
        let id = unique("gates");
        let deal = format!("manual:{id}");
        stack.start(&bundle(&id, "enterprise"), &[]);
        stack.signal(&deal, first, json!({ "at": ago(1200) }), &[]);
        // The gate set is known once the plan is frozen.
        let status = stack.wait_status(&deal, "first gate and the plan", QUICK, |s| {
            s["playbook"].is_object()
                && s["gates"]
                    .as_object()
                    .is_some_and(|g| g.values().any(|g| g["status"] == "passed"))
        });
        assert_eq!(status["stage"], "awaiting_gates");
        assert_eq!(status["gates"]["security"]["required"], true);

        let later = ago(600);
        stack.signal(&deal, second, json!({ "at": later }), &[]);
        let status = stack.wait_status(&deal, "kickoff", QUICK, stage_is("kickoff"));
        assert_eq!(status["day0"], json!(later), "day 0 is the latest gate");
    }
}

#[test]
fn a_lost_deal_cancels_its_tasks_and_ends_cancelled() {
    let stack = stack();
    let id = unique("lost");
    let deal = format!("manual:{id}");
    let mut hostile = bundle(&id, "smb");
    hostile["account"]["name"] = json!("Evil\u{1b}[31m Corp \u{202e}gnp.exe<script>");
    // 40000: the two business days of grace pass in 5 to 13 s.
    stack.start(&hostile, &["--time-scale", "40000"]);
    stack.signal(&deal, "contract_signed", json!({}), &[]);
    wait_until("tasks", QUICK, || {
        Some(stack.tasks(&deal)).filter(|t| t.len() == 4)
    });

    stack.signal(&deal, "deal_lost", json!({ "reason": "budget" }), &[]);
    let paused = stack.wait_status(&deal, "grace", QUICK, |s| !s["paused"].is_null());
    assert_eq!(paused["paused"]["kind"], "lost");
    let status = stack.wait_status(&deal, "cancelled", QUICK, stage_is("cancelled"));
    assert_eq!(status["cancel_reason"], "lost");
    let tasks = stack.tasks(&deal);
    assert!(
        tasks.iter().all(|t| t["status"] == "cancelled"),
        "{tasks:#?}"
    );

    // Stored as given, shown safely.
    let notes = wait_until("cancellation news", QUICK, || {
        Some(stack.notifications(&deal))
            .filter(|n| n.iter().any(|n| n["kind"] == "handoff_cancelled"))
    });
    let notes: Vec<Value> = notes
        .into_iter()
        .filter(|n| n["kind"] == "handoff_cancelled")
        .collect();
    assert!(
        notes[0]["title"]
            .as_str()
            .unwrap()
            .contains("Evil\u{1b}[31m Corp \u{202e}gnp.exe<script>")
    );
    let table = stack.ok(&["notifications", "list", "--deal", &deal]);
    assert!(table.contains("Evil[31m Corp gnp.exe<script>"), "{table}");
    assert!(!table.contains('\u{1b}') && !table.contains('\u{202e}'));

    // A late event for a finished handoff changes nothing and starts nothing.
    let late = stack.handoff(&["deal", "signal", &deal, "kickoff_held"]);
    assert!(late.status.success(), "{}", describe(&late));
    assert!(String::from_utf8_lossy(&late.stderr).contains("already finished"));
}

#[test]
fn malformed_signals_are_rejected_and_the_workflow_keeps_answering() {
    let stack = stack();
    let id = unique("malformed");
    let deal = format!("manual:{id}");
    stack.start(&bundle(&id, "smb"), &[]);

    // `deal signal` checks a payload with the handoff's own decoder and
    // sends nothing it would reject.
    let refused = stack.handoff(&[
        "deal",
        "signal",
        &deal,
        "security_cleared",
        "--data",
        r#"{"at":"yesterday"}"#,
    ]);
    assert_eq!(refused.status.code(), Some(65), "{}", describe(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("at: not an RFC 3339 instant"),
        "{}",
        describe(&refused)
    );

    // Straight through the Temporal CLI (`deal signal` refuses all three):
    // an instant that is no instant, a payload that is not an object, and
    // one not JSON at all.
    stack.raw_signal(&deal, "security_cleared", r#"{"at":"yesterday"}"#);
    for input in ["123", "\"text\""] {
        stack.raw_signal(&deal, "kickoff_held", input);
    }
    let status = stack.wait_status(&deal, "three rejections", QUICK, |s| {
        s["rejected_events"]["total"] == 3
    });
    let reasons: Vec<&str> = status["rejected_events"]["recent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons[0], "at: not an RFC 3339 instant");
    assert!(
        reasons[1].starts_with("payload: expected a JSON object"),
        "{reasons:?}"
    );
    assert_eq!(status["stage"], "awaiting_gates");

    // Still alive: a good signal after the bad ones moves it on.
    stack.signal(&deal, "contract_signed", json!({}), &[]);
    stack.wait_status(&deal, "kickoff", QUICK, stage_is("kickoff"));
}

#[test]
fn an_unknown_signal_name_is_ignored_and_never_fails_a_workflow_task() {
    let stack = stack();
    let id = unique("unknown-signal");
    let deal = format!("manual:{id}");
    let workflow_id = format!("handoff-manual-{id}");
    stack.start(&bundle(&id, "smb"), &[]);
    stack.wait_status(&deal, "the plan", QUICK, |s| s["playbook"].is_object());

    // The CLI refuses the name before it reaches Temporal...
    let refused = stack.handoff(&["deal", "signal", &deal, "contract_sigend", "--data", "{}"]);
    assert_eq!(refused.status.code(), Some(64), "{}", describe(&refused));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("contract_signed"));
    // ...and one sent straight through Temporal is dropped by the workflow.
    let temporal = |args: &[&str]| {
        std::process::Command::new(harness::temporal_bin())
            .args(args)
            .args(["--address", &stack.address])
            .output()
            .unwrap()
    };
    let sent = temporal(&[
        "workflow",
        "signal",
        "--workflow-id",
        &workflow_id,
        "--name",
        "contract_sigend",
        "--input",
        "{}",
    ]);
    assert!(sent.status.success(), "{}", describe(&sent));

    stack.signal(&deal, "contract_signed", json!({}), &[]);
    let status = stack.wait_status(&deal, "kickoff", QUICK, stage_is("kickoff"));
    assert_eq!(status["rejected_events"]["total"], 0);
    let history = temporal(&[
        "workflow",
        "show",
        "--workflow-id",
        &workflow_id,
        "-o",
        "json",
    ]);
    let history: Value = serde_json::from_slice(&history.stdout).unwrap();
    let events = history["events"].as_array().unwrap();
    assert!(
        events.iter().any(
            |e| e["workflowExecutionSignaledEventAttributes"]["signalName"] == "contract_sigend"
        ),
        "the signal reached the history"
    );
    assert!(
        !events
            .iter()
            .any(|e| e.get("workflowTaskFailedEventAttributes").is_some()),
        "no workflow task failed"
    );
}

#[test]
fn bad_bundles_are_refused_before_anything_is_sent() {
    let stack = stack();
    let id = unique("refused");
    let mut missing = bundle(&id, "smb");
    missing["deal"]
        .as_object_mut()
        .unwrap()
        .remove("closed_won_at");
    let mut wrong_type = bundle(&id, "smb");
    wrong_type["deal"]["amount"] = json!("lots");
    let mut giant = bundle(&id, "smb");
    giant["deal"]["segment"] = json!("giant");
    let mut negative = bundle(&id, "smb");
    negative["deal"]["amount"] = json!(-5);
    let mut elsewhere = bundle(&id, "smb");
    elsewhere["team"]["timezone"] = json!("Mars/Olympus");
    let not_json = stack.dir.join("not-json.json");
    std::fs::write(&not_json, "{ \"deal\": ").unwrap();

    for (file, field) in [
        (stack.write_json(&missing), "deal.closed_won_at"),
        (stack.write_json(&wrong_type), "deal.amount"),
        (stack.write_json(&giant), "deal.segment"),
        (
            stack.write_json(&negative),
            "deal.amount: must not be negative",
        ),
        (
            stack.write_json(&elsewhere),
            "team.timezone: \"Mars/Olympus\" is not an IANA time zone",
        ),
        (not_json, "not JSON"),
    ] {
        let output = stack.handoff(&["deal", "start", file.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(65), "{}", describe(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(field) && stderr.contains("nothing was sent"),
            "{stderr}"
        );
    }
    // Too large for a bundle, and a closed_won signal whose bundle is broken.
    let mut huge = bundle(&id, "smb");
    huge["use_case"] = json!("x".repeat(300 * 1024));
    let output = stack.handoff(&["deal", "start", stack.write_json(&huge).to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(65), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("larger than 256 KiB"));
    let broken = json!({ "bundle": { "deal": { "source": "manual", "id": id } } }).to_string();
    let deal = format!("manual:{id}");
    let output = stack.handoff(&["deal", "signal", &deal, "closed_won", "--data", &broken]);
    assert_eq!(output.status.code(), Some(65), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("bundle.account.name"),
        "{}",
        describe(&output)
    );
    let output = stack.handoff(&["deal", "status", &deal]);
    assert!(!output.status.success(), "no workflow was created");
}

#[test]
fn a_bundle_on_standard_input_starts_and_tasks_done_completes_a_task() {
    let stack = stack();
    let id = unique("stdin");
    let deal = format!("manual:{id}");
    let mut command = std::process::Command::new(harness::BIN);
    command.args(["deal", "start", "-", "--json"]);
    stack.configure(&mut command);
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(&serde_json::to_vec(&bundle(&id, "smb")).unwrap())
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let started: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(started["started"], true, "{started}");

    stack.signal(&deal, "contract_signed", json!({ "at": ago(600) }), &[]);
    wait_until("day-0 tasks", QUICK, || {
        Some(stack.tasks(&deal)).filter(|t| t.len() == 4)
    });
    stack.ok(&["tasks", "done", &deal, "kickoff"]);
    let status = stack.wait_status(&deal, "the task done", QUICK, |s| s["tasks"]["done"] == 1);
    assert_eq!(status["rejected_events"]["total"], 0, "{status}");

    // A deal the ledger has never seen gets no workflow from a typo.
    let unknown = format!("manual:{id}-typo");
    let output = stack.handoff(&["tasks", "done", &unknown, "kickoff"]);
    assert_eq!(output.status.code(), Some(65), "{}", describe(&output));
    assert!(
        !stack
            .handoff(&["deal", "status", &unknown])
            .status
            .success()
    );
}

#[test]
fn reading_a_ledger_that_does_not_exist_is_an_error_and_creates_nothing() {
    let stack = stack();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere").join("handoff.db");
    let url = format!("sqlite://{}", missing.display());
    for args in [
        &["tasks", "list"][..],
        &["notifications", "list"],
        &["report"],
    ] {
        let output = stack.handoff_with(args, &[("HANDOFF_DATABASE_URL", &url)]);
        assert_eq!(
            output.status.code(),
            Some(64),
            "{args:?}: {}",
            describe(&output)
        );
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("no ledger at"),
            "{}",
            describe(&output)
        );
    }
    assert!(!missing.exists() && !missing.parent().unwrap().exists());
}

#[test]
fn importing_the_public_salesforce_export_twice_starts_the_won_deals_once() {
    let stack = stack();
    let export = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/salesforce-apex-recipes/Opportunities.json");
    let export = export.to_str().unwrap();
    // Its own task queue, no worker: this is about who gets started.
    let queue = unique("import");
    let run = || {
        let output = stack.handoff_with(
            &[
                "deal",
                "import",
                "--format",
                "salesforce-json",
                export,
                "--json",
            ],
            &[
                ("HANDOFF_TASK_QUEUE", &queue),
                (
                    "HANDOFF_DATABASE_URL",
                    &format!("sqlite://{}/{queue}.db", stack.dir.display()),
                ),
            ],
        );
        assert!(output.status.success(), "{}", describe(&output));
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    let first = run();
    assert_eq!(
        (
            first["read"].as_u64(),
            first["started"].as_u64(),
            first["skipped"].as_u64()
        ),
        (Some(50), Some(3), Some(47))
    );
    let second = run();
    assert_eq!(
        (second["started"].as_u64(), second["existing"].as_u64()),
        (Some(0), Some(3))
    );
    // Exactly the Closed/Won records, waiting for a worker on their queue.
    let listed: Vec<Value> = wait_until("the imported deals in visibility", QUICK, || {
        let rows: Vec<Value> =
            serde_json::from_str(&stack.ok(&["deal", "list", "--json", "--limit", "10000"]))
                .ok()?;
        let ours: Vec<Value> = rows
            .into_iter()
            .filter(|r| {
                r["source"] == "salesforce"
                    && r["deal_id"]
                        .as_str()
                        .is_some_and(|d| d.starts_with("OpportunityRef"))
            })
            .collect();
        (ours.len() == 3).then_some(ours)
    });
    assert_eq!(
        keys(&listed, "deal_id"),
        ["OpportunityRef20", "OpportunityRef39", "OpportunityRef50"]
    );
}

#[test]
fn an_import_counts_invalid_records_and_exits_1() {
    let stack = stack();
    let id = unique("invalid");
    let export = json!({ "records": [
        { "attributes": { "type": "Opportunity", "referenceId": id }, "Name": "No account",
          "StageName": "Closed Won", "CloseDate": "2026-12-01", "AccountId": "@Nowhere" },
        { "attributes": { "type": "Opportunity", "referenceId": format!("{id}-b") }, "Name": "Bad date",
          "StageName": "Closed Won", "CloseDate": "soon", "Account": { "Name": "X" } },
        { "attributes": { "type": "Opportunity", "referenceId": format!("{id}-c") }, "Name": "Open",
          "StageName": "Prospecting", "CloseDate": "2026-12-01" }
    ]});
    let file = stack.write_json(&export);
    let output = stack.handoff(&[
        "deal",
        "import",
        "--format",
        "salesforce-json",
        file.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        (
            report["invalid"].as_u64(),
            report["skipped"].as_u64(),
            report["started"].as_u64()
        ),
        (Some(2), Some(1), Some(0))
    );
    let messages: Vec<&str> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(
        messages[0].contains("account.name") && messages[1].contains("deal.closed_won_at"),
        "{messages:?}"
    );
}

#[test]
fn a_worker_killed_mid_handoff_resumes_without_duplicates() {
    let stack = stack();
    let queue = unique("sigkill");
    let ids: Vec<String> = (0..2).map(|_| unique("killed")).collect();
    let mut worker = stack.spawn_worker(&queue);
    for id in &ids {
        stack.start(&bundle(id, "smb"), &["--task-queue", &queue]);
    }
    let first = format!("manual:{}", ids[0]);
    stack.signal(&first, "contract_signed", json!({}), &[]);
    stack.wait_status(&first, "kickoff", QUICK, stage_is("kickoff"));

    // The second deal's day 0 arrives and the worker dies while it acts on it.
    let second = format!("manual:{}", ids[1]);
    stack.signal(&second, "contract_signed", json!({}), &[]);
    worker.kill().unwrap();
    worker.wait().unwrap();
    // Events while no worker runs wait in history.
    for deal in [&first, &second] {
        stack.signal(deal, "kickoff_held", json!({}), &[]);
    }

    let mut worker = stack.spawn_worker(&queue);
    for deal in [&first, &second] {
        let status = stack.wait_status(
            deal,
            "the kickoff met after restart",
            Duration::from_secs(60),
            |s| s["stage"] == "onboarding" && s["tasks"]["created"] == 5,
        );
        assert_eq!(status["milestones"][0]["status"], "met");
        let tasks = wait_until("the kickoff task done", QUICK, || {
            let tasks = stack.tasks(deal);
            (tasks.len() == 5
                && tasks
                    .iter()
                    .any(|t| t["key"] == "kickoff" && t["status"] == "done"))
            .then_some(tasks)
        });
        assert_eq!(
            keys(&tasks, "key"),
            [
                "data_migration",
                "integration_setup",
                "kickoff",
                "success_plan",
                "user_enablement"
            ]
        );
        let notes = stack.notifications(deal);
        assert_eq!(keys(&notes, "kind"), ["milestone_met"], "{notes:#?}");
    }

    // SIGTERM stops it cleanly within its 5 s grace period.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(worker.id() as libc::pid_t, libc::SIGTERM) };
    let exited = wait_until("worker exit", Duration::from_secs(20), || {
        worker.try_wait().unwrap()
    });
    assert!(exited.success(), "{exited:?}");
}

#[test]
fn handoff_dev_refuses_a_port_another_server_holds() {
    let stack = stack();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let ui_port = harness::free_port().to_string();
    let state = tempfile::tempdir().unwrap();
    let output = stack.handoff(&[
        "dev",
        "--port",
        &port,
        "--ui-port",
        &ui_port,
        "--state-dir",
        state.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(64), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("port {port}")) && stderr.contains("--port"),
        "{stderr}"
    );
}

#[test]
fn a_query_without_a_worker_says_that_no_worker_polls_the_queue() {
    let stack = stack();
    let id = unique("no-worker");
    let queue = unique("nobody-polls");
    let file = stack.write_json(&bundle(&id, "smb"));
    let env = [("HANDOFF_TASK_QUEUE", queue.as_str())];
    let started = stack.handoff_with(&["deal", "start", file.to_str().unwrap()], &env);
    assert!(started.status.success(), "{}", describe(&started));
    let output = stack.handoff_with(&["deal", "status", &format!("manual:{id}")], &env);
    assert!(!output.status.success(), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("no worker polls task queue {queue}")),
        "{stderr}"
    );
}
