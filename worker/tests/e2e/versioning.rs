//! Worker Versioning: two builds of one deployment side by side on the dev
//! server. A handoff started on the old build stays on it (pinned) while new
//! handoffs go to the new build.

use std::process::{Child, Command, Output};
use std::time::Duration;

use serde_json::{Value, json};

use crate::QUICK;
use crate::harness::{Stack, bundle, describe, stack, temporal_bin, unique, wait_until};

/// Runs the Temporal CLI against the stack's server.
fn temporal(stack: &Stack, args: &[&str]) -> Output {
    Command::new(temporal_bin())
        .args(args)
        .args(["--address", &stack.address])
        .output()
        .unwrap()
}

/// Makes `build` the deployment's current version, once the server has seen
/// a worker of that build poll.
fn set_current(stack: &Stack, deployment: &str, build: &str) {
    wait_until(
        &format!("{deployment} {build} to become current"),
        Duration::from_secs(60),
        || {
            let output = temporal(
                stack,
                &[
                    "worker",
                    "deployment",
                    "set-current-version",
                    "--deployment-name",
                    deployment,
                    "--build-id",
                    build,
                    "--yes",
                ],
            );
            output.status.success().then_some(())
        },
    );
}

/// The build a handoff is pinned to, from `temporal workflow describe`.
fn pinned_build(stack: &Stack, workflow_id: &str) -> (String, String) {
    let output = temporal(
        stack,
        &["workflow", "describe", "-w", workflow_id, "-o", "json"],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let described: Value = serde_json::from_slice(&output.stdout).unwrap();
    let info = &described["workflowExecutionInfo"]["versioningInfo"];
    let behavior = info["behavior"].as_str().unwrap_or_default().to_owned();
    let build = info["deploymentVersion"]["buildId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (behavior, build)
}

/// Build ids of the workers that completed each workflow task of a handoff.
fn task_builds(stack: &Stack, workflow_id: &str) -> Vec<String> {
    let output = temporal(
        stack,
        &["workflow", "show", "-w", workflow_id, "-o", "json"],
    );
    assert!(output.status.success(), "{}", describe(&output));
    let history: Value = serde_json::from_slice(&output.stdout).unwrap();
    history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.get("workflowTaskCompletedEventAttributes"))
        .map(|a| {
            a["deploymentVersion"]["buildId"]
                .as_str()
                .unwrap_or("none")
                .to_owned()
        })
        .collect()
}

fn worker(stack: &Stack, queue: &str, deployment: &str, build: &str) -> Child {
    stack.spawn_worker_with(
        queue,
        &[
            ("HANDOFF_DEPLOYMENT_NAME", deployment.to_owned()),
            ("HANDOFF_BUILD_ID", build.to_owned()),
            ("HANDOFF_VERSIONING_BEHAVIOR", "pinned".to_owned()),
        ],
    )
}

#[test]
fn a_handoff_stays_on_the_build_it_started_on_while_new_ones_take_the_new_build() {
    let stack = stack();
    let queue = unique("versions");
    let deployment = unique("handoff");
    let mut old = worker(stack, &queue, &deployment, "build-1");
    set_current(stack, &deployment, "build-1");

    let first = unique("pinned-old");
    stack.start(&bundle(&first, "smb"), &["--task-queue", &queue]);
    stack.signal(
        &format!("manual:{first}"),
        "contract_signed",
        json!({}),
        &[],
    );
    stack.wait_status(&format!("manual:{first}"), "day 0 on build-1", QUICK, |s| {
        s["stage"] == "kickoff"
    });

    let mut new = worker(stack, &queue, &deployment, "build-2");
    set_current(stack, &deployment, "build-2");
    let second = unique("pinned-new");
    stack.start(&bundle(&second, "smb"), &["--task-queue", &queue]);
    stack.signal(
        &format!("manual:{second}"),
        "contract_signed",
        json!({}),
        &[],
    );
    stack.wait_status(
        &format!("manual:{second}"),
        "day 0 on build-2",
        QUICK,
        |s| s["stage"] == "kickoff",
    );

    // The old handoff moves on after the switch, still on its own build.
    stack.signal(&format!("manual:{first}"), "kickoff_held", json!({}), &[]);
    stack.wait_status(&format!("manual:{first}"), "onboarding", QUICK, |s| {
        s["stage"] == "onboarding"
    });

    let first_id = format!("handoff-manual-{first}");
    let second_id = format!("handoff-manual-{second}");
    assert_eq!(
        pinned_build(stack, &first_id),
        (
            "VERSIONING_BEHAVIOR_PINNED".to_owned(),
            "build-1".to_owned()
        )
    );
    assert_eq!(
        pinned_build(stack, &second_id),
        (
            "VERSIONING_BEHAVIOR_PINNED".to_owned(),
            "build-2".to_owned()
        )
    );
    let old_tasks = task_builds(stack, &first_id);
    assert!(old_tasks.len() >= 3, "{old_tasks:?}");
    assert!(old_tasks.iter().all(|b| b == "build-1"), "{old_tasks:?}");
    let new_tasks = task_builds(stack, &second_id);
    assert!(new_tasks.iter().all(|b| b == "build-2"), "{new_tasks:?}");

    for child in [&mut old, &mut new] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
