//! The handoff state machine: events and business instants in, commands out.
//!
//! Nothing here knows about Temporal. The workflow feeds every decoded signal,
//! every activity result and every timer firing into [`Handoff`], then carries
//! out the [`Command`]s it returns and arms one timer for
//! [`Handoff::next_deadline`]. Because the same inputs always give the same
//! commands, the engine is tested here through whole schedules in
//! microseconds, and replay of a recorded history is deterministic.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::activity::{
    CancelTasks, CreateTasks, Notification, PlanRequest, Recipient, TaskSpec, TaskStatus,
};
use crate::bundle::ValidBundle;
use crate::calendar::{BusinessCalendar, Holidays};
use crate::playbook::{DueRule, Gate, Plan, TaskTemplate};

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

/// State of a milestone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MilestoneStatus {
    /// Not met, not yet due.
    Pending,
    /// Met by its due instant.
    Met,
    /// Met after its breach fired.
    MetLate,
    /// Not met by its due instant.
    Breached,
    /// Waived by an operator.
    Waived,
}

/// One milestone of the schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Milestone {
    /// `kickoff`, `data_mapping`, ...
    pub name: String,
    /// Owner role.
    pub owner_role: String,
    /// Owner handle.
    pub owner: String,
    /// Business instant it is due.
    pub due_at: DateTime<Utc>,
    /// Its state.
    pub status: MilestoneStatus,
    /// When the event that met it happened.
    pub met_at: Option<DateTime<Utc>>,
    /// Highest escalation level reached, 0 for none.
    pub escalation_level: u8,
    /// When the reminder goes out, if the window has room for one.
    pub reminder_at: Option<DateTime<Utc>>,
    /// Whether the reminder went out or was dropped.
    pub reminder_done: bool,
}

/// A gate's record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateRecord {
    /// The earliest `at` among the signals that passed it.
    pub passed_at: Option<DateTime<Utc>>,
    /// Who reported it first.
    pub by: Option<String>,
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

/// The next instant the workflow must wake at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    /// `reminder` or `due`.
    pub kind: String,
    /// Milestone or gate the deadline belongs to.
    pub milestone: String,
    /// Business instant.
    pub at: DateTime<Utc>,
}

impl Deadline {
    /// Human summary for timers in Temporal UI.
    pub fn summary(&self) -> String {
        match self.kind.as_str() {
            "reminder" => format!("reminder: {}", self.milestone.replace('_', " ")),
            _ => format!("{} due", self.milestone.replace('_', " ")),
        }
    }
}

/// Something that happened to the deal, already decoded and validated.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `closed_won`: the bundle, first or amended.
    ClosedWon(Box<ValidBundle>),
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
    /// `deal_lost`, or a deletion when the reason is `deleted`.
    DealLost {
        /// `lost` or `deleted`.
        reason: String,
    },
    /// Cancellation requested through Temporal.
    OperatorCancelled,
    /// The answer of `plan_handoff`.
    PlanResolved(Box<Plan>),
}

/// Work the workflow must carry out for the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Call `plan_handoff`.
    ResolvePlan(Box<PlanRequest>),
    /// Call `create_tasks`.
    CreateTasks(CreateTasks),
    /// Call `cancel_tasks`.
    CancelTasks(CancelTasks),
    /// Call `notify`.
    Notify(Box<Notification>),
    /// The handoff has ended: return its report.
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
    /// The frozen plan, once resolved.
    pub plan: Option<Plan>,
    /// Gate records, including gates that are not required.
    pub gates: BTreeMap<Gate, GateRecord>,
    /// Latest `at` among the required gates.
    pub day0: Option<DateTime<Utc>>,
    /// The kickoff milestone, armed at day 0.
    pub kickoff: Option<Milestone>,
    /// A `kickoff_held` that arrived before day 0.
    pub early_kickoff_at: Option<DateTime<Utc>>,
    /// Whether a breach put the handoff at risk.
    pub at_risk: bool,
    /// Breaches so far.
    pub breach_count: u32,
    /// Task key → status, as created.
    pub tasks: BTreeMap<String, TaskStatus>,
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
            plan: None,
            gates: BTreeMap::new(),
            day0: None,
            kickoff: None,
            early_kickoff_at: None,
            at_risk: false,
            breach_count: 0,
            tasks: BTreeMap::new(),
            notifications_sent: 0,
            notifications_failed: 0,
            delivery_failures: Vec::new(),
            rejected: RejectedEvents::default(),
            cancel_reason: None,
        }
    }

    /// Applies one event at business instant `now`.
    ///
    /// Deadlines that passed before `now` are processed first, so an event
    /// that arrives after a breach fired never undoes it.
    pub fn apply(&mut self, event: Event, now: DateTime<Utc>) -> Vec<Command> {
        if self.stage.is_terminal() {
            return Vec::new();
        }
        let mut commands = self.advance(now);
        if self.stage.is_terminal() {
            return commands;
        }
        match event {
            Event::ClosedWon(bundle) => self.on_closed_won(*bundle, &mut commands),
            Event::PlanResolved(plan) => self.on_plan(*plan, now, &mut commands),
            Event::GatePassed { gate, at, by } => self.on_gate(gate, at, by, now, &mut commands),
            Event::KickoffHeld { at } => self.on_kickoff_held(at, &mut commands),
            Event::DealLost { reason } => self.cancel(reason, &mut commands),
            Event::OperatorCancelled => self.cancel("operator".to_owned(), &mut commands),
        }
        commands
    }

    /// Processes every deadline at or before `now`.
    pub fn advance(&mut self, now: DateTime<Utc>) -> Vec<Command> {
        let mut commands = Vec::new();
        if self.stage != Stage::Kickoff {
            return commands;
        }
        let Some(kickoff) = self.kickoff.as_mut() else {
            return commands;
        };
        if kickoff.status != MilestoneStatus::Pending {
            return commands;
        }
        if !kickoff.reminder_done && kickoff.reminder_at.is_some_and(|r| r <= now) {
            kickoff.reminder_done = true;
            // A reminder discovered after the due instant has nothing left to remind of.
            if now < kickoff.due_at {
                let notification = self.reminder("kickoff");
                commands.push(Command::Notify(Box::new(notification)));
            }
        }
        if self.kickoff.as_ref().is_some_and(|k| now >= k.due_at) {
            self.breach_kickoff(&mut commands);
        }
        commands
    }

    /// The next business instant something is due, if any.
    pub fn next_deadline(&self) -> Option<Deadline> {
        if self.stage != Stage::Kickoff {
            return None;
        }
        let kickoff = self
            .kickoff
            .as_ref()
            .filter(|k| k.status == MilestoneStatus::Pending)?;
        let reminder = kickoff.reminder_at.filter(|_| !kickoff.reminder_done);
        Some(match reminder {
            Some(at) if at < kickoff.due_at => Deadline {
                kind: "reminder".into(),
                milestone: kickoff.name.clone(),
                at,
            },
            _ => Deadline {
                kind: "due".into(),
                milestone: kickoff.name.clone(),
                at: kickoff.due_at,
            },
        })
    }

    /// Records a signal that could not be used.
    pub fn reject(&mut self, signal: &str, reason: String, received_at: DateTime<Utc>) {
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

    /// The team calendar, from the bundle.
    pub fn calendar(&self) -> BusinessCalendar {
        let bundle = self.bundle.as_ref();
        let timezone = bundle
            .map(ValidBundle::team_timezone)
            .unwrap_or(crate::bundle::DEFAULT_TEAM_TIMEZONE);
        let holidays = bundle
            .and_then(|b| b.bundle.team.calendar.as_deref())
            .and_then(Holidays::builtin)
            .or_else(|| Holidays::builtin("US"))
            .unwrap_or_default();
        BusinessCalendar::new(timezone, holidays)
    }

    /// The handle that owns the handoff as a whole.
    pub fn handoff_owner(&self) -> Option<String> {
        self.plan.as_ref().map(|p| p.owner("handoff_owner"))
    }

    fn on_closed_won(&mut self, bundle: ValidBundle, commands: &mut Vec<Command>) {
        if self.bundle.is_some() {
            // The plan is frozen; an amendment updates the record only.
            // TODO(#3): re-plan on an explicit segment change before day 0, owner changes to open tasks.
            self.bundle = Some(bundle);
            return;
        }
        self.stage = Stage::AwaitingGates;
        let request = PlanRequest {
            workflow_id: self.workflow_id.clone(),
            bundle: bundle.clone(),
        };
        self.bundle = Some(bundle);
        commands.push(Command::ResolvePlan(Box::new(request)));
    }

    fn on_plan(&mut self, plan: Plan, now: DateTime<Utc>, commands: &mut Vec<Command>) {
        if self.plan.is_some() {
            return;
        }
        let missing = plan.missing_fields.clone();
        self.plan = Some(plan);
        if !missing.is_empty() {
            let task = self.complete_bundle_task(&missing, now);
            commands.push(self.create_tasks("closed_won", vec![task]));
        }
        self.try_reach_day0(now, commands);
    }

    fn on_gate(
        &mut self,
        gate: Gate,
        at: DateTime<Utc>,
        by: Option<String>,
        now: DateTime<Utc>,
        commands: &mut Vec<Command>,
    ) {
        let record = self.gates.entry(gate).or_default();
        if record.passed_at.is_none_or(|earlier| at < earlier) {
            record.passed_at = Some(at);
            record.by = by;
        }
        self.try_reach_day0(now, commands);
    }

    fn on_kickoff_held(&mut self, at: DateTime<Utc>, commands: &mut Vec<Command>) {
        let Some(kickoff) = self.kickoff.as_mut() else {
            self.early_kickoff_at = Some(self.early_kickoff_at.map_or(at, |e| e.min(at)));
            return;
        };
        match kickoff.status {
            MilestoneStatus::Pending => kickoff.status = MilestoneStatus::Met,
            MilestoneStatus::Breached => kickoff.status = MilestoneStatus::MetLate,
            _ => return,
        }
        kickoff.met_at = Some(at);
        let news = self.milestone_news("kickoff");
        commands.push(Command::Notify(Box::new(news)));
        self.finish(Stage::Completed, commands);
    }

    fn try_reach_day0(&mut self, now: DateTime<Utc>, commands: &mut Vec<Command>) {
        if self.day0.is_some() || self.stage != Stage::AwaitingGates {
            return;
        }
        let (Some(plan), Some(bundle)) = (self.plan.as_ref(), self.bundle.as_ref()) else {
            return;
        };
        let passed: Option<Vec<DateTime<Utc>>> = plan
            .required_gates
            .iter()
            .map(|gate| self.gates.get(gate).and_then(|g| g.passed_at))
            .collect();
        let Some(passed) = passed else { return };
        let latest_gate = passed.into_iter().max().unwrap_or(bundle.closed_won_at);
        let day0 = latest_gate.max(bundle.closed_won_at);
        self.day0 = Some(day0);
        self.stage = Stage::Kickoff;
        self.kickoff = Some(self.arm_kickoff(day0));
        let tasks = self.day0_tasks(day0);
        commands.push(self.create_tasks("day0", tasks));
        if let Some(at) = self.early_kickoff_at {
            self.on_kickoff_held(at, commands);
        }
        commands.extend(self.advance(now));
    }

    fn arm_kickoff(&self, day0: DateTime<Utc>) -> Milestone {
        let plan = self
            .plan
            .as_ref()
            .expect("day 0 is reached only with a plan");
        let playbook = &plan.playbook;
        let calendar = self.calendar();
        let due_at = calendar.business_days_after(day0, playbook.kickoff_business_days);
        let window = calendar.business_seconds_between(day0, due_at);
        let offset = (window as f64 * playbook.kickoff_reminder_fraction) as i64;
        let raw = calendar.add_business_seconds(day0, offset);
        let send_at = calendar.next_send_time(raw, playbook.send_hour, self.send_timezone());
        Milestone {
            name: "kickoff".to_owned(),
            owner_role: playbook.kickoff_owner_role.clone(),
            owner: plan.owner(&playbook.kickoff_owner_role),
            due_at,
            status: MilestoneStatus::Pending,
            met_at: None,
            escalation_level: 0,
            reminder_at: (send_at < due_at).then_some(send_at),
            reminder_done: false,
        }
    }

    // TODO(#4): the owner's own timezone from the directory.
    fn send_timezone(&self) -> chrono_tz::Tz {
        self.calendar().timezone()
    }

    fn breach_kickoff(&mut self, commands: &mut Vec<Command>) {
        let Some(kickoff) = self.kickoff.as_mut() else {
            return;
        };
        kickoff.status = MilestoneStatus::Breached;
        kickoff.escalation_level = 1;
        let due_at = kickoff.due_at;
        let owner = kickoff.owner.clone();
        let owner_role = kickoff.owner_role.clone();
        self.at_risk = true;
        self.breach_count += 1;

        let remediation = TaskSpec {
            key: "remediate_kickoff".to_owned(),
            title: "Kickoff missed: find the root cause and plan the remediation".to_owned(),
            owner_role: "handoff_owner".to_owned(),
            owner: self.handoff_owner().unwrap_or_else(|| owner.clone()),
            due_at: self.calendar().business_days_after(due_at, 2),
            depends_on: Vec::new(),
            status: TaskStatus::Open,
        };
        commands.push(self.create_tasks("breach:kickoff", vec![remediation]));

        let mut recipients = vec![Recipient {
            role: owner_role,
            handle: owner,
        }];
        if let Some(handoff_owner) = self.handoff_owner()
            && recipients.iter().all(|r| r.handle != handoff_owner)
        {
            recipients.push(Recipient {
                role: "handoff_owner".into(),
                handle: handoff_owner,
            });
        }
        let escalation = self.notification(
            "escalate/kickoff/1",
            "escalation",
            Some("kickoff"),
            Some(1),
            recipients,
        );
        commands.push(Command::Notify(Box::new(escalation)));
        // TODO(#3): levels 2 and 3 and the onboarding milestones; this slice ends at the level-1 escalation.
        self.finish(Stage::Completed, commands);
    }

    fn cancel(&mut self, reason: String, commands: &mut Vec<Command>) {
        let reason = if reason == "deleted" || reason == "operator" {
            reason
        } else {
            "lost".to_owned()
        };
        if !self.tasks.is_empty() {
            commands.push(Command::CancelTasks(CancelTasks {
                workflow_id: self.workflow_id.clone(),
                reason: reason.clone(),
            }));
            for status in self.tasks.values_mut() {
                if matches!(status, TaskStatus::Open | TaskStatus::Blocked) {
                    *status = TaskStatus::Cancelled;
                }
            }
        }
        if let Some(plan) = self.plan.as_ref() {
            let recipients = ["handoff_owner", "account_executive"]
                .iter()
                .map(|role| Recipient {
                    role: (*role).to_owned(),
                    handle: plan.owner(role),
                })
                .collect();
            let mut news =
                self.notification("cancelled", "handoff_cancelled", None, None, recipients);
            news.facts.insert("reason".into(), reason.clone());
            commands.push(Command::Notify(Box::new(news)));
        }
        self.cancel_reason = Some(reason);
        self.finish(Stage::Cancelled, commands);
    }

    fn finish(&mut self, stage: Stage, commands: &mut Vec<Command>) {
        self.stage = stage;
        commands.push(Command::Finish);
    }

    fn create_tasks(&mut self, trigger: &str, tasks: Vec<TaskSpec>) -> Command {
        for task in &tasks {
            self.tasks.entry(task.key.clone()).or_insert(task.status);
        }
        Command::CreateTasks(CreateTasks {
            workflow_id: self.workflow_id.clone(),
            trigger: trigger.to_owned(),
            tasks,
        })
    }

    fn day0_tasks(&self, day0: DateTime<Utc>) -> Vec<TaskSpec> {
        let plan = self
            .plan
            .as_ref()
            .expect("day 0 is reached only with a plan");
        let calendar = self.calendar();
        plan.playbook
            .day0_tasks
            .iter()
            .map(|template: &TaskTemplate| TaskSpec {
                key: template.key.clone(),
                title: template.title.clone(),
                owner_role: template.owner_role.clone(),
                owner: plan.owner(&template.owner_role),
                due_at: match template.due {
                    DueRule::BusinessDays(n) => calendar.business_days_after(day0, n),
                    DueRule::CalendarDays(n) => calendar.calendar_days_after(day0, n),
                },
                depends_on: template.depends_on.clone(),
                status: if template.depends_on.is_empty() {
                    TaskStatus::Open
                } else {
                    TaskStatus::Blocked
                },
            })
            .collect()
    }

    fn complete_bundle_task(&self, missing: &[String], now: DateTime<Utc>) -> TaskSpec {
        let plan = self.plan.as_ref().expect("called with a plan");
        TaskSpec {
            key: "complete_bundle".to_owned(),
            title: format!("Complete the handoff bundle: {}", missing.join(", ")),
            owner_role: "account_executive".to_owned(),
            owner: plan.owner("account_executive"),
            due_at: self.calendar().business_days_after(now, 2),
            depends_on: Vec::new(),
            status: TaskStatus::Open,
        }
    }

    fn reminder(&self, milestone: &str) -> Notification {
        let kickoff = self
            .kickoff
            .as_ref()
            .expect("reminders exist only for armed milestones");
        let recipients = vec![Recipient {
            role: kickoff.owner_role.clone(),
            handle: kickoff.owner.clone(),
        }];
        let percent = self
            .plan
            .as_ref()
            .map_or(50.0, |p| p.playbook.kickoff_reminder_fraction * 100.0);
        let step = format!("remind/{milestone}/{}pct", percent.round() as u32);
        self.notification(&step, "reminder", Some(milestone), None, recipients)
    }

    fn milestone_news(&self, milestone: &str) -> Notification {
        let recipients = self
            .handoff_owner()
            .map(|handle| {
                vec![Recipient {
                    role: "handoff_owner".into(),
                    handle,
                }]
            })
            .unwrap_or_default();
        self.notification(
            &format!("met/{milestone}"),
            "milestone_met",
            Some(milestone),
            None,
            recipients,
        )
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
        if let Some(kickoff) = self
            .kickoff
            .as_ref()
            .filter(|k| Some(k.name.as_str()) == milestone)
        {
            facts.insert("due_at".to_owned(), kickoff.due_at.to_rfc3339());
        }
        Notification {
            key: format!("{}/{step}", self.workflow_id),
            workflow_id: self.workflow_id.clone(),
            kind: kind.to_owned(),
            milestone: milestone.map(str::to_owned),
            level,
            recipients,
            facts,
        }
    }
}

#[cfg(test)]
mod tests;
