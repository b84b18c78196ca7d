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
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use temporalio_common::RetryPolicy;
use temporalio_common::data_converters::RawValue;
use temporalio_common::search_attributes::{SearchAttributeKey, SearchAttributeUpdate, Timestamp};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityExecutionError, ActivityOptions, SyncWorkflowContext, TimerOptions,
    WorkflowCancellationToken, WorkflowContext, WorkflowContextView, WorkflowResult,
    WorkflowTermination,
};

use crate::activity::HandoffActivities;
use crate::clock::BusinessClock;
use crate::engine::{Command, Event, Handoff, Stage};
use crate::message::decode;
use crate::status::Status;

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

/// The workflow's input. The bundle never travels here: it arrives as the
/// `closed_won` signal, so every client can use signal-with-start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffInput {
    /// CRM of the deal.
    pub source: String,
    /// Deal id inside the CRM.
    pub deal_id: String,
    /// Business seconds per wall second; 1 in production.
    #[serde(default = "one")]
    pub time_scale: u32,
}

fn one() -> u32 {
    1
}

/// Search attribute values as last upserted, to upsert only what changed.
#[derive(Debug, Clone, Default, PartialEq)]
struct Published {
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
    time_scale: u32,
    clock: Option<BusinessClock>,
    business_now: DateTime<Utc>,
    handoff: Handoff,
    outbox: VecDeque<Command>,
    revision: u64,
    published: Published,
}

#[workflow_methods]
impl DealHandoffWorkflow {
    /// Builds the initial state from the input.
    #[init]
    pub fn new(ctx: &WorkflowContextView, input: HandoffInput) -> Self {
        let handoff = Handoff::new(ctx.workflow_id().to_owned(), input.source, input.deal_id);
        Self {
            time_scale: input.time_scale.max(1),
            clock: None,
            business_now: DateTime::<Utc>::UNIX_EPOCH,
            handoff,
            outbox: VecDeque::new(),
            revision: 0,
            published: Published::default(),
        }
    }

    /// Drives the handoff until it completes or is cancelled.
    #[run(name = "DealHandoff")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<Status> {
        ctx.state_mut(|s| s.tick(ctx.workflow_time()));
        loop {
            if let Some(status) = execute_outbox(ctx).await {
                return Ok(status);
            }
            publish(ctx);
            let now = ctx.state_mut(|s| s.tick(ctx.workflow_time()));
            let due = ctx.state_mut(|s| s.handoff.advance(now));
            if !due.is_empty() {
                ctx.state_mut(|s| s.outbox.extend(due));
                continue;
            }
            if wait_for_change(ctx).await.is_err() {
                return cancel_by_operator(ctx).await;
            }
        }
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

    /// The handoff as operators read it.
    #[query(name = "status")]
    pub fn status(&self, _ctx: &WorkflowContextView) -> Status {
        Status::of(&self.handoff, self.business_now, self.time_scale)
    }
}

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
        let now = self.tick(ctx.workflow_time());
        let decoded = payload_json(&payload)
            .and_then(|value| decode(signal, value, now, &self.handoff.workflow_id));
        match decoded {
            Ok(Some(event)) => {
                let commands = self.handoff.apply(event, now);
                self.outbox.extend(commands);
            }
            Ok(None) => {}
            Err(reason) => self.handoff.reject(signal, reason, now),
        }
        self.revision += 1;
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

/// Carries out queued commands; returns the final status when one of them
/// ends the handoff.
async fn execute_outbox(ctx: &mut WorkflowContext<DealHandoffWorkflow>) -> Option<Status> {
    while let Some(command) = ctx.state_mut(|s| s.outbox.pop_front()) {
        if let Command::Finish = command {
            return Some(finish(ctx));
        }
        execute(ctx, command, None).await;
    }
    None
}

/// Runs one command as an activity, feeding its result back to the engine.
///
/// Activity failures never fail the workflow: they are recorded and the
/// handoff goes on. `token` detaches cleanup from a workflow cancellation.
async fn execute(
    ctx: &mut WorkflowContext<DealHandoffWorkflow>,
    command: Command,
    token: Option<WorkflowCancellationToken>,
) {
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
                }
                Err(err) => record_failure(ctx, key, &err),
            }
        }
        Command::CreateTasks(batch) => {
            let key = format!("{}/tasks/{}", batch.workflow_id, batch.trigger);
            let options = activity_options(format!("create tasks: {}", batch.trigger), token);
            if let Err(err) = ctx
                .execute_activity(HandoffActivities::create_tasks, batch, options)
                .await
            {
                record_failure(ctx, key, &err);
            }
        }
        Command::CancelTasks(request) => {
            let key = format!("{}/cancel_tasks", request.workflow_id);
            let options = activity_options(format!("cancel tasks: {}", request.reason), token);
            if let Err(err) = ctx
                .execute_activity(HandoffActivities::cancel_tasks, request, options)
                .await
            {
                record_failure(ctx, key, &err);
            }
        }
        Command::Notify(notification) => {
            let key = notification.key.clone();
            let summary = format!(
                "notify: {} {}",
                notification.kind,
                notification.milestone.as_deref().unwrap_or("")
            );
            let options = activity_options(summary.trim_end().to_owned(), token);
            let failure = match ctx
                .execute_activity(HandoffActivities::notify, *notification, options)
                .await
            {
                Ok(outcome) if outcome.delivered => None,
                Ok(outcome) => Some(outcome.detail.unwrap_or_else(|| "not delivered".to_owned())),
                Err(err) => Some(err.to_string()),
            };
            ctx.state_mut(|s| s.handoff.record_notification(&key, failure));
        }
        Command::Finish => {}
    }
}

fn record_failure(
    ctx: &WorkflowContext<DealHandoffWorkflow>,
    key: String,
    err: &ActivityExecutionError,
) {
    let detail = err.to_string();
    ctx.state_mut(|s| s.handoff.record_failure(key, detail));
}

/// Ledger writes are retried until they succeed: losing one would break the
/// audit trail, and every activity is idempotent by its key.
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

/// Sleeps until the next deadline or the next signal, whichever comes first.
async fn wait_for_change(ctx: &mut WorkflowContext<DealHandoffWorkflow>) -> Result<(), ()> {
    let revision = ctx.state(|s| s.revision);
    let deadline = ctx.state(|s| {
        s.handoff
            .next_deadline()
            .map(|d| (s.wall_instant(d.at), d.summary()))
    });
    let Some((wall_at, summary)) = deadline else {
        return ctx
            .wait_condition(move |s| s.revision != revision)
            .await
            .map_err(|_| ());
    };
    let wall_now = ctx
        .workflow_time()
        .map(DateTime::<Utc>::from)
        .unwrap_or(wall_at);
    let wait = (wall_at - wall_now)
        .to_std()
        .unwrap_or_default()
        .max(Duration::from_millis(1));
    let token = ctx.cancellation_token().child_token();
    let timer = ctx.timer(
        TimerOptions::builder(wait)
            .summary(summary)
            .cancellation_token(token.clone())
            .build(),
    );
    let changed = ctx.wait_condition(move |s| s.revision != revision);
    futures::pin_mut!(timer, changed);
    temporalio_sdk::workflows::select! {
        _ = timer => {}
        result = changed => {
            token.cancel();
            result.map_err(|_| ())?;
        }
    };
    if ctx.cancellation_token().is_cancelled() {
        Err(())
    } else {
        Ok(())
    }
}

impl DealHandoffWorkflow {
    fn wall_instant(&self, business: DateTime<Utc>) -> DateTime<Utc> {
        self.clock.map_or(business, |clock| clock.to_wall(business))
    }
}

/// Cleanup after a cancellation requested through Temporal: same as a lost deal.
async fn cancel_by_operator(
    ctx: &mut WorkflowContext<DealHandoffWorkflow>,
) -> WorkflowResult<Status> {
    let now = ctx.state(|s| s.business_now);
    let commands = ctx.state_mut(|s| s.handoff.apply(Event::OperatorCancelled, now));
    // A detached token, so the cleanup runs although the workflow is cancelled.
    let token = WorkflowCancellationToken::new();
    for command in commands {
        execute(ctx, command, Some(token.clone())).await;
    }
    publish(ctx);
    Err(WorkflowTermination::cancelled())
}

fn finish(ctx: &mut WorkflowContext<DealHandoffWorkflow>) -> Status {
    // Commands queued behind Finish (none today) are dropped with the run.
    publish(ctx);
    ctx.state(|s| Status::of(&s.handoff, s.business_now, s.time_scale))
}

/// Upserts the search attributes that changed and refreshes current details.
fn publish(ctx: &mut WorkflowContext<DealHandoffWorkflow>) {
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
            at_risk: Some(handoff.at_risk),
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
        if current.at_risk != old.at_risk {
            updates.push(AT_RISK.value_set(handoff.at_risk));
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
        Stage::Onboarding => "onboarding".to_owned(),
        Stage::Completed => "completed".to_owned(),
        Stage::Cancelled => format!(
            "cancelled ({})",
            handoff.cancel_reason.as_deref().unwrap_or("unknown")
        ),
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
