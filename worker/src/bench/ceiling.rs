//! The ceiling worker: `BenchCeiling` and its no-op activity on their own
//! task queue, in a process of their own like the handoff worker.
// The activity macro names each activity with a constant this binary never reads.
#![allow(dead_code)]

use std::sync::Arc;

use anyhow::Context as _;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use temporalio_sdk::runtime::RuntimeOptions;
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use tracing::info;

use handoff_workflows::ceiling::CeilingWorkflow;

use crate::config::Settings;
use crate::temporal;

/// The no-op activity of `BenchCeiling`.
pub(crate) struct Noop;

#[activities]
impl Noop {
    #[activity(name = "bench_noop")]
    pub(crate) async fn noop(
        self: Arc<Self>,
        _ctx: ActivityContext,
        step: u32,
    ) -> Result<u32, ActivityError> {
        Ok(step)
    }
}

/// Runs the ceiling worker until it is killed.
pub(crate) async fn run_ceiling_worker(settings: &Settings) -> anyhow::Result<()> {
    let client = temporal::connect(None).await?;
    let runtime = Runtime::from_current_tokio(
        RuntimeOptions::builder()
            .build()
            .map_err(|e| anyhow::anyhow!("runtime options: {e}"))?,
    )
    .context("creating the Temporal runtime")?;
    let options = WorkerOptions::new(settings.task_queue.clone())
        .register_workflow::<CeilingWorkflow>()
        .context("registering BenchCeiling")?
        .register_activities(Noop)
        .max_cached_workflows(settings.max_cached_workflows)
        .build();
    let mut worker = Worker::new(&runtime, client, options).context("creating the worker")?;
    info!(task_queue = %settings.task_queue, "ceiling worker started");
    eprintln!("ceiling worker started on {}", settings.task_queue);
    worker.run().await.context("the ceiling worker failed")?;
    Ok(())
}
