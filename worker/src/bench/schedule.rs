//! The benchmark's event schedules, computed by the SLA engine itself so the
//! load generator sends each event at the business instant the schedule
//! names, whatever the playbook says about windows.
//!
//! - Counting: every gate and milestone met at a quarter of its window,
//!   before its first reminder; the fewest actions a handoff can cost.
//! - Breached: every gate and milestone met at a quarter of its window past
//!   its due instant, after the breach and the first escalation.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use handoff_workflows::bundle::ValidBundle;
use handoff_workflows::engine::{Event, Handoff, MilestoneStatus, Stage};
use handoff_workflows::playbook::{Gate, Plan, Playbook};

/// Which schedule to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pace {
    /// A quarter into each window.
    Counting,
    /// A quarter of the window past each due instant.
    Breached,
}

impl Pace {
    fn fraction(self) -> f64 {
        match self {
            Self::Counting => 0.25,
            Self::Breached => 1.25,
        }
    }
}

/// One event to send: its business instant, signal name and payload.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Step {
    pub(crate) at: DateTime<Utc>,
    pub(crate) signal: &'static str,
    pub(crate) payload: Value,
}

/// The events that carry `bundle` from closed won at `start` to completion.
/// `None` when the engine does not complete the handoff with them (a
/// playbook the schedule does not understand).
pub(crate) fn schedule(
    bundle: &ValidBundle,
    segment: &str,
    start: DateTime<Utc>,
    pace: Pace,
) -> Option<Vec<Step>> {
    let mut handoff = Handoff::new(
        format!("handoff-{}-{}", bundle.source, bundle.deal_id),
        bundle.source.clone(),
        bundle.deal_id.clone(),
    );
    handoff.apply(
        Event::ClosedWon {
            bundle: Box::new(bundle.clone()),
            as_of: None,
            at: start,
        },
        start,
    );
    let plan = Plan::freeze(bundle, Playbook::builtin(segment), "revops-queue");
    handoff.apply(Event::PlanResolved(Box::new(plan)), start);

    let mut steps = Vec::new();
    // Bounded: each step resolves a gate or a milestone.
    for _ in 0..32 {
        if handoff.stage == Stage::Completed {
            return Some(steps);
        }
        let (at, step) = next_event(&handoff, pace)?;
        while let Some(deadline) = handoff.next_deadline().filter(|d| d.at <= at) {
            handoff.advance(deadline.at);
        }
        let event = match step {
            Next::Gate(gate) => Event::GatePassed { gate, at, by: None },
            Next::Milestone(ref name) => milestone_event(name, at),
        };
        handoff.apply(event, at);
        steps.push(to_step(&step, at));
    }
    None
}

enum Next {
    Gate(Gate),
    Milestone(String),
}

/// The earliest gate or milestone still open, and when the schedule meets it.
fn next_event(handoff: &Handoff, pace: Pace) -> Option<(DateTime<Utc>, Next)> {
    let point = |start: DateTime<Utc>, due: DateTime<Utc>| {
        let window = (due - start).num_milliseconds() as f64;
        start + chrono::Duration::milliseconds((window * pace.fraction()) as i64)
    };
    let gates = handoff.gates.iter().filter_map(|(gate, record)| {
        let sla = record.sla.as_ref()?;
        record
            .passed_at
            .is_none()
            .then(|| (point(sla.window_start, sla.due_at), Next::Gate(*gate)))
    });
    let milestones = handoff
        .milestones
        .iter()
        .filter(|m| m.met_at.is_none() && m.status != MilestoneStatus::Waived)
        .map(|m| {
            (
                point(m.window_start, m.due_at),
                Next::Milestone(m.name.clone()),
            )
        });
    gates.chain(milestones).min_by_key(|(at, _)| *at)
}

fn milestone_event(name: &str, at: DateTime<Utc>) -> Event {
    match name {
        "kickoff" => Event::KickoffHeld { at },
        "adoption" => Event::AdoptionReported { rate: 0.8, at },
        _ => Event::MilestoneReached {
            milestone: name.to_owned(),
            at,
            evidence: (name == "first_value").then(|| "the first report went out".to_owned()),
        },
    }
}

fn to_step(next: &Next, at: DateTime<Utc>) -> Step {
    let at_text = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (signal, payload) = match next {
        Next::Gate(Gate::Signature) => ("contract_signed", json!({ "at": at_text })),
        Next::Gate(Gate::Security) => ("security_cleared", json!({ "at": at_text })),
        Next::Gate(Gate::Financing) => ("financing_secured", json!({ "at": at_text })),
        Next::Milestone(name) => match name.as_str() {
            "kickoff" => ("kickoff_held", json!({ "at": at_text })),
            "adoption" => (
                "adoption_reported",
                json!({ "active_users": 8, "licensed_users": 10, "at": at_text }),
            ),
            "first_value" => (
                "milestone_reached",
                json!({ "milestone": name, "evidence": "the first report went out", "at": at_text }),
            ),
            _ => (
                "milestone_reached",
                json!({ "milestone": name, "at": at_text }),
            ),
        },
    };
    Step {
        at,
        signal,
        payload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(segment: &str) -> ValidBundle {
        ValidBundle::from_value(json!({
            "deal": { "source": "bench", "id": "B-1", "amount": 50000, "currency": "USD",
                      "segment": segment, "closed_won_at": "2026-03-02T15:00:00Z" },
            "account": { "name": "Example Corp" },
            "team": { "timezone": "America/New_York", "calendar": "US" },
            "terms": { "security_review_required": segment == "enterprise" },
            "owners": { "account_executive": "ae-01", "handoff_owner": "ho-03",
                        "onboarding_manager": "om-04", "customer_success_manager": "csm-05" }
        }))
        .unwrap()
    }

    #[test]
    fn the_counting_schedule_completes_every_segment_before_any_reminder() {
        let start = "2026-03-02T15:00:00Z".parse().unwrap();
        for segment in ["smb", "mid_market", "enterprise"] {
            let steps = schedule(&bundle(segment), segment, start, Pace::Counting).unwrap();
            let signals: Vec<&str> = steps.iter().map(|s| s.signal).collect();
            assert!(
                signals.contains(&"contract_signed"),
                "{segment}: {signals:?}"
            );
            assert!(signals.contains(&"kickoff_held"), "{segment}: {signals:?}");
            assert!(
                steps.windows(2).all(|w| w[0].at <= w[1].at),
                "{segment}: in time order"
            );
        }
        let enterprise =
            schedule(&bundle("enterprise"), "enterprise", start, Pace::Counting).unwrap();
        assert!(enterprise.iter().any(|s| s.signal == "security_cleared"));
    }

    #[test]
    fn the_breached_schedule_meets_everything_after_its_due_instant() {
        let start = "2026-03-02T15:00:00Z".parse().unwrap();
        let counting = schedule(&bundle("smb"), "smb", start, Pace::Counting).unwrap();
        let breached = schedule(&bundle("smb"), "smb", start, Pace::Breached).unwrap();
        assert_eq!(counting.len(), breached.len());
        assert!(breached.last().unwrap().at > counting.last().unwrap().at);
    }
}
