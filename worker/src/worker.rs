//! `handoff worker`: polls the task queue until SIGTERM or Ctrl-C.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use temporalio_client::Client;
use temporalio_common::telemetry::metrics::CoreMeter;
use temporalio_common::telemetry::{
    HistogramBucketOverrides, PrometheusExporterOptions, TelemetryOptions,
    start_prometheus_metric_exporter,
};
use temporalio_common::worker::{
    VersioningBehavior, WorkerDeploymentOptions, WorkerDeploymentVersion,
};
use temporalio_sdk::runtime::RuntimeOptions;
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};

use handoff_activities::ledger::Ledger;
use handoff_activities::playbooks::{LivePlaybooks, PlaybookSet};
use handoff_activities::{LedgerActivities, PlanningSettings, effects};
use handoff_workflows::deal_handoff::DealHandoffWorkflow;
use handoff_workflows::observe;

use crate::cli::VersioningArg;
use crate::config::{Settings, Versioning};
use crate::exit::Exit;
use crate::listener::{self, Health};
use crate::metrics::BusinessMetrics;
use crate::{erasure, open_handoffs, temporal};

/// Extra time past the grace period before giving up on a clean shutdown;
/// the SDK's shutdown can hang when the server stops answering.
const SHUTDOWN_MARGIN: Duration = Duration::from_secs(10);

/// Checks the namespace, opens the ledger (sweeping it hourly when a
/// retention period is set), then runs the worker until a shutdown signal
/// (or `stop`) arrives.
pub(crate) async fn run(
    settings: &Settings,
    client: Client,
    stop: Option<tokio::sync::oneshot::Receiver<()>>,
) -> anyhow::Result<()> {
    // Configuration first: a broken playbook never reaches a handoff.
    let playbooks = load_playbooks(settings)?;
    let sinks = settings.sinks.build()?;
    let missing = temporal::missing_search_attributes(&client).await?;
    if !missing.is_empty() {
        return Err(Exit::config(missing_search_attributes_message(&missing)));
    }
    let ledger = Ledger::open(&settings.database_url).await.map_err(|e| {
        Exit::config(format!(
            "cannot open the ledger {}: {e:#}",
            settings.database_url
        ))
    })?;

    let (runtime, health, metrics_addr) = observability(settings, &client).await?;
    info!(
        sinks = %settings.sinks.describe(),
        ledger = ledger.backend(),
        ledger_retention_days = ?settings.ledger_retention_days,
        "delivery configured"
    );
    if let Some(retention_days) = settings.ledger_retention_days {
        erasure::spawn_sweeps(ledger.clone(), retention_days);
    }
    let activities = LedgerActivities::new(
        ledger,
        PlanningSettings {
            bands: settings.bands.clone(),
            fallback_owner: settings.fallback_owner.clone(),
            calendars_dir: settings.playbook_dir.join("calendars"),
        },
        Arc::new(LivePlaybooks::new(playbooks)),
        sinks,
    );
    let options = WorkerOptions::new(settings.task_queue.clone())
        .register_workflow::<DealHandoffWorkflow>()
        .context("registering DealHandoff")?
        .register_activities(activities)
        .graceful_shutdown_period(settings.shutdown_grace)
        .max_cached_workflows(settings.max_cached_workflows)
        .maybe_deployment_options(settings.versioning.as_ref().map(deployment_options))
        .build();
    let mut worker = Worker::new(&runtime, client, options).context("creating the worker")?;
    let shutdown = worker.shutdown_handle();
    match &settings.versioning {
        Some(v) => info!(
            task_queue = %settings.task_queue,
            metrics_addr = %metrics_addr,
            deployment_name = %v.deployment_name,
            build_id = %v.build_id,
            versioning_behavior = ?v.behavior,
            "worker started"
        ),
        None => {
            info!(task_queue = %settings.task_queue, metrics_addr = %metrics_addr, "worker started")
        }
    }

    let grace = settings.shutdown_grace;
    let draining = health.clone();
    let (begun_tx, begun_rx) = tokio::sync::oneshot::channel::<()>();
    let trigger = async move {
        wait_for_shutdown(stop).await;
        info!(grace_seconds = grace.as_secs(), "shutting down");
        draining.set_draining();
        shutdown();
        let _ = begun_tx.send(());
        std::future::pending::<()>().await
    };
    let deadline = async move {
        match begun_rx.await {
            Ok(()) => tokio::time::sleep(grace + SHUTDOWN_MARGIN).await,
            Err(_) => std::future::pending::<()>().await,
        }
    };
    // `Worker::run` is not `Send`, so it is polled here, beside the trigger.
    let run = async {
        health.set_polling();
        worker.run().await
    };
    tokio::select! {
        result = run => match result {
            Ok(()) => {
                info!("worker stopped");
                Ok(())
            }
            Err(e) => Err(Exit::runtime(format!("worker failed: {e}"))),
        },
        () = trigger => unreachable!("the trigger never completes"),
        () = deadline => {
            warn!(grace_seconds = grace.as_secs(), "worker did not stop within the grace period");
            Ok(())
        }
    }
}

/// Reads and validates the playbook directory; every problem is named and
/// the worker does not start.
pub(crate) fn load_playbooks(settings: &Settings) -> anyhow::Result<PlaybookSet> {
    let set = PlaybookSet::load_with(&settings.playbook_dir, settings.directory_file.as_deref())
        .map_err(|error| {
            let problems: Vec<String> = error.problems.iter().map(ToString::to_string).collect();
            Exit::config(format!("{error}:\n{}", problems.join("\n")))
        })?;
    if !set.dir_exists {
        info!(
            playbook_dir = %settings.playbook_dir.display(),
            "no playbook directory: built-in playbooks, no owner directory"
        );
    } else {
        let builtin = set.builtin_segments();
        info!(
            playbook_dir = %settings.playbook_dir.display(),
            builtin_segments = %builtin.join(","),
            owner_directory = set.directory.is_some(),
            "playbooks loaded"
        );
    }
    Ok(set)
}

/// Starts everything operators see of the worker: the SDK runtime with its
/// metrics, the business metrics and their sinks, the visibility gauges and
/// the one listener. Returns the runtime, the health flags and the address
/// the listener bound.
async fn observability(
    settings: &Settings,
    client: &Client,
) -> anyhow::Result<(Runtime, Health, SocketAddr)> {
    let (runtime, sdk_exporter) = runtime()?;
    let business = BusinessMetrics::new();
    // The first worker of the process wins; `handoff dev` runs only one.
    observe::install(Box::new(business.clone()));
    effects::install(Box::new(business.clone()));
    let health = Health::default();
    let metrics_addr = listener::serve(
        settings.metrics_addr,
        health.clone(),
        business.clone(),
        sdk_exporter,
    )
    .await?;
    open_handoffs::spawn(client.clone(), settings.task_queue.clone(), business);
    Ok((runtime, health, metrics_addr))
}

/// The Temporal runtime, with the SDK's metrics on a private loopback port
/// that the listener reads.
fn runtime() -> anyhow::Result<(Runtime, SocketAddr)> {
    let exporter = start_prometheus_metric_exporter(
        PrometheusExporterOptions::builder()
            .socket_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
            .counters_total_suffix(true)
            .unit_suffix(true)
            .use_seconds_for_durations(true)
            .histogram_bucket_overrides(bucket_overrides())
            .build(),
    )
    .map_err(|e| Exit::runtime(format!("cannot start the SDK metrics exporter: {e}")))?;
    let telemetry = TelemetryOptions::builder()
        .metrics(exporter.meter.clone() as Arc<dyn CoreMeter>)
        .build();
    let options = RuntimeOptions::builder()
        .telemetry_options(telemetry)
        .build()
        .map_err(|e| Exit::runtime(format!("runtime options: {e}")))?;
    let runtime = Runtime::from_current_tokio(options).context("creating the Temporal runtime")?;
    Ok((runtime, exporter.bound_addr))
}

/// Histogram buckets (seconds) wide enough for the alert thresholds in
/// `ops/prometheus/`: the defaults stop at 1 s for workflow task execution
/// and about 17 minutes for schedule-to-start, where a quantile can never
/// exceed the top bound. Keys are matched as substrings of the full names,
/// so they are spelled out with the `temporal_` prefix.
fn bucket_overrides() -> HistogramBucketOverrides {
    let schedule_to_start = vec![
        0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0,
    ];
    let overrides = HashMap::from([
        (
            "temporal_workflow_task_schedule_to_start_latency",
            schedule_to_start.clone(),
        ),
        (
            "temporal_activity_schedule_to_start_latency",
            schedule_to_start,
        ),
        (
            "temporal_workflow_task_execution_latency",
            vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0,
            ],
        ),
        (
            "temporal_workflow_task_replay_latency",
            vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0],
        ),
        (
            "temporal_activity_execution_latency",
            vec![
                0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
            ],
        ),
        (
            "temporal_workflow_endtoend_latency",
            vec![
                60.0,
                3600.0,
                86_400.0,
                604_800.0,
                2_592_000.0,
                7_776_000.0,
                15_552_000.0,
            ],
        ),
    ]);
    HistogramBucketOverrides {
        overrides: overrides
            .into_iter()
            .map(|(name, buckets)| (name.to_owned(), buckets))
            .collect(),
    }
}

pub(crate) async fn wait_for_shutdown(stop: Option<tokio::sync::oneshot::Receiver<()>>) {
    let mut terminate =
        signal(SignalKind::terminate()).expect("installing a SIGTERM handler succeeds");
    let stop = async {
        match stop {
            Some(stop) => {
                let _ = stop.await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
        _ = stop => {}
    }
}

/// Opts the worker into Worker Versioning as this build of its deployment.
fn deployment_options(versioning: &Versioning) -> WorkerDeploymentOptions {
    let behavior = match versioning.behavior {
        VersioningArg::Pinned => VersioningBehavior::Pinned,
        VersioningArg::AutoUpgrade => VersioningBehavior::AutoUpgrade,
    };
    WorkerDeploymentOptions::new(
        WorkerDeploymentVersion::builder()
            .deployment_name(versioning.deployment_name.clone())
            .build_id(versioning.build_id.clone())
            .build(),
    )
    .use_worker_versioning(true)
    .default_versioning_behavior(behavior)
    .build()
}

fn missing_search_attributes_message(problems: &[temporal::AttributeProblem]) -> String {
    let mut lines = Vec::new();
    let mut create = Vec::new();
    for problem in problems {
        let (name, kind) = (problem.name, problem.kind);
        match &problem.found {
            None => lines.push(format!("  {name} ({kind}) is missing")),
            Some(found) => {
                lines.push(format!(
                    "  {name} is registered as {found}, but handoffs write it as {kind}"
                ));
                create.push(format!(
                    "  temporal operator search-attribute remove --name {name} --yes"
                ));
            }
        }
        create.push(format!(
            "  temporal operator search-attribute create --name {name} --type {kind}"
        ));
    }
    format!(
        "the namespace's search attributes do not match what the worker needs:\n{}\nfix them with:\n{}\n(`handoff dev` registers them on its own server; removing an attribute needs a server that allows it)",
        lines.join("\n"),
        create.join("\n")
    )
}
