//! The activities `DealHandoff` calls, declared by their pinned type names,
//! and the values that cross the workflow/activity boundary.
//!
//! The implementations live in the `handoff-activities` crate; declaring them
//! here keeps this crate free of I/O while the workflow still calls them with
//! typed inputs and outputs.
// The SDK macros generate a marker constant per method, which cannot carry
// docs of its own.
#![allow(missing_docs)]

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use temporalio_common::ActivityError;
use temporalio_macros::activity_definitions;

use crate::bundle::ValidBundle;
use crate::playbook::Plan;

/// Asks for the frozen plan of a deal whose bundle just arrived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRequest {
    /// The handoff's workflow id.
    pub workflow_id: String,
    /// The validated bundle.
    pub bundle: ValidBundle,
}

/// Whether a task can be worked on yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Ready to work on.
    Open,
    /// Waiting for the tasks it depends on.
    Blocked,
    /// Finished.
    Done,
    /// Withdrawn because the handoff ended.
    Cancelled,
}

impl TaskStatus {
    /// The status as the ledger and status query spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Blocked => "blocked",
            Self::Done => "done",
            Self::Cancelled => "cancelled",
        }
    }
}

/// One task to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Key, unique within the deal.
    pub key: String,
    /// What to do.
    pub title: String,
    /// Owner role.
    pub owner_role: String,
    /// Owner handle.
    pub owner: String,
    /// Business instant the task is due.
    pub due_at: DateTime<Utc>,
    /// Keys of tasks that must be done first.
    pub depends_on: Vec<String>,
    /// `open`, or `blocked` while dependencies are open.
    pub status: TaskStatus,
    /// Milestone its completion meets, if any.
    #[serde(default)]
    pub meets: Option<String>,
}

/// A batch of tasks created by one trigger (`closed_won`, `day0`, `breach:kickoff`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTasks {
    /// The handoff's workflow id.
    pub workflow_id: String,
    /// What caused the tasks.
    pub trigger: String,
    /// The tasks.
    pub tasks: Vec<TaskSpec>,
}

/// How many tasks a `create_tasks` call wrote for the first time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TasksCreated {
    /// Rows new to the ledger; repeats of an earlier attempt are not counted.
    pub created: u32,
}

/// Closes every open or blocked task of a deal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelTasks {
    /// The handoff's workflow id.
    pub workflow_id: String,
    /// Why (`lost`, `deleted`, `gate_timeout`, `operator`).
    pub reason: String,
}

/// How many tasks a `cancel_tasks` call closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TasksCancelled {
    /// Tasks moved to `cancelled`.
    pub cancelled: u32,
}

/// One change to a task already created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskChange {
    /// Task key.
    pub key: String,
    /// New status, when it changes.
    pub status: Option<TaskStatus>,
    /// New owner handle, when it changes.
    pub owner: Option<String>,
}

impl TaskChange {
    /// A status change.
    pub fn status(key: &str, status: TaskStatus) -> Self {
        Self {
            key: key.to_owned(),
            status: Some(status),
            owner: None,
        }
    }

    /// An owner change.
    pub fn owner(key: &str, owner: &str) -> Self {
        Self {
            key: key.to_owned(),
            status: None,
            owner: Some(owner.to_owned()),
        }
    }
}

/// Changes to a deal's tasks caused by one business step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskUpdates {
    /// The handoff's workflow id.
    pub workflow_id: String,
    /// The step, for the idempotency key (`tasks/done/kickoff`).
    pub step: String,
    /// The changes, in order.
    pub changes: Vec<TaskChange>,
}

/// How many task changes an `update_tasks` call applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TasksUpdated {
    /// Rows changed.
    pub updated: u32,
}

/// How a recipient is reached from the handle the workflow knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reach {
    /// The handle itself.
    #[default]
    Direct,
    /// The handle's manager in the owner directory.
    ManagerOf,
    /// The directory's executive; the handle is empty.
    Executive,
}

/// Someone a notification is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// The role they hold on this deal.
    pub role: String,
    /// Their handle in the owner directory.
    pub handle: String,
    /// Whether the handle itself, its manager or the executive is meant.
    #[serde(default)]
    pub reach: Reach,
}

/// One notification: a reminder, an escalation or news about the handoff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Idempotency key: workflow id plus business step.
    pub key: String,
    /// The handoff's workflow id.
    pub workflow_id: String,
    /// `reminder`, `escalation`, `milestone_met`, `milestone_met_late`,
    /// `handoff_cancelled` or `post_close_review`.
    pub kind: String,
    /// Milestone or gate the notification is about, if any.
    pub milestone: Option<String>,
    /// Escalation level, for escalations.
    pub level: Option<u8>,
    /// Who gets it.
    pub recipients: Vec<Recipient>,
    /// Facts to render (deal, account, due instant, ...), as text.
    pub facts: BTreeMap<String, String>,
}

/// Fact of the `post_close_review` notification that carries the whole
/// [`Review`](crate::status::Review) as JSON, for the ledger's report.
pub const REVIEW_FACT: &str = "review";

/// What happened to a notification.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NotifyOutcome {
    /// True when every channel accepted it.
    pub delivered: bool,
    /// Why not, when it was not.
    pub detail: Option<String>,
}

/// Declarations of the activities, with the type names the worker registers.
pub struct HandoffActivities;

#[activity_definitions]
impl HandoffActivities {
    /// Freezes the plan for a bundle and records the deal in the registry.
    #[activity(name = "plan_handoff")]
    pub fn plan_handoff(_request: PlanRequest) -> Result<Plan, ActivityError> {
        unimplemented!()
    }

    /// Writes a batch of tasks to the ledger and the task sinks.
    #[activity(name = "create_tasks")]
    pub fn create_tasks(_tasks: CreateTasks) -> Result<TasksCreated, ActivityError> {
        unimplemented!()
    }

    /// Applies status and owner changes to existing tasks.
    #[activity(name = "update_tasks")]
    pub fn update_tasks(_updates: TaskUpdates) -> Result<TasksUpdated, ActivityError> {
        unimplemented!()
    }

    /// Closes the deal's open tasks.
    #[activity(name = "cancel_tasks")]
    pub fn cancel_tasks(_request: CancelTasks) -> Result<TasksCancelled, ActivityError> {
        unimplemented!()
    }

    /// Records and delivers one notification.
    #[activity(name = "notify")]
    pub fn notify(_notification: Notification) -> Result<NotifyOutcome, ActivityError> {
        unimplemented!()
    }
}
