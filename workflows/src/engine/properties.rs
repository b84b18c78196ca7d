//! Properties of the SLA engine over random histories.
//!
//! A case is a deal closed won at a random hour of a random day in 2026-2031,
//! then up to forty signals and updates, each after a random stretch of
//! business time and each dated up to a few hours in the past. Deadlines fire
//! in between the way the workflow fires its one timer: at each next deadline
//! in turn. The example tests beside this file pin single schedules; these
//! check what must hold for every schedule, whatever order the world sends
//! things in.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, RngAlgorithm};
use serde_json::Value;

use super::tests::{Sim, bundle, gate, labels, utc};
use super::{Command, Event, Handoff, MilestoneStatus, PauseKind, Stage, Update};
use crate::bundle::{OWNER_ROLES, ValidBundle};
use crate::playbook::{Gate, MILESTONES, Plan, Playbook, SEGMENTS};

/// Milestone names, and one that no playbook has.
const MILESTONE_NAMES: [&str; 6] = [
    "kickoff",
    "data_mapping",
    "first_integration_test",
    "adoption",
    "first_value",
    "go_live",
];

/// Gates, milestones, and one name that is neither.
const CLOCK_NAMES: [&str; 9] = [
    "signature",
    "security",
    "financing",
    "kickoff",
    "data_mapping",
    "first_integration_test",
    "adoption",
    "first_value",
    "go_live",
];

/// Keys of tasks the built-in playbooks create, and one they never do.
const TASK_KEYS: [&str; 10] = [
    "kickoff",
    "data_migration",
    "integration_setup",
    "user_enablement",
    "success_plan",
    "governance_plan",
    "complete_bundle",
    "remediate_signature",
    "remediate_kickoff",
    "no_such_task",
];

/// Handles to reassign to, with an address the validator must refuse.
const HANDLES: [&str; 6] = ["om-1", "om-2", "se-2", "csm-2", "ho-2", "om-2@example.com"];

/// A signal or update before it is given its instant.
#[derive(Debug, Clone)]
enum Signal {
    Gate(Gate),
    KickoffHeld,
    MilestoneReached {
        milestone: &'static str,
        evidence: bool,
    },
    AdoptionReported {
        rate: f64,
    },
    EscalationAcknowledged {
        milestone: &'static str,
    },
    CustomerBlocked,
    CustomerUnblocked,
    TaskCompleted {
        key: &'static str,
    },
    DealReopened,
    DealLost {
        reason: &'static str,
    },
    /// `None` sends again the bundle the deal closed with.
    ClosedWon {
        segment: Option<&'static str>,
    },
    /// Moves the clock's current due instant by this many minutes; a
    /// negative or unknown one is refused by the validator.
    ExtendDeadline {
        milestone: &'static str,
        later_by_minutes: i64,
    },
    WaiveMilestone {
        milestone: &'static str,
    },
    ReassignOwner {
        role: &'static str,
        handle: &'static str,
    },
}

/// Business time passes, then one signal or update arrives.
#[derive(Debug, Clone)]
struct Step {
    gap_minutes: i64,
    /// How long before its arrival the signal's `at` lies.
    early_minutes: i64,
    signal: Signal,
}

/// A deal closed won at `start`, and what happens to it afterwards.
#[derive(Debug, Clone)]
struct History {
    segment: &'static str,
    start: DateTime<Utc>,
    steps: Vec<Step>,
}

fn signal() -> impl Strategy<Value = Signal> {
    // Losing a deal usually ends the history, so it is rarer than the rest;
    // gates come often enough that most histories reach day 0.
    let gates = prop_oneof![
        3 => Just(Gate::Signature),
        2 => Just(Gate::Security),
        1 => Just(Gate::Financing),
    ];
    prop_oneof![
        8 => gates.prop_map(Signal::Gate),
        4 => Just(Signal::KickoffHeld),
        6 => (select(MILESTONE_NAMES.to_vec()), any::<bool>())
            .prop_map(|(milestone, evidence)| Signal::MilestoneReached { milestone, evidence }),
        4 => (0.0..=1.0f64).prop_map(|rate| Signal::AdoptionReported { rate }),
        3 => select(CLOCK_NAMES.to_vec())
            .prop_map(|milestone| Signal::EscalationAcknowledged { milestone }),
        3 => Just(Signal::CustomerBlocked),
        3 => Just(Signal::CustomerUnblocked),
        4 => select(TASK_KEYS.to_vec()).prop_map(|key| Signal::TaskCompleted { key }),
        1 => Just(Signal::DealReopened),
        1 => prop_oneof![3 => Just("lost"), 1 => Just("deleted")]
            .prop_map(|reason| Signal::DealLost { reason }),
        2 => proptest::option::of(select(SEGMENTS.to_vec()))
            .prop_map(|segment| Signal::ClosedWon { segment }),
        3 => (select(CLOCK_NAMES.to_vec()), -600i64..43_200).prop_map(
            |(milestone, later_by_minutes)| Signal::ExtendDeadline { milestone, later_by_minutes }
        ),
        2 => select(MILESTONE_NAMES.to_vec())
            .prop_map(|milestone| Signal::WaiveMilestone { milestone }),
        2 => (select(OWNER_ROLES.to_vec()), select(HANDLES.to_vec()))
            .prop_map(|(role, handle)| Signal::ReassignOwner { role, handle }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    // Mostly minutes to two days, sometimes up to twenty days.
    let gap = prop_oneof![3 => 1i64..180, 3 => 180i64..2_880, 1 => 2_880i64..28_800];
    let early = prop_oneof![Just(0i64), 1i64..240];
    (gap, early, signal()).prop_map(|(gap_minutes, early_minutes, signal)| Step {
        gap_minutes,
        early_minutes,
        signal,
    })
}

fn history() -> impl Strategy<Value = History> {
    let first_day = utc("2026-01-01T00:00:00Z");
    // 2026-01-01 up to 2031-12-31.
    let day = 0i64..2_191;
    let steps = proptest::collection::vec(step(), 1..=40);
    (select(SEGMENTS.to_vec()), day, 0i64..24, steps).prop_map(
        move |(segment, day, hour, steps)| History {
            segment,
            start: first_day + Duration::days(day) + Duration::hours(hour),
            steps,
        },
    )
}

/// The state around one step, as far as the properties look at it.
#[derive(Debug)]
struct Snapshot {
    /// Gates and milestones met, met late or waived.
    resolved: BTreeSet<String>,
    /// Due instant of every armed gate and milestone.
    dues: BTreeMap<String, DateTime<Utc>>,
    /// The deal is lost (its grace running) or the handoff was cancelled.
    lost: bool,
}

impl Snapshot {
    fn of(handoff: &Handoff) -> Self {
        let lost_pause = handoff
            .pause
            .as_ref()
            .is_some_and(|p| p.kinds.contains(&PauseKind::Lost));
        Self {
            resolved: handoff
                .slas()
                .filter(|sla| sla.met_at.is_some() || sla.status.is_resolved())
                .map(|sla| sla.name.clone())
                .collect(),
            dues: handoff
                .slas()
                .map(|sla| (sla.name.clone(), sla.due_at))
                .collect(),
            lost: lost_pause || handoff.stage == Stage::Cancelled,
        }
    }
}

/// One step of a played history and what it emitted.
#[derive(Debug)]
struct Record {
    /// The signal or update applied, or `None` when only time passed.
    signal: Option<&'static str>,
    before: Snapshot,
    after: Snapshot,
    commands: Vec<Command>,
}

/// A history played against one handoff, driven as the workflow drives it.
struct Player {
    sim: Sim,
    /// The bundle the deal closed with, for `closed_won` sent again.
    closed_won: ValidBundle,
    records: Vec<Record>,
}

impl Player {
    /// A handoff whose bundle and plan are in at the history's start.
    fn start(history: &History) -> Self {
        let start = history.start.to_rfc3339();
        Self {
            sim: Sim::planned(history.segment, &start),
            closed_won: bundle(history.segment, &start),
            records: Vec::new(),
        }
    }

    /// Every step, then the end of the handoff.
    fn play_all(history: &History) -> Self {
        let mut player = Self::start(history);
        for step in &history.steps {
            player.play(step);
        }
        player.finish();
        player
    }

    /// A handoff restored from a carried state at business instant `now`.
    fn resume(handoff: Handoff, now: DateTime<Utc>, closed_won: ValidBundle) -> Self {
        Self {
            sim: Sim {
                handoff,
                now,
                log: Vec::new(),
            },
            closed_won,
            records: Vec::new(),
        }
    }

    fn play(&mut self, step: &Step) {
        let until = self.sim.now + Duration::minutes(step.gap_minutes);
        self.record(None, |sim| sim.run_until(until));

        let at = self.sim.now - Duration::minutes(step.early_minutes);
        if let Some(event) = self.event(&step.signal, at) {
            self.deliver(event);
        }
    }

    /// Lifts the pauses that last until someone acts, then lets time run far
    /// past day 90 and `close_after`.
    fn finish(&mut self) {
        // A blocked customer or a reopened deal stops every clock for as long
        // as it lasts; a lost deal's grace runs out by itself.
        let at = self.sim.now;
        self.deliver(Event::CustomerUnblocked { at });
        let reopened = self
            .sim
            .handoff
            .pause
            .as_ref()
            .is_some_and(|p| p.kinds.contains(&PauseKind::Reopened));
        if reopened {
            self.deliver(self.closed_won(None, at));
        }

        // Longer than every extension and pause a history can add.
        let until = self.sim.now + Duration::days(3_660);
        self.record(None, |sim| sim.run_until(until));
    }

    fn deliver(&mut self, event: Event) {
        let name = event.source_name();
        self.record(Some(name), |sim| {
            let mut commands = sim.event(event);
            // The workflow answers `plan_handoff` with the built-in playbook of
            // the bundle's segment and feeds the plan back as an event.
            let requests: Vec<ValidBundle> = commands
                .iter()
                .filter_map(|command| match command {
                    Command::ResolvePlan(request) => Some(request.bundle.clone()),
                    _ => None,
                })
                .collect();
            for bundle in requests {
                let segment = bundle.bundle.deal.segment.clone().unwrap_or_default();
                let plan = Plan::freeze(&bundle, Playbook::builtin(&segment), "revops");
                commands.extend(sim.event(Event::PlanResolved(Box::new(plan))));
            }
            commands
        });
    }

    fn record(
        &mut self,
        signal: Option<&'static str>,
        step: impl FnOnce(&mut Sim) -> Vec<Command>,
    ) {
        let before = Snapshot::of(&self.sim.handoff);
        let commands = step(&mut self.sim);
        let after = Snapshot::of(&self.sim.handoff);
        self.records.push(Record {
            signal,
            before,
            after,
            commands,
        });
    }

    /// The event a signal stands for; `None` for an update the validator
    /// refuses, which the workflow never applies.
    fn event(&self, signal: &Signal, at: DateTime<Utc>) -> Option<Event> {
        let event = match *signal {
            Signal::Gate(which) => gate(which, at),
            Signal::KickoffHeld => Event::KickoffHeld { at },
            Signal::MilestoneReached {
                milestone,
                evidence,
            } => Event::MilestoneReached {
                milestone: milestone.to_owned(),
                at,
                evidence: evidence.then(|| "signed acceptance".to_owned()),
            },
            Signal::AdoptionReported { rate } => Event::AdoptionReported { rate, at },
            Signal::EscalationAcknowledged { milestone } => Event::EscalationAcknowledged {
                milestone: milestone.to_owned(),
                by: None,
            },
            Signal::CustomerBlocked => Event::CustomerBlocked {
                at,
                reason: Some("waiting for access".to_owned()),
            },
            Signal::CustomerUnblocked => Event::CustomerUnblocked { at },
            Signal::TaskCompleted { key } => Event::TaskCompleted {
                key: key.to_owned(),
                at,
            },
            Signal::DealReopened => Event::DealReopened { at },
            Signal::DealLost { reason } => Event::DealLost {
                reason: reason.to_owned(),
                at,
            },
            Signal::ClosedWon { segment } => self.closed_won(segment, at),
            Signal::ExtendDeadline { .. }
            | Signal::WaiveMilestone { .. }
            | Signal::ReassignOwner { .. } => {
                let update = self.update(signal);
                self.sim.handoff.validate(&update, self.sim.now).ok()?;
                Event::Update(update)
            }
        };
        Some(event)
    }

    fn update(&self, signal: &Signal) -> Update {
        match *signal {
            Signal::ExtendDeadline {
                milestone,
                later_by_minutes,
            } => {
                let due = self
                    .sim
                    .handoff
                    .sla(milestone)
                    .map_or(self.sim.now, |sla| sla.due_at);
                Update::ExtendDeadline {
                    milestone: milestone.to_owned(),
                    new_due: due + Duration::minutes(later_by_minutes),
                    reason: "customer travel".to_owned(),
                }
            }
            Signal::WaiveMilestone { milestone } => Update::WaiveMilestone {
                milestone: milestone.to_owned(),
                reason: "pilot contract".to_owned(),
            },
            Signal::ReassignOwner { role, handle } => Update::ReassignOwner {
                role: role.to_owned(),
                handle: handle.to_owned(),
            },
            _ => unreachable!("only updates are built here"),
        }
    }

    fn closed_won(&self, segment: Option<&str>, at: DateTime<Utc>) -> Event {
        let bundle = match segment {
            None => self.closed_won.clone(),
            Some(segment) => bundle(segment, &self.closed_won.closed_won_at.to_rfc3339()),
        };
        Event::ClosedWon {
            bundle: Box::new(bundle),
            as_of: None,
            at,
        }
    }
}

/// The top-level fields in which two states differ, with both values, so a
/// failure names what changed instead of printing two whole handoffs.
fn differences(left: &Handoff, right: &Handoff) -> Vec<String> {
    let (Value::Object(left), Value::Object(right)) = (json(left), json(right)) else {
        unreachable!("a handoff serialises as a JSON object");
    };
    left.iter()
        .filter(|(field, value)| right.get(*field) != Some(*value))
        .map(|(field, value)| format!("{field}: {value} != {}", right[field]))
        .collect()
}

fn json(handoff: &Handoff) -> Value {
    serde_json::to_value(handoff).unwrap()
}

/// A runner that keeps no regression files: a failure found here becomes a
/// plain test with its minimal history instead.
fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        // ChaCha, the default, takes most of the time of an unoptimised build;
        // these histories need variety, not cryptographic randomness.
        rng_algorithm: RngAlgorithm::XorShift,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config(2_000))]

    #[test]
    fn every_handoff_ends_once_its_pauses_lift_and_time_runs_far_enough(history in history()) {
        let played = Player::play_all(&history);
        let handoff = &played.sim.handoff;
        let log = labels(&played.sim.log);

        prop_assert!(handoff.stage.is_terminal(), "{:?} after {log:?}", handoff.stage);
        if handoff.stage == Stage::Completed {
            let names: Vec<&str> = handoff.milestones.iter().map(|m| m.name.as_str()).collect();
            prop_assert_eq!(names, MILESTONES.to_vec());
            for milestone in &handoff.milestones {
                prop_assert!(
                    milestone.status != MilestoneStatus::Pending,
                    "{} still pending after {log:?}",
                    milestone.name
                );
            }
        }
        let finishes = log.iter().filter(|label| *label == "finish").count();
        prop_assert_eq!(finishes, 1, "{:?}", log);
    }
}

proptest! {
    #![proptest_config(config(500))]

    #[test]
    fn nobody_is_reminded_of_a_met_clock_or_chased_for_a_lost_deal(history in history()) {
        let played = Player::play_all(&history);
        let log = labels(&played.sim.log);

        for record in &played.records {
            for command in &record.commands {
                let Command::Notify(notification) = command else {
                    continue;
                };
                let kind = notification.kind.as_str();
                let clock = notification.milestone.as_deref().unwrap_or_default();
                if kind == "reminder" {
                    prop_assert!(
                        !record.before.resolved.contains(clock),
                        "{} reminded after it was met: {log:?}",
                        notification.key
                    );
                    // Every deadline up to a signal's arrival fired before it,
                    // so a signal step emits only what follows the signal.
                    prop_assert!(
                        record.signal.is_none() || !record.after.resolved.contains(clock),
                        "{} reminded after {:?} met it: {log:?}",
                        notification.key,
                        record.signal
                    );
                }
                // Only `closed_won` wins a lost deal back.
                let chasing = matches!(kind, "reminder" | "escalation");
                prop_assert!(
                    !(chasing && record.before.lost && record.signal != Some("closed_won")),
                    "{} sent for a lost deal: {log:?}",
                    notification.key
                );
            }
        }
        // The workflow stops carrying out commands at `Finish`: anything
        // after it would silently never happen.
        if let Some(end) = log.iter().position(|label| label == "finish") {
            prop_assert_eq!(&log[end + 1..], &[] as &[String], "{:?}", log);
        }
    }

    #[test]
    fn escalations_stop_at_level_3_and_no_reminder_escalation_or_breach_repeats(
        history in history(),
    ) {
        let played = Player::play_all(&history);
        let log = labels(&played.sim.log);
        let workflow_id = &played.sim.handoff.workflow_id;

        let mut seen = BTreeSet::new();
        for command in &played.sim.log {
            let key = match command {
                Command::Notify(n) if n.kind == "escalation" => {
                    let level = n.level.unwrap_or_default();
                    prop_assert!((1..=3).contains(&level), "{} at level {level}", n.key);
                    let clock = n.milestone.as_deref().unwrap_or_default();
                    prop_assert_eq!(&n.key, &format!("{workflow_id}/escalate/{clock}/{level}"));
                    n.key.clone()
                }
                Command::Notify(n) if n.kind == "reminder" => n.key.clone(),
                Command::CreateTasks(batch) if batch.trigger.starts_with("breach:") => {
                    format!("tasks:{}", batch.trigger)
                }
                _ => continue,
            };
            prop_assert!(seen.insert(key.clone()), "{key} twice: {log:?}");
        }
        for sla in played.sim.handoff.slas() {
            prop_assert!(sla.escalation_level <= 3, "{} at {}", sla.name, sla.escalation_level);
        }
    }

    #[test]
    fn pauses_and_updates_never_move_a_due_instant_earlier(history in history()) {
        let played = Player::play_all(&history);

        // An `extend_deadline` only passes the validator when it moves the due
        // instant later, so no step of any kind may move one earlier.
        for record in &played.records {
            for (clock, before) in &record.before.dues {
                let Some(after) = record.after.dues.get(clock) else {
                    continue;
                };
                prop_assert!(
                    after >= before,
                    "{clock} due {before} moved to {after} by {:?}: {:?}",
                    record.signal,
                    labels(&played.sim.log)
                );
            }
        }
    }

    #[test]
    fn the_same_history_gives_the_same_commands_and_state(history in history()) {
        let first = Player::play_all(&history);
        let second = Player::play_all(&history);

        prop_assert!(
            first.sim.log == second.sim.log,
            "{:?} != {:?}",
            labels(&first.sim.log),
            labels(&second.sim.log)
        );
        prop_assert!(
            first.sim.handoff == second.sim.handoff,
            "{:?}",
            differences(&first.sim.handoff, &second.sim.handoff)
        );
    }

    #[test]
    fn a_state_carried_through_json_continues_like_the_handoff_it_came_from(
        history in history(),
        split in any::<Index>(),
    ) {
        let whole = Player::play_all(&history);
        let cut = split.index(history.steps.len() + 1);
        let mut prefix = Player::start(&history);
        for step in &history.steps[..cut] {
            prefix.play(step);
        }

        // What continue-as-new does: the state goes out as JSON and the next
        // run starts from it.
        let json = serde_json::to_string(&prefix.sim.handoff).unwrap();
        let carried: Handoff = serde_json::from_str(&json).unwrap();
        prop_assert!(
            carried == prefix.sim.handoff,
            "changed in transit: {:?}",
            differences(&carried, &prefix.sim.handoff)
        );
        let mut rest = Player::resume(carried, prefix.sim.now, prefix.closed_won.clone());
        for step in &history.steps[cut..] {
            rest.play(step);
        }
        rest.finish();

        let remaining = &whole.sim.log[prefix.sim.log.len()..];
        prop_assert!(
            rest.sim.log == remaining,
            "{:?} != {:?}",
            labels(&rest.sim.log),
            labels(remaining)
        );
        prop_assert!(
            rest.sim.handoff == whole.sim.handoff,
            "{:?}",
            differences(&rest.sim.handoff, &whole.sim.handoff)
        );
    }
}

/// Sends `closed_won` again with another segment and answers the re-plan it
/// asks for, as the workflow does; returns the labels of what followed.
fn amend_segment(sim: &mut Sim, segment: &str) -> Vec<String> {
    let closed_won_at = sim.handoff.bundle.as_ref().unwrap().closed_won_at;
    let amended = bundle(segment, &closed_won_at.to_rfc3339());
    let at = sim.now;
    let mut commands = sim.event(Event::ClosedWon {
        bundle: Box::new(amended.clone()),
        as_of: None,
        at,
    });
    assert_eq!(labels(&commands), ["plan"]);
    let plan = Plan::freeze(&amended, Playbook::builtin(segment), "revops");
    commands.extend(sim.event(Event::PlanResolved(Box::new(plan))));
    labels(&commands)
}

// Found by `pauses_and_updates_never_move_a_due_instant_earlier`.
// Regression (#3): a re-plan before day 0 re-armed the gates, dropping the days a pause added.
#[test]
fn a_segment_change_before_day0_keeps_the_days_a_pause_added() {
    // Wednesday 2025-12-31, 19:00 in New York.
    let mut sim = Sim::planned("enterprise", "2026-01-01T00:00:00Z");
    let at = sim.now;
    sim.event(Event::CustomerBlocked { at, reason: None });
    sim.run_until(at + Duration::minutes(1));
    let at = sim.now;
    sim.event(Event::CustomerUnblocked { at });
    // The pause touched Wednesday: five business days plus one.
    let due = sim.milestone("signature").due_at;
    assert_eq!(due, utc("2026-01-09T04:59:59Z"));
    let timeout = sim.handoff.gate_timeout_at;

    amend_segment(&mut sim, "smb");

    assert_eq!(sim.milestone("signature").due_at, due);
    assert_eq!(sim.handoff.gate_timeout_at, timeout);
}

// Found by `escalations_stop_at_level_3_and_no_reminder_escalation_or_breach_repeats`.
// Regression (#3): a re-plan before day 0 re-armed the gates, sending their reminders again.
#[test]
fn a_segment_change_before_day0_sends_no_reminder_twice() {
    let mut sim = Sim::planned("mid_market", "2026-01-01T00:00:00Z");
    // Half the window, snapped to 09:00 in New York on Tuesday.
    let before = sim.run_to("2026-01-06T15:00:00Z");
    assert_eq!(before, ["notify:remind/signature/50pct"]);

    let amended = amend_segment(&mut sim, "smb");

    assert!(
        !amended.contains(&"notify:remind/signature/50pct".to_owned()),
        "{amended:?}"
    );
}

// Found by `escalations_stop_at_level_3_and_no_reminder_escalation_or_breach_repeats`.
// Regression (#3): a re-plan before day 0 undoes a fired gate breach, which escalates again.
#[test]
fn a_segment_change_before_day0_never_undoes_a_gate_breach() {
    let mut sim = Sim::planned("smb", "2026-01-01T00:00:00Z");
    // Unsigned past Wednesday 2026-01-07 23:59:59 in New York.
    let breach = sim.run_to("2026-01-09T00:00:00Z");
    assert!(
        breach.contains(&"notify:escalate/signature/1".to_owned()),
        "{breach:?}"
    );

    let amended = amend_segment(&mut sim, "mid_market");

    assert!(
        !amended.contains(&"notify:escalate/signature/1".to_owned()),
        "{amended:?}"
    );
    assert_eq!(sim.handoff.breach_count, 1);
}

// Found by `a_state_carried_through_json_continues_like_the_handoff_it_came_from`.
// Regression (#3): serde_json parsed some floats one unit in the last place off.
#[test]
fn an_adoption_rate_survives_continue_as_new() {
    let mut sim = Sim::planned("smb", "2026-01-01T00:00:00Z");
    let at = sim.now;
    sim.event(Event::AdoptionReported {
        rate: 0.10470283811292001,
        at,
    });

    let json = serde_json::to_string(&sim.handoff).unwrap();
    let carried: Handoff = serde_json::from_str(&json).unwrap();

    assert_eq!(carried.adoption_rate, sim.handoff.adoption_rate);
}

// Regression: an enterprise handoff re-planned to smb before day 0 dropped
// its overdue security clock, and re-planned back it started the clock over
// and sent the security escalation at level 3 a second time.
#[test]
fn a_gate_dropped_and_required_again_by_re_plans_escalates_once() {
    let step = |gap_minutes, signal| Step {
        gap_minutes,
        early_minutes: 0,
        signal,
    };
    let history = History {
        segment: "enterprise",
        start: DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc(),
        steps: vec![
            step(20407, Signal::KickoffHeld),
            step(1129, Signal::KickoffHeld),
            step(4956, Signal::KickoffHeld),
            step(
                1076,
                Signal::ExtendDeadline {
                    milestone: "signature",
                    later_by_minutes: 0,
                },
            ),
            step(
                92,
                Signal::ClosedWon {
                    segment: Some("smb"),
                },
            ),
            step(1, Signal::ClosedWon { segment: None }),
        ],
    };
    let played = Player::play_all(&history);
    let escalations: Vec<&str> = played
        .sim
        .log
        .iter()
        .filter_map(|c| match c {
            Command::Notify(n) if n.kind == "escalation" => Some(n.key.as_str()),
            _ => None,
        })
        .collect();
    let mut unique = escalations.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), escalations.len(), "{escalations:?}");
}
