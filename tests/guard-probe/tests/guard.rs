//! Replays every recorded history against a build whose workflow starts
//! with one extra timer: without a patch marker each history must fail as
//! nondeterministic; behind `patched()` each must replay.

use std::path::PathBuf;

use temporalio_client::WorkflowHistory;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};

use handoff_workflows::deal_handoff::DealHandoffWorkflow;

fn histories() -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../histories");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "recorded histories in {}", dir.display());
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn a_changed_command_sequence_needs_a_patch_to_replay() {
    let options = WorkflowReplayerOptions::new()
        .register_workflow::<DealHandoffWorkflow>()
        .unwrap()
        .build();
    let replayer = WorkflowReplayer::new(options).unwrap();
    let patched = cfg!(feature = "patched");
    assert!(
        patched != cfg!(feature = "unpatched"),
        "build with exactly one of the features `patched` and `unpatched`"
    );
    for (path, bytes) in histories() {
        let history = WorkflowHistory::from_json(&bytes).unwrap();
        let outcome = replayer.replay_workflow(history).await;
        if patched {
            assert!(outcome.is_ok(), "{}: {outcome:?}", path.display());
        } else {
            let error = outcome.expect_err(&path.display().to_string()).to_string();
            assert!(error.contains("nondetermin"), "{}: {error}", path.display());
        }
    }
}
