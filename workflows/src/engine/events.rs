//! What each signal and update does to a handoff.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::sla::{ReminderPolicy, ReminderState, Sla};
use super::{
    Command, Event, GateRecord, Handoff, MilestoneStatus, Observation, Outbox, Pause, PauseKind,
    Stage, TaskRecord, Update,
};
use crate::activity::{
    CancelTasks, PlanRequest, REVIEW_FACT, Reach, Recipient, TaskChange, TaskSpec, TaskStatus,
    TaskUpdates,
};
use crate::bundle::{OWNER_ROLES, ValidBundle};
use crate::playbook::{Gate, MetBy, Plan, SEGMENTS};
use crate::status::Review;

impl Handoff {
    /// Applies one decoded event; `Err` is a rejection naming the field.
    pub(super) fn on_event(
        &mut self,
        event: Event,
        now: DateTime<Utc>,
        out: &mut Outbox,
    ) -> Result<(), String> {
        match event {
            Event::ClosedWon { bundle, as_of, at } => self.on_closed_won(*bundle, as_of, at, out),
            Event::PlanResolved(plan) => {
                self.on_plan(*plan, now, out);
                Ok(())
            }
            Event::GatePassed { gate, at, by } => {
                self.on_gate(gate, at, by, now, out);
                Ok(())
            }
            Event::KickoffHeld { at } => self.meet_milestone("kickoff", at, None, now, out),
            Event::MilestoneReached {
                milestone,
                at,
                evidence,
            } => self.on_milestone_reached(&milestone, at, evidence, now, out),
            Event::AdoptionReported { rate, at } => self.on_adoption(rate, at, now, out),
            Event::EscalationAcknowledged { milestone, .. } => self.on_acknowledged(&milestone),
            Event::CustomerBlocked { at, reason } => {
                self.pause_clocks(PauseKind::CustomerBlocked, at, reason);
                Ok(())
            }
            Event::CustomerUnblocked { at } => {
                self.resume_clocks(&[PauseKind::CustomerBlocked], at, out);
                Ok(())
            }
            Event::TaskCompleted { key, at } => self.on_task_completed(&key, at, now, out),
            Event::DealReopened { at } => {
                if self.bundle.is_some() {
                    self.pause_clocks(PauseKind::Reopened, at, None);
                }
                Ok(())
            }
            Event::DealLost { reason, at } => {
                self.on_lost(reason, at, now, out);
                Ok(())
            }
            Event::OperatorCancelled => {
                self.cancel("operator", None, now, out);
                Ok(())
            }
            Event::Update(update) => {
                self.validate(&update, now)?;
                self.on_update(update, now, out);
                Ok(())
            }
        }
    }

    fn on_closed_won(
        &mut self,
        bundle: ValidBundle,
        as_of: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
        out: &mut Outbox,
    ) -> Result<(), String> {
        let Some(previous) = self.bundle.take() else {
            self.gate_anchor = Some(as_of.unwrap_or(bundle.closed_won_at));
            self.stage = Stage::AwaitingGates;
            self.request_plan(&bundle, out);
            self.bundle = Some(bundle);
            return Ok(());
        };
        self.resume_clocks(&[PauseKind::Reopened, PauseKind::Lost], at, out);
        let new_segment = bundle
            .bundle
            .deal
            .segment
            .as_deref()
            .map(str::trim)
            .filter(|s| SEGMENTS.contains(s));
        let segment_changed =
            new_segment.is_some_and(|s| self.plan.as_ref().is_some_and(|p| p.segment != s));
        // The plan is frozen; only an explicit segment change before day 0 re-plans.
        if segment_changed && self.day0.is_none() {
            self.request_plan(&bundle, out);
        }
        let changed_roles: Vec<(String, String)> = OWNER_ROLES
            .iter()
            .filter_map(|role| {
                let given = |b: &ValidBundle| {
                    b.bundle
                        .owners
                        .get(*role)
                        .map(|h| h.trim().to_owned())
                        .filter(|h| !h.is_empty())
                };
                let new = given(&bundle)?;
                (given(&previous).as_ref() != Some(&new)).then(|| ((*role).to_owned(), new))
            })
            .collect();
        self.bundle = Some(bundle);
        for (role, handle) in changed_roles {
            self.reassign(&role, &handle, at, out);
        }
        Ok(())
    }

    fn request_plan(&mut self, bundle: &ValidBundle, out: &mut Outbox) {
        self.planning = true;
        out.push(Command::ResolvePlan(Box::new(PlanRequest {
            workflow_id: self.workflow_id.clone(),
            bundle: bundle.clone(),
        })));
    }

    fn on_plan(&mut self, plan: Plan, now: DateTime<Utc>, out: &mut Outbox) {
        if !self.planning || self.day0.is_some() {
            return;
        }
        self.planning = false;
        let first = self.plan.is_none();
        let mut plan = plan;
        if let Some(previous) = self.plan.as_ref() {
            // Reassignments made so far survive a re-plan.
            plan.owners = previous.owners.clone();
        }
        let timeout = plan.playbook.gate_timeout_business_days;
        let segment = plan.segment.clone();
        self.plan = Some(plan);
        if first {
            self.observe(Observation::Started {
                segment: segment.clone(),
            });
            let passed: Vec<Gate> = self
                .gates
                .iter()
                .filter(|(_, g)| g.passed_at.is_some())
                .map(|(gate, _)| *gate)
                .collect();
            for gate in passed {
                self.observe(Observation::GatePassed {
                    gate: gate.name(),
                    segment: segment.clone(),
                });
            }
        }
        if first && self.grace_lost_deal_waiting_for_plan(now, out) {
            return;
        }
        self.arm_gates(now);
        let anchor = self.gate_anchor.unwrap_or(now);
        if self.gate_timeout_at.is_none() {
            self.gate_timeout_at = Some(self.calendar().business_days_after(anchor, timeout));
        }
        if first {
            self.closed_won_tasks(now, out);
        }
        self.try_reach_day0(now, out);
    }

    /// Arms the SLA of every required gate, from the gate anchor.
    fn arm_gates(&mut self, now: DateTime<Utc>) {
        let Some(plan) = self.plan.clone() else {
            return;
        };
        let calendar = self.calendar();
        let anchor = self.gate_anchor.unwrap_or(now);
        let timezone = calendar.timezone();
        let keep = self.keep_dropped_gate_clocks;
        for gate in Gate::ALL {
            let record = self.gates.entry(gate).or_default();
            let policy = plan.playbook.gate(gate);
            let (Some(policy), true) = (policy, plan.requires(gate)) else {
                let dropped = record.sla.take();
                if keep && dropped.is_some() {
                    record.set_aside = dropped;
                }
                continue;
            };
            if keep && record.sla.is_none() && record.passed_at.is_none() {
                record.sla = record.set_aside.take();
            }
            if record.sla.is_some() {
                // A re-plan keeps a clock that was already running: its
                // pause shifts, sent reminders and any breach stand.
                continue;
            }
            let owner = plan.owner(&policy.owner_role);
            let mut clock = Sla::arm(
                gate.name(),
                (&policy.owner_role, &owner),
                policy.sla,
                anchor,
                &calendar,
                ReminderPolicy {
                    offsets: &policy.reminders,
                    send_hour: plan.playbook.send_hour,
                    timezone: plan.directory.timezone_of(&owner).unwrap_or(timezone),
                },
            );
            if let Some(passed_at) = record.passed_at {
                // Passed before the plan existed: late if after its due instant,
                // recorded without escalating, since nothing is left to chase.
                clock.meet(passed_at, None);
                if passed_at > clock.due_at {
                    clock.status = MilestoneStatus::MetLate;
                    self.breach_count += 1;
                }
            }
            record.sla = Some(clock);
        }
    }

    fn closed_won_tasks(&mut self, now: DateTime<Utc>, out: &mut Outbox) {
        let Some(plan) = self.plan.as_ref() else {
            return;
        };
        let mut tasks = self.tasks_from_templates("closed_won", now);
        if !plan.missing_fields.is_empty() {
            tasks.push(TaskSpec {
                key: "complete_bundle".to_owned(),
                title: format!(
                    "Complete the handoff bundle: {}",
                    plan.missing_fields.join(", ")
                ),
                owner_role: "account_executive".to_owned(),
                owner: plan.owner("account_executive"),
                due_at: self.calendar().business_days_after(now, 2),
                depends_on: Vec::new(),
                status: TaskStatus::Open,
                meets: None,
            });
        }
        self.create_tasks("closed_won", tasks, out);
    }

    fn on_gate(
        &mut self,
        gate: Gate,
        at: DateTime<Utc>,
        by: Option<String>,
        now: DateTime<Utc>,
        out: &mut Outbox,
    ) {
        let record: &mut GateRecord = self.gates.entry(gate).or_default();
        let first = record.passed_at.is_none();
        if record.passed_at.is_none_or(|earlier| at < earlier) {
            record.passed_at = Some(at);
            record.by = by;
        }
        if let Some(clock) = record.sla.as_mut()
            && !clock.meet(at, None)
            && clock.status == MilestoneStatus::Met
            && clock.met_at.is_some_and(|m| at < m)
        {
            clock.met_at = Some(at);
        }
        if first && self.plan.is_some() {
            self.observe(Observation::GatePassed {
                gate: gate.name(),
                segment: self.segment_label(),
            });
        }
        self.try_reach_day0(now, out);
    }

    /// Day 0 arrives when the plan is frozen and every required gate passed.
    pub(super) fn try_reach_day0(&mut self, now: DateTime<Utc>, out: &mut Outbox) {
        if self.day0.is_some() || self.stage != Stage::AwaitingGates || self.planning {
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
        let day0 = passed
            .into_iter()
            .max()
            .unwrap_or(bundle.closed_won_at)
            .max(bundle.closed_won_at);
        self.day0 = Some(day0);
        self.stage = Stage::Kickoff;
        self.arm_milestones(day0);
        let tasks = self.tasks_from_templates("day0", day0);
        self.create_tasks("day0", tasks, out);
        let early = std::mem::take(&mut self.early);
        for (name, (at, evidence)) in early {
            // Early events were validated on arrival; a rejection here cannot happen.
            let _ = self.meet_milestone(&name, at, evidence, now, out);
        }
    }

    fn arm_milestones(&mut self, day0: DateTime<Utc>) {
        let Some(plan) = self.plan.as_ref() else {
            return;
        };
        let calendar = self.calendar();
        let timezone = calendar.timezone();
        self.milestones = plan
            .playbook
            .milestones
            .iter()
            .map(|policy| {
                let owner = plan.owner(&policy.owner_role);
                Sla::arm(
                    &policy.name,
                    (&policy.owner_role, &owner),
                    policy.due,
                    day0,
                    &calendar,
                    ReminderPolicy {
                        offsets: &policy.reminders,
                        send_hour: plan.playbook.send_hour,
                        // The send hour is the owner's morning, not the team's.
                        timezone: plan.directory.timezone_of(&owner).unwrap_or(timezone),
                    },
                )
            })
            .collect();
    }

    fn on_milestone_reached(
        &mut self,
        milestone: &str,
        at: DateTime<Utc>,
        evidence: Option<String>,
        now: DateTime<Utc>,
        out: &mut Outbox,
    ) -> Result<(), String> {
        let playbook = self.playbook();
        let policy = playbook
            .milestone(milestone)
            .ok_or_else(|| format!("milestone: no milestone named {milestone:?}"))?;
        match policy.met_by {
            MetBy::MilestoneReached { evidence_required } => {
                if evidence_required && evidence.as_deref().is_none_or(|e| e.trim().is_empty()) {
                    return Err(format!("evidence: required to meet {milestone}"));
                }
            }
            MetBy::KickoffHeld => {
                return Err(format!("milestone: {milestone} is met by kickoff_held"));
            }
            MetBy::AdoptionReported => {
                return Err(format!(
                    "milestone: {milestone} is met by adoption_reported"
                ));
            }
        }
        drop(playbook);
        self.meet_milestone(milestone, at, evidence, now, out)
    }

    fn on_adoption(
        &mut self,
        rate: f64,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
        out: &mut Outbox,
    ) -> Result<(), String> {
        self.adoption_rate = Some(rate);
        let playbook = self.playbook();
        let Some(policy) = playbook
            .milestones
            .iter()
            .find(|m| m.met_by == MetBy::AdoptionReported)
        else {
            return Ok(());
        };
        let name = policy.name.clone();
        let threshold = playbook.adoption_threshold;
        drop(playbook);
        if rate >= threshold {
            self.meet_milestone(
                &name,
                at,
                Some(format!("adoption rate {rate:.2}")),
                now,
                out,
            )?;
        }
        Ok(())
    }

    /// Meets a milestone at `at`, or remembers it until day 0.
    pub(super) fn meet_milestone(
        &mut self,
        name: &str,
        at: DateTime<Utc>,
        evidence: Option<String>,
        now: DateTime<Utc>,
        out: &mut Outbox,
    ) -> Result<(), String> {
        if self.day0.is_none() {
            let entry = self.early.entry(name.to_owned()).or_insert((at, evidence));
            entry.0 = entry.0.min(at);
            return Ok(());
        }
        let Some(clock) = self.milestones.iter_mut().find(|m| m.name == name) else {
            return Err(format!("milestone: no milestone named {name:?}"));
        };
        if !clock.meet(at, evidence) {
            if clock.status == MilestoneStatus::Met && clock.met_at.is_some_and(|m| at < m) {
                clock.met_at = Some(at);
            }
            return Ok(());
        }
        let late = clock.status == MilestoneStatus::MetLate;
        let mut recipients = vec![Recipient {
            role: clock.owner_role.clone(),
            handle: clock.owner.clone(),
            reach: Reach::Direct,
        }];
        recipients.extend(self.handoff_owner().map(|handle| Recipient {
            role: "handoff_owner".to_owned(),
            handle,
            reach: Reach::Direct,
        }));
        let segment = self.segment_label();
        self.observe(Observation::Milestone {
            milestone: name.to_owned(),
            segment: segment.clone(),
            outcome: if late { "met_late" } else { "met" },
        });
        let signed = self.gates.get(&Gate::Signature).and_then(|g| g.passed_at);
        if let (true, Some(signed)) = (name == "first_value", signed) {
            self.observe(Observation::TimeToFirstValue {
                segment,
                seconds: (at - signed).num_seconds().max(0) as f64,
            });
        }
        let kind = if late {
            "milestone_met_late"
        } else {
            "milestone_met"
        };
        let news = self.notification(&format!("met/{name}"), kind, Some(name), None, recipients);
        out.push(Command::Notify(Box::new(news)));
        self.after_milestone_resolved(name, now, out);
        Ok(())
    }

    /// Tasks, stage and completion after a milestone is met or waived.
    pub(super) fn after_milestone_resolved(
        &mut self,
        name: &str,
        now: DateTime<Utc>,
        out: &mut Outbox,
    ) {
        let meeting: Vec<String> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.meets.as_deref() == Some(name))
            .map(|(key, _)| key.clone())
            .collect();
        self.complete_tasks(&meeting, format!("tasks/met/{name}"), out);
        let mut triggers = vec![format!("milestone_met:{name}")];
        if name == "kickoff" {
            triggers.insert(0, "kickoff_held".to_owned());
        }
        for trigger in triggers {
            let tasks = self.tasks_from_templates(&trigger, now);
            self.create_tasks(&trigger, tasks, out);
        }
        let kickoff_resolved = self
            .milestones
            .iter()
            .find(|m| m.name == "kickoff")
            .is_none_or(|m| m.status.is_resolved());
        if self.stage == Stage::Kickoff && kickoff_resolved {
            self.stage = Stage::Onboarding;
        }
        if self.milestones.iter().all(|m| m.status.is_resolved()) {
            self.complete(now, out);
        }
    }

    fn on_acknowledged(&mut self, milestone: &str) -> Result<(), String> {
        let clock = self
            .sla_mut(milestone)
            .ok_or_else(|| format!("milestone: no armed gate or milestone named {milestone:?}"))?;
        clock.stop_ladder();
        Ok(())
    }

    fn on_task_completed(
        &mut self,
        key: &str,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
        out: &mut Outbox,
    ) -> Result<(), String> {
        let task: &TaskRecord = self
            .tasks
            .get(key)
            .ok_or_else(|| format!("key: no task {key:?} in this handoff"))?;
        let meets = task.meets.clone();
        self.complete_tasks(&[key.to_owned()], format!("tasks/done/{key}"), out);
        if let Some(milestone) = meets {
            self.meet_milestone(&milestone, at, Some(format!("task {key} done")), now, out)?;
        }
        Ok(())
    }

    fn on_lost(&mut self, reason: String, at: DateTime<Utc>, now: DateTime<Utc>, out: &mut Outbox) {
        let grace = self
            .plan
            .as_ref()
            .map(|p| p.playbook.lost_grace_business_days);
        match grace {
            Some(days) if reason != "deleted" && days > 0 => {
                let until = self.calendar().business_days_after(at, days);
                self.pause_clocks(PauseKind::Lost, at, Some(reason));
                if let Some(pause) = self.pause.as_mut() {
                    pause.lost_grace_until = Some(until);
                }
            }
            // Won, then lost before the plan came back: the plan says how
            // long the grace is, so the deal waits for it, paused.
            None if self.lost_waits_for_plan
                && self.planning
                && self.bundle.is_some()
                && reason != "deleted" =>
            {
                self.pause_clocks(PauseKind::Lost, at, Some(reason));
            }
            _ => {
                let cancel_reason = if reason == "deleted" {
                    "deleted"
                } else {
                    "lost"
                };
                self.cancel(cancel_reason, Some(reason), now, out);
            }
        }
    }

    /// A deal lost while its first plan was on the way is lost again now
    /// that the plan says how long its grace is, counted from the start of
    /// its pause. Returns whether the handoff ended (a plan with no grace).
    fn grace_lost_deal_waiting_for_plan(&mut self, now: DateTime<Utc>, out: &mut Outbox) -> bool {
        let Some(pause) = self.pause.as_ref() else {
            return false;
        };
        if !pause.kinds.contains(&PauseKind::Lost) || pause.lost_grace_until.is_some() {
            return false;
        }
        let (since, reason) = (pause.since, pause.reason.clone());
        self.on_lost(reason.unwrap_or_else(|| "lost".to_owned()), since, now, out);
        self.stage.is_terminal()
    }

    /// Stops the clocks for `kind` from `at`.
    pub(super) fn pause_clocks(
        &mut self,
        kind: PauseKind,
        at: DateTime<Utc>,
        reason: Option<String>,
    ) {
        match self.pause.as_mut() {
            Some(pause) => {
                pause.kinds.insert(kind);
                if reason.is_some() {
                    pause.reason = reason;
                }
            }
            None => {
                self.pause = Some(Pause {
                    kinds: BTreeSet::from([kind]),
                    since: at,
                    reason,
                    lost_grace_until: None,
                });
            }
        }
    }

    /// Lifts `kinds`; when nothing holds the clocks any more, every open due
    /// instant moves later by the days the pause touched and held work goes out.
    pub(super) fn resume_clocks(
        &mut self,
        kinds: &[PauseKind],
        at: DateTime<Utc>,
        out: &mut Outbox,
    ) {
        let Some(pause) = self.pause.as_mut() else {
            return;
        };
        for kind in kinds {
            pause.kinds.remove(kind);
        }
        if !pause.kinds.contains(&PauseKind::Lost) {
            pause.lost_grace_until = None;
        }
        if !pause.kinds.is_empty() {
            return;
        }
        let since = pause.since;
        let to = at.max(since);
        self.pause = None;
        let calendar = self.calendar();
        for clock in self
            .gates
            .values_mut()
            .filter_map(|g| g.sla.as_mut())
            .chain(self.milestones.iter_mut())
        {
            clock.shift_for_pause(&calendar, since, to);
        }
        if self.stage == Stage::AwaitingGates {
            let days = calendar.business_days_touched(since, to);
            self.gate_timeout_at = self
                .gate_timeout_at
                .map(|t| calendar.shift_business_days(t, days));
        }
        out.commands.append(&mut self.held);
    }

    /// Ends the handoff early: open tasks cancelled, owners told.
    pub(super) fn cancel(
        &mut self,
        reason: &str,
        detail: Option<String>,
        now: DateTime<Utc>,
        out: &mut Outbox,
    ) {
        self.held.clear();
        let open: Vec<String> = self
            .tasks
            .iter()
            .filter(|(_, t)| matches!(t.status, TaskStatus::Open | TaskStatus::Blocked))
            .map(|(key, _)| key.clone())
            .collect();
        if !open.is_empty() {
            out.push(Command::CancelTasks(CancelTasks {
                workflow_id: self.workflow_id.clone(),
                reason: reason.to_owned(),
            }));
            for key in open {
                if let Some(task) = self.tasks.get_mut(&key) {
                    task.status = TaskStatus::Cancelled;
                }
            }
        }
        if self.plan.is_some() {
            let recipients = self.role_recipients(&["handoff_owner", "account_executive"]);
            let mut news =
                self.notification("cancelled", "handoff_cancelled", None, None, recipients);
            news.facts.insert("reason".into(), reason.to_owned());
            if let Some(detail) = detail {
                news.facts.insert("detail".into(), detail);
            }
            out.push(Command::Notify(Box::new(news)));
        }
        self.cancel_reason = Some(reason.to_owned());
        self.finish(Stage::Cancelled, now, out);
    }

    /// Every milestone is resolved, or the handoff closed: the review goes to
    /// customer success and the handoff completes.
    pub(super) fn complete(&mut self, now: DateTime<Utc>, out: &mut Outbox) {
        if self.plan.is_some() {
            let recipients = self.role_recipients(&["customer_success_manager", "handoff_owner"]);
            let mut review =
                self.notification("review", "post_close_review", None, None, recipients);
            let met = self
                .milestones
                .iter()
                .filter(|m| m.status == MilestoneStatus::Met)
                .count();
            review.facts.insert(
                "milestones_met".into(),
                format!("{met} of {}", self.milestones.len()),
            );
            review
                .facts
                .insert("breaches".into(), self.breach_count.to_string());
            // The whole review rides along, so the ledger keeps the final
            // outcomes for `handoff report` without another activity.
            let mut facts = Review::of(self);
            facts.outcome = Stage::Completed.as_str().to_owned();
            facts.ended_at = Some(now);
            review.facts.insert(
                REVIEW_FACT.into(),
                serde_json::to_string(&facts).expect("a review serialises"),
            );
            out.push(Command::Notify(Box::new(review)));
        }
        self.finish(Stage::Completed, now, out);
    }

    /// Checks an update without changing anything; the error names the field.
    pub fn validate(&self, update: &Update, now: DateTime<Utc>) -> Result<(), String> {
        if self.stage.is_terminal() {
            return Err(format!("handoff: already {}", self.stage.as_str()));
        }
        match update {
            Update::ExtendDeadline {
                milestone,
                new_due,
                reason,
            } => {
                require_reason(reason)?;
                let clock = self.sla(milestone).ok_or_else(|| {
                    format!("milestone: no armed gate or milestone named {milestone:?}")
                })?;
                if clock.status != MilestoneStatus::Pending {
                    return Err(format!(
                        "milestone: {milestone} is {}; only a pending deadline can move",
                        status_word(clock.status)
                    ));
                }
                if *new_due <= clock.due_at {
                    return Err(format!(
                        "new_due: must be later than the current due {}",
                        clock.due_at.to_rfc3339()
                    ));
                }
                if *new_due <= now {
                    return Err(format!(
                        "new_due: must be later than business now {}",
                        now.to_rfc3339()
                    ));
                }
                Ok(())
            }
            Update::WaiveMilestone { milestone, reason } => {
                require_reason(reason)?;
                let clock = self
                    .milestones
                    .iter()
                    .find(|m| &m.name == milestone)
                    .ok_or_else(|| format!("milestone: no armed milestone named {milestone:?}"))?;
                if clock.status.is_resolved() {
                    return Err(format!(
                        "milestone: {milestone} is already {}",
                        status_word(clock.status)
                    ));
                }
                Ok(())
            }
            Update::ReassignOwner { role, handle } => {
                if !OWNER_ROLES.contains(&role.as_str()) {
                    return Err(format!(
                        "role: unknown role {role:?}; expected one of {}",
                        OWNER_ROLES.join(", ")
                    ));
                }
                validate_handle(handle)?;
                let Some(plan) = self.plan.as_ref() else {
                    return Err("role: the handoff has no plan yet; send closed_won first".into());
                };
                if !plan.directory.knows(handle) {
                    return Err(format!("handle: {handle:?} is not in the owner directory"));
                }
                Ok(())
            }
        }
    }

    fn on_update(&mut self, update: Update, now: DateTime<Utc>, out: &mut Outbox) {
        match update {
            Update::ExtendDeadline {
                milestone, new_due, ..
            } => self.extend(&milestone, new_due, now),
            Update::WaiveMilestone { milestone, .. } => {
                if let Some(clock) = self.milestones.iter_mut().find(|m| m.name == milestone) {
                    clock.status = MilestoneStatus::Waived;
                    clock.stop_ladder();
                    clock.drop_reminders();
                }
                self.observe(Observation::Milestone {
                    milestone: milestone.clone(),
                    segment: self.segment_label(),
                    outcome: "waived",
                });
                self.after_milestone_resolved(&milestone, now, out);
            }
            Update::ReassignOwner { role, handle } => self.reassign(&role, &handle, now, out),
        }
    }

    fn extend(&mut self, name: &str, new_due: DateTime<Utc>, now: DateTime<Utc>) {
        let calendar = self.calendar();
        let playbook = self.playbook().into_owned();
        let offsets = match Gate::from_name(name) {
            Some(gate) => playbook.gate(gate).map(|g| g.reminders.clone()),
            None => playbook.milestone(name).map(|m| m.reminders.clone()),
        }
        .unwrap_or_default();
        let directory = self
            .plan
            .as_ref()
            .map(|p| p.directory.clone())
            .unwrap_or_default();
        let Some(clock) = self.sla_mut(name) else {
            return;
        };
        clock.due_at = new_due;
        clock.extensions += 1;
        let timezone = directory
            .timezone_of(&clock.owner)
            .unwrap_or(calendar.timezone());
        let mut reminders = clock.schedule_reminders(
            &calendar,
            ReminderPolicy {
                offsets: &offsets,
                send_hour: playbook.send_hour,
                timezone,
            },
        );
        for reminder in &mut reminders {
            if reminder.at <= now {
                reminder.state = ReminderState::Dropped;
            }
        }
        clock.reminders = reminders;
    }

    /// Gives `role` to `handle`: the plan, open clocks and open tasks follow.
    /// With `resnap_on_reassign`, reminders still to come go out at the send
    /// hour in the new owner's timezone.
    pub(super) fn reassign(
        &mut self,
        role: &str,
        handle: &str,
        now: DateTime<Utc>,
        out: &mut Outbox,
    ) {
        let Some(plan) = self.plan.as_mut() else {
            return;
        };
        if plan.owners.get(role).map(String::as_str) == Some(handle) {
            return;
        }
        plan.owners.insert(role.to_owned(), handle.to_owned());
        self.reassignments += 1;
        let calendar = self.calendar();
        let playbook = self.playbook().into_owned();
        let directory = self
            .plan
            .as_ref()
            .map(|p| p.directory.clone())
            .unwrap_or_default();
        let resnap = self.resnap_on_reassign;
        for clock in self
            .gates
            .values_mut()
            .filter_map(|g| g.sla.as_mut())
            .chain(self.milestones.iter_mut())
        {
            if clock.owner_role != role || clock.status.is_resolved() {
                continue;
            }
            let before = directory.timezone_of(&clock.owner);
            clock.owner = handle.to_owned();
            let after = directory.timezone_of(handle);
            if !resnap || after == before {
                continue;
            }
            let offsets = match Gate::from_name(&clock.name) {
                Some(gate) => playbook.gate(gate).map(|g| g.reminders.clone()),
                None => playbook.milestone(&clock.name).map(|m| m.reminders.clone()),
            }
            .unwrap_or_default();
            let fresh = clock.schedule_reminders(
                &calendar,
                ReminderPolicy {
                    offsets: &offsets,
                    send_hour: playbook.send_hour,
                    timezone: after.unwrap_or(calendar.timezone()),
                },
            );
            // Only reminders still to come move; what went out or was
            // dropped stays as it is.
            for reminder in &mut clock.reminders {
                if reminder.state != ReminderState::Scheduled {
                    continue;
                }
                if let Some(moved) = fresh.iter().find(|r| r.label == reminder.label) {
                    reminder.at = moved.at;
                    if reminder.at <= now {
                        reminder.state = ReminderState::Dropped;
                    }
                }
            }
            clock.reminders.sort_by_key(|r| r.at);
        }
        let mut changes = Vec::new();
        for (key, task) in self.tasks.iter_mut() {
            if task.owner_role == role
                && matches!(task.status, TaskStatus::Open | TaskStatus::Blocked)
            {
                task.owner = handle.to_owned();
                changes.push(TaskChange::owner(key, handle));
            }
        }
        if !changes.is_empty() {
            out.push(Command::UpdateTasks(TaskUpdates {
                workflow_id: self.workflow_id.clone(),
                step: format!("tasks/reassign/{}", self.reassignments),
                changes,
            }));
        }
    }
}

fn require_reason(reason: &str) -> Result<(), String> {
    if reason.trim().is_empty() {
        Err("reason: required".to_owned())
    } else {
        Ok(())
    }
}

/// Checks that a handle is a directory handle, not an address or free text.
pub fn validate_handle(handle: &str) -> Result<(), String> {
    if handle.contains('@') {
        return Err("handle: owners are directory handles, not e-mail addresses".to_owned());
    }
    let valid = !handle.is_empty()
        && handle.len() <= 64
        && handle
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "handle: {handle:?} is not a handle (1-64 of A-Z a-z 0-9 . _ -)"
        ))
    }
}

fn status_word(status: MilestoneStatus) -> &'static str {
    match status {
        MilestoneStatus::Pending => "pending",
        MilestoneStatus::Met => "met",
        MilestoneStatus::MetLate => "met late",
        MilestoneStatus::Breached => "breached",
        MilestoneStatus::Waived => "waived",
    }
}
