//! `DealHandoff`: the durable workflow of one deal, a thin driver of the engine.
//!
//! Signal handlers decode their raw payloads and apply them to the
//! [`Handoff`] engine at once, queueing the commands it returns. The run loop
//! carries those commands out as activities, publishes search attributes and
//! current details, then sleeps on exactly one timer — to the next business
//! deadline — racing it against new signals. A timer that loses the race is
//! cancelled explicitly, because dropping its future would leave it in history.
// The SDK macros generate a marker constant per method, which cannot carry
// docs of its own.
#![allow(missing_docs)]

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use temporalio_common::RetryPolicy;
use temporalio_common::data_converters::RawValue;
use temporalio_common::search_attributes::{SearchAttributeKey, SearchAttributeUpdate, Timestamp};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityExecutionError, ActivityOptions, CancellableFuture, ContinueAsNewOptions,
    SyncWorkflowContext, TimerOptions, TimerResult, WorkflowCancellationToken, WorkflowContext,
    WorkflowContextView, WorkflowResult, WorkflowTermination,
};

use crate::activity::{HandoffActivities, Notification};
use crate::clock::BusinessClock;
use crate::engine::{Command, Event, Handoff, Stage};
use crate::message::{decode, decode_update};
use crate::status::{Review, Status};

/// Workflow type name, fixed by the product.
pub const WORKFLOW_TYPE: &str = "DealHandoff";

/// `DealId` search attribute.
pub const DEAL_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("DealId");
/// `DealSource` search attribute.
pub const DEAL_SOURCE: SearchAttributeKey<String> = SearchAttributeKey::keyword("DealSource");
/// `Segment` search attribute.
pub const SEGMENT: SearchAttributeKey<String> = SearchAttributeKey::keyword("Segment");
/// `HandoffStage` search attribute.
pub const HANDOFF_STAGE: SearchAttributeKey<String> = SearchAttributeKey::keyword("HandoffStage");
/// `HandoffOwner` search attribute.
pub const HANDOFF_OWNER: SearchAttributeKey<String> = SearchAttributeKey::keyword("HandoffOwner");
/// `AtRisk` search attribute.
pub const AT_RISK: SearchAttributeKey<bool> = SearchAttributeKey::bool("AtRisk");
/// `BreachCount` search attribute.
pub const BREACH_COUNT: SearchAttributeKey<i64> = SearchAttributeKey::int("BreachCount");
/// `NextDeadline` search attribute: the wall instant the next timer fires.
pub const NEXT_DEADLINE: SearchAttributeKey<Timestamp> =
    SearchAttributeKey::datetime("NextDeadline");
/// `DealAmount` search attribute.
pub const DEAL_AMOUNT: SearchAttributeKey<f64> = SearchAttributeKey::float("DealAmount");

/// Every search attribute the workflow writes, with its Temporal type name.
pub const SEARCH_ATTRIBUTES: [(&str, &str); 9] = [
    ("DealId", "Keyword"),
    ("DealSource", "Keyword"),
    ("Segment", "Keyword"),
    ("HandoffStage", "Keyword"),
    ("HandoffOwner", "Keyword"),
    ("AtRisk", "Bool"),
    ("BreachCount", "Int"),
    ("NextDeadline", "Datetime"),
    ("DealAmount", "Double"),
];

/// Header in which clients stamp the wall time (Unix milliseconds) they sent
/// a signal or update; the handoff applies the event as of then.
pub const SENT_AT_HEADER: &str = "handoff-sent-at";

/// History length past which a handoff continues as new when its input sets
/// no limit. The server's own suggestion usually comes first.
pub const DEFAULT_MAX_HISTORY_EVENTS: u32 = 10_000;

/// The workflow's input. The bundle never travels here: it arrives as the
/// `closed_won` signal, so every client can use signal-with-start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandoffInput {
    /// CRM of the deal.
    pub source: String,
    /// Deal id inside the CRM.
    pub deal_id: String,
    /// Business seconds per wall second; 1 in production.
    #[serde(default = "one")]
    pub time_scale: u32,
    /// History length past which the run continues as new; `None` means
    /// [`DEFAULT_MAX_HISTORY_EVENTS`]. Tests set it low.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_history_events: Option<u32>,
    /// The whole state, when this run continues an earlier one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried: Option<Box<Carried>>,
}

impl HandoffInput {
    /// The input of a new handoff.
    pub fn new(source: String, deal_id: String, time_scale: u32) -> Self {
        Self {
            source,
            deal_id,
            time_scale,
            max_history_events: None,
            carried: None,
        }
    }
}

fn one() -> u32 {
    1
}

/// What one run hands the next at continue-as-new.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Carried {
    /// The engine state.
    pub handoff: Handoff,
    /// The business clock, anchored at the first run's first task.
    pub clock: Option<BusinessClock>,
    /// Business now when the run ended.
    pub business_now: DateTime<Utc>,
    /// Search attributes as last upserted (they carry over to the new run).
    pub published: Published,
    /// Runs so far, this one included.
    pub runs: u32,
}

/// Search attribute values as last upserted, to upsert only what changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Published {
    stage: Option<String>,
    segment: Option<String>,
    owner: Option<String>,
    at_risk: Option<bool>,
    breach_count: Option<u32>,
    next_deadline: Option<Option<DateTime<Utc>>>,
    amount: Option<f64>,
    details: Option<String>,
}

/// The `DealHandoff` workflow.
#[workflow]
pub struct DealHandoffWorkflow {
    source: String,
    deal_id: String,
    time_scale: u32,
    max_history_events: u32,
    runs: u32,
    clock: Option<BusinessClock>,
    business_now: DateTime<Utc>,
    handoff: Handoff,
    outbox: VecDeque<Command>,
    revision: u64,
    published: Published,
}

#[workflow_methods]
impl DealHandoffWorkflow {
    /// Builds the initial state from the input, or from the state carried
    /// over from the previous run.
    #[init]
    pub fn new(ctx: &WorkflowContextView, input: HandoffInput) -> Self {
        let max_history_events = input
            .max_history_events
            .unwrap_or(DEFAULT_MAX_HISTORY_EVENTS)
            .max(1);
        let mut state = Self {
            handoff: Handoff::new(
                ctx.workflow_id().to_owned(),
                input.source.clone(),
                input.deal_id.clone(),
            ),
            source: input.source,
            deal_id: input.deal_id,
            time_scale: input.time_scale.max(1),
            max_history_events,
            runs: 1,
            clock: None,
            business_now: DateTime::<Utc>::UNIX_EPOCH,
            outbox: VecDeque::new(),
            revision: 0,
            published: Published::default(),
        };
        if let Some(carried) = input.carried {
            let carried = *carried;
            state.handoff = carried.handoff;
            state.clock = carried.clock;
            state.business_now = carried.business_now;
            state.published = carried.published;
            state.runs = carried.runs + 1;
        }
        state
    }

    /// Drives the handoff until it completes or is cancelled; the result is
    /// the post-close review.
    #[run(name = "DealHandoff")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<Review> {
        drive(ctx).await
    }

    /// The bundle arrives, or is amended.
    #[signal(name = "closed_won")]
    pub fn closed_won(&mut self, ctx: &mut SyncWorkflowContext<Self>, payload: RawValue) {
        self.receive(ctx, "closed_won", payload);
    }

    /// The contract is signed.
    #[signal(name = "contract_signed")]
    pub fn contract_signed(&mut self, ctx: &mut SyncWorkflowContext<Self>, payload: RawValue) {
        self.receive(ctx, "contract_signed", payload);
    }

    /// The security review cleared.
    #[signal(name = "security_cleared")]
    pub fn security_cleared(&mut self, ctx: &mut SyncWorkflowContext<Self>, payload: RawValue) {
        self.receive(ctx, "security_cleared", payload);
    }

    /// Financing is secured.
    #[signal(name = "financing_secured")]
    pub fn financing_secured(&mut self, ctx: &mut SyncWorkflowContext<Self>, payload: RawValue) {
        self.receive(ctx, "financing_secured", payload);
    }

    /// The kickoff took place.
    #[signal(name = "kickoff_held")]
    pub fn kickoff_held(&mut self, ctx: &mut SyncWorkflowContext<Self>, payload: RawValue) {
        self.receive(ctx, "kickoff_held", payload);
    }

    /// A success milestone was reached.
    #[signal(name = "milestone_reached")]
    pub fn milestone_reached(&mut self, ctx: &mut SyncWorkflowContext<Self>, payload: RawValue) {
        self.receive(ctx, "milestone_reached", payload);
    }

    /// Adoption numbers came in.
    #[signal(name = "adoption_reported")]
    pub fn adoption_reported(&mut self, ctx: &mut SyncWorkflowContext<Self>, payload: RawValue) {
        self.receive(ctx, "adoption_reported", payload);
    }

    /// Someone took ownership of an escalation.
    #[signal(name = "escalation_acknowledged")]
    pub fn escalation_acknowledged(
        &mut self,
        ctx: &mut SyncWorkflowContext<Self>,
        payload: RawValue,
    ) {
        self.receive(ctx, "escalation_acknowledged", payload);
    }

    /// The customer blocks progress.
    #[signal(name = "customer_blocked")]
    pub fn customer_blocked(&mut self, ctx: &mut SyncWorkflowContext<Self>, payload: RawValue) {
        self.receive(ctx, "customer_blocked", payload);
    }

    /// The customer no longer blocks progress.
    #[signal(name = "customer_unblocked")]
    pub fn customer_unblocked(&mut self, ctx: &mut SyncWorkflowContext<Self>, payload: RawValue) {
        self.receive(ctx, "customer_unblocked", payload);
    }

    /// A task was finished.
    #[signal(name = "task_completed")]
    pub fn task_completed(&mut self, ctx: &mut SyncWorkflowContext<Self>, payload: RawValue) {
        self.receive(ctx, "task_completed", payload);
    }

    /// The CRM moved the deal back to an open stage.
    #[signal(name = "deal_reopened")]
    pub fn deal_reopened(&mut self, ctx: &mut SyncWorkflowContext<Self>, payload: RawValue) {
        self.receive(ctx, "deal_reopened", payload);
    }

    /// The deal was lost or deleted in the CRM.
    #[signal(name = "deal_lost")]
    pub fn deal_lost(&mut self, ctx: &mut SyncWorkflowContext<Self>, payload: RawValue) {
        self.receive(ctx, "deal_lost", payload);
    }

    /// Moves a pending due instant later.
    #[update(name = "extend_deadline")]
    pub fn extend_deadline(
        &mut self,
        ctx: &mut SyncWorkflowContext<Self>,
        payload: RawValue,
    ) -> Status {
        self.apply_update(ctx, "extend_deadline", &payload)
    }

    /// Rejects an extension that is not later, not pending, or has no reason.
    #[update_validator(extend_deadline)]
    pub fn validate_extend_deadline(
        &self,
        _ctx: &WorkflowContextView,
        payload: &RawValue,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.check_update("extend_deadline", payload)
    }

    /// Waives a milestone.
    #[update(name = "waive_milestone")]
    pub fn waive_milestone(
        &mut self,
        ctx: &mut SyncWorkflowContext<Self>,
        payload: RawValue,
    ) -> Status {
        self.apply_update(ctx, "waive_milestone", &payload)
    }

    /// Rejects a waiver of an unknown or resolved milestone, or without a reason.
    #[update_validator(waive_milestone)]
    pub fn validate_waive_milestone(
        &self,
        _ctx: &WorkflowContextView,
        payload: &RawValue,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.check_update("waive_milestone", payload)
    }

    /// Gives a role to another handle; open tasks follow.
    #[update(name = "reassign_owner")]
    pub fn reassign_owner(
        &mut self,
        ctx: &mut SyncWorkflowContext<Self>,
        payload: RawValue,
    ) -> Status {
        self.apply_update(ctx, "reassign_owner", &payload)
    }

    /// Rejects an unknown role or a handle that is not a directory handle.
    #[update_validator(reassign_owner)]
    pub fn validate_reassign_owner(
        &self,
        _ctx: &WorkflowContextView,
        payload: &RawValue,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.check_update("reassign_owner", payload)
    }

    /// The handoff as operators read it.
    #[query(name = "status")]
    pub fn status(&self, _ctx: &WorkflowContextView) -> Status {
        Status::of(&self.handoff, self.business_now, self.time_scale)
    }
}

/// A validator's rejection, as the client sees it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UpdateRejected(String);

impl DealHandoffWorkflow {
    /// Moves business time forward to the activation's wall time.
    ///
    /// The clock is anchored at the first activation, where handlers and the
    /// run loop see the same workflow time, so replay anchors it identically.
    fn tick(&mut self, wall: Option<SystemTime>) -> DateTime<Utc> {
        if let Some(wall) = wall.map(DateTime::<Utc>::from) {
            let clock = *self
                .clock
                .get_or_insert_with(|| BusinessClock::new(wall, self.time_scale));
            self.business_now = self.business_now.max(clock.to_business(wall));
        }
        self.business_now
    }

    fn receive(&mut self, ctx: &SyncWorkflowContext<Self>, signal: &str, payload: RawValue) {
        self.tick(ctx.workflow_time());
        let now = self.arrival(ctx);
        let decoded = payload_json(&payload)
            .and_then(|value| decode(signal, value, now, &self.handoff.workflow_id));
        match decoded {
            Ok(event) => {
                let commands = self.handoff.apply(event, now);
                self.outbox.extend(commands);
            }
            Err(reason) => self.handoff.reject(signal, reason, now),
        }
        self.flush_observations(ctx.is_replaying());
        self.revision += 1;
    }

    /// Counts the engine's new business facts, unless replaying history.
    fn flush_observations(&mut self, replaying: bool) {
        let observations = self.handoff.drain_observations();
        if !replaying {
            crate::observe::emit(&observations);
        }
    }

    /// The business instant a signal or update arrived: when its sender
    /// stamped it, not when a worker got to it, so an event sent before a
    /// deadline is applied before the deadline fires even after an outage.
    /// The stamp is trusted only between the handoff's start and now; an
    /// event without one arrives now.
    fn arrival(&self, ctx: &SyncWorkflowContext<Self>) -> DateTime<Utc> {
        let (Some(clock), Some(wall_now)) = (self.clock, ctx.workflow_time()) else {
            return self.business_now;
        };
        let sent = ctx
            .headers()
            .get(SENT_AT_HEADER)
            .and_then(|payload| serde_json::from_slice::<i64>(&payload.data).ok())
            .and_then(DateTime::<Utc>::from_timestamp_millis);
        match sent {
            Some(sent) => {
                let wall = sent.clamp(clock.start, DateTime::<Utc>::from(wall_now));
                clock.to_business(wall)
            }
            None => self.business_now,
        }
    }

    fn check_update(
        &self,
        name: &str,
        payload: &RawValue,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let update = payload_json(payload)
            .and_then(|value| decode_update(name, value))
            .map_err(UpdateRejected)?;
        self.handoff
            .validate(&update, self.business_now)
            .map_err(|reason| Box::new(UpdateRejected(reason)) as _)
    }

    fn apply_update(
        &mut self,
        ctx: &SyncWorkflowContext<Self>,
        name: &str,
        payload: &RawValue,
    ) -> Status {
        self.tick(ctx.workflow_time());
        let now = self.arrival(ctx);
        // The validator accepted it; decoding cannot fail differently now.
        if let Ok(update) = payload_json(payload).and_then(|value| decode_update(name, value)) {
            let commands = self.handoff.apply(Event::Update(update), now);
            self.outbox.extend(commands);
        }
        self.flush_observations(ctx.is_replaying());
        self.revision += 1;
        Status::of(&self.handoff, self.business_now, self.time_scale)
    }

    fn wall_instant(&self, business: DateTime<Utc>) -> DateTime<Utc> {
        self.clock.map_or(business, |clock| clock.to_wall(business))
    }

    fn carry(&self) -> HandoffInput {
        HandoffInput {
            source: self.source.clone(),
            deal_id: self.deal_id.clone(),
            time_scale: self.time_scale,
            max_history_events: Some(self.max_history_events),
            carried: Some(Box::new(Carried {
                handoff: self.handoff.clone(),
                clock: self.clock,
                business_now: self.business_now,
                published: self.published.clone(),
                runs: self.runs,
            })),
        }
    }
}

/// The JSON of a signal's first payload; `None` when it carried none.
fn payload_json(raw: &RawValue) -> Result<Option<serde_json::Value>, String> {
    let Some(payload) = raw.payloads.first() else {
        return Ok(None);
    };
    let encoding = payload
        .metadata
        .get("encoding")
        .map(|e| String::from_utf8_lossy(e).into_owned());
    match encoding.as_deref() {
        Some("binary/null") => Ok(None),
        Some("json/plain") => serde_json::from_slice(&payload.data)
            .map(Some)
            .map_err(|e| format!("payload: not JSON ({e})")),
        other => Err(format!(
            "payload: unsupported encoding {}",
            other.unwrap_or("(none)")
        )),
    }
}

type Ctx = WorkflowContext<DealHandoffWorkflow>;

/// The one timer in flight, to the wall instant of the next deadline.
struct Armed<'a> {
    wall_at: DateTime<Utc>,
    timer: Pin<Box<dyn CancellableFuture<Output = TimerResult> + 'a>>,
}

impl Armed<'_> {
    /// Cancels the timer explicitly: a dropped timer future would still fire
    /// and grow the history.
    fn disarm(armed: &mut Option<Self>) {
        if let Some(armed) = armed.take() {
            armed.timer.cancel();
        }
    }
}

/// The run loop: carry out queued commands, fire due deadlines, publish,
/// then sleep on one timer until it fires or a signal or update arrives.
async fn drive(ctx: &Ctx) -> WorkflowResult<Review> {
    ctx.state_mut(|s| s.tick(ctx.workflow_time()));
    // Runs whose history predates the re-snap keep reminders where they were.
    let resnap = ctx.patched("resnap-reminders-on-reassign");
    let keep = ctx.patched("keep-dropped-gate-clocks");
    let lost_waits = ctx.patched("lost-waits-for-plan");
    ctx.state_mut(|s| {
        s.handoff.resnap_on_reassign = resnap;
        s.handoff.keep_dropped_gate_clocks = keep;
        s.handoff.lost_waits_for_plan = lost_waits;
    });
    guard_probe(ctx).await;
    let mut armed: Option<Armed<'_>> = None;
    loop {
        if execute_outbox(ctx).await {
            Armed::disarm(&mut armed);
            return Ok(finish(ctx));
        }
        let now = ctx.state_mut(|s| s.tick(ctx.workflow_time()));
        let due = ctx.state_mut(|s| s.handoff.advance(now));
        let replaying = ctx.is_replaying();
        ctx.state_mut(|s| s.flush_observations(replaying));
        if !due.is_empty() {
            ctx.state_mut(|s| s.outbox.extend(due));
            continue;
        }
        publish(ctx);
        if should_continue_as_new(ctx) {
            Armed::disarm(&mut armed);
            return continue_as_new(ctx).await;
        }
        rearm(ctx, &mut armed);
        let revision = ctx.state(|s| s.revision);
        let changed = ctx.wait_condition(move |s| s.revision != revision);
        futures::pin_mut!(changed);
        let cancelled = match armed.as_mut() {
            Some(current) => {
                let mut timer = &mut current.timer;
                temporalio_sdk::workflows::select! {
                    _ = timer => {
                        armed = None;
                        false
                    }
                    result = changed => result.is_err(),
                }
            }
            None => changed.await.is_err(),
        };
        if cancelled || ctx.cancellation_token().is_cancelled() {
            Armed::disarm(&mut armed);
            return cancel_by_operator(ctx).await;
        }
    }
}

/// A change to the command sequence that only the replay guard's proof
/// builds: unpatched it must break replay of recorded histories, behind
/// `patched()` it must not. Without either feature it does nothing.
async fn guard_probe(ctx: &Ctx) {
    let unpatched = cfg!(feature = "guard-probe-unpatched");
    let patched = cfg!(feature = "guard-probe-patched") && ctx.patched("guard-probe");
    if unpatched || patched {
        ctx.timer(Duration::from_millis(1)).await;
    }
}

/// Keeps the timer in flight when the next deadline did not move; otherwise
/// cancels it and arms one for the new deadline.
fn rearm<'a>(ctx: &'a Ctx, armed: &mut Option<Armed<'a>>) {
    let wanted = ctx.state(|s| {
        s.handoff
            .next_deadline()
            .map(|d| (s.wall_instant(d.at), d.summary()))
    });
    if armed.as_ref().map(|a| a.wall_at) == wanted.as_ref().map(|(at, _)| *at) {
        return;
    }
    Armed::disarm(armed);
    let Some((wall_at, summary)) = wanted else {
        return;
    };
    let wall_now = ctx
        .workflow_time()
        .map(DateTime::<Utc>::from)
        .unwrap_or(wall_at);
    let wait = (wall_at - wall_now)
        .to_std()
        .unwrap_or_default()
        .max(Duration::from_millis(1));
    let timer = ctx.timer(TimerOptions::builder(wait).summary(summary).build());
    *armed = Some(Armed {
        wall_at,
        timer: Box::pin(timer),
    });
}

fn should_continue_as_new(ctx: &Ctx) -> bool {
    let limit = ctx.state(|s| s.max_history_events);
    let idle = ctx.state(|s| s.outbox.is_empty());
    idle && (ctx.continue_as_new_suggested() || ctx.history_length() >= limit)
}

/// Hands the whole state to a new run once every handler has finished.
async fn continue_as_new(ctx: &Ctx) -> WorkflowResult<Review> {
    if ctx
        .wait_condition(|_| ctx.all_handlers_finished())
        .await
        .is_err()
    {
        return cancel_by_operator(ctx).await;
    }
    let input = ctx.state(|s| s.carry());
    ctx.continue_as_new(input, ContinueAsNewOptions::default())?;
    unreachable!("continue_as_new always ends the run")
}

/// Carries out queued commands; true when one of them ends the handoff.
async fn execute_outbox(ctx: &Ctx) -> bool {
    while let Some(command) = ctx.state_mut(|s| s.outbox.pop_front()) {
        if let Command::Finish = command {
            return true;
        }
        execute(ctx, command, None).await;
    }
    false
}

/// Runs one command as an activity, feeding its result back to the engine.
///
/// Activity failures never fail the workflow: they are recorded and the
/// handoff goes on. `token` detaches cleanup from a workflow cancellation.
async fn execute(ctx: &Ctx, command: Command, token: Option<WorkflowCancellationToken>) {
    match command {
        Command::ResolvePlan(request) => {
            let key = format!("{}/plan", request.workflow_id);
            let options = activity_options("plan handoff".to_owned(), token);
            match ctx
                .execute_activity(HandoffActivities::plan_handoff, *request, options)
                .await
            {
                Ok(plan) => {
                    let now = ctx.state(|s| s.business_now);
                    let commands = ctx
                        .state_mut(|s| s.handoff.apply(Event::PlanResolved(Box::new(plan)), now));
                    ctx.state_mut(|s| s.outbox.extend(commands));
                    let replaying = ctx.is_replaying();
                    ctx.state_mut(|s| s.flush_observations(replaying));
                }
                Err(err) => record_failure(ctx, key, &err),
            }
        }
        Command::CreateTasks(batch) => {
            let key = format!("{}/tasks/{}", batch.workflow_id, batch.trigger);
            let options = task_activity_options(format!("create tasks: {}", batch.trigger), token);
            if let Err(err) = ctx
                .execute_activity(HandoffActivities::create_tasks, batch, options)
                .await
            {
                record_failure(ctx, key, &err);
            }
        }
        Command::UpdateTasks(updates) => {
            let key = format!("{}/{}", updates.workflow_id, updates.step);
            let options = task_activity_options(format!("update tasks: {}", updates.step), token);
            if let Err(err) = ctx
                .execute_activity(HandoffActivities::update_tasks, updates, options)
                .await
            {
                record_failure(ctx, key, &err);
            }
        }
        Command::CancelTasks(request) => {
            let key = format!("{}/cancel_tasks", request.workflow_id);
            let options = task_activity_options(format!("cancel tasks: {}", request.reason), token);
            if let Err(err) = ctx
                .execute_activity(HandoffActivities::cancel_tasks, request, options)
                .await
            {
                record_failure(ctx, key, &err);
            }
        }
        Command::Notify(notification) => notify(ctx, *notification, token).await,
        Command::Finish => {}
    }
}

async fn notify(ctx: &Ctx, notification: Notification, token: Option<WorkflowCancellationToken>) {
    let key = notification.key.clone();
    let summary = format!(
        "notify: {} {}",
        notification.kind.replace('_', " "),
        notification
            .milestone
            .as_deref()
            .unwrap_or("")
            .replace('_', " ")
    );
    let options = activity_options(summary.trim_end().to_owned(), token);
    let failure = match ctx
        .execute_activity(HandoffActivities::notify, notification, options)
        .await
    {
        Ok(outcome) if outcome.delivered => None,
        Ok(outcome) => Some(outcome.detail.unwrap_or_else(|| "not delivered".to_owned())),
        Err(err) => Some(failure_detail(&err)),
    };
    ctx.state_mut(|s| s.handoff.record_notification(&key, failure));
}

fn record_failure(ctx: &Ctx, key: String, err: &ActivityExecutionError) {
    let detail = failure_detail(err);
    ctx.state_mut(|s| s.handoff.record_failure(key, detail));
}

/// The messages of a failure and its causes, so `status.delivery_failures`
/// says what the sink answered, not only that the activity failed.
fn failure_detail(err: &ActivityExecutionError) -> String {
    let mut messages: Vec<&str> = Vec::new();
    let mut failure = err.failure();
    while let Some(current) = failure {
        if !current.message.is_empty() {
            messages.push(&current.message);
        }
        failure = current.cause.as_deref();
    }
    if messages.is_empty() {
        err.to_string()
    } else {
        messages.join(": ")
    }
}

/// Ledger writes and deliveries are retried until they succeed: losing one
/// would break the audit trail, and every activity is idempotent by its key.
/// A sink's permanent refusal is a non-retryable failure, which ends the
/// activity at once and lands in `status.delivery_failures`.
fn activity_options(summary: String, token: Option<WorkflowCancellationToken>) -> ActivityOptions {
    let retry = RetryPolicy::builder()
        .initial_interval(Duration::from_secs(1))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(60))
        .build();
    let builder = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(60))
        .retry_policy(retry)
        .summary(summary);
    match token {
        Some(token) => builder.cancellation_token(token).build(),
        None => builder.build(),
    }
}

/// Task activities deliver one sink request per task and heartbeat after
/// each, so a batch may take minutes while a stalled sink is noticed within
/// the heartbeat timeout; retries still go on until the sink answers.
fn task_activity_options(
    summary: String,
    token: Option<WorkflowCancellationToken>,
) -> ActivityOptions {
    let retry = RetryPolicy::builder()
        .initial_interval(Duration::from_secs(1))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(60))
        .build();
    let builder = ActivityOptions::with_start_to_close_timeout(Duration::from_secs(600))
        .heartbeat_timeout(Duration::from_secs(30))
        .retry_policy(retry)
        .summary(summary);
    match token {
        Some(token) => builder.cancellation_token(token).build(),
        None => builder.build(),
    }
}

/// Cleanup after a cancellation requested through Temporal: same as a lost deal.
async fn cancel_by_operator(ctx: &Ctx) -> WorkflowResult<Review> {
    let now = ctx.state(|s| s.business_now);
    let mut commands: Vec<Command> = ctx.state_mut(|s| s.outbox.drain(..).collect());
    commands.retain(|c| !matches!(c, Command::Finish));
    commands.extend(ctx.state_mut(|s| s.handoff.apply(Event::OperatorCancelled, now)));
    let replaying = ctx.is_replaying();
    ctx.state_mut(|s| s.flush_observations(replaying));
    // A detached token, so the cleanup runs although the workflow is cancelled.
    let token = WorkflowCancellationToken::new();
    for command in commands {
        execute(ctx, command, Some(token.clone())).await;
    }
    publish(ctx);
    Err(WorkflowTermination::cancelled())
}

fn finish(ctx: &Ctx) -> Review {
    // Commands queued behind Finish (none today) are dropped with the run.
    publish(ctx);
    ctx.state(|s| Review::of(&s.handoff))
}

/// Upserts the search attributes that changed and refreshes current details.
fn publish(ctx: &Ctx) {
    let (updates, details) = ctx.state_mut(|s| s.search_attribute_updates());
    if !updates.is_empty() {
        ctx.upsert_search_attributes(updates);
    }
    if let Some(details) = details {
        ctx.set_current_details(details);
    }
}

impl DealHandoffWorkflow {
    fn search_attribute_updates(&mut self) -> (Vec<SearchAttributeUpdate>, Option<String>) {
        let handoff = &self.handoff;
        let plan = handoff.plan.as_ref();
        let next = handoff.next_deadline().map(|d| self.wall_instant(d.at));
        let current = Published {
            stage: Some(handoff.stage.as_str().to_owned()),
            segment: plan.map(|p| p.segment.clone()),
            owner: handoff.handoff_owner(),
            at_risk: Some(handoff.at_risk()),
            breach_count: Some(handoff.breach_count),
            next_deadline: Some(next),
            amount: handoff.bundle.as_ref().and_then(|b| b.bundle.deal.amount),
            details: Some(current_details(handoff, self.clock)),
        };
        let old = std::mem::replace(&mut self.published, current.clone());
        let mut updates = Vec::new();
        if current.stage != old.stage {
            updates.push(HANDOFF_STAGE.value_set(current.stage.clone().unwrap_or_default()));
        }
        if let (Some(segment), true) = (&current.segment, current.segment != old.segment) {
            updates.push(SEGMENT.value_set(segment.clone()));
        }
        if let (Some(owner), true) = (&current.owner, current.owner != old.owner) {
            updates.push(HANDOFF_OWNER.value_set(owner.clone()));
        }
        if let (Some(at_risk), true) = (current.at_risk, current.at_risk != old.at_risk) {
            updates.push(AT_RISK.value_set(at_risk));
        }
        if current.breach_count != old.breach_count {
            updates.push(BREACH_COUNT.value_set(i64::from(handoff.breach_count)));
        }
        // The SDK encodes an unset as an empty payload, which the server refuses
        // for Datetime attributes and which would fail the workflow task; a
        // handoff without a deadline keeps the last one instead, and readers
        // ignore it once the stage is terminal.
        // TODO(#5): unset NextDeadline once the SDK writes unsets the server accepts.
        if let (Some(at), true) = (next, current.next_deadline != old.next_deadline) {
            updates.push(NEXT_DEADLINE.value_set(Timestamp::new(
                at.timestamp(),
                at.timestamp_subsec_nanos() as i32,
            )));
        }
        if let (Some(amount), true) = (current.amount, current.amount != old.amount) {
            updates.push(DEAL_AMOUNT.value_set(amount));
        }
        let details = (current.details != old.details).then(|| current.details.unwrap_or_default());
        (updates, details)
    }
}

/// What the handoff waits on, for Temporal UI. No customer data.
fn current_details(handoff: &Handoff, clock: Option<BusinessClock>) -> String {
    let waiting = match handoff.stage {
        Stage::AwaitingBundle => "waiting for the closed_won bundle".to_owned(),
        Stage::AwaitingGates => {
            let pending: Vec<&str> = handoff
                .plan
                .iter()
                .flat_map(|p| p.required_gates.iter())
                .filter(|g| handoff.gates.get(g).and_then(|r| r.passed_at).is_none())
                .map(|g| g.name())
                .collect();
            if pending.is_empty() {
                "planning the handoff".to_owned()
            } else {
                format!("waiting for gates: {}", pending.join(", "))
            }
        }
        Stage::Kickoff => "waiting for the kickoff".to_owned(),
        Stage::Onboarding => {
            let open: Vec<&str> = handoff
                .milestones
                .iter()
                .filter(|m| !m.status.is_resolved())
                .map(|m| m.name.as_str())
                .collect();
            format!("onboarding; open milestones: {}", open.join(", "))
        }
        Stage::Completed => "completed".to_owned(),
        Stage::Cancelled => format!(
            "cancelled ({})",
            handoff.cancel_reason.as_deref().unwrap_or("unknown")
        ),
    };
    let waiting = match handoff.pause.as_ref() {
        Some(pause) => format!("{waiting} (paused since {})", pause.since.to_rfc3339()),
        None => waiting,
    };
    match handoff.next_deadline() {
        Some(deadline) => {
            let wall = clock.map_or(deadline.at, |c| c.to_wall(deadline.at));
            format!(
                "**{waiting}**\n\nnext: {} at {} (business time; fires {} wall time)",
                deadline.summary(),
                deadline.at.to_rfc3339(),
                wall.to_rfc3339()
            )
        }
        None => format!("**{waiting}**"),
    }
}
