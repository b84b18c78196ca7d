//! `handoff bench`: full handoffs on a Temporal dev server, driven on a fixed
//! schedule by a load generator, measured from the worker's own accounting
//! and from the histories they leave; beside them the same event profile on
//! a workflow with no business logic, the ceiling the server allows.
//!
//! Everything runs in a scratch directory: its own dev server (SQLite file),
//! a `handoff worker` process and a ceiling worker process, both this binary.

mod ceiling;
mod measure;
mod schedule;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng as _, SeedableRng as _};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::{Value, json};
use temporalio_client::Client;
use temporalio_common::protos::temporal::api::enums::v1::EventType;
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;

use handoff_workflows::bundle::ValidBundle;
use handoff_workflows::ceiling::{CEILING_WORKFLOW_TYPE, CeilingInput};

use crate::cli::BenchArgs;
use crate::exit::Exit;
use crate::temporal::{self, Delivered, StartOptions, Target};

pub(crate) use ceiling::run_ceiling_worker;
use measure::{Process, percentile};
use schedule::{Pace, Step, schedule};

const HANDOFF_QUEUE: &str = "bench-handoff";
const CEILING_QUEUE: &str = "bench-ceiling";
/// Wall time allowed between the business instant an event names and its
/// send, for the workflow's first task to anchor its business clock.
const SLACK: Duration = Duration::from_millis(250);
/// Sends in flight at once.
const CONCURRENCY: usize = 48;

/// Runs the benchmark and prints the report.
pub(crate) async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let scratch = std::env::temp_dir().join(format!("handoff-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)
        .map_err(|e| Exit::config(format!("cannot create {}: {e}", scratch.display())))?;
    // Ctrl-C or SIGTERM drops the run, and with it the server and workers
    // (each killed on drop), so nothing is left running.
    let result = tokio::select! {
        result = run_in(args, &scratch) => result,
        () = crate::worker::wait_for_shutdown(None) => {
            Err(Exit::runtime("interrupted; the scratch server and workers are stopped"))
        }
    };
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

async fn run_in(args: &BenchArgs, scratch: &Path) -> anyhow::Result<()> {
    let binary = crate::dev::temporal_binary()?;
    let port = free_port()?;
    let address = format!("127.0.0.1:{port}");
    let mut server = spawn_server(&binary, port, scratch)?;
    let client =
        crate::dev::wait_until_ready(&address, &mut server, &scratch.join("temporal.log")).await?;
    eprintln!(
        "dev server ready at {address} (SQLite file in {})",
        scratch.display()
    );

    let exe = std::env::current_exe().context("locating this binary")?;
    let worker_metrics = format!("127.0.0.1:{}", free_port()?);
    let mut worker = spawn_worker(&exe, &address, scratch, args.open + 2000, &worker_metrics)?;
    let mut ceiling = spawn_ceiling_worker(&exe, &address, scratch)?;
    let worker_log = scratch.join("worker.log");
    wait_for_log(&worker_log, "worker started").await?;
    wait_for_log(&scratch.join("ceiling.log"), "ceiling worker started").await?;
    let process = Process::new(worker.id().context("the worker has no pid")?);
    let baseline_rss = process.rss_kib();

    let mut report = Report {
        database: "SQLite file (temporal server start-dev --db-filename)".to_owned(),
        deals: args.deals,
        seed: args.seed,
        time_scale: args.time_scale,
        ..Report::default()
    };

    eprintln!("counting schedule: {} handoffs", args.deals);
    let deals = synthetic_deals(args.seed, args.deals, "count");
    let before = Outcomes::read(&worker_metrics).await?;
    let counting = drive(
        &client,
        &deals,
        args,
        Pace::Counting,
        Kind::Handoff,
        &process,
    )
    .await?;
    report.handoffs_per_second = counting.per_second();
    report.workflow_tasks_per_second = counting.tasks_per_second();
    report.cpu_ms_per_handoff = counting.cpu_seconds * 1000.0 / counting.completed.max(1) as f64;
    report.cpu_ms_per_workflow_task =
        counting.cpu_seconds * 1000.0 / counting.workflow_tasks.max(1) as f64;
    report.counting = counting.per_segment.clone();
    report.close_lag_ms = (counting.close_lag_ms_p50, counting.close_lag_ms_p99);
    report.counting_outcomes = Outcomes::read(&worker_metrics).await?.since(&before);
    if !report.counting_outcomes.as_scheduled(args.deals) {
        eprintln!(
            "warning: the counting run did not go as scheduled ({}); its numbers describe another schedule",
            report.counting_outcomes
        );
    }

    eprintln!("breached schedule: {} handoffs", args.breached);
    let before = Outcomes::read(&worker_metrics).await?;
    let breached_deals = synthetic_deals(args.seed + 1, args.breached, "late");
    let breached = drive(
        &client,
        &breached_deals,
        args,
        Pace::Breached,
        Kind::Handoff,
        &process,
    )
    .await?;
    report.breached = breached.per_segment.clone();
    report.breached_outcomes = Outcomes::read(&worker_metrics).await?.since(&before);

    // The ceiling's profile: the counting run's average per handoff.
    let per = |total: u64| (total as f64 / counting.completed.max(1) as f64).round() as u32;
    let profile = CeilingInput {
        signals: 0,
        activities: per(counting.activities),
        timers: per(counting.timers),
        upserts: per(counting.upserts),
        timer_seconds: 3600,
    };
    report.ceiling_profile = format!(
        "{} activities, {} timers, {} upserts",
        profile.activities, profile.timers, profile.upserts
    );
    eprintln!("ceiling: the same schedule on {CEILING_WORKFLOW_TYPE}");
    let ceiling_deals = synthetic_deals(args.seed, args.deals, "ceil");
    let ceiling_run = drive(
        &client,
        &ceiling_deals,
        args,
        Pace::Counting,
        Kind::Ceiling(profile),
        &Process::new(ceiling.id().context("the ceiling worker has no pid")?),
    )
    .await?;
    report.ceiling_handoffs_per_second = ceiling_run.per_second();
    report.ceiling_cpu_ms_per_workflow_task =
        ceiling_run.cpu_seconds * 1000.0 / ceiling_run.workflow_tasks.max(1) as f64;
    report.ceiling_close_lag_ms = (ceiling_run.close_lag_ms_p50, ceiling_run.close_lag_ms_p99);
    report.throughput_ratio =
        report.handoffs_per_second / report.ceiling_handoffs_per_second.max(f64::EPSILON);

    eprintln!("latency: {} signals", args.latency_samples);
    let latencies = latency(&client, args.latency_samples).await?;
    report.signal_to_status_ms_p50 = percentile(&latencies, 0.50);
    report.signal_to_status_ms_p99 = percentile(&latencies, 0.99);

    if args.open > 0 {
        eprintln!("memory: {} open handoffs", args.open);
        let before = process.rss_kib();
        open_handoffs(&client, args.open, &process).await?;
        let after = process.rss_kib();
        report.open_handoffs = args.open;
        report.rss_kib_per_open_handoff = (after.saturating_sub(before)) as f64 / args.open as f64;
        report.rss_mib_with_open_handoffs = after as f64 / 1024.0;
    }
    report.baseline_rss_mib = baseline_rss as f64 / 1024.0;
    report.peak_rss_mib = process.peak_rss_kib() as f64 / 1024.0;

    eprintln!("replay: recorded histories in {}", args.histories.display());
    (report.replay, report.replay_shortest) = measure::replay_times(&args.histories).await?;

    for child in [&mut worker, &mut ceiling] {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    let _ = server.start_kill();
    let _ = server.wait().await;

    std::fs::create_dir_all(&args.out)
        .map_err(|e| Exit::config(format!("cannot create {}: {e}", args.out.display())))?;
    let markdown = report.markdown();
    std::fs::write(
        args.out.join("bench.json"),
        serde_json::to_vec_pretty(&report)?,
    )?;
    std::fs::write(args.out.join("bench.md"), &markdown)?;
    println!("{markdown}");
    eprintln!(
        "report written to {}/bench.json and bench.md",
        args.out.display()
    );
    Ok(())
}

/// What to start for each deal.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Handoff,
    Ceiling(CeilingInput),
}

/// One synthetic deal.
#[derive(Debug, Clone)]
struct Deal {
    id: String,
    segment: &'static str,
    amount: u64,
}

/// `n` deals across segments, the same for the same seed.
fn synthetic_deals(seed: u64, n: usize, prefix: &str) -> Vec<Deal> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let roll: f64 = rng.random();
            let (segment, low, high) = if roll < 0.5 {
                ("smb", 5_000, 50_000)
            } else if roll < 0.8 {
                ("mid_market", 50_000, 250_000)
            } else {
                ("enterprise", 250_000, 2_000_000)
            };
            Deal {
                id: format!("{prefix}-{seed}-{i:05}"),
                segment,
                amount: rng.random_range(low..high),
            }
        })
        .collect()
}

fn bundle_of(deal: &Deal, closed_won_at: DateTime<Utc>) -> Value {
    json!({
        "deal": { "source": "bench", "id": deal.id, "name": "Synthetic rollout", "amount": deal.amount,
                  "currency": "USD", "segment": deal.segment,
                  "closed_won_at": closed_won_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true) },
        "account": { "name": "Synthetic Corp", "domain": "example.com", "industry": "Logistics" },
        "team": { "timezone": "America/New_York", "calendar": "US" },
        "use_case": "Real-time sync",
        "success_metrics": [ { "name": "sync latency", "target": "5", "unit": "minutes" } ],
        "value_timeline": { "expected_ttfv_days": 45 },
        "terms": { "security_review_required": deal.segment == "enterprise" },
        "owners": { "account_executive": "ae-01", "sales_engineer": "se-02", "handoff_owner": "ho-03",
                    "onboarding_manager": "om-04", "customer_success_manager": "csm-05" }
    })
}

/// One deal's part of the load: its start, then its schedule.
struct DealPlan {
    target: Target,
    options: StartOptions,
    wall_start: SystemTime,
    bundle: Value,
    steps: Vec<Step>,
}

impl DealPlan {
    /// Starts the deal, then sends each step once the handoff's business
    /// clock, anchored on its first workflow task, has reached the step's
    /// instant (a signal whose `at` is later than the handoff's business
    /// now is refused, so a clock anchored on the intended start would turn
    /// any start delay into refused signals and a different schedule).
    async fn send(
        self,
        client: &Client,
        gate: &Semaphore,
        progress: &ProgressBar,
        scale: f64,
    ) -> anyhow::Result<()> {
        sleep_until(self.wall_start).await;
        {
            let _permit = gate.acquire().await?;
            let payload = json!({ "bundle": self.bundle });
            let _: Delivered = temporal::signal_with_start(
                client,
                &self.target,
                "closed_won",
                &payload,
                &self.options,
            )
            .await?;
        }
        progress.inc(1);
        let anchor = first_task_time(client, &self.target.workflow_id).await?;
        let business_anchor = DateTime::<Utc>::from(anchor);
        for step in self.steps {
            let ahead = (step.at - business_anchor).to_std().unwrap_or_default();
            sleep_until(anchor + ahead.div_f64(scale) + SLACK).await;
            let _permit = gate.acquire().await?;
            temporal::signal(
                client,
                &self.target.workflow_id,
                step.signal,
                &step.payload,
                None,
            )
            .await?;
            progress.inc(1);
        }
        Ok(())
    }
}

/// The start of the task that the first `WorkflowTaskCompleted` completes.
fn anchor_of(events: &[(EventType, Option<SystemTime>)]) -> Option<SystemTime> {
    let mut started = None;
    for (kind, at) in events {
        match kind {
            EventType::WorkflowTaskStarted => started = *at,
            EventType::WorkflowTaskCompleted => return started,
            _ => {}
        }
    }
    None
}

async fn sleep_until(wall: SystemTime) {
    if let Ok(wait) = wall.duration_since(SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
}

/// When the workflow's first completed task started: the instant its
/// business clock counts from (an attempt that timed out or failed does not
/// count; its retry starts the clock).
async fn first_task_time(client: &Client, workflow_id: &str) -> anyhow::Result<SystemTime> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let events = temporal::history_event_types(client, workflow_id).await?;
        if let Some(at) = anchor_of(&events) {
            return Ok(at);
        }
        if Instant::now() > deadline {
            return Err(Exit::runtime(format!(
                "{workflow_id} got no workflow task within 2 minutes of its start"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What one driven run measured.
#[derive(Debug, Default)]
struct Run {
    completed: usize,
    wall_seconds: f64,
    cpu_seconds: f64,
    workflow_tasks: u64,
    signals: u64,
    activities: u64,
    timers: u64,
    upserts: u64,
    /// From the last signal to the close, per handoff.
    close_lag_ms_p50: f64,
    close_lag_ms_p99: f64,
    per_segment: BTreeMap<String, Actions>,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.completed as f64 / self.wall_seconds.max(f64::EPSILON)
    }

    fn tasks_per_second(&self) -> f64 {
        self.workflow_tasks as f64 / self.wall_seconds.max(f64::EPSILON)
    }
}

/// Average history events and billable actions of one segment's handoffs.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Actions {
    handoffs: usize,
    history_events: f64,
    billable_actions: f64,
    starts: f64,
    signals: f64,
    timers: f64,
    activities: f64,
    updates: f64,
    upserts: f64,
    workflow_tasks: f64,
}

/// Starts every deal at its instant, sends its schedule, waits for every
/// handoff to end and reads their histories.
async fn drive(
    client: &Client,
    deals: &[Deal],
    args: &BenchArgs,
    pace: Pace,
    kind: Kind,
    process: &Process,
) -> anyhow::Result<Run> {
    let scale = f64::from(args.time_scale);
    // Starts spread over a second per 100 deals, from a moment from now.
    let origin = SystemTime::now() + Duration::from_secs(1);
    let mut plans = Vec::new();
    let mut targets = Vec::new();
    let mut events = 0u64;
    for (index, deal) in deals.iter().enumerate() {
        let wall_start = origin + Duration::from_millis(index as u64 * 10);
        let business_start = DateTime::<Utc>::from(wall_start);
        let bundle_json = bundle_of(deal, business_start);
        let bundle = ValidBundle::from_value(bundle_json.clone())
            .map_err(|e| Exit::runtime(format!("synthetic bundle refused: {e}")))?;
        let steps: Vec<Step> =
            schedule(&bundle, deal.segment, business_start, pace).ok_or_else(|| {
                Exit::runtime(format!("no schedule completes a {} handoff", deal.segment))
            })?;
        let workflow_id = match kind {
            Kind::Handoff => handoff_workflows::identity::workflow_id("bench", &deal.id),
            Kind::Ceiling(_) => format!("bench-ceiling-{}", deal.id),
        };
        let target = Target {
            workflow_id,
            source: "bench".to_owned(),
            deal_id: deal.id.clone(),
        };
        let options = StartOptions {
            task_queue: match kind {
                Kind::Ceiling(_) => CEILING_QUEUE.to_owned(),
                Kind::Handoff => HANDOFF_QUEUE.to_owned(),
            },
            time_scale: args.time_scale,
            other_workflow: match kind {
                Kind::Ceiling(profile) => Some((
                    CEILING_WORKFLOW_TYPE.to_owned(),
                    json!(CeilingInput {
                        signals: steps.len() as u32 + 1,
                        ..profile
                    }),
                )),
                Kind::Handoff => None,
            },
            ..StartOptions::default()
        };
        events += 1 + steps.len() as u64;
        targets.push(target.clone());
        plans.push(DealPlan {
            target,
            options,
            wall_start,
            bundle: bundle_json,
            steps,
        });
    }

    let progress = progress_bar(events, "events");
    let cpu_before = process.cpu_seconds();
    let gate = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for plan in plans {
        let (client, gate, progress) = (client.clone(), gate.clone(), progress.clone());
        tasks.spawn(async move { plan.send(&client, &gate, &progress, scale).await });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    progress.finish_and_clear();

    // Every handoff ends shortly after its last event.
    let waiting = progress_bar(deals.len() as u64, "handoffs ended");
    let mut run = Run::default();
    let mut last_close = origin;
    let mut lags = Vec::new();
    for (index, target) in targets.iter().enumerate() {
        let (types, closed, lag) = wait_closed(client, &target.workflow_id).await?;
        waiting.inc(1);
        last_close = last_close.max(closed);
        lags.push(lag.as_secs_f64() * 1000.0);
        let counts = count(&types);
        run.completed += 1;
        run.workflow_tasks += counts.workflow_tasks as u64;
        run.signals += counts.signals as u64;
        run.activities += counts.activities as u64;
        run.timers += counts.timers as u64;
        run.upserts += counts.upserts as u64;
        let entry = run
            .per_segment
            .entry(deals[index].segment.to_owned())
            .or_default();
        entry.add(&counts);
    }
    waiting.finish_and_clear();
    run.cpu_seconds = process.cpu_seconds() - cpu_before;
    run.close_lag_ms_p50 = percentile(&lags, 0.5);
    run.close_lag_ms_p99 = percentile(&lags, 0.99);
    run.wall_seconds = last_close
        .duration_since(origin)
        .unwrap_or_default()
        .as_secs_f64();
    for actions in run.per_segment.values_mut() {
        actions.average();
    }
    Ok(run)
}

/// Waits until a workflow's history ends with its close; returns its event
/// types, when it closed, and how long after its last signal.
async fn wait_closed(
    client: &Client,
    workflow_id: &str,
) -> anyhow::Result<(Vec<EventType>, SystemTime, Duration)> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let events = temporal::history_event_types(client, workflow_id).await?;
        if let Some((last, Some(closed))) = events.last().copied()
            && matches!(
                last,
                EventType::WorkflowExecutionCompleted
                    | EventType::WorkflowExecutionFailed
                    | EventType::WorkflowExecutionCanceled
                    | EventType::WorkflowExecutionTerminated
            )
        {
            let last_signal = events
                .iter()
                .filter(|(t, _)| *t == EventType::WorkflowExecutionSignaled)
                .filter_map(|(_, at)| *at)
                .max()
                .unwrap_or(closed);
            let lag = closed.duration_since(last_signal).unwrap_or_default();
            return Ok((events.into_iter().map(|(t, _)| t).collect(), closed, lag));
        }
        if Instant::now() > deadline {
            return Err(Exit::runtime(format!(
                "{workflow_id} did not end within 5 minutes of its last event"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Counts of one history.
#[derive(Debug, Default)]
struct Counts {
    events: usize,
    starts: usize,
    signals: usize,
    timers: usize,
    activities: usize,
    updates: usize,
    upserts: usize,
    workflow_tasks: usize,
}

fn count(types: &[EventType]) -> Counts {
    let mut counts = Counts {
        events: types.len(),
        ..Counts::default()
    };
    for t in types {
        match t {
            EventType::WorkflowExecutionStarted => counts.starts += 1,
            EventType::WorkflowExecutionSignaled => counts.signals += 1,
            EventType::TimerStarted => counts.timers += 1,
            EventType::ActivityTaskScheduled => counts.activities += 1,
            EventType::WorkflowExecutionUpdateAccepted => counts.updates += 1,
            EventType::UpsertWorkflowSearchAttributes => counts.upserts += 1,
            EventType::WorkflowTaskCompleted => counts.workflow_tasks += 1,
            _ => {}
        }
    }
    counts
}

impl Actions {
    fn add(&mut self, counts: &Counts) {
        self.handoffs += 1;
        self.history_events += counts.events as f64;
        self.starts += counts.starts as f64;
        self.signals += counts.signals as f64;
        self.timers += counts.timers as f64;
        self.activities += counts.activities as f64;
        self.updates += counts.updates as f64;
        self.upserts += counts.upserts as f64;
        self.workflow_tasks += counts.workflow_tasks as f64;
    }

    fn average(&mut self) {
        let n = self.handoffs.max(1) as f64;
        for value in [
            &mut self.history_events,
            &mut self.starts,
            &mut self.signals,
            &mut self.timers,
            &mut self.activities,
            &mut self.updates,
            &mut self.upserts,
            &mut self.workflow_tasks,
        ] {
            *value /= n;
        }
        self.billable_actions = self.starts
            + self.signals
            + self.timers
            + self.activities
            + self.updates
            + self.upserts;
    }
}

/// Milliseconds from a signal sent to `status` showing it, for `samples`
/// fresh handoffs at time scale 1.
async fn latency(client: &Client, samples: usize) -> anyhow::Result<Vec<f64>> {
    let deals = synthetic_deals(99, samples, "lat");
    let mut targets = Vec::new();
    for deal in &deals {
        let smb = Deal {
            segment: "smb",
            ..deal.clone()
        };
        let target = Target {
            workflow_id: handoff_workflows::identity::workflow_id("bench", &smb.id),
            source: "bench".to_owned(),
            deal_id: smb.id.clone(),
        };
        let options = StartOptions {
            task_queue: HANDOFF_QUEUE.to_owned(),
            time_scale: 1,
            ..StartOptions::default()
        };
        let payload = json!({ "bundle": bundle_of(&smb, Utc::now()) });
        temporal::signal_with_start(client, &target, "closed_won", &payload, &options).await?;
        targets.push(target);
    }
    let progress = progress_bar(samples as u64, "signals");
    let mut latencies = Vec::new();
    for target in &targets {
        // The plan first, so the measured signal is the only change.
        poll_status(client, &target.workflow_id, |s| s["playbook"].is_object()).await?;
        let sent = Instant::now();
        temporal::signal(
            client,
            &target.workflow_id,
            "contract_signed",
            &json!({}),
            None,
        )
        .await?;
        poll_status(client, &target.workflow_id, |s| {
            s["gates"]["signature"]["status"] == "passed"
        })
        .await?;
        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(latencies)
}

async fn poll_status(
    client: &Client,
    workflow_id: &str,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(status) = temporal::query_status(client, workflow_id).await
            && done(&serde_json::to_value(&status)?)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Exit::runtime(format!(
                "{workflow_id} did not get there in 60 s"
            )));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Starts `n` handoffs that stay open (time scale 1, deadlines days away)
/// and waits until the worker has settled with all of them cached.
async fn open_handoffs(client: &Client, n: usize, process: &Process) -> anyhow::Result<()> {
    let deals = synthetic_deals(1234, n, "open");
    let progress = progress_bar(n as u64, "handoffs opened");
    let gate = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for deal in deals {
        let permit = gate.clone().acquire_owned().await?;
        let (client, progress) = (client.clone(), progress.clone());
        tasks.spawn(async move {
            let target = Target {
                workflow_id: handoff_workflows::identity::workflow_id("bench", &deal.id),
                source: "bench".to_owned(),
                deal_id: deal.id.clone(),
            };
            let options = StartOptions {
                task_queue: HANDOFF_QUEUE.to_owned(),
                time_scale: 1,
                ..StartOptions::default()
            };
            let payload = json!({ "bundle": bundle_of(&deal, Utc::now()) });
            let result =
                temporal::signal_with_start(&client, &target, "closed_won", &payload, &options)
                    .await;
            drop(permit);
            progress.inc(1);
            result.map(|_| ())
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    progress.finish_and_clear();
    // Settled: three quiet seconds in a row (under 5 % of a core).
    let mut quiet = 0;
    let mut last = process.cpu_seconds();
    let deadline = Instant::now() + Duration::from_secs(600);
    while quiet < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = process.cpu_seconds();
        quiet = if now - last < 0.05 { quiet + 1 } else { 0 };
        last = now;
    }
    Ok(())
}

fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!("{{bar:40}} {{pos}}/{{len}} {what} {{elapsed}}"))
            .expect("the template is valid"),
    );
    bar
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn spawn_server(binary: &Path, port: u16, scratch: &Path) -> anyhow::Result<Child> {
    let log = std::fs::File::create(scratch.join("temporal.log"))?;
    let mut command = crate::dev::server_command(binary, port, &scratch.join("temporal.db"));
    command.args(["--headless", "--log-level", "error"]);
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    command
        .spawn()
        .map_err(|e| Exit::config(format!("cannot start {}: {e}", binary.display())))
}

fn spawn_worker(
    exe: &Path,
    address: &str,
    scratch: &Path,
    cache: usize,
    metrics: &str,
) -> anyhow::Result<Child> {
    let log = std::fs::File::create(scratch.join("worker.log"))?;
    let mut command = Command::new(exe);
    command
        .arg("worker")
        .env("TEMPORAL_ADDRESS", address)
        .env("HANDOFF_TASK_QUEUE", HANDOFF_QUEUE)
        .env(
            "HANDOFF_DATABASE_URL",
            format!("sqlite://{}/ledger.db", scratch.display()),
        )
        .env("HANDOFF_METRICS_ADDR", metrics)
        // Built-in playbooks: the ones the schedules are computed from.
        .env("HANDOFF_PLAYBOOK_DIR", scratch.join("no-playbooks"))
        .env("HANDOFF_MAX_CACHED_WORKFLOWS", cache.to_string())
        .env("HANDOFF_LOG_FORMAT", "json")
        .env("RUST_LOG", "warn,handoff=info")
        .env_remove("HANDOFF_CONFIG")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    command.spawn().context("starting the worker")
}

fn spawn_ceiling_worker(exe: &Path, address: &str, scratch: &Path) -> anyhow::Result<Child> {
    let log = std::fs::File::create(scratch.join("ceiling.log"))?;
    let mut command = Command::new(exe);
    command
        .arg("bench-ceiling-worker")
        .env("TEMPORAL_ADDRESS", address)
        .env("HANDOFF_TASK_QUEUE", CEILING_QUEUE)
        .env_remove("HANDOFF_CONFIG")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    command.spawn().context("starting the ceiling worker")
}

async fn wait_for_log(log: &Path, needle: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(needle) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Exit::runtime(format!(
                "no {needle:?} in {} within 60 s:\n{}",
                log.display(),
                text.lines().rev().take(10).collect::<Vec<_>>().join("\n")
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Everything the benchmark measured.
#[derive(Debug, Default, Serialize)]
struct Report {
    database: String,
    deals: usize,
    seed: u64,
    time_scale: u32,
    handoffs_per_second: f64,
    workflow_tasks_per_second: f64,
    ceiling_handoffs_per_second: f64,
    ceiling_profile: String,
    ceiling_cpu_ms_per_workflow_task: f64,
    throughput_ratio: f64,
    close_lag_ms: (f64, f64),
    ceiling_close_lag_ms: (f64, f64),
    cpu_ms_per_handoff: f64,
    cpu_ms_per_workflow_task: f64,
    baseline_rss_mib: f64,
    peak_rss_mib: f64,
    open_handoffs: usize,
    rss_mib_with_open_handoffs: f64,
    rss_kib_per_open_handoff: f64,
    signal_to_status_ms_p50: f64,
    signal_to_status_ms_p99: f64,
    /// The longest recorded history: a whole 90-day handoff.
    replay: measure::ReplayTime,
    /// The shortest, to tell a replay's fixed cost from its cost per event.
    replay_shortest: measure::ReplayTime,
    counting: BTreeMap<String, Actions>,
    breached: BTreeMap<String, Actions>,
    counting_outcomes: Outcomes,
    breached_outcomes: Outcomes,
}

/// How the handoffs of a run ended and how many signals they refused, from
/// the worker's own metrics: a run is only the schedule it claims when every
/// handoff completed and no signal was refused.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Outcomes {
    /// `handoff_completed_total` by outcome.
    ended: BTreeMap<String, u64>,
    /// `handoff_signals_rejected_total`, all signals.
    signals_refused: u64,
}

impl Outcomes {
    async fn read(metrics: &str) -> anyhow::Result<Self> {
        handoff_activities::sinks::install_crypto_provider();
        let page = reqwest::get(format!("http://{metrics}/metrics"))
            .await
            .context("reading the worker's metrics")?
            .text()
            .await?;
        Ok(Self::parse(&page))
    }

    fn parse(page: &str) -> Self {
        let mut outcomes = Self::default();
        for line in page.lines() {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            if series.starts_with("handoff_signals_rejected_total") {
                outcomes.signals_refused += value as u64;
            } else if series.starts_with("handoff_completed_total{")
                && let Some(outcome) = series
                    .split("outcome=\"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
            {
                *outcomes.ended.entry(outcome.to_owned()).or_default() += value as u64;
            }
        }
        outcomes
    }

    fn since(&self, before: &Self) -> Self {
        Self {
            ended: self
                .ended
                .iter()
                .map(|(k, v)| (k.clone(), v - before.ended.get(k).copied().unwrap_or(0)))
                .filter(|(_, v)| *v > 0)
                .collect(),
            signals_refused: self.signals_refused - before.signals_refused,
        }
    }

    fn as_scheduled(&self, handoffs: usize) -> bool {
        self.signals_refused == 0
            && self.ended.get("completed").copied().unwrap_or(0) == handoffs as u64
            && self.ended.len() <= 1
    }
}

impl std::fmt::Display for Outcomes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ended: Vec<String> = self.ended.iter().map(|(k, v)| format!("{k} {v}")).collect();
        write!(
            f,
            "{}; signals refused {}",
            if ended.is_empty() {
                "none ended".to_owned()
            } else {
                ended.join(", ")
            },
            self.signals_refused
        )
    }
}

impl Report {
    fn markdown(&self) -> String {
        let mut out = format!(
            "| measure | value |\n|---|---|\n\
             | server | Temporal dev server, {} |\n\
             | deals (seed {}) at time scale {} | {} |\n\
             | handoffs completed per second | {:.2} |\n\
             | workflow tasks per second | {:.1} |\n\
             | ceiling (`{CEILING_WORKFLOW_TYPE}`: the same signals, {}) handoffs per second | {:.2} |\n\
             | throughput, share of the ceiling | {:.1} % |\n\
             | last signal → handoff closed, p50 / p99 (ceiling) | {:.0} / {:.0} ms ({:.0} / {:.0} ms) |\n\
             | worker CPU per handoff | {:.1} ms |\n\
             | worker CPU per workflow task (ceiling worker) | {:.3} ms ({:.3} ms) |\n\
             | worker RSS at start / peak | {:.1} MiB / {:.1} MiB |\n\
             | RSS with {} open handoffs cached | {:.1} MiB ({:.1} KiB per handoff) |\n\
             | signal sent → `status` shows it, p50 / p99 | {:.1} ms / {:.1} ms |\n\
             | replay of `{}` ({} events); of `{}` ({} events) | {:.2} ms; {:.2} ms |\n\
             | how the counting (all-breached) handoffs ended | {} ({}) |\n",
            self.database,
            self.seed,
            self.time_scale,
            self.deals,
            self.handoffs_per_second,
            self.workflow_tasks_per_second,
            self.ceiling_profile,
            self.ceiling_handoffs_per_second,
            self.throughput_ratio * 100.0,
            self.close_lag_ms.0,
            self.close_lag_ms.1,
            self.ceiling_close_lag_ms.0,
            self.ceiling_close_lag_ms.1,
            self.cpu_ms_per_handoff,
            self.cpu_ms_per_workflow_task,
            self.ceiling_cpu_ms_per_workflow_task,
            self.baseline_rss_mib,
            self.peak_rss_mib,
            self.open_handoffs,
            self.rss_mib_with_open_handoffs,
            self.rss_kib_per_open_handoff,
            self.signal_to_status_ms_p50,
            self.signal_to_status_ms_p99,
            self.replay.history,
            self.replay.events,
            self.replay_shortest.history,
            self.replay_shortest.events,
            self.replay.ms,
            self.replay_shortest.ms,
            self.counting_outcomes,
            self.breached_outcomes,
        );
        out.push_str(
            "\n| schedule | segment | handoffs | history events | billable actions | starts | signals | timers | activities | updates | upserts | workflow tasks |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for (name, table) in [
            ("counting", &self.counting),
            ("all breached", &self.breached),
        ] {
            for (segment, a) in table {
                out.push_str(&format!(
                    "| {name} | {segment} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
                    a.handoffs, a.history_events, a.billable_actions, a.starts, a.signals, a.timers,
                    a.activities, a.updates, a.upserts, a.workflow_tasks
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_anchors_on_the_attempt_that_completed() {
        let at = |s: u64| Some(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        let events = [
            (EventType::WorkflowExecutionStarted, at(1)),
            (EventType::WorkflowTaskScheduled, at(1)),
            (EventType::WorkflowTaskStarted, at(2)),
            (EventType::WorkflowTaskTimedOut, at(12)),
            (EventType::WorkflowTaskScheduled, at(12)),
            (EventType::WorkflowTaskStarted, at(13)),
            (EventType::WorkflowTaskCompleted, at(14)),
        ];
        assert_eq!(anchor_of(&events), at(13));
        assert_eq!(anchor_of(&events[..4]), None, "not completed yet");
    }

    #[test]
    fn outcomes_come_from_the_worker_metrics_and_a_run_counts_as_scheduled_only_when_whole() {
        let page = "# HELP handoff_completed_total x\n\
            handoff_completed_total{outcome=\"completed\",segment=\"smb\"} 3\n\
            handoff_completed_total{outcome=\"completed\",segment=\"enterprise\"} 2\n\
            handoff_completed_total{outcome=\"gate_timeout\",segment=\"smb\"} 1\n\
            handoff_signals_rejected_total{signal=\"contract_signed\"} 1\n\
            handoff_signals_rejected_total{signal=\"kickoff_held\"} 2\n\
            handoff_gate_passed_total{gate=\"signature\",segment=\"smb\"} 9\n";
        let after = Outcomes::parse(page);
        assert_eq!(after.ended.get("completed"), Some(&5));
        assert_eq!(after.ended.get("gate_timeout"), Some(&1));
        assert_eq!(after.signals_refused, 3);
        let before = Outcomes::parse(
            "handoff_completed_total{outcome=\"gate_timeout\",segment=\"smb\"} 1\n\
             handoff_signals_rejected_total{signal=\"kickoff_held\"} 3\n",
        );
        let run = after.since(&before);
        assert_eq!(run.to_string(), "completed 5; signals refused 0");
        assert!(run.as_scheduled(5));
        assert!(!run.as_scheduled(6));
        assert!(
            !after.as_scheduled(6),
            "a timed-out gate or a refused signal is not the schedule"
        );
    }
}
