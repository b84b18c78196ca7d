//! What happens when business time passes an instant: reminders, breaches,
//! escalation levels, the gate timeout, the end of a lost deal's grace, and
//! the close after day 90.

use chrono::{DateTime, Utc};

use super::sla::{self, ReminderState, Sla, Wake};
use super::{Command, Deadline, Handoff, MilestoneStatus, Observation, Outbox, Stage};
use crate::activity::{Reach, Recipient};
use crate::playbook::Gate;

/// Which clock a deadline belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clock {
    Gate(Gate),
    Milestone(usize),
}

/// One instant the handoff must act at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    Sla(Clock, Wake),
    GateTimeout,
    LostGrace,
    Close,
}

/// More deadlines than any schedule has: a guard against a clock that
/// fails to move on, which would otherwise spin a workflow task forever.
const MAX_STEPS_PER_ADVANCE: usize = 10_000;

impl Handoff {
    /// The next business instant something is due, if any.
    pub fn next_deadline(&self) -> Option<Deadline> {
        let (due, at) = self.next_due()?;
        let (kind, milestone) = match due {
            Due::Sla(clock, wake) => {
                let kind = match wake {
                    Wake::Reminder(_) => "reminder",
                    Wake::Breach => "due",
                    Wake::Escalation => "escalation",
                };
                (kind, self.clock(clock).map(|c| c.name.clone()))
            }
            Due::GateTimeout => ("gate_timeout", None),
            Due::LostGrace => ("lost_grace", None),
            Due::Close => ("close", None),
        };
        Some(Deadline {
            kind: kind.to_owned(),
            milestone,
            at,
        })
    }

    /// Fires every deadline at or before `now`, earliest first.
    pub(super) fn advance_into(&mut self, now: DateTime<Utc>, out: &mut Outbox) {
        for _ in 0..MAX_STEPS_PER_ADVANCE {
            if self.stage.is_terminal() {
                return;
            }
            let Some((due, at)) = self.next_due() else {
                return;
            };
            if at > now {
                return;
            }
            self.fire(due, now, out);
        }
        panic!("a deadline did not move on after {MAX_STEPS_PER_ADVANCE} steps");
    }

    fn next_due(&self) -> Option<(Due, DateTime<Utc>)> {
        if self.stage.is_terminal() {
            return None;
        }
        if let Some(pause) = self.pause.as_ref() {
            // The clocks stand still; only a lost deal's grace runs out.
            return pause.lost_grace_until.map(|at| (Due::LostGrace, at));
        }
        let gates = self.gates.iter().filter_map(|(gate, record)| {
            let (wake, at) = record.sla.as_ref()?.next_wake()?;
            Some((Due::Sla(Clock::Gate(*gate), wake), at))
        });
        let milestones = self.milestones.iter().enumerate().filter_map(|(index, m)| {
            let (wake, at) = m.next_wake()?;
            Some((Due::Sla(Clock::Milestone(index), wake), at))
        });
        let timeout = self
            .gate_timeout_at
            .filter(|_| self.stage == Stage::AwaitingGates)
            .map(|at| (Due::GateTimeout, at));
        let close = self.close_at().map(|at| (Due::Close, at));
        gates
            .chain(milestones)
            .chain(timeout)
            .chain(close)
            .min_by_key(|(_, at)| *at)
    }

    /// `close_after` business days after the latest milestone due instant.
    pub fn close_at(&self) -> Option<DateTime<Utc>> {
        if self.day0.is_none() || self.milestones.iter().all(|m| m.status.is_resolved()) {
            return None;
        }
        let latest = self.milestones.iter().map(|m| m.due_at).max()?;
        let days = self.playbook().close_after_business_days;
        Some(self.calendar().shift_business_days(latest, days))
    }

    fn clock(&self, clock: Clock) -> Option<&Sla> {
        match clock {
            Clock::Gate(gate) => self.gates.get(&gate).and_then(|g| g.sla.as_ref()),
            Clock::Milestone(index) => self.milestones.get(index),
        }
    }

    fn clock_mut(&mut self, clock: Clock) -> Option<&mut Sla> {
        match clock {
            Clock::Gate(gate) => self.gates.get_mut(&gate).and_then(|g| g.sla.as_mut()),
            Clock::Milestone(index) => self.milestones.get_mut(index),
        }
    }

    fn fire(&mut self, due: Due, now: DateTime<Utc>, out: &mut Outbox) {
        match due {
            Due::Sla(clock, Wake::Reminder(index)) => self.remind(clock, index, now, out),
            Due::Sla(clock, Wake::Breach) => self.breach(clock, now, out),
            Due::Sla(clock, Wake::Escalation) => self.escalate(clock, now, out),
            Due::GateTimeout => self.cancel("gate_timeout", None, now, out),
            Due::LostGrace => {
                let detail = self.pause.as_ref().and_then(|p| p.reason.clone());
                self.cancel("lost", detail, now, out);
            }
            Due::Close => self.close(now, out),
        }
    }

    /// Sends a reminder, unless a later one is also due already (a late
    /// discovery sends only the latest) or the due instant itself passed.
    fn remind(&mut self, clock: Clock, index: usize, now: DateTime<Utc>, out: &mut Outbox) {
        let Some(sla) = self.clock_mut(clock) else {
            return;
        };
        let overtaken = sla
            .reminders
            .iter()
            .skip(index + 1)
            .any(|r| r.state == ReminderState::Scheduled && r.at <= now);
        let send = !overtaken && now < sla.due_at;
        sla.reminders[index].state = if send {
            ReminderState::Sent
        } else {
            ReminderState::Dropped
        };
        if !send {
            return;
        }
        let sla = sla.clone();
        let mut step = format!("remind/{}/{}", sla.name, sla.reminders[index].label);
        if sla.extensions > 0 {
            step.push_str(&format!("/ext{}", sla.extensions));
        }
        let recipients = vec![Recipient {
            role: sla.owner_role.clone(),
            handle: sla.owner.clone(),
            reach: Reach::Direct,
        }];
        let notification = self.notification(&step, "reminder", Some(&sla.name), None, recipients);
        out.push(Command::Notify(Box::new(notification)));
    }

    /// The due instant passed unmet: breached exactly once, remediation task,
    /// and one escalation at the level now due.
    fn breach(&mut self, clock: Clock, now: DateTime<Utc>, out: &mut Outbox) {
        let ladder = self.playbook().ladder.clone();
        let calendar = self.calendar();
        let Some(sla) = self.clock_mut(clock) else {
            return;
        };
        sla.status = MilestoneStatus::Breached;
        sla.drop_reminders();
        let delays: Vec<u32> = ladder.iter().map(|l| l.after_business_days).collect();
        let instants = sla::ladder_instants(&calendar, sla.due_at, &delays);
        let reached = instants.iter().filter(|at| **at <= now).count();
        sla.next_escalation_at = instants.get(reached).copied();
        let name = sla.name.clone();
        self.breach_count += 1;
        if let Clock::Milestone(_) = clock {
            self.observe(Observation::Milestone {
                milestone: name.clone(),
                segment: self.segment_label(),
                outcome: "breached",
            });
        }

        let tasks = self.tasks_from_templates(&format!("breach:{name}"), now);
        self.create_tasks(&format!("breach:{name}"), tasks, out);
        if reached > 0 {
            self.send_escalation(clock, reached - 1, out);
        }
    }

    /// The next ladder level is due; a level discovered late jumps to the
    /// highest one now due, with one notification.
    fn escalate(&mut self, clock: Clock, now: DateTime<Utc>, out: &mut Outbox) {
        let ladder = self.playbook().ladder.clone();
        let calendar = self.calendar();
        let Some(sla) = self.clock_mut(clock) else {
            return;
        };
        let Some(first) = sla.next_escalation_at else {
            return;
        };
        let next_index = usize::from(sla.escalation_level);
        let delays: Vec<u32> = ladder
            .iter()
            .skip(next_index + 1)
            .map(|l| l.after_business_days)
            .collect();
        let later = sla::ladder_instants(&calendar, first, &delays);
        let extra = later.iter().filter(|at| **at <= now).count();
        sla.next_escalation_at = later.get(extra).copied();
        self.send_escalation(clock, next_index + extra, out);
    }

    fn send_escalation(&mut self, clock: Clock, ladder_index: usize, out: &mut Outbox) {
        let playbook = self.playbook().into_owned();
        let Some(level) = playbook.ladder.get(ladder_index) else {
            return;
        };
        let Some(sla) = self.clock(clock).cloned() else {
            return;
        };
        let recipients = level
            .notify
            .iter()
            .flat_map(|audience| self.audience(&sla, audience))
            .collect();
        let step = format!("escalate/{}/{}", sla.name, level.level);
        let notification = self.notification(
            &step,
            "escalation",
            Some(&sla.name),
            Some(level.level),
            recipients,
        );
        if let Some(sla) = self.clock_mut(clock) {
            sla.escalation_level = level.level;
        }
        self.escalation_count += 1;
        self.observe(Observation::Escalation {
            milestone: sla.name.clone(),
            level: level.level,
        });
        out.push(Command::Notify(Box::new(notification)));
    }

    /// `close_after` passed after day 90: whatever is open closes as breached.
    fn close(&mut self, now: DateTime<Utc>, out: &mut Outbox) {
        let segment = self.segment_label();
        let mut closed = Vec::new();
        for sla in &mut self.milestones {
            if sla.status == MilestoneStatus::Pending {
                sla.status = MilestoneStatus::Breached;
                self.breach_count += 1;
                closed.push(sla.name.clone());
            }
            sla.stop_ladder();
        }
        for milestone in closed {
            self.observe(Observation::Milestone {
                milestone,
                segment: segment.clone(),
                outcome: "breached",
            });
        }
        self.complete(now, out);
    }
}
