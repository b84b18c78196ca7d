//! The SLA engine and the business calendar, without Temporal: a whole
//! 90-day schedule through the engine, and the calendar rules it leans on.
//! `cargo bench -p handoff-workflows` prints the numbers.

// Benchmark set-up panics on impossible inputs by design.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use chrono::{DateTime, Duration, Utc};
use criterion::{Criterion, criterion_group, criterion_main};

use handoff_workflows::bundle::ValidBundle;
use handoff_workflows::calendar::{BusinessCalendar, Holidays};
use handoff_workflows::engine::{Event, Handoff};
use handoff_workflows::playbook::{Gate, Plan, Playbook};

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

fn bundle() -> ValidBundle {
    ValidBundle::from_value(serde_json::json!({
        "deal": { "source": "manual", "id": "B-1", "segment": "enterprise",
                  "closed_won_at": "2026-03-02T15:00:00Z" },
        "account": { "name": "Example Corp" },
        "team": { "timezone": "America/New_York", "calendar": "US" },
        "owners": { "handoff_owner": "ho-1", "onboarding_manager": "om-1" }
    }))
    .unwrap()
}

/// Fires every deadline up to `until` the way the workflow's timer would.
fn run_until(handoff: &mut Handoff, until: DateTime<Utc>) -> usize {
    let mut commands = 0;
    while let Some(deadline) = handoff.next_deadline() {
        if deadline.at > until {
            break;
        }
        commands += handoff.advance(deadline.at).len();
    }
    commands
}

/// One enterprise handoff from the bundle to its close: every milestone
/// met at a quarter of its window (`on_time`), or none met at all.
fn whole_schedule(on_time: bool) -> usize {
    let start = utc("2026-03-02T15:00:00Z");
    let bundle = bundle();
    let mut handoff = Handoff::new("handoff-manual-B-1".into(), "manual".into(), "B-1".into());
    let mut commands = handoff
        .apply(
            Event::ClosedWon {
                bundle: Box::new(bundle.clone()),
                as_of: None,
                at: start,
            },
            start,
        )
        .len();
    let plan = Plan::freeze(&bundle, Playbook::builtin("enterprise"), "revops");
    commands += handoff
        .apply(Event::PlanResolved(Box::new(plan)), start)
        .len();
    for gate in [Gate::Signature, Gate::Security] {
        let event = Event::GatePassed {
            gate,
            at: start,
            by: None,
        };
        commands += handoff.apply(event, start).len();
    }
    if on_time {
        let steps: [(i64, Event); 5] = [
            (
                1,
                Event::KickoffHeld {
                    at: start + Duration::hours(20),
                },
            ),
            (4, reached("data_mapping", start + Duration::days(4), None)),
            (
                4,
                reached("first_integration_test", start + Duration::days(4), None),
            ),
            (
                8,
                Event::AdoptionReported {
                    rate: 0.7,
                    at: start + Duration::days(8),
                },
            ),
            (
                23,
                reached("first_value", start + Duration::days(23), Some("report")),
            ),
        ];
        for (days, event) in steps {
            let at = start + Duration::days(days);
            commands += run_until(&mut handoff, at);
            commands += handoff.apply(event, at).len();
        }
    }
    commands + run_until(&mut handoff, start + Duration::days(200))
}

fn reached(milestone: &str, at: DateTime<Utc>, evidence: Option<&str>) -> Event {
    Event::MilestoneReached {
        milestone: milestone.to_owned(),
        at,
        evidence: evidence.map(str::to_owned),
    }
}

fn engine(c: &mut Criterion) {
    c.bench_function("engine: 90-day schedule, every milestone on time", |b| {
        b.iter(|| black_box(whole_schedule(true)))
    });
    c.bench_function(
        "engine: 90-day schedule, everything breached to the close",
        |b| b.iter(|| black_box(whole_schedule(false))),
    );
}

fn calendar(c: &mut Criterion) {
    let us = BusinessCalendar::new(
        chrono_tz::America::New_York,
        Holidays::builtin("US").unwrap(),
    );
    let from = utc("2026-12-18T20:00:00Z");
    c.bench_function(
        "calendar: 10 business days across the year-end break",
        |b| b.iter(|| black_box(us.business_days_after(black_box(from), 10))),
    );
    c.bench_function("calendar: business seconds over 90 days", |b| {
        b.iter(|| black_box(us.business_seconds_between(from, from + Duration::days(90))))
    });
    c.bench_function("calendar: build and first use of a calendar", |b| {
        b.iter(|| {
            let calendar = BusinessCalendar::new(
                chrono_tz::Europe::London,
                Holidays::builtin("GB-ENG").unwrap(),
            );
            black_box(calendar.business_days_after(from, 3))
        })
    });
}

criterion_group!(benches, engine, calendar);
criterion_main!(benches);
