//! The activities `DealHandoff` calls, implemented over the ledger.
// The activity macro generates a marker constant per activity that cannot
// carry docs of its own.
#![allow(missing_docs)]

use std::path::PathBuf;
use std::sync::Arc;

use temporalio_macros::activities;
use temporalio_sdk::ApplicationFailure;
use temporalio_sdk::activities::{ActivityContext, ActivityError};
use tracing::{debug, warn};

use handoff_workflows::activity::{
    CancelTasks, CreateTasks, Notification, NotifyOutcome, PlanRequest, REVIEW_FACT, TaskUpdates,
    TasksCancelled, TasksCreated, TasksUpdated,
};
use handoff_workflows::playbook::{Plan, Playbook, SegmentBands};
use handoff_workflows::status::Review;

use crate::calendars;
use crate::effects;
use crate::ledger::{Ledger, LedgerError};
use crate::render;

impl LedgerError {
    /// Decides, in one place, whether Temporal may retry a ledger failure.
    pub fn into_activity_error(self) -> ActivityError {
        let failure = match self {
            // The database may come back; the key makes the retry harmless.
            e @ (Self::Database(_) | Self::Directory { .. }) => ApplicationFailure::new(e),
            // Configuration and schema problems do not heal by retrying.
            e @ (Self::UnsupportedUrl(_) | Self::Migration(_)) => {
                ApplicationFailure::non_retryable(e)
            }
        };
        ActivityError::from(failure)
    }
}

/// Sink and channel label of effects that only the ledger holds.
const LEDGER: &str = "ledger";

/// What the activities need besides the ledger.
#[derive(Debug, Clone)]
pub struct PlanningSettings {
    /// Amount bands that give a segment to bundles without one.
    pub bands: SegmentBands,
    /// Handle that owns every role a bundle leaves empty.
    pub fallback_owner: String,
    /// Directory of the holiday calendar files (`playbooks/calendars`).
    pub calendars_dir: PathBuf,
}

/// The activities, over one ledger.
pub struct LedgerActivities {
    ledger: Ledger,
    settings: PlanningSettings,
}

impl LedgerActivities {
    /// Activities writing to `ledger`.
    pub fn new(ledger: Ledger, settings: PlanningSettings) -> Self {
        Self { ledger, settings }
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
            .map_err(LedgerError::into_activity_error)?;
        let segment = self.settings.bands.segment_of(&request.bundle);
        // TODO(#4): playbooks and the owner directory as data files.
        let playbook = Playbook::builtin(&segment);
        let mut plan = Plan::freeze(&request.bundle, playbook, &self.settings.fallback_owner);
        let name = request
            .bundle
            .bundle
            .team
            .calendar
            .as_deref()
            .unwrap_or("US");
        match calendars::load_holidays(&self.settings.calendars_dir, name) {
            Ok(holidays) => plan.holidays = holidays,
            // An unknown calendar is a bundle problem, not an outage: the plan
            // keeps US holidays and the bundle task asks for a fix.
            Err(error) => {
                warn!(workflow_id = %request.workflow_id, error = %error, "calendar not loaded");
                plan.missing_fields.push("team.calendar".to_owned());
            }
        }
        Ok(plan)
    }

    /// Writes a batch of tasks to the ledger.
    #[activity(name = "create_tasks")]
    pub async fn create_tasks(
        self: Arc<Self>,
        _ctx: ActivityContext,
        batch: CreateTasks,
    ) -> Result<TasksCreated, ActivityError> {
        // TODO(#4): deliver to task sinks, heartbeating per task.
        let created = self
            .ledger
            .insert_tasks(&batch.workflow_id, &batch.trigger, &batch.tasks)
            .await
            .map_err(LedgerError::into_activity_error)?;
        effects::count_tasks_created(LEDGER, u64::from(created));
        debug!(workflow_id = %batch.workflow_id, trigger = %batch.trigger, created, "tasks recorded");
        Ok(TasksCreated { created })
    }

    /// Applies status and owner changes to tasks in the ledger.
    #[activity(name = "update_tasks")]
    pub async fn update_tasks(
        self: Arc<Self>,
        _ctx: ActivityContext,
        updates: TaskUpdates,
    ) -> Result<TasksUpdated, ActivityError> {
        // TODO(#4): deliver the changes to the task sinks.
        let updated = self
            .ledger
            .update_tasks(&updates.workflow_id, &updates.changes)
            .await
            .map_err(LedgerError::into_activity_error)?;
        debug!(workflow_id = %updates.workflow_id, step = %updates.step, updated, "tasks updated");
        Ok(TasksUpdated { updated })
    }

    /// Closes the deal's open tasks in the ledger.
    #[activity(name = "cancel_tasks")]
    pub async fn cancel_tasks(
        self: Arc<Self>,
        _ctx: ActivityContext,
        request: CancelTasks,
    ) -> Result<TasksCancelled, ActivityError> {
        let cancelled = self
            .ledger
            .cancel_tasks(&request.workflow_id)
            .await
            .map_err(LedgerError::into_activity_error)?;
        debug!(workflow_id = %request.workflow_id, reason = %request.reason, cancelled, "tasks cancelled");
        Ok(TasksCancelled { cancelled })
    }

    /// Records a notification in the ledger, once per key.
    #[activity(name = "notify")]
    pub async fn notify(
        self: Arc<Self>,
        _ctx: ActivityContext,
        notification: Notification,
    ) -> Result<NotifyOutcome, ActivityError> {
        let rendered = render::render(&notification);
        // Recorded before any delivery, so a retry after a crash finds the row.
        let first = self
            .ledger
            .insert_notification(&notification, &rendered.subject, &rendered.body)
            .await
            .map_err(LedgerError::into_activity_error)?;
        if let Some(review) = review_of(&notification) {
            self.ledger
                .record_review(&review)
                .await
                .map_err(LedgerError::into_activity_error)?;
        }
        // TODO(#4): webhook, Slack and SMTP sinks; until then the ledger is the only channel.
        self.ledger
            .mark_notification(&notification.key, "delivered")
            .await
            .map_err(LedgerError::into_activity_error)?;
        if first {
            effects::count_notification(LEDGER, &notification.kind, "delivered");
        }
        debug!(workflow_id = %notification.workflow_id, kind = %notification.kind, "notification recorded");
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
