//! The `status` query's answer, shaped as the product documents it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::activity::TaskStatus;
use crate::engine::{Deadline, DeliveryFailure, Handoff, MilestoneStatus, RejectedEvents};
use crate::playbook::Gate;

/// Everything an operator needs to know about one handoff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Workflow id.
    pub workflow_id: String,
    /// Deal id inside the CRM.
    pub deal_id: String,
    /// CRM of the deal.
    pub source: String,
    /// Stage, as `HandoffStage` spells it.
    pub stage: String,
    /// Segment, once the plan is frozen.
    pub segment: Option<String>,
    /// Handoff owner handle, once the plan is frozen.
    pub owner: Option<String>,
    /// Whether a breach put the handoff at risk.
    pub at_risk: bool,
    /// Share of the soft checklist filled, 0..1, once the bundle arrived.
    pub bundle_completeness: Option<f64>,
    /// Business time of the latest workflow activation.
    pub business_now: DateTime<Utc>,
    /// Business seconds per wall second.
    pub time_scale: u32,
    /// The frozen playbook.
    pub playbook: Option<PlaybookRef>,
    /// Gate name → state.
    pub gates: BTreeMap<String, GateView>,
    /// Latest `at` among the required gates.
    pub day0: Option<DateTime<Utc>>,
    /// Milestones, ordered by due instant.
    pub milestones: Vec<MilestoneView>,
    /// What the workflow waits for next.
    pub next_deadline: Option<Deadline>,
    /// The current pause, if any.
    pub paused: Option<serde_json::Value>,
    /// Signals that could not be used.
    pub rejected_events: RejectedEvents,
    /// Task counts.
    pub tasks: TaskCounts,
    /// Notification counts.
    pub notifications: NotificationCounts,
    /// Effects that finally failed.
    pub delivery_failures: Vec<DeliveryFailure>,
    /// Why the handoff was cancelled, when it was.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cancel_reason: Option<String>,
}

/// The frozen playbook's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaybookRef {
    /// Segment it is for.
    pub segment: String,
    /// `sha256:<hex>` of its content.
    pub hash: String,
}

/// One gate in `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateView {
    /// Whether day 0 waits for it.
    pub required: bool,
    /// `pending`, `passed`, `breached` or `not_required`.
    pub status: String,
    /// When it passed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub passed_at: Option<DateTime<Utc>>,
}

/// One milestone in `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MilestoneView {
    /// Milestone name.
    pub name: String,
    /// `pending`, `met`, `met_late`, `breached` or `waived`.
    pub status: MilestoneStatus,
    /// When it is due.
    pub due_at: DateTime<Utc>,
    /// When it was met.
    pub met_at: Option<DateTime<Utc>>,
    /// Highest escalation level reached.
    pub escalation_level: u8,
    /// Owner handle.
    pub owner: String,
}

/// Tasks by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCounts {
    /// All tasks created.
    pub created: u32,
    /// Ready to work on.
    pub open: u32,
    /// Finished.
    pub done: u32,
    /// Waiting for dependencies.
    pub blocked: u32,
}

/// Notifications by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationCounts {
    /// Delivered.
    pub sent: u32,
    /// Finally failed.
    pub failed: u32,
}

impl Status {
    /// Builds the status of a handoff at business instant `business_now`.
    pub fn of(handoff: &Handoff, business_now: DateTime<Utc>, time_scale: u32) -> Self {
        let plan = handoff.plan.as_ref();
        Self {
            workflow_id: handoff.workflow_id.clone(),
            deal_id: handoff.deal_id.clone(),
            source: handoff.source.clone(),
            stage: handoff.stage.as_str().to_owned(),
            segment: plan.map(|p| p.segment.clone()),
            owner: handoff.handoff_owner(),
            at_risk: handoff.at_risk,
            bundle_completeness: plan.map(|p| p.bundle_completeness),
            business_now,
            time_scale,
            playbook: plan.map(|p| PlaybookRef {
                segment: p.segment.clone(),
                hash: p.playbook_hash.clone(),
            }),
            gates: gate_views(handoff),
            day0: handoff.day0,
            milestones: handoff
                .kickoff
                .iter()
                .map(|m| MilestoneView {
                    name: m.name.clone(),
                    status: m.status,
                    due_at: m.due_at,
                    met_at: m.met_at,
                    escalation_level: m.escalation_level,
                    owner: m.owner.clone(),
                })
                .collect(),
            next_deadline: handoff.next_deadline(),
            paused: None,
            rejected_events: handoff.rejected.clone(),
            tasks: task_counts(handoff),
            notifications: NotificationCounts {
                sent: handoff.notifications_sent,
                failed: handoff.notifications_failed,
            },
            delivery_failures: handoff.delivery_failures.clone(),
            cancel_reason: handoff.cancel_reason.clone(),
        }
    }
}

fn gate_views(handoff: &Handoff) -> BTreeMap<String, GateView> {
    Gate::ALL
        .iter()
        .map(|gate| {
            let required = match handoff.plan.as_ref() {
                Some(plan) => plan.requires(*gate),
                None => *gate == Gate::Signature,
            };
            let passed_at = handoff.gates.get(gate).and_then(|g| g.passed_at);
            let status = match (passed_at, required) {
                (Some(_), _) => "passed",
                (None, true) => "pending",
                (None, false) => "not_required",
            };
            (
                gate.name().to_owned(),
                GateView {
                    required,
                    status: status.to_owned(),
                    passed_at,
                },
            )
        })
        .collect()
}

fn task_counts(handoff: &Handoff) -> TaskCounts {
    let mut counts = TaskCounts {
        created: handoff.tasks.len() as u32,
        ..TaskCounts::default()
    };
    for status in handoff.tasks.values() {
        match status {
            TaskStatus::Open => counts.open += 1,
            TaskStatus::Blocked => counts.blocked += 1,
            TaskStatus::Done => counts.done += 1,
            TaskStatus::Cancelled => {}
        }
    }
    counts
}
