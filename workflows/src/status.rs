//! The `status` query's answer, shaped as the product documents it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::activity::TaskStatus;
use crate::engine::{
    Deadline, DeliveryFailure, Handoff, MilestoneStatus, Pause, PauseKind, RejectedEvents, Sla,
};
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
    pub paused: Option<PauseView>,
    /// The latest adoption rate reported, 0..1.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub adoption_rate: Option<f64>,
    /// Breaches so far, gates and milestones.
    pub breach_count: u32,
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
    /// When it is due, for required gates.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub due_at: Option<DateTime<Utc>>,
    /// When it passed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub passed_at: Option<DateTime<Utc>>,
    /// Highest escalation level reached, for required gates.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub escalation_level: Option<u8>,
}

/// The current pause in `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseView {
    /// `customer_blocked`, `reopened` or `lost` (the first that holds it).
    pub kind: PauseKind,
    /// Every reason holding the clocks.
    pub kinds: Vec<PauseKind>,
    /// When the clocks stopped (business time).
    pub since: DateTime<Utc>,
    /// The reason given.
    pub reason: Option<String>,
    /// When a lost deal's grace ends.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lost_grace_until: Option<DateTime<Utc>>,
}

impl PauseView {
    fn of(pause: &Pause) -> Option<Self> {
        let kinds: Vec<PauseKind> = pause.kinds.iter().copied().collect();
        Some(Self {
            kind: *kinds.first()?,
            kinds,
            since: pause.since,
            reason: pause.reason.clone(),
            lost_grace_until: pause.lost_grace_until,
        })
    }
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
    /// Not done yet.
    pub open: u32,
    /// Finished.
    pub done: u32,
    /// Waiting for dependencies (counted in `open` too).
    pub blocked: u32,
    /// Withdrawn when the handoff ended.
    pub cancelled: u32,
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
            at_risk: handoff.at_risk(),
            bundle_completeness: plan.map(|p| p.bundle_completeness),
            business_now,
            time_scale,
            playbook: plan.map(|p| PlaybookRef {
                segment: p.segment.clone(),
                hash: p.playbook_hash.clone(),
            }),
            gates: gate_views(handoff),
            day0: handoff.day0,
            milestones: milestone_views(handoff),
            next_deadline: handoff.next_deadline(),
            paused: handoff.pause.as_ref().and_then(PauseView::of),
            adoption_rate: handoff.adoption_rate,
            breach_count: handoff.breach_count,
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
            let record = handoff.gates.get(gate);
            let passed_at = record.and_then(|g| g.passed_at);
            let clock = record.and_then(|g| g.sla.as_ref());
            let status = match (clock.map(|c| c.status), passed_at, required) {
                (Some(MilestoneStatus::Breached), _, _) => "breached",
                (_, Some(_), _) => "passed",
                (_, None, true) => "pending",
                (_, None, false) => "not_required",
            };
            (
                gate.name().to_owned(),
                GateView {
                    required,
                    status: status.to_owned(),
                    due_at: clock.map(|c| c.due_at),
                    passed_at,
                    escalation_level: clock.map(|c| c.escalation_level),
                },
            )
        })
        .collect()
}

fn milestone_views(handoff: &Handoff) -> Vec<MilestoneView> {
    let mut views: Vec<MilestoneView> = handoff
        .milestones
        .iter()
        .map(|m: &Sla| MilestoneView {
            name: m.name.clone(),
            status: m.status,
            due_at: m.due_at,
            met_at: m.met_at,
            escalation_level: m.escalation_level,
            owner: m.owner.clone(),
        })
        .collect();
    views.sort_by_key(|v| v.due_at);
    views
}

fn task_counts(handoff: &Handoff) -> TaskCounts {
    let mut counts = TaskCounts {
        created: handoff.tasks.len() as u32,
        ..TaskCounts::default()
    };
    // `open` counts every task not done yet; `blocked` is the part of them
    // still waiting for a dependency.
    for task in handoff.tasks.values() {
        match task.status {
            TaskStatus::Open => counts.open += 1,
            TaskStatus::Blocked => {
                counts.open += 1;
                counts.blocked += 1;
            }
            TaskStatus::Done => counts.done += 1,
            TaskStatus::Cancelled => counts.cancelled += 1,
        }
    }
    counts
}

/// The post-close review: the handoff's result, sent to customer success.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    /// Workflow id.
    pub workflow_id: String,
    /// Deal id inside the CRM.
    pub deal_id: String,
    /// CRM of the deal.
    pub source: String,
    /// `completed` or `cancelled`.
    pub outcome: String,
    /// Why it was cancelled, when it was.
    pub cancel_reason: Option<String>,
    /// Segment, once planned.
    pub segment: Option<String>,
    /// Day 0, once reached.
    pub day0: Option<DateTime<Utc>>,
    /// Business instant the handoff ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Every gate's due and actual instants.
    pub gates: Vec<ReviewItem>,
    /// Every milestone's due and actual instants, by due instant.
    pub milestones: Vec<ReviewItem>,
    /// Breaches, gates and milestones.
    pub breaches: u32,
    /// Escalation notifications sent.
    pub escalations: u32,
    /// Days from the contract signature to `first_value`.
    pub time_to_first_value_days: Option<f64>,
    /// What the bundle expected, `value_timeline.expected_ttfv_days`.
    pub expected_ttfv_days: Option<u32>,
    /// Whether first value came within the expectation.
    pub ttfv_within_expectation: Option<bool>,
}

/// One gate or milestone in the review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewItem {
    /// Gate or milestone name.
    pub name: String,
    /// Final status.
    pub status: MilestoneStatus,
    /// Due instant.
    pub due_at: DateTime<Utc>,
    /// When it was met or passed.
    pub actual_at: Option<DateTime<Utc>>,
    /// Highest escalation level reached.
    pub escalation_level: u8,
}

impl Review {
    /// The review of a handoff as it stands.
    pub fn of(handoff: &Handoff) -> Self {
        let item = |sla: &Sla| ReviewItem {
            name: sla.name.clone(),
            status: sla.status,
            due_at: sla.due_at,
            actual_at: sla.met_at,
            escalation_level: sla.escalation_level,
        };
        let signed = handoff
            .gates
            .get(&Gate::Signature)
            .and_then(|g| g.passed_at);
        let first_value = handoff
            .milestones
            .iter()
            .find(|m| m.name == "first_value")
            .and_then(|m| m.met_at);
        let ttfv = signed
            .zip(first_value)
            .map(|(from, to)| (to - from).num_seconds() as f64 / 86_400.0);
        let expected = handoff
            .bundle
            .as_ref()
            .and_then(|b| b.bundle.value_timeline.as_ref())
            .and_then(|v| v.expected_ttfv_days);
        let mut milestones: Vec<ReviewItem> = handoff.milestones.iter().map(item).collect();
        milestones.sort_by_key(|m| m.due_at);
        Self {
            workflow_id: handoff.workflow_id.clone(),
            deal_id: handoff.deal_id.clone(),
            source: handoff.source.clone(),
            outcome: handoff.stage.as_str().to_owned(),
            cancel_reason: handoff.cancel_reason.clone(),
            segment: handoff.plan.as_ref().map(|p| p.segment.clone()),
            day0: handoff.day0,
            ended_at: handoff.ended_at,
            gates: handoff
                .gates
                .values()
                .filter_map(|g| g.sla.as_ref())
                .map(item)
                .collect(),
            milestones,
            breaches: handoff.breach_count,
            escalations: handoff.escalation_count,
            time_to_first_value_days: ttfv,
            expected_ttfv_days: expected,
            ttfv_within_expectation: ttfv
                .zip(expected)
                .map(|(days, expected)| days <= f64::from(expected)),
        }
    }
}
