use chrono::Duration;

use super::*;
use crate::activity::TaskStatus;
use crate::playbook::{DirectoryFacts, Playbook};

pub(super) fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

pub(super) fn bundle(segment: &str, closed_won_at: &str) -> ValidBundle {
    ValidBundle::from_value(serde_json::json!({
        "deal": { "source": "manual", "id": "D-1", "segment": segment,
                  "closed_won_at": closed_won_at },
        "account": { "name": "Example Corp" },
        "team": { "timezone": "America/New_York", "calendar": "none" },
        "value_timeline": { "expected_ttfv_days": 80 },
        "owners": { "handoff_owner": "ho-1", "onboarding_manager": "om-1",
                    "account_executive": "ae-1", "sales_engineer": "se-1",
                    "customer_success_manager": "csm-1" }
    }))
    .unwrap()
}

/// Labels of commands, short enough to compare whole schedules.
pub(super) fn labels(commands: &[Command]) -> Vec<String> {
    commands
        .iter()
        .map(|c| match c {
            Command::ResolvePlan(_) => "plan".to_owned(),
            Command::CreateTasks(t) => format!("tasks:{}", t.trigger),
            Command::UpdateTasks(u) => format!("update:{}", u.step),
            Command::CancelTasks(_) => "cancel_tasks".to_owned(),
            Command::Notify(n) => format!("notify:{}", n.key.rsplit_once("D-1/").unwrap().1),
            Command::Finish => "finish".to_owned(),
        })
        .collect()
}

/// A handoff driven the way the workflow drives it: events at instants, and
/// timers firing at each next deadline.
pub(super) struct Sim {
    pub(super) handoff: Handoff,
    pub(super) now: DateTime<Utc>,
    pub(super) log: Vec<Command>,
}

impl Sim {
    /// A handoff of `segment` whose bundle and plan are in at `now`.
    pub(super) fn planned(segment: &str, now: &str) -> Self {
        let now = utc(now);
        let mut sim = Self {
            handoff: Handoff::new("handoff-manual-D-1".into(), "manual".into(), "D-1".into()),
            now,
            log: Vec::new(),
        };
        let bundle = bundle(segment, &now.to_rfc3339());
        let commands = sim.event(Event::ClosedWon {
            bundle: Box::new(bundle.clone()),
            as_of: None,
            at: now,
        });
        assert_eq!(labels(&commands), ["plan"]);
        let plan = Plan::freeze(&bundle, Playbook::builtin(segment), "revops");
        sim.event(Event::PlanResolved(Box::new(plan)));
        sim
    }

    /// Applies an event at the current instant; returns its commands.
    pub(super) fn event(&mut self, event: Event) -> Vec<Command> {
        let commands = self.handoff.apply(event, self.now);
        self.log.extend(commands.clone());
        commands
    }

    /// Lets business time run to `until`, firing every deadline on the way.
    pub(super) fn run_until(&mut self, until: DateTime<Utc>) -> Vec<Command> {
        let mut commands = Vec::new();
        while let Some(deadline) = self.handoff.next_deadline() {
            if deadline.at > until {
                break;
            }
            self.now = self.now.max(deadline.at);
            commands.extend(self.handoff.advance(self.now));
        }
        self.now = self.now.max(until);
        commands.extend(self.handoff.advance(self.now));
        self.log.extend(commands.clone());
        commands
    }

    pub(super) fn run_to(&mut self, until: &str) -> Vec<String> {
        labels(&self.run_until(utc(until)))
    }

    pub(super) fn milestone(&self, name: &str) -> &Sla {
        self.handoff.sla(name).unwrap()
    }

    pub(super) fn sign(&mut self) -> Vec<String> {
        let at = self.now;
        labels(&self.event(gate(Gate::Signature, at)))
    }
}

pub(super) fn gate(gate: Gate, at: DateTime<Utc>) -> Event {
    Event::GatePassed { gate, at, by: None }
}

fn reached(milestone: &str, at: DateTime<Utc>, evidence: Option<&str>) -> Event {
    Event::MilestoneReached {
        milestone: milestone.to_owned(),
        at,
        evidence: evidence.map(str::to_owned),
    }
}

#[test]
fn signature_starts_day0_and_kickoff_is_three_business_days_later() {
    // Monday 2026-03-02 10:00 EST.
    let mut sim = Sim::planned("smb", "2026-03-02T15:00:00Z");
    assert_eq!(sim.sign(), ["tasks:day0"]);
    assert_eq!(sim.handoff.stage, Stage::Kickoff);
    let kickoff = sim.milestone("kickoff");
    assert_eq!(
        kickoff.due_at,
        utc("2026-03-06T04:59:59Z"),
        "Thursday 23:59:59 EST"
    );
    assert_eq!(kickoff.owner, "om-1");
    // Half of 86 business hours after Monday 10:00 is Wednesday 05:00, sent at 09:00.
    assert_eq!(kickoff.reminders[0].at, utc("2026-03-04T14:00:00Z"));
}

#[test]
fn the_anchor_friday_day0_is_due_wednesday_across_spring_forward() {
    let mut sim = Sim::planned("smb", "2026-03-06T15:00:00Z");
    sim.sign();
    assert_eq!(sim.milestone("kickoff").due_at, utc("2026-03-12T03:59:59Z"));
}

#[test]
fn all_five_milestones_are_armed_at_day0_with_the_published_rules() {
    let mut sim = Sim::planned("mid_market", "2026-03-02T15:00:00Z");
    sim.sign();
    let dues: Vec<(String, DateTime<Utc>)> = sim
        .handoff
        .milestones
        .iter()
        .map(|m| (m.name.clone(), m.due_at))
        .collect();
    assert_eq!(
        dues,
        vec![
            ("kickoff".to_owned(), utc("2026-03-06T04:59:59Z")),
            // Ten business days after Monday 2026-03-02: Monday 2026-03-16.
            ("data_mapping".to_owned(), utc("2026-03-17T03:59:59Z")),
            (
                "first_integration_test".to_owned(),
                utc("2026-03-17T03:59:59Z")
            ),
            ("adoption".to_owned(), utc("2026-04-02T03:59:59Z")),
            ("first_value".to_owned(), utc("2026-06-01T03:59:59Z")),
        ]
    );
}

#[test]
fn day0_tasks_carry_owners_due_dates_and_dependencies() {
    let mut sim = Sim::planned("smb", "2026-03-02T15:00:00Z");
    let commands = sim.event(gate(Gate::Signature, utc("2026-03-02T15:00:00Z")));
    let Command::CreateTasks(batch) = &commands[0] else {
        panic!("expected tasks, got {commands:?}");
    };
    let summary: Vec<(&str, &str, TaskStatus)> = batch
        .tasks
        .iter()
        .map(|t| (t.key.as_str(), t.owner.as_str(), t.status))
        .collect();
    assert_eq!(
        summary,
        [
            ("kickoff", "om-1", TaskStatus::Open),
            ("data_migration", "om-1", TaskStatus::Blocked),
            ("integration_setup", "se-1", TaskStatus::Blocked),
            ("user_enablement", "csm-1", TaskStatus::Blocked),
        ]
    );
    assert_eq!(batch.tasks[1].depends_on, ["kickoff"]);
    assert_eq!(batch.tasks[2].due_at, utc("2026-03-17T03:59:59Z"), "day 14");
}

#[test]
fn a_full_90_day_handoff_met_on_time_completes_with_its_review() {
    let mut sim = Sim::planned("enterprise", "2026-03-02T15:00:00Z");
    sim.run_to("2026-03-03T15:00:00Z");
    sim.sign();
    sim.run_to("2026-03-04T15:00:00Z");
    let at = sim.now;
    let commands = labels(&sim.event(gate(Gate::Security, at)));
    assert_eq!(commands, ["tasks:day0"]);
    let steps = [
        (
            "2026-03-05T15:00:00Z",
            Event::KickoffHeld {
                at: utc("2026-03-05T15:00:00Z"),
            },
        ),
        (
            "2026-03-10T15:00:00Z",
            reached("data_mapping", utc("2026-03-10T15:00:00Z"), None),
        ),
        (
            "2026-03-12T15:00:00Z",
            reached("first_integration_test", utc("2026-03-12T15:00:00Z"), None),
        ),
        (
            "2026-03-20T15:00:00Z",
            Event::AdoptionReported {
                rate: 0.7,
                at: utc("2026-03-20T15:00:00Z"),
            },
        ),
        (
            "2026-04-20T15:00:00Z",
            reached(
                "first_value",
                utc("2026-04-20T15:00:00Z"),
                Some("sync latency 4 min"),
            ),
        ),
    ];
    for (instant, event) in steps {
        sim.run_to(instant);
        sim.event(event);
    }
    assert_eq!(sim.handoff.stage, Stage::Completed);
    assert!(
        sim.handoff
            .milestones
            .iter()
            .all(|m| m.status == MilestoneStatus::Met)
    );
    assert_eq!(sim.handoff.breach_count, 0);
    let all = labels(&sim.log);
    assert!(all.contains(&"notify:review".to_owned()));
    assert_eq!(all.last().unwrap(), "finish");
    assert!(!all.iter().any(|l| l.contains("escalate")), "{all:?}");
    let review = crate::status::Review::of(&sim.handoff);
    // The post-close review carries the final review for the ledger's report.
    let carried = sim
        .log
        .iter()
        .find_map(|command| match command {
            Command::Notify(n) if n.kind == "post_close_review" => {
                n.facts.get(crate::activity::REVIEW_FACT).cloned()
            }
            _ => None,
        })
        .expect("the review notification carries the review");
    let carried: crate::status::Review = serde_json::from_str(&carried).unwrap();
    assert_eq!(carried, review);
    // Signed 2026-03-03 15:00Z, first value 2026-04-20 15:00Z: 48 days.
    assert_eq!(review.time_to_first_value_days, Some(48.0));
    assert_eq!(review.ttfv_within_expectation, Some(true));
}

#[test]
fn a_missed_kickoff_reminds_breaches_and_climbs_the_ladder_to_level_3() {
    let mut sim = Sim::planned("mid_market", "2026-03-02T15:00:00Z");
    sim.sign();
    let until_due = sim.run_to("2026-03-06T04:59:58Z");
    assert_eq!(until_due, ["notify:remind/kickoff/50pct"]);
    let breach = sim.run_to("2026-03-06T05:00:00Z");
    assert_eq!(
        breach,
        ["tasks:breach:kickoff", "notify:escalate/kickoff/1"]
    );
    assert!(sim.handoff.at_risk());
    // Due Thursday; mid_market: level 2 two business days later (Monday),
    // level 3 three more (Thursday).
    assert_eq!(
        sim.milestone("kickoff").next_escalation_at,
        Some(utc("2026-03-10T03:59:59Z"))
    );
    let ladder: Vec<String> = sim
        .run_to("2026-03-14T00:00:00Z")
        .into_iter()
        .filter(|l| l.contains("kickoff"))
        .collect();
    assert_eq!(
        ladder,
        ["notify:escalate/kickoff/2", "notify:escalate/kickoff/3"]
    );
    let kickoff = sim.milestone("kickoff");
    assert_eq!(kickoff.escalation_level, 3);
    assert_eq!(kickoff.next_escalation_at, None, "no level above 3");
    let escalation = sim.log.iter().find_map(|c| match c {
        Command::Notify(n) if n.level == Some(3) => Some(n.clone()),
        _ => None,
    });
    assert_eq!(escalation.unwrap().recipients[0].reach, Reach::Executive);
}

#[test]
fn an_acknowledgement_stops_the_ladder() {
    let mut sim = Sim::planned("mid_market", "2026-03-02T15:00:00Z");
    sim.sign();
    sim.run_to("2026-03-06T05:00:00Z");
    let ack = sim.event(Event::EscalationAcknowledged {
        milestone: "kickoff".into(),
        by: Some("om-1".into()),
    });
    assert!(ack.is_empty());
    let later = sim.run_to("2026-03-20T00:00:00Z");
    assert!(!later.iter().any(|l| l.contains("escalate/kickoff")));
    assert_eq!(sim.milestone("kickoff").escalation_level, 1);
}

#[test]
fn a_kickoff_held_after_the_breach_is_met_late_and_stops_the_ladder() {
    let mut sim = Sim::planned("mid_market", "2026-03-02T15:00:00Z");
    sim.sign();
    sim.run_to("2026-03-06T12:00:00Z");
    // The kickoff happened before the due instant but was reported after the breach.
    let commands = sim.event(Event::KickoffHeld {
        at: utc("2026-03-05T15:00:00Z"),
    });
    assert_eq!(
        labels(&commands),
        [
            "notify:met/kickoff",
            "update:tasks/met/kickoff",
            "tasks:kickoff_held"
        ]
    );
    assert_eq!(sim.milestone("kickoff").status, MilestoneStatus::MetLate);
    assert_eq!(sim.handoff.stage, Stage::Onboarding);
    assert_eq!(sim.milestone("kickoff").next_escalation_at, None);
    assert_eq!(sim.handoff.breach_count, 1);
}

#[test]
fn a_breach_discovered_late_escalates_once_at_the_level_now_due() {
    let mut sim = Sim::planned("mid_market", "2026-03-02T15:00:00Z");
    sim.sign();
    // The worker was away until well after level 3 was due.
    sim.now = utc("2026-03-20T12:00:00Z");
    let commands = labels(&sim.handoff.advance(sim.now));
    let kickoff: Vec<&String> = commands.iter().filter(|l| l.contains("kickoff")).collect();
    assert_eq!(
        kickoff,
        ["tasks:breach:kickoff", "notify:escalate/kickoff/3"]
    );
    assert!(
        !commands.iter().any(|l| l.contains("remind/kickoff")),
        "{commands:?}"
    );
}

#[test]
fn an_unsigned_contract_breaches_its_gate_then_times_out() {
    let mut sim = Sim::planned("smb", "2026-03-02T15:00:00Z");
    let gate_breach = sim.run_to("2026-03-10T04:00:00Z");
    assert_eq!(
        gate_breach,
        [
            "notify:remind/signature/50pct",
            "tasks:breach:signature",
            "notify:escalate/signature/1"
        ]
    );
    assert_eq!(
        sim.handoff.gates[&Gate::Signature]
            .sla
            .as_ref()
            .unwrap()
            .due_at,
        utc("2026-03-10T03:59:59Z"),
        "5 business days after Monday, EDT"
    );
    let end = sim.run_to("2026-05-01T00:00:00Z");
    assert!(end.contains(&"notify:cancelled".to_owned()), "{end:?}");
    assert_eq!(sim.handoff.stage, Stage::Cancelled);
    assert_eq!(sim.handoff.cancel_reason.as_deref(), Some("gate_timeout"));
    // 30 business days after Monday 2026-03-02 is Monday 2026-04-13.
    assert_eq!(sim.handoff.ended_at, Some(utc("2026-04-14T03:59:59Z")));
}

#[test]
fn a_pause_across_a_weekend_moves_due_dates_by_the_days_it_touched() {
    let mut sim = Sim::planned("smb", "2026-03-02T15:00:00Z");
    sim.sign();
    let before = (
        sim.milestone("kickoff").due_at,
        sim.milestone("adoption").due_at,
    );
    sim.run_to("2026-03-06T02:00:00Z");
    // Blocked Thursday evening, unblocked Monday morning: Thu, Fri, Mon are
    // business days; Thu..Mon are five calendar days.
    sim.event(Event::CustomerBlocked {
        at: sim.now,
        reason: Some("waiting for VPN access".into()),
    });
    let during = sim.run_to("2026-03-09T14:00:00Z");
    assert!(during.is_empty(), "clocks stand still: {during:?}");
    let at = sim.now;
    sim.event(Event::CustomerUnblocked { at });
    // Thursday + 3 business days: Tuesday 23:59:59, now in EDT.
    assert_eq!(sim.milestone("kickoff").due_at, utc("2026-03-11T03:59:59Z"));
    assert!(sim.milestone("kickoff").due_at > before.0 + Duration::days(4));
    // Day 30 (Wednesday 2026-04-01) + 5 calendar days.
    assert_eq!(
        sim.milestone("adoption").due_at,
        utc("2026-04-07T03:59:59Z")
    );
    assert!(sim.milestone("adoption").due_at > before.1);
}

#[test]
fn a_reminder_inside_a_pause_is_dropped() {
    let mut sim = Sim::planned("smb", "2026-03-02T15:00:00Z");
    sim.sign();
    sim.event(Event::CustomerBlocked {
        at: sim.now,
        reason: None,
    });
    sim.run_to("2026-03-05T15:00:00Z");
    let at = sim.now;
    sim.event(Event::CustomerUnblocked { at });
    let reminder = &sim.milestone("kickoff").reminders[0];
    assert_eq!(reminder.state, ReminderState::Dropped);
    let all = labels(&sim.log);
    assert!(!all.iter().any(|l| l.contains("remind/kickoff")), "{all:?}");
}

#[test]
fn a_reopened_deal_holds_outbound_work_until_closed_won_returns() {
    let mut sim = Sim::planned("smb", "2026-03-02T15:00:00Z");
    sim.sign();
    sim.event(Event::DealReopened { at: sim.now });
    let held = sim.event(Event::KickoffHeld { at: sim.now });
    assert!(held.is_empty());
    assert_eq!(sim.milestone("kickoff").status, MilestoneStatus::Met);
    sim.run_to("2026-03-04T15:00:00Z");
    let bundle = bundle("smb", "2026-03-02T15:00:00Z");
    let at = sim.now;
    let resumed = labels(&sim.event(Event::ClosedWon {
        bundle: Box::new(bundle),
        as_of: None,
        at,
    }));
    assert_eq!(
        resumed,
        [
            "notify:met/kickoff",
            "update:tasks/met/kickoff",
            "tasks:kickoff_held"
        ]
    );
    assert!(sim.handoff.pause.is_none());
}

#[test]
fn a_lost_deal_ends_after_its_grace_with_every_task_cancelled() {
    let mut sim = Sim::planned("smb", "2026-03-02T15:00:00Z");
    sim.sign();
    let at = sim.now;
    let lost = sim.event(Event::DealLost {
        reason: "budget".into(),
        at,
    });
    assert!(lost.is_empty(), "grace first");
    let end = sim.run_to("2026-03-10T00:00:00Z");
    assert_eq!(end, ["cancel_tasks", "notify:cancelled", "finish"]);
    assert_eq!(sim.handoff.cancel_reason.as_deref(), Some("lost"));
    assert!(
        sim.handoff
            .tasks
            .values()
            .all(|t| t.status == TaskStatus::Cancelled)
    );
    // Two business days after Monday: Wednesday 23:59:59 EST.
    assert_eq!(sim.handoff.ended_at, Some(utc("2026-03-05T04:59:59Z")));
}

#[test]
fn closed_won_within_the_grace_resumes_the_handoff() {
    let mut sim = Sim::planned("smb", "2026-03-02T15:00:00Z");
    sim.sign();
    let at = sim.now;
    sim.event(Event::DealLost {
        reason: "misclick".into(),
        at,
    });
    sim.run_to("2026-03-03T15:00:00Z");
    let at = sim.now;
    sim.event(Event::ClosedWon {
        bundle: Box::new(bundle("smb", "2026-03-02T15:00:00Z")),
        as_of: None,
        at,
    });
    assert!(sim.handoff.pause.is_none());
    assert_eq!(sim.handoff.stage, Stage::Kickoff);
    // The pause touched Monday and Tuesday: the kickoff moved two business days.
    assert_eq!(sim.milestone("kickoff").due_at, utc("2026-03-10T03:59:59Z"));
}

#[test]
fn a_deleted_deal_skips_the_grace() {
    let mut sim = Sim::planned("smb", "2026-03-02T15:00:00Z");
    sim.sign();
    let at = sim.now;
    let end = labels(&sim.event(Event::DealLost {
        reason: "deleted".into(),
        at,
    }));
    assert_eq!(end, ["cancel_tasks", "notify:cancelled", "finish"]);
    assert_eq!(sim.handoff.cancel_reason.as_deref(), Some("deleted"));
}

#[test]
fn an_extension_is_validated_then_moves_the_due_instant_and_its_reminders() {
    let mut sim = Sim::planned("smb", "2026-03-02T15:00:00Z");
    sim.sign();
    let earlier = Update::ExtendDeadline {
        milestone: "kickoff".into(),
        new_due: utc("2026-03-05T00:00:00Z"),
        reason: "customer travel".into(),
    };
    assert!(
        sim.handoff
            .validate(&earlier, sim.now)
            .unwrap_err()
            .starts_with("new_due:")
    );
    let no_reason = Update::ExtendDeadline {
        milestone: "kickoff".into(),
        new_due: utc("2026-03-13T04:59:59Z"),
        reason: " ".into(),
    };
    assert_eq!(
        sim.handoff.validate(&no_reason, sim.now).unwrap_err(),
        "reason: required"
    );
    let unknown = Update::ExtendDeadline {
        milestone: "launch".into(),
        new_due: utc("2026-03-13T04:59:59Z"),
        reason: "x".into(),
    };
    assert!(
        sim.handoff
            .validate(&unknown, sim.now)
            .unwrap_err()
            .starts_with("milestone:")
    );

    let accepted = Update::ExtendDeadline {
        milestone: "kickoff".into(),
        new_due: utc("2026-03-13T04:59:59Z"),
        reason: "customer travel".into(),
    };
    sim.handoff.validate(&accepted, sim.now).unwrap();
    sim.event(Event::Update(accepted));
    assert_eq!(sim.milestone("kickoff").due_at, utc("2026-03-13T04:59:59Z"));
    let commands: Vec<String> = sim
        .run_to("2026-03-13T05:00:00Z")
        .into_iter()
        .filter(|l| l.contains("kickoff"))
        .collect();
    assert_eq!(
        commands,
        [
            "notify:remind/kickoff/50pct/ext1",
            "tasks:breach:kickoff",
            "notify:escalate/kickoff/1"
        ]
    );
}

#[test]
fn waiving_every_open_milestone_completes_the_handoff() {
    let mut sim = Sim::planned("smb", "2026-03-02T15:00:00Z");
    sim.sign();
    for name in crate::playbook::MILESTONES {
        let update = Update::WaiveMilestone {
            milestone: name.into(),
            reason: "pilot contract".into(),
        };
        sim.handoff.validate(&update, sim.now).unwrap();
        sim.event(Event::Update(update));
    }
    assert_eq!(sim.handoff.stage, Stage::Completed);
    let again = Update::WaiveMilestone {
        milestone: "kickoff".into(),
        reason: "x".into(),
    };
    assert!(sim.handoff.validate(&again, sim.now).is_err());
}

#[test]
fn a_reassigned_owner_takes_the_open_tasks_and_clocks() {
    let mut sim = Sim::planned("smb", "2026-03-02T15:00:00Z");
    sim.sign();
    let bad = Update::ReassignOwner {
        role: "onboarding_manager".into(),
        handle: "someone@example.com".into(),
    };
    assert!(
        sim.handoff
            .validate(&bad, sim.now)
            .unwrap_err()
            .starts_with("handle:")
    );
    let update = Update::ReassignOwner {
        role: "onboarding_manager".into(),
        handle: "om-9".into(),
    };
    let commands = sim.event(Event::Update(update));
    let Command::UpdateTasks(updates) = &commands[0] else {
        panic!("{commands:?}");
    };
    let keys: Vec<&str> = updates.changes.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["data_migration", "kickoff"]);
    assert_eq!(sim.milestone("kickoff").owner, "om-9");
    assert_eq!(sim.handoff.tasks["kickoff"].owner, "om-9");
}

#[test]
fn a_segment_change_before_day0_replans_and_after_day0_changes_the_record_only() {
    let mut sim = Sim::planned("smb", "2026-03-02T15:00:00Z");
    let at = sim.now;
    let amended = labels(&sim.event(Event::ClosedWon {
        bundle: Box::new(bundle("enterprise", "2026-03-02T15:00:00Z")),
        as_of: None,
        at,
    }));
    assert_eq!(amended, ["plan"]);
    let enterprise = Plan::freeze(
        &bundle("enterprise", "2026-03-02T15:00:00Z"),
        Playbook::builtin("enterprise"),
        "revops",
    );
    sim.event(Event::PlanResolved(Box::new(enterprise)));
    assert_eq!(sim.handoff.plan.as_ref().unwrap().segment, "enterprise");
    assert!(sim.handoff.gates[&Gate::Security].sla.is_some());

    sim.sign();
    assert_eq!(sim.handoff.stage, Stage::AwaitingGates, "security pending");
    let at = sim.now;
    sim.event(gate(Gate::Security, at));
    let at = sim.now;
    let after = sim.event(Event::ClosedWon {
        bundle: Box::new(bundle("smb", "2026-03-02T15:00:00Z")),
        as_of: None,
        at,
    });
    assert!(after.is_empty());
    assert_eq!(sim.handoff.plan.as_ref().unwrap().segment, "enterprise");
}

#[test]
fn completing_a_task_unblocks_its_successors() {
    let mut sim = Sim::planned("smb", "2026-03-02T15:00:00Z");
    sim.sign();
    let at = sim.now;
    let commands = sim.event(Event::TaskCompleted {
        key: "kickoff".into(),
        at,
    });
    let Command::UpdateTasks(updates) = &commands[0] else {
        panic!("{commands:?}");
    };
    assert_eq!(updates.changes.len(), 4, "done + three unblocked");
    assert_eq!(sim.handoff.tasks["data_migration"].status, TaskStatus::Open);
    let unknown = sim.event(Event::TaskCompleted {
        key: "nope".into(),
        at,
    });
    assert!(unknown.is_empty());
    assert_eq!(sim.handoff.rejected.total, 1);
}

#[test]
fn adoption_below_the_threshold_does_not_meet_the_milestone() {
    let mut sim = Sim::planned("smb", "2026-03-02T15:00:00Z");
    sim.sign();
    let at = sim.now;
    sim.event(Event::AdoptionReported { rate: 0.4, at });
    assert_eq!(sim.milestone("adoption").status, MilestoneStatus::Pending);
    sim.event(Event::AdoptionReported { rate: 0.6, at });
    assert_eq!(sim.milestone("adoption").status, MilestoneStatus::Met);
}

#[test]
fn first_value_needs_evidence() {
    let mut sim = Sim::planned("smb", "2026-03-02T15:00:00Z");
    sim.sign();
    let at = sim.now;
    sim.event(reached("first_value", at, None));
    assert_eq!(
        sim.milestone("first_value").status,
        MilestoneStatus::Pending
    );
    assert_eq!(
        sim.handoff.rejected.recent[0].reason,
        "evidence: required to meet first_value"
    );
    sim.event(reached("kickoff", at, None));
    assert!(
        sim.handoff.rejected.recent[1]
            .reason
            .contains("kickoff_held")
    );
}

#[test]
fn milestones_still_breached_close_after_day_90() {
    let mut sim = Sim::planned("smb", "2026-03-02T15:00:00Z");
    sim.sign();
    sim.event(Event::KickoffHeld { at: sim.now });
    let end = sim.run_to("2026-08-01T00:00:00Z");
    assert_eq!(end.last().unwrap(), "finish");
    assert_eq!(sim.handoff.stage, Stage::Completed);
    let statuses: Vec<MilestoneStatus> = sim.handoff.milestones.iter().map(|m| m.status).collect();
    assert_eq!(statuses[0], MilestoneStatus::Met);
    assert!(
        statuses[1..]
            .iter()
            .all(|s| *s == MilestoneStatus::Breached)
    );
    // Day 90 is Sunday 2026-05-31; ten business days later is Friday 2026-06-12.
    assert_eq!(sim.handoff.ended_at, Some(utc("2026-06-13T03:59:59Z")));
}

#[test]
fn a_kickoff_held_before_day0_meets_the_kickoff_at_day0() {
    let mut sim = Sim::planned("smb", "2026-03-02T15:00:00Z");
    let at = sim.now;
    assert!(sim.event(Event::KickoffHeld { at }).is_empty());
    let commands = sim.sign();
    assert_eq!(
        commands,
        [
            "tasks:day0",
            "notify:met/kickoff",
            "update:tasks/met/kickoff",
            "tasks:kickoff_held"
        ]
    );
    assert_eq!(sim.handoff.stage, Stage::Onboarding);
}

#[test]
fn signals_for_a_finished_handoff_change_nothing() {
    let mut sim = Sim::planned("smb", "2026-03-02T15:00:00Z");
    let at = sim.now;
    sim.event(Event::DealLost {
        reason: "deleted".into(),
        at,
    });
    let before = sim.handoff.clone();
    assert!(sim.event(Event::KickoffHeld { at }).is_empty());
    assert_eq!(sim.handoff, before);
}

#[test]
fn a_backfill_anchors_gate_slas_at_as_of() {
    let mut handoff = Handoff::new("handoff-manual-D-1".into(), "manual".into(), "D-1".into());
    let b = bundle("smb", "2026-01-05T15:00:00Z");
    let now = utc("2026-03-02T15:00:00Z");
    handoff.apply(
        Event::ClosedWon {
            bundle: Box::new(b.clone()),
            as_of: Some(now),
            at: now,
        },
        now,
    );
    let plan = Plan::freeze(&b, Playbook::builtin("smb"), "revops");
    let commands = handoff.apply(Event::PlanResolved(Box::new(plan)), now);
    assert_eq!(labels(&commands), ["tasks:closed_won"], "nothing overdue");
    let signature = handoff.gates[&Gate::Signature].sla.as_ref().unwrap();
    assert_eq!(signature.due_at, utc("2026-03-10T03:59:59Z"));
}

/// A handoff planned with an owner directory, like `Sim::planned`.
fn planned_with_directory(segment: &str, now: &str, directory: DirectoryFacts) -> Sim {
    let now = utc(now);
    let mut sim = Sim {
        handoff: Handoff::new("handoff-manual-D-1".into(), "manual".into(), "D-1".into()),
        now,
        log: Vec::new(),
    };
    let bundle = bundle(segment, &now.to_rfc3339());
    sim.event(Event::ClosedWon {
        bundle: Box::new(bundle.clone()),
        as_of: None,
        at: now,
    });
    let mut plan = Plan::freeze(&bundle, Playbook::builtin(segment), "revops");
    plan.directory = directory;
    sim.event(Event::PlanResolved(Box::new(plan)));
    sim
}

#[test]
fn reminders_snap_to_the_send_hour_in_the_owners_timezone() {
    let directory = DirectoryFacts {
        handles: ["om-1", "ho-1"].map(str::to_owned).into(),
        timezones: [("om-1".to_owned(), "Europe/Berlin".to_owned())].into(),
    };
    let mut sim = planned_with_directory("smb", "2026-03-02T15:00:00Z", directory);
    sim.sign();
    // Half the window is Wednesday 05:00 in New York (10:00Z): too late for
    // 09:00 in Berlin that day (08:00Z), so Thursday 09:00 Berlin.
    let reminder = &sim.milestone("kickoff").reminders[0];
    assert_eq!(reminder.at, utc("2026-03-05T08:00:00Z"));
    // An owner without a timezone keeps the team's: Wednesday 09:00 New York.
    let mut team = Sim::planned("smb", "2026-03-02T15:00:00Z");
    team.sign();
    assert_eq!(
        team.milestone("kickoff").reminders[0].at,
        utc("2026-03-04T14:00:00Z")
    );
}

#[test]
fn a_reassignment_to_a_handle_outside_the_directory_is_rejected() {
    let directory = DirectoryFacts {
        handles: ["om-1", "om-2"].map(str::to_owned).into(),
        timezones: Default::default(),
    };
    let sim = planned_with_directory("smb", "2026-03-02T15:00:00Z", directory);
    let update = |handle: &str| Update::ReassignOwner {
        role: "onboarding_manager".into(),
        handle: handle.into(),
    };
    let err = sim.handoff.validate(&update("om-9"), sim.now).unwrap_err();
    assert!(err.contains("not in the owner directory"), "{err}");
    assert!(sim.handoff.validate(&update("om-2"), sim.now).is_ok());
}

#[test]
fn a_reassignment_re_snaps_reminders_to_come_to_the_new_owners_timezone() {
    let directory = DirectoryFacts {
        handles: ["om-1", "om-2", "ho-1"].map(str::to_owned).into(),
        timezones: [("om-1".to_owned(), "Europe/Berlin".to_owned())].into(),
    };
    let reassign = Event::Update(Update::ReassignOwner {
        role: "onboarding_manager".into(),
        handle: "om-2".into(),
    });
    for resnap in [false, true] {
        let mut sim = planned_with_directory("smb", "2026-03-02T15:00:00Z", directory.clone());
        sim.handoff.resnap_on_reassign = resnap;
        sim.sign();
        assert_eq!(
            sim.milestone("kickoff").reminders[0].at,
            utc("2026-03-05T08:00:00Z"),
            "Thursday 09:00 in Berlin"
        );
        sim.event(reassign.clone());
        let reminder = &sim.milestone("kickoff").reminders[0];
        assert_eq!(sim.milestone("kickoff").owner, "om-2");
        if resnap {
            // om-2 has no timezone: the team's, Wednesday 09:00 New York.
            assert_eq!(reminder.at, utc("2026-03-04T14:00:00Z"));
            assert_eq!(reminder.state, ReminderState::Scheduled);
        } else {
            assert_eq!(
                reminder.at,
                utc("2026-03-05T08:00:00Z"),
                "histories before the patch"
            );
        }
    }
}

#[test]
fn a_re_snapped_reminder_that_would_fall_in_the_past_is_dropped_not_sent() {
    let directory = DirectoryFacts {
        handles: ["om-1", "om-2", "ho-1"].map(str::to_owned).into(),
        timezones: [("om-1".to_owned(), "Europe/Berlin".to_owned())].into(),
    };
    let mut sim = planned_with_directory("smb", "2026-03-02T15:00:00Z", directory);
    sim.handoff.resnap_on_reassign = true;
    sim.sign();
    // Wednesday 15:00Z: past 09:00 New York (14:00Z), before 09:00 Berlin on Thursday.
    sim.run_until(utc("2026-03-04T15:00:00Z"));
    sim.event(Event::Update(Update::ReassignOwner {
        role: "onboarding_manager".into(),
        handle: "om-2".into(),
    }));
    let reminder = &sim.milestone("kickoff").reminders[0];
    assert_eq!(reminder.state, ReminderState::Dropped);
}

/// Won, then lost before the plan came back: the handoff waits for the plan,
/// paused, then gives the deal the plan's grace.
fn lost_before_the_plan(waits: bool) -> (Sim, Vec<String>) {
    let now = utc("2026-03-02T15:00:00Z");
    let mut sim = Sim {
        handoff: Handoff::new("handoff-manual-D-1".into(), "manual".into(), "D-1".into()),
        now,
        log: Vec::new(),
    };
    sim.handoff.lost_waits_for_plan = waits;
    let bundle = bundle("smb", &now.to_rfc3339());
    let won = sim.event(Event::ClosedWon {
        bundle: Box::new(bundle.clone()),
        as_of: None,
        at: now,
    });
    assert_eq!(labels(&won), ["plan"]);
    let lost = labels(&sim.event(Event::DealLost {
        reason: "misclick".into(),
        at: now,
    }));
    (sim, lost)
}

#[test]
fn a_deal_lost_before_its_plan_arrives_gets_the_grace_and_a_won_resumes_it() {
    let (mut sim, lost) = lost_before_the_plan(true);
    assert!(lost.is_empty(), "paused, not cancelled: {lost:?}");
    assert_eq!(sim.handoff.stage, Stage::AwaitingGates);
    let bundle = bundle("smb", "2026-03-02T15:00:00Z");
    let plan = Plan::freeze(&bundle, Playbook::builtin("smb"), "revops");
    let planned = sim.event(Event::PlanResolved(Box::new(plan)));
    assert!(planned.is_empty(), "the day-0 work waits: {planned:?}");
    let pause = sim.handoff.pause.as_ref().unwrap();
    // Two business days after Monday: Wednesday 23:59:59 EST.
    assert_eq!(pause.lost_grace_until, Some(utc("2026-03-05T04:59:59Z")));

    // Won again within the grace: resumed, and the held work goes out.
    sim.run_to("2026-03-03T15:00:00Z");
    let at = sim.now;
    let resumed = labels(&sim.event(Event::ClosedWon {
        bundle: Box::new(bundle),
        as_of: None,
        at,
    }));
    assert!(sim.handoff.pause.is_none());
    assert!(!resumed.is_empty(), "the held work goes out");
    assert!(sim.handoff.cancel_reason.is_none());
}

#[test]
fn a_deal_lost_before_its_plan_arrives_ends_when_its_grace_runs_out() {
    let (mut sim, _) = lost_before_the_plan(true);
    let bundle = bundle("smb", "2026-03-02T15:00:00Z");
    let plan = Plan::freeze(&bundle, Playbook::builtin("smb"), "revops");
    sim.event(Event::PlanResolved(Box::new(plan)));
    let end = sim.run_to("2026-03-10T00:00:00Z");
    assert_eq!(end.last().map(String::as_str), Some("finish"), "{end:?}");
    assert_eq!(sim.handoff.cancel_reason.as_deref(), Some("lost"));
    assert_eq!(sim.handoff.ended_at, Some(utc("2026-03-05T04:59:59Z")));
}

#[test]
fn before_the_patch_a_deal_lost_before_its_plan_is_cancelled_at_once() {
    let (sim, lost) = lost_before_the_plan(false);
    assert_eq!(lost, ["finish"]);
    assert_eq!(sim.handoff.cancel_reason.as_deref(), Some("lost"));
}
