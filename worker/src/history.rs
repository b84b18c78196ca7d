//! Recorded histories: `handoff history export` saves every run of a handoff
//! in the SDK's replay format, and `handoff replay` runs saved histories
//! against this build's workflow code, so a change that would break
//! in-flight handoffs is caught before a deploy.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use temporalio_client::{
    Client, NamespacedClient, WorkflowExecutionInfo, WorkflowFetchHistoryOptions, WorkflowHistory,
    WorkflowListOptions,
};
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};

use handoff_workflows::deal_handoff::DealHandoffWorkflow;

use crate::codec::Keys;
use crate::exit::Exit;

/// Saves every run of `workflow_id`, oldest first, as `<prefix>.json` (one
/// run) or `<prefix>.run<N>.json` (a continue-as-new chain); returns the files.
pub(crate) async fn export(
    client: &Client,
    workflow_id: &str,
    prefix: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let runs = runs_of(client, workflow_id).await?;
    if runs.is_empty() {
        return Err(Exit::runtime(format!(
            "no handoff {workflow_id}: check the id with `handoff deal list --all`"
        )));
    }
    let mut files = Vec::new();
    for (index, run_id) in runs.iter().enumerate() {
        let history = WorkflowExecutionInfo::builder()
            .namespace(client.namespace())
            .workflow_id(workflow_id)
            .run_id(run_id.clone())
            .build()
            .bind_untyped(client.clone())
            .fetch_history(WorkflowFetchHistoryOptions::default());
        let bytes = history
            .to_json()
            .await
            .map_err(|e| Exit::runtime(format!("fetching history of run {run_id}: {e}")))?;
        let file = if runs.len() == 1 {
            prefix.with_extension("json")
        } else {
            PathBuf::from(format!("{}.run{}.json", prefix.display(), index + 1))
        };
        std::fs::write(&file, bytes)
            .map_err(|e| Exit::runtime(format!("cannot write {}: {e}", file.display())))?;
        files.push(file);
    }
    Ok(files)
}

async fn runs_of(client: &Client, workflow_id: &str) -> anyhow::Result<Vec<String>> {
    let query = format!("WorkflowId = '{}'", workflow_id.replace('\'', ""));
    let mut stream = client.list_workflows(query, WorkflowListOptions::default());
    let mut runs: Vec<(Option<DateTime<Utc>>, String)> = Vec::new();
    while let Some(execution) = stream.next().await {
        let execution =
            execution.map_err(|e| Exit::runtime(format!("listing runs failed: {e}")))?;
        let started = execution.start_time().map(DateTime::<Utc>::from);
        runs.push((started, execution.run_id().to_owned()));
    }
    runs.sort();
    Ok(runs.into_iter().map(|(_, run)| run).collect())
}

/// One history's replay outcome.
#[derive(Debug)]
pub(crate) struct Replayed {
    pub(crate) file: PathBuf,
    pub(crate) failure: Option<String>,
}

/// Replays each file (directories are searched for `*.json`) against this
/// build's `DealHandoff`.
pub(crate) async fn replay(
    paths: &[PathBuf],
    keys: Option<&Keys>,
) -> anyhow::Result<Vec<Replayed>> {
    let files = expand(paths)?;
    let builder = WorkflowReplayerOptions::new()
        .register_workflow::<DealHandoffWorkflow>()
        .map_err(|e| Exit::runtime(format!("registering the workflow for replay: {e}")))?;
    // Histories of encrypted handoffs replay with the same keys.
    let options = match keys {
        Some(keys) => builder.data_converter(keys.data_converter()).build(),
        None => builder.build(),
    };
    let replayer = WorkflowReplayer::new(options)
        .map_err(|e| Exit::runtime(format!("building the replayer: {e}")))?;
    let mut outcomes = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file)
            .map_err(|e| Exit::data(format!("cannot read {}: {e}", file.display())))?;
        let history = WorkflowHistory::from_json(&bytes).map_err(|e| {
            Exit::data(format!(
                "{} is not a history saved by `handoff history export`: {e}",
                file.display()
            ))
        })?;
        let failure = replayer
            .replay_workflow(history)
            .await
            .err()
            .map(|e| e.to_string());
        outcomes.push(Replayed { file, failure });
    }
    Ok(outcomes)
}

fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path)
                .map_err(|e| Exit::data(format!("cannot list {}: {e}", path.display())))?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        return Err(Exit::data("no history files given"));
    }
    Ok(files)
}
