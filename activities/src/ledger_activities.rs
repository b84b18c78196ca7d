//! The activities `DealHandoff` calls: the ledger first, then the sinks.
//!
//! Every effect is written to the ledger before it is delivered, and each
//! delivery goes through [`Delivery`], so a retried activity neither writes
//! nor sends anything twice. A sink that refuses an effect for good ends the
//! activity with a non-retryable failure naming it, which the workflow
//! records in `status.delivery_failures`; a sink that may recover makes the
//! activity retry (after the sink's `Retry-After` when it gave one).
// The activity macro generates a marker constant per activity that cannot
// carry docs of its own.
#![allow(missing_docs)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use temporalio_macros::activities;
use temporalio_sdk::ApplicationFailure;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::{debug, warn};

use handoff_workflows::activity::{
    CancelTasks, CreateTasks, Notification, NotifyOutcome, PlanRequest, REVIEW_FACT, Recipient,
    TaskSpec, TaskUpdates, TasksCancelled, TasksCreated, TasksUpdated,
};
use handoff_workflows::playbook::{Plan, SegmentBands};
use handoff_workflows::status::Review;

use crate::calendars;
use crate::directory::{Addressee, Directory};
use crate::effects;
use crate::ledger::{Ledger, LedgerError, task_idempotency_key};
use crate::playbooks::LivePlaybooks;
use crate::render::{self, Rendered};
use crate::sinks::{Channel, Delivery, Sinks, Tally, smtp_email};

/// Why an activity did not finish its effect.
#[derive(Debug, thiserror::Error)]
pub enum EffectError {
    /// The ledger failed; nothing was delivered past it.
    #[error("ledger failed")]
    Ledger(#[from] LedgerError),
    /// A sink may still take the effect.
    #[error("not delivered yet: {details}")]
    Undelivered {
        /// Every retryable failure, `channel key: detail`.
        details: String,
        /// The longest `Retry-After` a sink asked for.
        after: Option<Duration>,
    },
    /// A sink refused the effect for good.
    #[error("delivery failed: {details}")]
    Rejected {
        /// Every permanent failure, `channel key: detail`.
        details: String,
    },
}

impl EffectError {
    /// Decides, in one place, whether Temporal may retry this failure.
    pub fn into_activity_error(self) -> ActivityError {
        let failure = match self {
            // The database may come back; the keys make the retry harmless.
            e @ Self::Ledger(LedgerError::Database(_) | LedgerError::Directory { .. }) => {
                ApplicationFailure::new(e)
            }
            // Configuration and schema problems do not heal by retrying.
            e @ Self::Ledger(LedgerError::UnsupportedUrl(_) | LedgerError::Migration(_)) => {
                ApplicationFailure::non_retryable(e)
            }
            // Outages and rate limits pass; honour the sink's Retry-After.
            Self::Undelivered { details, after } => {
                let error = Self::Undelivered {
                    details,
                    after: None,
                };
                ApplicationFailure::builder(error)
                    .type_name("SinkUnavailable".to_owned())
                    .maybe_next_retry_delay(after)
                    .build()
            }
            // The sink's answer will not change; end quickly and let the
            // workflow record it.
            e @ Self::Rejected { .. } => ApplicationFailure::builder(e)
                .type_name("SinkRejected".to_owned())
                .non_retryable(true)
                .build(),
        };
        ActivityError::from(failure)
    }

    /// The failure a tally of sends comes to, if any: retryable ones first,
    /// since a retry may still deliver them.
    fn of(tally: Tally) -> Result<(), Self> {
        if !tally.retry.is_empty() {
            return Err(Self::Undelivered {
                details: tally.retry.join("; "),
                after: tally.retry_after,
            });
        }
        if !tally.failed.is_empty() {
            return Err(Self::Rejected {
                details: tally.failed.join("; "),
            });
        }
        Ok(())
    }
}

/// Sink and channel label of effects that only the ledger holds.
const LEDGER: &str = "ledger";

/// What the activities need besides the ledger.
#[derive(Debug, Clone)]
pub struct PlanningSettings {
    /// Amount bands that give a segment to bundles without one.
    pub bands: SegmentBands,
    /// Handle that owns every role a bundle leaves empty; `None` takes the
    /// owner directory's, else `revops-queue`.
    pub fallback_owner: Option<String>,
    /// Directory of the holiday calendar files (`playbooks/calendars`).
    pub calendars_dir: PathBuf,
}

/// The fallback owner when neither the settings nor a directory name one.
pub const DEFAULT_FALLBACK_OWNER: &str = "revops-queue";

/// The activities, over one ledger, the playbooks and the sinks.
pub struct LedgerActivities {
    ledger: Ledger,
    settings: PlanningSettings,
    playbooks: Arc<LivePlaybooks>,
    sinks: Sinks,
}

impl LedgerActivities {
    /// Activities writing to `ledger` and delivering to `sinks`.
    pub fn new(
        ledger: Ledger,
        settings: PlanningSettings,
        playbooks: Arc<LivePlaybooks>,
        sinks: Sinks,
    ) -> Self {
        Self {
            ledger,
            settings,
            playbooks,
            sinks,
        }
    }

    fn delivery(&self, ctx: &ActivityContext) -> Delivery<'_> {
        Delivery {
            ledger: &self.ledger,
            attempt: i64::from(ctx.info().attempt),
        }
    }

    /// Freezes the plan: the segment's playbook from the files in force,
    /// the owner directory's facts, the team's calendar.
    pub fn freeze_plan(&self, request: &PlanRequest) -> Plan {
        let set = match self.playbooks.refresh() {
            Ok(set) => set,
            Err(error) => {
                for problem in &error.problems {
                    warn!(problem = %problem, "playbook edit refused; the last valid playbooks stay in force");
                }
                self.playbooks.current()
            }
        };
        let segment = self.settings.bands.segment_of(&request.bundle);
        let directory = set.directory.as_ref();
        let fallback = self
            .settings
            .fallback_owner
            .clone()
            .or_else(|| directory.map(|d| d.fallback_owner.clone()))
            .unwrap_or_else(|| DEFAULT_FALLBACK_OWNER.to_owned());
        let playbook = set.segment(&segment).playbook;
        let mut plan = Plan::freeze(&request.bundle, playbook, &fallback);
        if let Some(directory) = directory {
            plan.directory = directory.facts();
            for (role, handle) in plan.owners.clone() {
                // An unknown handle is a bundle problem, not an outage: the
                // fallback owner takes the role and the bundle task asks for a fix.
                if !directory.knows(&handle) {
                    plan.missing_fields
                        .push(format!("owners.{role} ({handle} is not in the directory)"));
                    plan.owners.insert(role, fallback.clone());
                }
            }
        }
        let name = request
            .bundle
            .bundle
            .team
            .calendar
            .as_deref()
            .unwrap_or("US");
        match calendars::load_holidays(&self.settings.calendars_dir, name) {
            Ok(holidays) => plan.holidays = holidays,
            // An unknown calendar is a bundle problem too: the plan keeps US
            // holidays and the bundle task asks for a fix.
            Err(error) => {
                warn!(workflow_id = %request.workflow_id, error = %error, "calendar not loaded");
                plan.missing_fields.push("team.calendar".to_owned());
            }
        }
        plan
    }

    async fn deliver_task(
        &self,
        delivery: &Delivery<'_>,
        tally: &mut Tally,
        effect_key: &str,
        body: serde_json::Value,
    ) -> Result<(), LedgerError> {
        for channel in &self.sinks.routes.tasks {
            if let (Channel::Webhook, Some(webhook)) = (channel, self.sinks.webhook.as_ref()) {
                delivery
                    .once(tally, *channel, effect_key, webhook.post(effect_key, &body))
                    .await?;
            }
        }
        Ok(())
    }

    async fn deliver_notification(
        &self,
        delivery: &Delivery<'_>,
        notification: &Notification,
        rendered: &Rendered,
    ) -> Result<Tally, LedgerError> {
        let set = self.playbooks.current();
        let addressees = addressees(set.directory.as_ref(), &notification.recipients);
        let key = notification.key.as_str();
        let mut tally = Tally::default();
        for channel in self.sinks.routes.for_kind(&notification.kind) {
            match channel {
                Channel::Webhook => {
                    if let Some(webhook) = &self.sinks.webhook {
                        let body = notification_body(notification, rendered, &addressees);
                        delivery
                            .once(&mut tally, *channel, key, webhook.post(key, &body))
                            .await?;
                    }
                }
                Channel::Slack => {
                    if let Some(slack) = &self.sinks.slack {
                        let body = json!({ "text": slack_text(rendered, &addressees) });
                        delivery
                            .once(&mut tally, *channel, key, slack.post(key, &body))
                            .await?;
                    }
                }
                Channel::Email => {
                    if let Some(smtp) = &self.sinks.email {
                        let send = smtp_email(smtp, key, rendered, &addressees);
                        delivery.once(&mut tally, *channel, key, send).await?;
                    }
                }
            }
        }
        Ok(tally)
    }
}

#[activities]
impl LedgerActivities {
    /// Freezes the plan of a deal and records the deal in the registry.
    #[activity(name = "plan_handoff")]
    pub async fn plan_handoff(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: PlanRequest,
    ) -> Result<Plan, ActivityError> {
        let info = ctx.info();
        self.ledger
            .record_deal(
                &request.workflow_id,
                &request.bundle.source,
                &request.bundle.deal_id,
                info.workflow_run_id.as_deref(),
            )
            .await
            .map_err(|e| EffectError::from(e).into_activity_error())?;
        Ok(self.freeze_plan(&request))
    }

    /// Writes a batch of tasks to the ledger, then to the task sinks,
    /// heartbeating after each task.
    #[activity(name = "create_tasks")]
    pub async fn create_tasks(
        self: Arc<Self>,
        ctx: ActivityContext,
        batch: CreateTasks,
    ) -> Result<TasksCreated, ActivityError> {
        let created = self
            .ledger
            .insert_tasks(&batch.workflow_id, &batch.trigger, &batch.tasks)
            .await
            .map_err(|e| EffectError::from(e).into_activity_error())?;
        effects::count_tasks_created(LEDGER, u64::from(created));
        debug!(workflow_id = %batch.workflow_id, trigger = %batch.trigger, created, "tasks recorded");
        let delivery = self.delivery(&ctx);
        let mut tally = Tally::default();
        for (index, task) in batch.tasks.iter().enumerate() {
            let key = task_idempotency_key(&batch.workflow_id, &task.key);
            let body = task_body(
                "task.created",
                &key,
                &batch.workflow_id,
                &batch.trigger,
                task,
            );
            self.deliver_task(&delivery, &mut tally, &key, body)
                .await
                .map_err(|e| EffectError::from(e).into_activity_error())?;
            // Progress, and the channel through which a cancel arrives.
            heartbeat(&ctx, index + 1).await;
            stop_if_cancelled(&ctx)?;
        }
        count_settled_tasks(&tally);
        EffectError::of(tally).map_err(EffectError::into_activity_error)?;
        Ok(TasksCreated { created })
    }

    /// Applies status and owner changes to tasks in the ledger and the task sinks.
    #[activity(name = "update_tasks")]
    pub async fn update_tasks(
        self: Arc<Self>,
        ctx: ActivityContext,
        updates: TaskUpdates,
    ) -> Result<TasksUpdated, ActivityError> {
        let updated = self
            .ledger
            .update_tasks(&updates.workflow_id, &updates.changes)
            .await
            .map_err(|e| EffectError::from(e).into_activity_error())?;
        debug!(workflow_id = %updates.workflow_id, step = %updates.step, updated, "tasks updated");
        let delivery = self.delivery(&ctx);
        let mut tally = Tally::default();
        for (index, change) in updates.changes.iter().enumerate() {
            let key = format!("{}/{}/{}", updates.workflow_id, updates.step, change.key);
            let body = json!({
                "type": "task.updated",
                "key": key,
                "workflow_id": updates.workflow_id,
                "task_key": change.key,
                "status": change.status.map(|s| s.as_str()),
                "owner": change.owner,
            });
            self.deliver_task(&delivery, &mut tally, &key, body)
                .await
                .map_err(|e| EffectError::from(e).into_activity_error())?;
            heartbeat(&ctx, index + 1).await;
            stop_if_cancelled(&ctx)?;
        }
        EffectError::of(tally).map_err(EffectError::into_activity_error)?;
        Ok(TasksUpdated { updated })
    }

    /// Closes the deal's open tasks in the ledger, then tells the task sinks
    /// about every cancelled task they have not heard of.
    #[activity(name = "cancel_tasks")]
    pub async fn cancel_tasks(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: CancelTasks,
    ) -> Result<TasksCancelled, ActivityError> {
        let cancelled = self
            .ledger
            .cancel_tasks(&request.workflow_id)
            .await
            .map_err(|e| EffectError::from(e).into_activity_error())?;
        debug!(workflow_id = %request.workflow_id, reason = %request.reason, cancelled, "tasks cancelled");
        // Every cancelled task, not only the ones cancelled now: a retry
        // after a crash finds them cancelled already and must still send.
        let tasks = self
            .ledger
            .list_tasks(Some(&request.workflow_id))
            .await
            .map_err(|e| EffectError::from(e).into_activity_error())?;
        let delivery = self.delivery(&ctx);
        let mut tally = Tally::default();
        for (index, task) in tasks.iter().filter(|t| t.status == "cancelled").enumerate() {
            let key = format!("{}/cancelled", task.idempotency_key);
            let body = json!({
                "type": "task.cancelled",
                "key": key,
                "workflow_id": request.workflow_id,
                "task_key": task.key,
                "reason": request.reason,
            });
            self.deliver_task(&delivery, &mut tally, &key, body)
                .await
                .map_err(|e| EffectError::from(e).into_activity_error())?;
            heartbeat(&ctx, index + 1).await;
            stop_if_cancelled(&ctx)?;
        }
        EffectError::of(tally).map_err(EffectError::into_activity_error)?;
        Ok(TasksCancelled { cancelled })
    }

    /// Records a notification in the ledger, once per key, and delivers it
    /// to the channels its kind is routed to.
    #[activity(name = "notify")]
    pub async fn notify(
        self: Arc<Self>,
        ctx: ActivityContext,
        notification: Notification,
    ) -> Result<NotifyOutcome, ActivityError> {
        let segment = notification
            .facts
            .get("segment")
            .cloned()
            .unwrap_or_default();
        let templates = self.playbooks.current().segment(&segment).templates;
        let rendered = render::render(&notification, &templates);
        // Recorded before any delivery, so a retry after a crash finds the
        // row; with the people the directory resolves the recipients to, so
        // the ledger names who a manager or executive escalation reached.
        let recorded = Notification {
            recipients: resolved(
                self.playbooks.current().directory.as_ref(),
                &notification.recipients,
            ),
            ..notification.clone()
        };
        let first = self
            .ledger
            .insert_notification(&recorded, &rendered.subject, &rendered.body)
            .await
            .map_err(|e| EffectError::from(e).into_activity_error())?;
        if let Some(review) = review_of(&notification) {
            self.ledger
                .record_review(&review)
                .await
                .map_err(|e| EffectError::from(e).into_activity_error())?;
        }
        if first {
            effects::count_notification(LEDGER, &notification.kind, "delivered");
        }
        let delivery = self.delivery(&ctx);
        let tally = self
            .deliver_notification(&delivery, &notification, &rendered)
            .await
            .map_err(|e| EffectError::from(e).into_activity_error())?;
        for (channel, outcome) in &tally.settled {
            effects::count_notification(channel.as_str(), &notification.kind, outcome);
        }
        let status = match (tally.retry.is_empty(), tally.failed.is_empty()) {
            (true, true) => Some("delivered"),
            (true, false) => Some("failed"),
            (false, _) => None,
        };
        if let Some(status) = status {
            self.ledger
                .mark_notification(&notification.key, status)
                .await
                .map_err(|e| EffectError::from(e).into_activity_error())?;
        }
        debug!(workflow_id = %notification.workflow_id, kind = %notification.kind, "notification handled");
        EffectError::of(tally).map_err(EffectError::into_activity_error)?;
        Ok(NotifyOutcome {
            delivered: true,
            detail: None,
        })
    }
}

/// The review a `post_close_review` notification carries, if it does.
fn review_of(notification: &Notification) -> Option<Review> {
    let text = notification.facts.get(REVIEW_FACT)?;
    match serde_json::from_str(text) {
        Ok(review) => Some(review),
        Err(error) => {
            // A review the report cannot read must not block the notification.
            warn!(workflow_id = %notification.workflow_id, error = %error, "review not recorded");
            None
        }
    }
}

/// Counts the tasks a sink took for good in this attempt.
fn count_settled_tasks(tally: &Tally) {
    let mut webhook = 0u64;
    for (channel, outcome) in &tally.settled {
        if *outcome == "delivered" && *channel == Channel::Webhook {
            webhook += 1;
        }
    }
    effects::count_tasks_created(Channel::Webhook.as_str(), webhook);
}

/// Ends a batch between two sends once the activity is cancelled: by the
/// worker's shutdown when the grace period is over (Temporal then retries
/// it, and the ledger skips what was delivered), or by an operator.
fn stop_if_cancelled(ctx: &ActivityContext) -> Result<(), ActivityError> {
    if ctx.is_cancelled() {
        warn!("batch stopped between two sends: the activity was cancelled");
        return Err(ActivityError::cancelled());
    }
    Ok(())
}

/// Tells Temporal the activity is alive after `done` sends.
async fn heartbeat(ctx: &ActivityContext, done: usize) {
    if let Err(error) = ctx.record_heartbeat(vec![done]).await {
        warn!(error = %error, "heartbeat not recorded");
    }
}

/// The recipients with each handle replaced by the person the directory
/// resolves it to (a manager, the executive); as given without a directory.
pub fn resolved(directory: Option<&Directory>, recipients: &[Recipient]) -> Vec<Recipient> {
    recipients
        .iter()
        .map(
            |recipient| match directory.and_then(|d| d.resolve(recipient)) {
                Some(person) => Recipient {
                    handle: person.handle,
                    ..recipient.clone()
                },
                None => recipient.clone(),
            },
        )
        .collect()
}

/// The people a notification reaches, once each. Without a directory,
/// handles are all there is: no address, no chat id.
pub fn addressees(directory: Option<&Directory>, recipients: &[Recipient]) -> Vec<Addressee> {
    let mut out: Vec<Addressee> = Vec::new();
    for recipient in recipients {
        let addressee = match directory {
            Some(directory) => directory.resolve(recipient),
            None => (!recipient.handle.is_empty()).then(|| Addressee {
                handle: recipient.handle.clone(),
                name: recipient.handle.clone(),
                email: None,
                chat_id: None,
            }),
        };
        if let Some(addressee) = addressee
            && !out.iter().any(|a| a.handle == addressee.handle)
        {
            out.push(addressee);
        }
    }
    out
}

fn task_body(
    kind: &str,
    key: &str,
    workflow_id: &str,
    trigger: &str,
    task: &TaskSpec,
) -> serde_json::Value {
    json!({
        "type": kind,
        "key": key,
        "workflow_id": workflow_id,
        "trigger": trigger,
        "task": {
            "key": task.key,
            "title": task.title,
            "owner_role": task.owner_role,
            "owner": task.owner,
            "due_at": task.due_at,
            "depends_on": task.depends_on,
            "status": task.status.as_str(),
            "meets": task.meets,
        },
    })
}

fn notification_body(
    notification: &Notification,
    rendered: &Rendered,
    addressees: &[Addressee],
) -> serde_json::Value {
    let to: Vec<serde_json::Value> = addressees
        .iter()
        .map(|a| json!({ "handle": a.handle, "name": a.name, "email": a.email, "chat_id": a.chat_id }))
        .collect();
    json!({
        "type": "notification",
        "key": notification.key,
        "workflow_id": notification.workflow_id,
        "kind": notification.kind,
        "milestone": notification.milestone,
        "level": notification.level,
        "subject": rendered.subject,
        "body": rendered.body,
        "recipients": notification.recipients,
        "to": to,
        "facts": notification.facts,
    })
}

/// The Slack text with a mention of each addressee that has a chat id.
/// Mentions are built here from directory ids, never from CRM text.
fn slack_text(rendered: &Rendered, addressees: &[Addressee]) -> String {
    let mentions: Vec<String> = addressees
        .iter()
        .filter_map(|a| a.chat_id.as_ref().map(|id| format!("<@{id}>")))
        .collect();
    if mentions.is_empty() {
        rendered.slack.clone()
    } else {
        format!("{}\n{}", rendered.slack, mentions.join(" "))
    }
}

#[cfg(test)]
mod tests;
