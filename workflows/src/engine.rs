//! The SLA engine: state + event + business instant → new state + commands.
//!
//! Nothing here knows about Temporal. The workflow feeds every decoded
//! signal, update, activity result and timer firing into [`Handoff`], carries
//! out the [`Command`]s it returns, and arms one timer for
//! [`Handoff::next_deadline`]. Because the same inputs always give the same
//! commands, tests drive whole 90-day schedules through it in microseconds,
//! and replay of a recorded history is deterministic.
//!
//! - [`sla`]: one gate or milestone clock with reminders and its ladder.
//! - `events`: what each signal and update does to the state.
//! - `deadlines`: what happens when business time passes an instant.

mod deadlines;
mod events;
pub use events::validate_handle;
pub mod sla;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::activity::{
    CancelTasks, CreateTasks, Notification, PlanRequest, Reach, Recipient, TaskChange, TaskSpec,
    TaskStatus, TaskUpdates,
};
use crate::bundle::ValidBundle;
use crate::calendar::{BusinessCalendar, Holidays};
use crate::playbook::{Audience, Gate, Plan, Playbook, TaskTemplate};

pub use sla::{MilestoneStatus, Reminder, ReminderState, Sla};

/// How many rejected events `status` keeps in full.
pub const REJECTED_EVENTS_KEPT: usize = 50;

/// Where a handoff is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Started by an event other than `closed_won`; waiting for the bundle.
    AwaitingBundle,
    /// Bundle in; waiting for the required gates.
    AwaitingGates,
    /// Day 0 reached; the kickoff clock runs.
    Kickoff,
    /// Kickoff resolved; success criteria tracked.
    Onboarding,
    /// Finished normally.
    Completed,
    /// Ended early (see the cancel reason).
    Cancelled,
}

impl Stage {
    /// The stage as the `HandoffStage` search attribute spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingBundle => "awaiting_bundle",
            Self::AwaitingGates => "awaiting_gates",
            Self::Kickoff => "kickoff",
            Self::Onboarding => "onboarding",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether the handoff has ended.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled)
    }
}

/// A gate's record: what was heard, and its clock once the plan armed it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateRecord {
    /// The earliest `at` among the signals that passed it.
    pub passed_at: Option<DateTime<Utc>>,
    /// Who reported it first.
    pub by: Option<String>,
    /// Its SLA clock, for required gates once the plan is frozen.
    pub sla: Option<Sla>,
    /// The clock of a gate a re-plan stopped requiring, kept so that a
    /// later re-plan requiring it again resumes it instead of starting over
    /// (and repeating its breach and escalations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_aside: Option<Sla>,
}

/// A signal the workflow could not use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedEvent {
    /// Signal name.
    pub signal: String,
    /// Why it was rejected, naming the field.
    pub reason: String,
    /// Business instant it arrived.
    pub received_at: DateTime<Utc>,
}

/// The last rejected events and how many there were in all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedEvents {
    /// Count since the handoff began.
    pub total: u64,
    /// The most recent, oldest first, at most [`REJECTED_EVENTS_KEPT`].
    pub recent: VecDeque<RejectedEvent>,
}

/// A delivery that finally failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryFailure {
    /// Idempotency key of the effect.
    pub key: String,
    /// What the sink or the ledger said.
    pub detail: String,
}

/// The next instant the workflow must wake at, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    /// `reminder`, `due`, `escalation`, `gate_timeout`, `lost_grace` or `close`.
    pub kind: String,
    /// Gate or milestone the deadline belongs to, if any.
    pub milestone: Option<String>,
    /// Business instant.
    pub at: DateTime<Utc>,
}

impl Deadline {
    /// Human summary for timers in Temporal UI (no customer data).
    pub fn summary(&self) -> String {
        let name = self.milestone.as_deref().unwrap_or("").replace('_', " ");
        match self.kind.as_str() {
            "reminder" => format!("reminder: {name}"),
            "due" => format!("{name} due"),
            "escalation" => format!("escalation: {name}"),
            "gate_timeout" => "gate timeout".to_owned(),
            "lost_grace" => "lost deal grace ends".to_owned(),
            "close" => "handoff closes".to_owned(),
            other => other.to_owned(),
        }
    }
}

/// Why the clocks are stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseKind {
    /// `customer_blocked`: the clocks stop.
    CustomerBlocked,
    /// `deal_reopened`: the clocks and outbound work stop until `closed_won`.
    Reopened,
    /// `deal_lost`: like a reopen, and the grace period runs.
    Lost,
}

/// A pause of the clocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// Every reason currently holding the clocks.
    pub kinds: BTreeSet<PauseKind>,
    /// When the clocks stopped (business time).
    pub since: DateTime<Utc>,
    /// The reason given by the latest `customer_blocked` or `deal_lost`.
    pub reason: Option<String>,
    /// End of the lost-deal grace period, while one runs.
    pub lost_grace_until: Option<DateTime<Utc>>,
}

impl Pause {
    /// Whether outbound work (notifications, tasks) waits too.
    pub fn holds_outbound(&self) -> bool {
        self.kinds.contains(&PauseKind::Reopened) || self.kinds.contains(&PauseKind::Lost)
    }
}

/// A task as the workflow tracks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Open, blocked, done or cancelled.
    pub status: TaskStatus,
    /// Owner role.
    pub owner_role: String,
    /// Owner handle.
    pub owner: String,
    /// Keys it waits for.
    pub depends_on: Vec<String>,
    /// Milestone its completion meets.
    pub meets: Option<String>,
}

/// An operator's change to the schedule, sent as a Temporal update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// Moves a due instant later.
    ExtendDeadline {
        /// Gate or milestone.
        milestone: String,
        /// The new due instant (business time).
        new_due: DateTime<Utc>,
        /// Why.
        reason: String,
    },
    /// Waives a milestone.
    WaiveMilestone {
        /// Milestone.
        milestone: String,
        /// Why.
        reason: String,
    },
    /// Gives a role to another handle.
    ReassignOwner {
        /// Owner role.
        role: String,
        /// New handle.
        handle: String,
    },
}

/// Something that happened to the deal, already decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `closed_won`: the bundle, first or amended.
    ClosedWon {
        /// The bundle.
        bundle: Box<ValidBundle>,
        /// Anchor of the gate SLAs for a backfill.
        as_of: Option<DateTime<Utc>>,
        /// When it happened.
        at: DateTime<Utc>,
    },
    /// A gate signal.
    GatePassed {
        /// Which gate.
        gate: Gate,
        /// When it happened in the real world.
        at: DateTime<Utc>,
        /// Who reported it.
        by: Option<String>,
    },
    /// `kickoff_held`.
    KickoffHeld {
        /// When the kickoff took place.
        at: DateTime<Utc>,
    },
    /// `milestone_reached`.
    MilestoneReached {
        /// Milestone.
        milestone: String,
        /// When.
        at: DateTime<Utc>,
        /// Evidence, when given.
        evidence: Option<String>,
    },
    /// `adoption_reported`.
    AdoptionReported {
        /// Active users over licensed users, 0..1.
        rate: f64,
        /// When it was measured.
        at: DateTime<Utc>,
    },
    /// `escalation_acknowledged`.
    EscalationAcknowledged {
        /// Gate or milestone.
        milestone: String,
        /// Who took it.
        by: Option<String>,
    },
    /// `customer_blocked`.
    CustomerBlocked {
        /// When the customer started blocking.
        at: DateTime<Utc>,
        /// What blocks.
        reason: Option<String>,
    },
    /// `customer_unblocked`.
    CustomerUnblocked {
        /// When it cleared.
        at: DateTime<Utc>,
    },
    /// `task_completed`.
    TaskCompleted {
        /// Task key.
        key: String,
        /// When it was done.
        at: DateTime<Utc>,
    },
    /// `deal_reopened`.
    DealReopened {
        /// When the CRM reopened the deal.
        at: DateTime<Utc>,
    },
    /// `deal_lost`, or a deletion when the reason is `deleted`.
    DealLost {
        /// The reason given; `deleted` skips the grace.
        reason: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Cancellation requested through Temporal.
    OperatorCancelled,
    /// An update that passed [`Handoff::validate`].
    Update(Update),
    /// The answer of `plan_handoff`.
    PlanResolved(Box<Plan>),
}

impl Event {
    /// The signal or update the event came from.
    pub fn source_name(&self) -> &'static str {
        match self {
            Self::ClosedWon { .. } => "closed_won",
            Self::GatePassed { gate, .. } => match gate {
                Gate::Signature => "contract_signed",
                Gate::Security => "security_cleared",
                Gate::Financing => "financing_secured",
            },
            Self::KickoffHeld { .. } => "kickoff_held",
            Self::MilestoneReached { .. } => "milestone_reached",
            Self::AdoptionReported { .. } => "adoption_reported",
            Self::EscalationAcknowledged { .. } => "escalation_acknowledged",
            Self::CustomerBlocked { .. } => "customer_blocked",
            Self::CustomerUnblocked { .. } => "customer_unblocked",
            Self::TaskCompleted { .. } => "task_completed",
            Self::DealReopened { .. } => "deal_reopened",
            Self::DealLost { .. } => "deal_lost",
            Self::OperatorCancelled => "cancel",
            Self::Update(Update::ExtendDeadline { .. }) => "extend_deadline",
            Self::Update(Update::WaiveMilestone { .. }) => "waive_milestone",
            Self::Update(Update::ReassignOwner { .. }) => "reassign_owner",
            Self::PlanResolved(_) => "plan_handoff",
        }
    }
}

/// A business fact for the product's metrics, emitted once when it happens.
///
/// The workflow drains these after every step and counts them only when it
/// is not replaying, so replay and cache eviction never count twice.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// The plan was frozen: a new handoff of a segment.
    Started {
        /// Segment.
        segment: String,
    },
    /// A gate passed.
    GatePassed {
        /// Gate name.
        gate: &'static str,
        /// Segment.
        segment: String,
    },
    /// A milestone was resolved.
    Milestone {
        /// Milestone name.
        milestone: String,
        /// Segment.
        segment: String,
        /// `met`, `met_late`, `breached` or `waived`.
        outcome: &'static str,
    },
    /// An escalation went out.
    Escalation {
        /// Gate or milestone name.
        milestone: String,
        /// Ladder level.
        level: u8,
    },
    /// `first_value` was met this long after the signature.
    TimeToFirstValue {
        /// Segment.
        segment: String,
        /// Seconds from signature to first value.
        seconds: f64,
    },
    /// The handoff ended.
    Completed {
        /// Segment.
        segment: String,
        /// `completed`, or the cancel reason.
        outcome: String,
    },
    /// A signal could not be used.
    SignalRejected {
        /// Signal name.
        signal: String,
    },
}

/// Observations not yet drained. Transient: not part of the handoff's state,
/// so it is neither carried across continue-as-new nor compared.
#[derive(Debug, Clone, Default)]
pub struct Observations(pub Vec<Observation>);

impl PartialEq for Observations {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Work the workflow must carry out for the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Call `plan_handoff`.
    ResolvePlan(Box<PlanRequest>),
    /// Call `create_tasks`.
    CreateTasks(CreateTasks),
    /// Call `update_tasks`.
    UpdateTasks(TaskUpdates),
    /// Call `cancel_tasks`.
    CancelTasks(CancelTasks),
    /// Call `notify`.
    Notify(Box<Notification>),
    /// The handoff has ended: return its review.
    Finish,
}

/// The whole state of one handoff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handoff {
    /// Workflow id.
    pub workflow_id: String,
    /// CRM of the deal.
    pub source: String,
    /// Deal id inside the CRM.
    pub deal_id: String,
    /// Current stage.
    pub stage: Stage,
    /// The bundle, once `closed_won` arrived.
    pub bundle: Option<ValidBundle>,
    /// Anchor of the gate SLAs (`--as-of`, else `closed_won_at`).
    pub gate_anchor: Option<DateTime<Utc>>,
    /// The frozen plan, once resolved.
    pub plan: Option<Plan>,
    /// Whether a `plan_handoff` call is outstanding.
    pub planning: bool,
    /// Gate records, including gates that are not required.
    pub gates: BTreeMap<Gate, GateRecord>,
    /// When the handoff gives up waiting for its gates.
    pub gate_timeout_at: Option<DateTime<Utc>>,
    /// Latest `at` among the required gates.
    pub day0: Option<DateTime<Utc>>,
    /// Milestone clocks, armed at day 0, in playbook order.
    pub milestones: Vec<Sla>,
    /// Milestone events heard before day 0: name → (at, evidence).
    pub early: BTreeMap<String, (DateTime<Utc>, Option<String>)>,
    /// The latest adoption rate reported.
    pub adoption_rate: Option<f64>,
    /// The current pause, if any.
    pub pause: Option<Pause>,
    /// Outbound work held while the deal is reopened or lost.
    pub held: Vec<Command>,
    /// Breaches so far, gates and milestones.
    pub breach_count: u32,
    /// Escalation notifications so far.
    pub escalation_count: u32,
    /// Owner reassignments so far, for idempotency keys.
    pub reassignments: u32,
    /// Whether a reassignment re-snaps pending reminders to the new owner's
    /// timezone. The workflow sets it behind a patch, so handoffs whose
    /// histories predate it replay as they ran.
    #[serde(default)]
    pub resnap_on_reassign: bool,
    /// Whether a re-plan sets aside the clock of a gate it drops (see
    /// [`GateRecord::set_aside`]); behind a patch like the re-snap.
    #[serde(default)]
    pub keep_dropped_gate_clocks: bool,
    /// Whether a deal lost while its plan is on the way is paused until the
    /// plan says how long its grace is, instead of cancelled at once;
    /// behind a patch like the re-snap.
    #[serde(default)]
    pub lost_waits_for_plan: bool,
    /// Task key → record.
    pub tasks: BTreeMap<String, TaskRecord>,
    /// Notifications delivered.
    pub notifications_sent: u32,
    /// Notifications that finally failed.
    pub notifications_failed: u32,
    /// Effects that finally failed.
    pub delivery_failures: Vec<DeliveryFailure>,
    /// Signals that could not be used.
    pub rejected: RejectedEvents,
    /// Why the handoff was cancelled.
    pub cancel_reason: Option<String>,
    /// Business instant the handoff ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Facts for metrics, not yet drained by the workflow.
    #[serde(skip)]
    pub observations: Observations,
}

impl Handoff {
    /// A handoff that has heard nothing yet.
    pub fn new(workflow_id: String, source: String, deal_id: String) -> Self {
        Self {
            workflow_id,
            source,
            deal_id,
            stage: Stage::AwaitingBundle,
            bundle: None,
            gate_anchor: None,
            plan: None,
            planning: false,
            gates: BTreeMap::new(),
            gate_timeout_at: None,
            day0: None,
            milestones: Vec::new(),
            early: BTreeMap::new(),
            adoption_rate: None,
            pause: None,
            held: Vec::new(),
            breach_count: 0,
            escalation_count: 0,
            reassignments: 0,
            resnap_on_reassign: false,
            keep_dropped_gate_clocks: true,
            lost_waits_for_plan: true,
            tasks: BTreeMap::new(),
            notifications_sent: 0,
            notifications_failed: 0,
            delivery_failures: Vec::new(),
            rejected: RejectedEvents::default(),
            cancel_reason: None,
            ended_at: None,
            observations: Observations::default(),
        }
    }

    /// Applies one event at business instant `now`.
    ///
    /// Deadlines at or before `now` are processed first, so an event that
    /// arrives after a breach fired never undoes it.
    pub fn apply(&mut self, event: Event, now: DateTime<Utc>) -> Vec<Command> {
        if self.stage.is_terminal() {
            return Vec::new();
        }
        let mut out = Outbox::default();
        self.advance_into(now, &mut out);
        if !self.stage.is_terminal() {
            if let Err(reason) = self.on_event(event.clone(), now, &mut out) {
                self.reject(event.source_name(), reason, now);
            }
            self.advance_into(now, &mut out);
        }
        self.release(out)
    }

    /// Processes every deadline at or before `now`.
    pub fn advance(&mut self, now: DateTime<Utc>) -> Vec<Command> {
        if self.stage.is_terminal() {
            return Vec::new();
        }
        let mut out = Outbox::default();
        self.advance_into(now, &mut out);
        self.release(out)
    }

    /// Records a signal that could not be used.
    pub fn reject(&mut self, signal: &str, reason: String, received_at: DateTime<Utc>) {
        self.observe(Observation::SignalRejected {
            signal: signal.to_owned(),
        });
        self.rejected.total += 1;
        self.rejected.recent.push_back(RejectedEvent {
            signal: signal.to_owned(),
            reason,
            received_at,
        });
        while self.rejected.recent.len() > REJECTED_EVENTS_KEPT {
            self.rejected.recent.pop_front();
        }
    }

    /// Takes the observations made since the last call.
    pub fn drain_observations(&mut self) -> Vec<Observation> {
        std::mem::take(&mut self.observations.0)
    }

    fn observe(&mut self, observation: Observation) {
        self.observations.0.push(observation);
    }

    /// The segment label of metrics.
    fn segment_label(&self) -> String {
        self.plan
            .as_ref()
            .map_or_else(|| "unknown".to_owned(), |p| p.segment.clone())
    }

    /// Records the outcome of a `notify` call.
    pub fn record_notification(&mut self, key: &str, failure: Option<String>) {
        match failure {
            None => self.notifications_sent += 1,
            Some(detail) => {
                self.notifications_failed += 1;
                self.delivery_failures.push(DeliveryFailure {
                    key: key.to_owned(),
                    detail,
                });
            }
        }
    }

    /// Records an effect other than a notification that finally failed.
    pub fn record_failure(&mut self, key: String, detail: String) {
        self.delivery_failures.push(DeliveryFailure { key, detail });
    }

    /// The team calendar, from the frozen plan or the bundle.
    pub fn calendar(&self) -> BusinessCalendar {
        let bundle = self.bundle.as_ref();
        let timezone = bundle
            .map(ValidBundle::team_timezone)
            .unwrap_or(crate::bundle::DEFAULT_TEAM_TIMEZONE);
        let holidays = match self.plan.as_ref() {
            Some(plan) => plan.holidays.clone(),
            None => bundle
                .and_then(|b| b.bundle.team.calendar.as_deref())
                .and_then(Holidays::builtin)
                .or_else(|| Holidays::builtin("US"))
                .unwrap_or_default(),
        };
        BusinessCalendar::new(timezone, holidays)
    }

    /// The handle that owns the handoff as a whole.
    pub fn handoff_owner(&self) -> Option<String> {
        self.plan.as_ref().map(|p| p.owner("handoff_owner"))
    }

    /// The playbook in force, or the built-in one before the plan is frozen.
    pub fn playbook(&self) -> std::borrow::Cow<'_, Playbook> {
        match self.plan.as_ref() {
            Some(plan) => std::borrow::Cow::Borrowed(&plan.playbook),
            None => std::borrow::Cow::Owned(Playbook::builtin("mid_market")),
        }
    }

    /// Whether the handoff is at risk: a gate or milestone is breached and
    /// not met, or the bundle is incomplete and nobody completed it yet.
    pub fn at_risk(&self) -> bool {
        let breached = self
            .slas()
            .any(|sla| sla.status == MilestoneStatus::Breached);
        let incomplete = self
            .tasks
            .get("complete_bundle")
            .is_some_and(|t| matches!(t.status, TaskStatus::Open | TaskStatus::Blocked));
        breached || incomplete
    }

    /// Every armed clock: gates first, then milestones.
    pub fn slas(&self) -> impl Iterator<Item = &Sla> {
        self.gates
            .values()
            .filter_map(|g| g.sla.as_ref())
            .chain(self.milestones.iter())
    }

    /// The clock of a gate or milestone by name.
    pub fn sla(&self, name: &str) -> Option<&Sla> {
        self.slas().find(|sla| sla.name == name)
    }

    fn sla_mut(&mut self, name: &str) -> Option<&mut Sla> {
        if let Some(gate) = Gate::from_name(name) {
            return self.gates.get_mut(&gate).and_then(|g| g.sla.as_mut());
        }
        self.milestones.iter_mut().find(|m| m.name == name)
    }

    /// Whether the clocks are stopped.
    pub fn is_paused(&self) -> bool {
        self.pause.is_some()
    }

    /// Commands held for a resume go to `held`; the rest go out.
    fn release(&mut self, out: Outbox) -> Vec<Command> {
        if self.stage.is_terminal() {
            return out.commands;
        }
        if self.pause.as_ref().is_some_and(Pause::holds_outbound) {
            self.held.extend(out.commands);
            return Vec::new();
        }
        out.commands
    }

    fn create_tasks(&mut self, trigger: &str, tasks: Vec<TaskSpec>, out: &mut Outbox) {
        let tasks: Vec<TaskSpec> = tasks
            .into_iter()
            .filter(|task| !self.tasks.contains_key(&task.key))
            .collect();
        if tasks.is_empty() {
            return;
        }
        for task in &tasks {
            self.tasks.insert(
                task.key.clone(),
                TaskRecord {
                    status: task.status,
                    owner_role: task.owner_role.clone(),
                    owner: task.owner.clone(),
                    depends_on: task.depends_on.clone(),
                    meets: task.meets.clone(),
                },
            );
        }
        out.push(Command::CreateTasks(CreateTasks {
            workflow_id: self.workflow_id.clone(),
            trigger: trigger.to_owned(),
            tasks,
        }));
    }

    /// The tasks of a playbook trigger, due counted from `anchor`.
    fn tasks_from_templates(&self, trigger: &str, anchor: DateTime<Utc>) -> Vec<TaskSpec> {
        let Some(plan) = self.plan.as_ref() else {
            return Vec::new();
        };
        let calendar = self.calendar();
        plan.playbook
            .tasks_for(trigger)
            .map(|template: &TaskTemplate| {
                let open = template.depends_on.iter().all(|key| {
                    self.tasks.get(key).is_none_or(|t| {
                        matches!(t.status, TaskStatus::Done | TaskStatus::Cancelled)
                    }) && !plan
                        .playbook
                        .tasks_for(trigger)
                        .any(|sibling| &sibling.key == key)
                });
                TaskSpec {
                    key: template.key.clone(),
                    title: template.title.clone(),
                    owner_role: template.owner_role.clone(),
                    owner: plan.owner(&template.owner_role),
                    due_at: sla::due_instant(&calendar, anchor, template.due),
                    depends_on: template.depends_on.clone(),
                    status: if open {
                        TaskStatus::Open
                    } else {
                        TaskStatus::Blocked
                    },
                    meets: template.meets.clone(),
                }
            })
            .collect()
    }

    /// Marks tasks done and unblocks their successors, as one ledger update.
    fn complete_tasks(&mut self, keys: &[String], step: String, out: &mut Outbox) {
        let mut changes = Vec::new();
        for key in keys {
            if let Some(task) = self.tasks.get_mut(key)
                && matches!(task.status, TaskStatus::Open | TaskStatus::Blocked)
            {
                task.status = TaskStatus::Done;
                changes.push(TaskChange::status(key, TaskStatus::Done));
            }
        }
        if changes.is_empty() {
            return;
        }
        let unblocked: Vec<String> = self
            .tasks
            .iter()
            .filter(|(_, task)| task.status == TaskStatus::Blocked)
            .filter(|(_, task)| {
                task.depends_on.iter().all(|dep| {
                    self.tasks.get(dep).is_none_or(|d| {
                        matches!(d.status, TaskStatus::Done | TaskStatus::Cancelled)
                    })
                })
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in unblocked {
            if let Some(task) = self.tasks.get_mut(&key) {
                task.status = TaskStatus::Open;
            }
            changes.push(TaskChange::status(&key, TaskStatus::Open));
        }
        out.push(Command::UpdateTasks(TaskUpdates {
            workflow_id: self.workflow_id.clone(),
            step,
            changes,
        }));
    }

    /// The people a ladder audience names for a clock.
    fn audience(&self, sla: &Sla, audience: &Audience) -> Vec<Recipient> {
        let handoff_owner = || {
            self.handoff_owner().map(|handle| Recipient {
                role: "handoff_owner".to_owned(),
                handle,
                reach: Reach::Direct,
            })
        };
        let owner = Recipient {
            role: sla.owner_role.clone(),
            handle: sla.owner.clone(),
            reach: Reach::Direct,
        };
        match audience {
            Audience::Owner => vec![owner],
            Audience::HandoffOwner => handoff_owner().into_iter().collect(),
            Audience::Managers => std::iter::once(owner)
                .chain(handoff_owner())
                .map(|r| Recipient {
                    reach: Reach::ManagerOf,
                    ..r
                })
                .collect(),
            Audience::Executive => vec![Recipient {
                role: "executive".to_owned(),
                handle: String::new(),
                reach: Reach::Executive,
            }],
            Audience::Role(role) => self
                .plan
                .as_ref()
                .map(|plan| Recipient {
                    role: role.clone(),
                    handle: plan.owner(role),
                    reach: Reach::Direct,
                })
                .into_iter()
                .collect(),
        }
    }

    /// The handles holding `roles` on this deal, reached directly.
    fn role_recipients(&self, roles: &[&str]) -> Vec<Recipient> {
        let Some(plan) = self.plan.as_ref() else {
            return Vec::new();
        };
        roles
            .iter()
            .map(|role| Recipient {
                role: (*role).to_owned(),
                handle: plan.owner(role),
                reach: Reach::Direct,
            })
            .collect()
    }

    /// Recipients with duplicates removed, in first-seen order.
    fn dedup(recipients: Vec<Recipient>) -> Vec<Recipient> {
        let mut seen = BTreeSet::new();
        recipients
            .into_iter()
            .filter(|r| seen.insert((r.handle.clone(), r.reach)))
            .collect()
    }

    fn notification(
        &self,
        step: &str,
        kind: &str,
        milestone: Option<&str>,
        level: Option<u8>,
        recipients: Vec<Recipient>,
    ) -> Notification {
        let mut facts = BTreeMap::new();
        facts.insert("deal_id".to_owned(), self.deal_id.clone());
        facts.insert("source".to_owned(), self.source.clone());
        if let Some(name) = self
            .bundle
            .as_ref()
            .and_then(|b| b.bundle.account.name.clone())
        {
            facts.insert("account".to_owned(), name);
        }
        if let Some(sla) = milestone.and_then(|m| self.sla(m)) {
            facts.insert("due_at".to_owned(), sla.due_at.to_rfc3339());
        }
        if let Some(plan) = self.plan.as_ref() {
            // The notify activity picks the segment's message templates.
            facts.insert("segment".to_owned(), plan.segment.clone());
        }
        Notification {
            key: format!("{}/{step}", self.workflow_id),
            workflow_id: self.workflow_id.clone(),
            kind: kind.to_owned(),
            milestone: milestone.map(str::to_owned),
            level,
            recipients: Self::dedup(recipients),
            facts,
        }
    }

    fn finish(&mut self, stage: Stage, now: DateTime<Utc>, out: &mut Outbox) {
        let outcome = match stage {
            Stage::Cancelled => self
                .cancel_reason
                .clone()
                .unwrap_or_else(|| "cancelled".into()),
            _ => "completed".to_owned(),
        };
        self.observe(Observation::Completed {
            segment: self.segment_label(),
            outcome,
        });
        self.stage = stage;
        self.ended_at = Some(now);
        for sla in self
            .gates
            .values_mut()
            .filter_map(|g| g.sla.as_mut())
            .chain(self.milestones.iter_mut())
        {
            sla.stop_ladder();
            sla.drop_reminders();
        }
        out.push(Command::Finish);
    }
}

/// Commands produced by one step, in order.
#[derive(Debug, Default)]
struct Outbox {
    commands: Vec<Command>,
}

impl Outbox {
    fn push(&mut self, command: Command) {
        self.commands.push(command);
    }
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
