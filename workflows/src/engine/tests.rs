use chrono::Duration;

use super::*;
use crate::playbook::Playbook;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn bundle(segment: &str) -> ValidBundle {
    ValidBundle::from_value(serde_json::json!({
        "deal": { "source": "manual", "id": "D-1", "segment": segment,
                  "closed_won_at": "2026-03-02T14:00:00Z" },
        "account": { "name": "Example Corp" },
        "team": { "timezone": "America/New_York", "calendar": "none" },
        "owners": { "handoff_owner": "ho-1", "onboarding_manager": "om-1", "account_executive": "ae-1" }
    }))
    .unwrap()
}

/// A handoff with its bundle and plan in, as the workflow would have it.
fn planned(segment: &str, now: DateTime<Utc>) -> (Handoff, Vec<Command>) {
    let mut handoff = Handoff::new("handoff-manual-D-1".into(), "manual".into(), "D-1".into());
    let bundle = bundle(segment);
    let commands = handoff.apply(Event::ClosedWon(Box::new(bundle.clone())), now);
    assert!(matches!(commands.as_slice(), [Command::ResolvePlan(_)]));
    let plan = Plan::freeze(&bundle, Playbook::builtin(segment), "revops");
    let commands = handoff.apply(Event::PlanResolved(Box::new(plan)), now);
    (handoff, commands)
}

fn gate(gate: Gate, at: &str) -> Event {
    Event::GatePassed {
        gate,
        at: utc(at),
        by: None,
    }
}

fn triggers(commands: &[Command]) -> Vec<String> {
    commands
        .iter()
        .map(|c| match c {
            Command::ResolvePlan(_) => "plan".to_owned(),
            Command::CreateTasks(t) => format!("tasks:{}", t.trigger),
            Command::CancelTasks(_) => "cancel_tasks".to_owned(),
            Command::Notify(n) => format!("notify:{}", n.key.rsplit_once("D-1/").unwrap().1),
            Command::Finish => "finish".to_owned(),
        })
        .collect()
}

#[test]
fn signature_starts_day0_and_kickoff_is_three_business_days_later() {
    let now = utc("2026-03-02T15:00:00Z");
    let (mut handoff, commands) = planned("smb", now);
    assert_eq!(triggers(&commands), ["tasks:closed_won"]);

    // Monday 2026-03-02 10:00 EST.
    let commands = handoff.apply(gate(Gate::Signature, "2026-03-02T15:00:00Z"), now);
    assert_eq!(triggers(&commands), ["tasks:day0"]);
    assert_eq!(handoff.stage, Stage::Kickoff);
    let kickoff = handoff.kickoff.as_ref().unwrap();
    assert_eq!(
        kickoff.due_at,
        utc("2026-03-06T04:59:59Z"),
        "Thursday 23:59:59 EST"
    );
    assert_eq!(kickoff.owner, "om-1");
    // Half of 86 business hours after Monday 10:00 is Wednesday 05:00, sent at 09:00.
    assert_eq!(kickoff.reminder_at, Some(utc("2026-03-04T14:00:00Z")));
}

#[test]
fn day0_tasks_carry_owners_due_dates_and_dependencies() {
    let now = utc("2026-03-02T15:00:00Z");
    let (mut handoff, _) = planned("smb", now);
    let commands = handoff.apply(gate(Gate::Signature, "2026-03-02T15:00:00Z"), now);
    let Command::CreateTasks(batch) = &commands[0] else {
        panic!("{commands:?}")
    };
    let keys: Vec<_> = batch
        .tasks
        .iter()
        .map(|t| (t.key.as_str(), t.status))
        .collect();
    assert_eq!(
        keys,
        [
            ("kickoff", TaskStatus::Open),
            ("data_migration", TaskStatus::Blocked),
            ("integration_setup", TaskStatus::Blocked),
            ("user_enablement", TaskStatus::Blocked),
        ]
    );
    let integration = &batch.tasks[2];
    assert_eq!(
        integration.due_at,
        utc("2026-03-17T03:59:59Z"),
        "day 14, in EDT after the DST change"
    );
    assert_eq!(
        integration.owner, "revops",
        "no sales engineer named: fallback owner"
    );
}

#[test]
fn enterprise_waits_for_both_gates_in_either_order() {
    let now = utc("2026-03-05T15:00:00Z");
    for order in [
        [Gate::Signature, Gate::Security],
        [Gate::Security, Gate::Signature],
    ] {
        let (mut handoff, _) = planned("enterprise", now);
        let first = handoff.apply(gate(order[0], "2026-03-03T15:00:00Z"), now);
        assert!(first.is_empty(), "{first:?}");
        assert_eq!(handoff.stage, Stage::AwaitingGates);
        handoff.apply(gate(order[1], "2026-03-04T15:00:00Z"), now);
        assert_eq!(
            handoff.day0,
            Some(utc("2026-03-04T15:00:00Z")),
            "day 0 is the latest gate"
        );
    }
}

#[test]
fn a_gate_before_the_bundle_is_kept_and_a_duplicate_keeps_the_earliest() {
    let now = utc("2026-03-05T15:00:00Z");
    let mut handoff = Handoff::new("handoff-manual-D-1".into(), "manual".into(), "D-1".into());
    assert!(
        handoff
            .apply(gate(Gate::Signature, "2026-03-04T15:00:00Z"), now)
            .is_empty()
    );
    handoff.apply(gate(Gate::Signature, "2026-03-03T15:00:00Z"), now);
    handoff.apply(gate(Gate::Signature, "2026-03-05T12:00:00Z"), now);
    assert_eq!(handoff.stage, Stage::AwaitingBundle);

    let bundle = bundle("smb");
    handoff.apply(Event::ClosedWon(Box::new(bundle.clone())), now);
    let plan = Plan::freeze(&bundle, Playbook::builtin("smb"), "revops");
    handoff.apply(Event::PlanResolved(Box::new(plan)), now);
    assert_eq!(handoff.day0, Some(utc("2026-03-03T15:00:00Z")));
}

#[test]
fn day0_is_never_before_closed_won() {
    let now = utc("2026-03-05T15:00:00Z");
    let (mut handoff, _) = planned("smb", now);
    handoff.apply(gate(Gate::Signature, "2026-02-20T15:00:00Z"), now);
    assert_eq!(handoff.day0, Some(utc("2026-03-02T14:00:00Z")));
}

#[test]
fn reminder_then_breach_then_one_escalation() {
    let now = utc("2026-03-02T15:00:00Z");
    let (mut handoff, _) = planned("smb", now);
    handoff.apply(gate(Gate::Signature, "2026-03-02T15:00:00Z"), now);

    let deadline = handoff.next_deadline().unwrap();
    assert_eq!(deadline.kind, "reminder");
    assert_eq!(
        triggers(&handoff.advance(deadline.at)),
        ["notify:remind/kickoff/50pct"]
    );
    assert!(
        handoff.advance(deadline.at).is_empty(),
        "a reminder goes out once"
    );

    let deadline = handoff.next_deadline().unwrap();
    assert_eq!(
        (deadline.kind.as_str(), deadline.at),
        ("due", utc("2026-03-06T04:59:59Z"))
    );
    let commands = handoff.advance(deadline.at);
    assert_eq!(
        triggers(&commands),
        [
            "tasks:breach:kickoff",
            "notify:escalate/kickoff/1",
            "finish"
        ]
    );
    let Command::Notify(escalation) = &commands[1] else {
        unreachable!()
    };
    let handles: Vec<_> = escalation
        .recipients
        .iter()
        .map(|r| r.handle.as_str())
        .collect();
    assert_eq!(handles, ["om-1", "ho-1"]);
    assert!(handoff.at_risk);
    assert_eq!(handoff.breach_count, 1);
    assert!(
        handoff.advance(deadline.at + Duration::days(9)).is_empty(),
        "a breach fires once"
    );
}

#[test]
fn a_backfilled_deal_breaches_once_without_a_stale_reminder() {
    let now = utc("2026-04-01T15:00:00Z");
    let (mut handoff, _) = planned("smb", now);
    let commands = handoff.apply(gate(Gate::Signature, "2026-03-02T15:00:00Z"), now);
    assert_eq!(
        triggers(&commands),
        [
            "tasks:day0",
            "tasks:breach:kickoff",
            "notify:escalate/kickoff/1",
            "finish"
        ]
    );
}

#[test]
fn kickoff_held_in_time_is_met_and_finishes() {
    let now = utc("2026-03-03T15:00:00Z");
    let (mut handoff, _) = planned("smb", now);
    handoff.apply(gate(Gate::Signature, "2026-03-02T15:00:00Z"), now);
    let commands = handoff.apply(
        Event::KickoffHeld {
            at: utc("2026-03-03T14:00:00Z"),
        },
        now,
    );
    assert_eq!(triggers(&commands), ["notify:met/kickoff", "finish"]);
    let kickoff = handoff.kickoff.as_ref().unwrap();
    assert_eq!(kickoff.status, MilestoneStatus::Met);
    assert_eq!(kickoff.met_at, Some(utc("2026-03-03T14:00:00Z")));
    assert_eq!(handoff.stage, Stage::Completed);
}

#[test]
fn kickoff_held_after_the_breach_fired_is_met_late() {
    let (mut handoff, _) = planned("smb", utc("2026-03-02T15:00:00Z"));
    handoff.apply(
        gate(Gate::Signature, "2026-03-02T15:00:00Z"),
        utc("2026-03-02T15:00:00Z"),
    );
    // Arrives after the due instant, claiming an earlier `at`: the breach stands.
    let late = utc("2026-03-06T06:00:00Z");
    let commands = handoff.apply(
        Event::KickoffHeld {
            at: utc("2026-03-05T14:00:00Z"),
        },
        late,
    );
    assert!(triggers(&commands).contains(&"notify:escalate/kickoff/1".to_owned()));
    assert_eq!(
        handoff.kickoff.as_ref().unwrap().status,
        MilestoneStatus::Breached
    );
    assert_eq!(handoff.stage, Stage::Completed);
}

#[test]
fn deal_lost_cancels_tasks_notifies_and_ends_cancelled() {
    let now = utc("2026-03-03T15:00:00Z");
    let (mut handoff, _) = planned("smb", now);
    handoff.apply(gate(Gate::Signature, "2026-03-02T15:00:00Z"), now);
    let commands = handoff.apply(
        Event::DealLost {
            reason: "budget cut".into(),
        },
        now,
    );
    assert_eq!(
        triggers(&commands),
        ["cancel_tasks", "notify:cancelled", "finish"]
    );
    assert_eq!(handoff.stage, Stage::Cancelled);
    assert_eq!(handoff.cancel_reason.as_deref(), Some("lost"));
    assert!(handoff.tasks.values().all(|s| *s == TaskStatus::Cancelled));
    assert!(
        handoff
            .apply(gate(Gate::Security, "2026-03-03T15:00:00Z"), now)
            .is_empty()
    );
}

#[test]
fn rejected_events_keep_the_last_fifty_and_the_total() {
    let mut handoff = Handoff::new("w".into(), "manual".into(), "D-1".into());
    for i in 0..60 {
        handoff.reject(
            "kickoff_held",
            format!("bad {i}"),
            utc("2026-03-03T15:00:00Z"),
        );
    }
    assert_eq!(handoff.rejected.total, 60);
    assert_eq!(handoff.rejected.recent.len(), REJECTED_EVENTS_KEPT);
    assert_eq!(handoff.rejected.recent[0].reason, "bad 10");
}
