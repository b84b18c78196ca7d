//! `handoff_open{stage}` and `handoff_due_within_24h`, from a periodic
//! visibility count.
//!
//! Gauges of waiting handoffs cannot come from workflow code: a handoff that
//! sleeps for weeks runs no code. Visibility knows every running handoff,
//! whichever replica last ran it, so every replica reports the same numbers;
//! dashboards take `max` across replicas. Counts lag visibility by seconds.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use temporalio_client::{Client, WorkflowCountOptions};
use tracing::{debug, warn};

use handoff_workflows::deal_handoff::WORKFLOW_TYPE;

use crate::metrics::{BusinessMetrics, OPEN_STAGES};

/// How often the counts are refreshed.
pub(crate) const INTERVAL: Duration = Duration::from_secs(30);

/// Counts now, then every [`INTERVAL`], until the process ends.
pub(crate) fn spawn(client: Client, task_queue: String, metrics: BusinessMetrics) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(INTERVAL);
        loop {
            ticks.tick().await;
            if let Err(error) = refresh(&client, &task_queue, &metrics).await {
                warn!(error = %error, "visibility count failed; gauges keep their last values");
            }
        }
    });
}

async fn refresh(
    client: &Client,
    task_queue: &str,
    metrics: &BusinessMetrics,
) -> anyhow::Result<()> {
    let running = running_query(task_queue);
    for stage in OPEN_STAGES {
        let query = format!("{running} AND HandoffStage = '{stage}'");
        let count = client
            .count_workflows(query, WorkflowCountOptions::default())
            .await?;
        metrics.set_open(stage, count.count() as i64);
    }
    let now = Utc::now();
    let from = now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let until = (now + chrono::Duration::hours(24)).to_rfc3339_opts(SecondsFormat::Secs, true);
    // A paused handoff keeps its last NextDeadline (it is never unset), so
    // only deadlines still ahead count.
    let due = client
        .count_workflows(
            format!("{running} AND NextDeadline > '{from}' AND NextDeadline <= '{until}'"),
            WorkflowCountOptions::default(),
        )
        .await?;
    metrics.set_due_within_24h(due.count() as i64);
    debug!(due_within_24h = due.count(), "visibility counts refreshed");
    Ok(())
}

/// Running handoffs of this task queue. The queue name is configuration,
/// never user input, but quotes are still refused at start-up.
fn running_query(task_queue: &str) -> String {
    format!(
        "WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus = 'Running' AND TaskQueue = '{task_queue}'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_limited_to_running_handoffs_of_the_queue() {
        assert_eq!(
            running_query("revenue-handoff"),
            "WorkflowType = 'DealHandoff' AND ExecutionStatus = 'Running' AND TaskQueue = 'revenue-handoff'"
        );
    }
}
