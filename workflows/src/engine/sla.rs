//! One clock of the schedule: a gate or a milestone, with its due instant,
//! reminders, breach and escalation ladder.
//!
//! Gates and milestones behave the same once armed, so they share [`Sla`]:
//! pending until met, reminded at the playbook's offsets, breached exactly
//! once at the due instant, then escalated level by level until acknowledged
//! or met late.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::calendar::{BusinessCalendar, local_midnight};
use crate::playbook::{DueRule, ReminderOffset};

/// State of a gate or milestone clock.
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

impl MilestoneStatus {
    /// Whether nothing more can happen to the clock's outcome.
    pub fn is_resolved(self) -> bool {
        matches!(self, Self::Met | Self::MetLate | Self::Waived)
    }
}

/// Whether a reminder is still to go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReminderState {
    /// Waiting for its instant.
    Scheduled,
    /// Went out.
    Sent,
    /// Will never go out: it fell inside a pause, was overtaken by a later
    /// reminder, or its clock no longer needs it.
    Dropped,
}

/// One reminder of a clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminder {
    /// Step name in the idempotency key: `50pct`, `2bd`.
    pub label: String,
    /// Business instant it goes out.
    pub at: DateTime<Utc>,
    /// Whether it went out.
    pub state: ReminderState,
}

/// A gate or milestone clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sla {
    /// Gate or milestone name.
    pub name: String,
    /// Owner role.
    pub owner_role: String,
    /// Owner handle.
    pub owner: String,
    /// The rule its due instant came from; pauses shift by its kind of day.
    pub rule: DueRule,
    /// Start of the window reminders are measured in.
    pub window_start: DateTime<Utc>,
    /// Business instant it is due.
    pub due_at: DateTime<Utc>,
    /// Its state.
    pub status: MilestoneStatus,
    /// When the event that met it happened.
    pub met_at: Option<DateTime<Utc>>,
    /// Evidence given when it was met.
    pub evidence: Option<String>,
    /// Highest escalation level reached, 0 for none.
    pub escalation_level: u8,
    /// When the next ladder level is due, while the ladder runs.
    pub next_escalation_at: Option<DateTime<Utc>>,
    /// Reminders, in time order.
    pub reminders: Vec<Reminder>,
    /// How many times an operator moved the due instant.
    pub extensions: u32,
}

/// What the playbook says about reminders of one clock.
#[derive(Debug, Clone, Copy)]
pub struct ReminderPolicy<'a> {
    /// Offsets.
    pub offsets: &'a [ReminderOffset],
    /// Local send hour.
    pub send_hour: u32,
    /// Timezone the send hour is read in.
    pub timezone: Tz,
}

impl Sla {
    /// Arms a clock due at `rule` counted from `window_start`.
    pub fn arm(
        name: &str,
        (owner_role, owner): (&str, &str),
        rule: DueRule,
        window_start: DateTime<Utc>,
        calendar: &BusinessCalendar,
        reminders: ReminderPolicy<'_>,
    ) -> Self {
        let due_at = due_instant(calendar, window_start, rule);
        let mut sla = Self {
            name: name.to_owned(),
            owner_role: owner_role.to_owned(),
            owner: owner.to_owned(),
            rule,
            window_start,
            due_at,
            status: MilestoneStatus::Pending,
            met_at: None,
            evidence: None,
            escalation_level: 0,
            next_escalation_at: None,
            reminders: Vec::new(),
            extensions: 0,
        };
        sla.reminders = sla.schedule_reminders(calendar, reminders);
        sla
    }

    /// The reminders of the current window, snapped to the send hour; any at
    /// or after the due instant is left out, and so is a second one at the
    /// same instant.
    pub fn schedule_reminders(
        &self,
        calendar: &BusinessCalendar,
        policy: ReminderPolicy<'_>,
    ) -> Vec<Reminder> {
        let mut reminders: Vec<Reminder> = policy
            .offsets
            .iter()
            .map(|offset| {
                let raw = match *offset {
                    ReminderOffset::Fraction(fraction) => {
                        let window =
                            calendar.business_seconds_between(self.window_start, self.due_at);
                        let offset = (window as f64 * fraction.clamp(0.0, 1.0)) as i64;
                        calendar.add_business_seconds(self.window_start, offset)
                    }
                    ReminderOffset::BusinessDaysBefore(days) => {
                        let date = nth_business_day_before(
                            calendar,
                            calendar.local_date(self.due_at),
                            days,
                        );
                        local_midnight(calendar.timezone(), date)
                    }
                };
                Reminder {
                    label: offset.label(),
                    at: calendar.next_send_time(raw, policy.send_hour, policy.timezone),
                    state: ReminderState::Scheduled,
                }
            })
            .filter(|r| r.at < self.due_at)
            .collect();
        reminders.sort_by_key(|r| r.at);
        reminders.dedup_by_key(|r| r.at);
        reminders
    }

    /// The earliest instant this clock must wake at, with what happens then.
    pub fn next_wake(&self) -> Option<(Wake, DateTime<Utc>)> {
        match self.status {
            MilestoneStatus::Pending => {
                let reminder = self
                    .reminders
                    .iter()
                    .enumerate()
                    .find(|(_, r)| r.state == ReminderState::Scheduled && r.at < self.due_at);
                Some(match reminder {
                    Some((index, r)) => (Wake::Reminder(index), r.at),
                    None => (Wake::Breach, self.due_at),
                })
            }
            MilestoneStatus::Breached => self.next_escalation_at.map(|at| (Wake::Escalation, at)),
            _ => None,
        }
    }

    /// Records the event that meets the clock; returns whether it changed.
    pub fn meet(&mut self, at: DateTime<Utc>, evidence: Option<String>) -> bool {
        let status = match self.status {
            MilestoneStatus::Pending => MilestoneStatus::Met,
            MilestoneStatus::Breached => MilestoneStatus::MetLate,
            _ => return false,
        };
        self.status = status;
        self.met_at = Some(at);
        self.evidence = evidence;
        self.stop_ladder();
        self.drop_reminders();
        true
    }

    /// Stops the escalation ladder; the level reached stays on record.
    pub fn stop_ladder(&mut self) {
        self.next_escalation_at = None;
    }

    /// Drops every reminder still scheduled.
    pub fn drop_reminders(&mut self) {
        for reminder in &mut self.reminders {
            if reminder.state == ReminderState::Scheduled {
                reminder.state = ReminderState::Dropped;
            }
        }
    }

    /// Moves an open clock later after a pause from `from` to `to`.
    ///
    /// The due instant (and a running ladder) moves by the days the pause
    /// touched — business days for business-day rules, calendar days for
    /// day-N rules; reminders inside the pause are dropped, later ones move
    /// with the due instant.
    pub fn shift_for_pause(
        &mut self,
        calendar: &BusinessCalendar,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) {
        let business_days = calendar.business_days_touched(from, to);
        let shift = |instant: DateTime<Utc>, rule: DueRule| match rule {
            DueRule::BusinessDays(_) => calendar.shift_business_days(instant, business_days),
            DueRule::CalendarDays(_) => {
                calendar.shift_calendar_days(instant, calendar.calendar_days_touched(from, to))
            }
        };
        match self.status {
            MilestoneStatus::Pending => {
                self.due_at = shift(self.due_at, self.rule);
                for reminder in &mut self.reminders {
                    if reminder.state != ReminderState::Scheduled {
                        continue;
                    }
                    if reminder.at <= to {
                        reminder.state = ReminderState::Dropped;
                    } else {
                        reminder.at = shift(reminder.at, self.rule);
                    }
                }
            }
            MilestoneStatus::Breached => {
                // Ladder levels are counted in business days whatever the rule.
                self.next_escalation_at = self
                    .next_escalation_at
                    .map(|at| calendar.shift_business_days(at, business_days));
            }
            _ => {}
        }
    }
}

/// What a clock does when it wakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Send the reminder at this index.
    Reminder(usize),
    /// The due instant passed.
    Breach,
    /// The next ladder level is due.
    Escalation,
}

/// The due instant of `rule` counted from `anchor`.
pub fn due_instant(
    calendar: &BusinessCalendar,
    anchor: DateTime<Utc>,
    rule: DueRule,
) -> DateTime<Utc> {
    match rule {
        DueRule::BusinessDays(days) => calendar.business_days_after(anchor, days),
        DueRule::CalendarDays(days) => calendar.calendar_days_after(anchor, days),
    }
}

/// The `n`th business day before `date` (not counting `date`); `n = 0` is `date`.
pub fn nth_business_day_before(calendar: &BusinessCalendar, date: NaiveDate, n: u32) -> NaiveDate {
    let mut day = date;
    let mut counted = 0;
    while counted < n {
        day = day
            .pred_opt()
            .expect("dates stay far inside chrono's range");
        if calendar.is_business_day(day) {
            counted += 1;
        }
    }
    day
}

/// The instants of the ladder levels after a breach at `breached_at`:
/// `delays[i]` business days after the previous level.
pub fn ladder_instants(
    calendar: &BusinessCalendar,
    breached_at: DateTime<Utc>,
    delays: &[u32],
) -> Vec<DateTime<Utc>> {
    let mut instants = Vec::with_capacity(delays.len());
    let mut previous = breached_at;
    for delay in delays {
        previous = calendar.shift_business_days(previous, *delay);
        instants.push(previous);
    }
    instants
}
