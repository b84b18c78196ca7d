//! Recorded histories: `make histories` records one handoff per path of the
//! schedule into `tests/histories/`, and every test run replays them against
//! this build, so a change that would break handoffs in flight fails here.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Stack, bundle, describe, stack, unique, wait_until};

const LONG: Duration = Duration::from_secs(180);

fn histories_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/histories")
}

#[test]
fn every_recorded_history_replays_against_this_build() {
    let dir = histories_dir();
    let output = std::process::Command::new(crate::harness::BIN)
        .arg("replay")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let replayed = stdout.lines().filter(|l| l.starts_with("ok")).count();
    assert!(replayed >= 8, "expected every path recorded: {stdout}");
}

#[test]
fn a_file_that_is_not_a_history_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("junk.json");
    std::fs::write(&file, b"{\"events\": 5}").unwrap();
    let output = std::process::Command::new(crate::harness::BIN)
        .arg("replay")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(65), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("junk.json"));
}

/// One recorded path: a name, a segment, a time scale and what to send.
struct Path {
    name: &'static str,
    segment: &'static str,
    scale: &'static str,
    max_history_events: Option<&'static str>,
    drive: fn(&Stack, &str),
}

fn waive_rest(stack: &Stack, deal: &str) {
    for milestone in [
        "kickoff",
        "data_mapping",
        "first_integration_test",
        "adoption",
        "first_value",
    ] {
        let data = json!({"milestone": milestone, "reason": "recorded path ends here"}).to_string();
        // Milestones already resolved reject the waiver; that is fine here.
        stack.handoff(&["deal", "update", deal, "waive_milestone", "--data", &data]);
    }
}

fn signed(stack: &Stack, deal: &str) {
    stack.signal(deal, "contract_signed", json!({}), &[]);
    stack.wait_status(deal, "day 0", LONG, |s| !s["day0"].is_null());
}

fn ended(stack: &Stack, deal: &str) -> Value {
    stack.wait_status(deal, "the end", LONG, |s| {
        s["stage"] == "completed" || s["stage"] == "cancelled"
    })
}

const PATHS: [Path; 8] = [
    Path {
        name: "happy",
        segment: "enterprise",
        scale: "3600",
        max_history_events: None,
        drive: |stack, deal| {
            stack.signal(deal, "contract_signed", json!({}), &[]);
            stack.signal(deal, "security_cleared", json!({}), &[]);
            stack.signal(deal, "kickoff_held", json!({}), &[]);
            stack.signal(
                deal,
                "milestone_reached",
                json!({"milestone": "data_mapping"}),
                &[],
            );
            stack.signal(
                deal,
                "milestone_reached",
                json!({"milestone": "first_integration_test"}),
                &[],
            );
            stack.signal(deal, "adoption_reported", json!({"rate": 0.75}), &[]);
            stack.signal(
                deal,
                "milestone_reached",
                json!({"milestone": "first_value", "evidence": "first report shipped"}),
                &[],
            );
        },
    },
    Path {
        name: "breached",
        segment: "enterprise",
        // Two business days a second: day 90 and the close come in about a minute.
        scale: "172800",
        max_history_events: None,
        drive: |stack, deal| {
            stack.signal(deal, "contract_signed", json!({}), &[]);
            stack.signal(deal, "security_cleared", json!({}), &[]);
            stack.wait_status(deal, "kickoff breached", LONG, |s| {
                s["milestones"][0]["status"] == "breached"
            });
            stack.signal(
                deal,
                "escalation_acknowledged",
                json!({"milestone": "kickoff"}),
                &[],
            );
        },
    },
    Path {
        name: "blocked",
        segment: "smb",
        scale: "3600",
        max_history_events: None,
        drive: |stack, deal| {
            signed(stack, deal);
            stack.signal(
                deal,
                "customer_blocked",
                json!({"reason": "security questionnaire"}),
                &[],
            );
            std::thread::sleep(Duration::from_secs(10));
            stack.signal(deal, "customer_unblocked", json!({}), &[]);
            stack.signal(deal, "kickoff_held", json!({}), &[]);
            waive_rest(stack, deal);
        },
    },
    Path {
        name: "extended",
        segment: "mid_market",
        scale: "3600",
        max_history_events: None,
        drive: |stack, deal| {
            signed(stack, deal);
            let status =
                stack.wait_status(deal, "milestones", LONG, |s| s["milestones"][0].is_object());
            let due = chrono::DateTime::parse_from_rfc3339(
                status["milestones"][0]["due_at"].as_str().unwrap(),
            )
            .unwrap()
                + chrono::Duration::days(2);
            let data = json!({"milestone": "kickoff", "new_due": due.to_rfc3339(), "reason": "customer holiday"})
                .to_string();
            stack.ok(&["deal", "update", deal, "extend_deadline", "--data", &data]);
            let reassign = json!({"role": "onboarding_manager", "handle": "om-99"}).to_string();
            stack.ok(&[
                "deal",
                "update",
                deal,
                "reassign_owner",
                "--data",
                &reassign,
            ]);
            stack.signal(deal, "kickoff_held", json!({}), &[]);
            waive_rest(stack, deal);
        },
    },
    Path {
        name: "reopened",
        segment: "smb",
        scale: "3600",
        max_history_events: None,
        drive: |stack, deal| {
            signed(stack, deal);
            stack.signal(deal, "deal_reopened", json!({}), &[]);
            stack.signal(deal, "kickoff_held", json!({}), &[]);
            let id = deal.trim_start_matches("manual:");
            stack.start(&bundle(id, "smb"), &["--time-scale", "3600"]);
            stack.wait_status(deal, "resumed", LONG, |s| s["paused"].is_null());
            waive_rest(stack, deal);
        },
    },
    Path {
        name: "lost",
        segment: "smb",
        scale: "40000",
        max_history_events: None,
        drive: |stack, deal| {
            signed(stack, deal);
            stack.signal(deal, "deal_lost", json!({"reason": "budget cut"}), &[]);
        },
    },
    Path {
        name: "gate-timeout",
        segment: "smb",
        // Ten days a second: 30 business days pass in about four seconds.
        scale: "864000",
        max_history_events: None,
        drive: |_, _| {},
    },
    Path {
        name: "continued",
        segment: "smb",
        scale: "3600",
        max_history_events: Some("40"),
        drive: |stack, deal| {
            signed(stack, deal);
            for key in [
                "kickoff",
                "data_migration",
                "integration_setup",
                "user_enablement",
            ] {
                stack.signal(deal, "task_completed", json!({"key": key}), &[]);
            }
            for n in 0..6 {
                stack.signal(
                    deal,
                    "adoption_reported",
                    json!({"rate": format!("bad-{n}")}),
                    &[],
                );
            }
            waive_rest(stack, deal);
        },
    },
];

/// Records every path into `tests/histories/`; run by `make histories`.
#[test]
#[ignore = "records histories for the replay test; run by `make histories`"]
fn record_histories() {
    let stack = stack();
    let dir = histories_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let handles: Vec<_> = PATHS
        .iter()
        .map(|path| {
            std::thread::spawn(move || {
                let stack = crate::harness::stack();
                let id = unique(path.name);
                let deal = format!("manual:{id}");
                let file = stack.write_json(&bundle(&id, path.segment));
                let mut env = Vec::new();
                if let Some(limit) = path.max_history_events {
                    env.push(("HANDOFF_MAX_HISTORY_EVENTS", limit));
                }
                let output = stack.handoff_with(
                    &[
                        "deal",
                        "start",
                        file.to_str().unwrap(),
                        "--time-scale",
                        path.scale,
                    ],
                    &env,
                );
                assert!(output.status.success(), "{}", describe(&output));
                (path.drive)(stack, &deal);
                let status = ended(stack, &deal);
                (path.name, deal, status)
            })
        })
        .collect();
    for handle in handles {
        let (name, deal, status) = handle.join().unwrap();
        let prefix = histories_dir().join(name);
        for stale in std::fs::read_dir(&dir).unwrap().filter_map(Result::ok) {
            let file_name = stale.file_name().to_string_lossy().into_owned();
            if file_name == format!("{name}.json") || file_name.starts_with(&format!("{name}.run"))
            {
                std::fs::remove_file(stale.path()).unwrap();
            }
        }
        let files = wait_until("the closed run in visibility", LONG, || {
            let output = stack.handoff(&[
                "history",
                "export",
                &deal,
                "--out",
                prefix.to_str().unwrap(),
            ]);
            output
                .status
                .success()
                .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
        });
        println!("{name}: {} ({})", files.trim(), status["stage"]);
    }
}
