//! `handoff report`: SLA attainment for RevOps, from the ledger.
//!
//! Only finished handoffs count: their post-close review fixed every gate's
//! and milestone's final outcome. A running handoff's milestones can still
//! change (a breach met late, a waiver), so they are left to `deal list` and
//! the metrics. A handoff cancelled before completing sends no review and is
//! not in the report.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use handoff_activities::ledger::{Ledger, ReviewRow};
use handoff_workflows::playbook::{Gate, MILESTONES, SEGMENTS};

use crate::exit::Exit;
use crate::terminal::print_table;

/// The whole report, as `--json` prints it.
#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct Report {
    /// Start of the window (ended at or after), when one was given.
    pub(crate) since: Option<DateTime<Utc>>,
    /// Finished handoffs in the window.
    pub(crate) handoffs: usize,
    /// One entry per segment with finished handoffs.
    pub(crate) segments: Vec<SegmentReport>,
}

/// Attainment of one segment.
#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct SegmentReport {
    pub(crate) segment: String,
    pub(crate) handoffs: usize,
    /// Median days from the signature to `first_value`, over the handoffs
    /// that reached it; `null` when none did.
    pub(crate) median_time_to_first_value_days: Option<f64>,
    /// Gates first, then milestones in their contract order.
    pub(crate) milestones: Vec<Attainment>,
}

/// Outcomes of one gate or milestone within a segment.
#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct Attainment {
    pub(crate) milestone: String,
    /// `gate` or `milestone`.
    pub(crate) kind: String,
    pub(crate) total: u32,
    pub(crate) met: u32,
    pub(crate) met_late: u32,
    pub(crate) breached: u32,
    pub(crate) waived: u32,
    /// Shares of `total`, 0..1, in the same order.
    pub(crate) met_rate: f64,
    pub(crate) met_late_rate: f64,
    pub(crate) breached_rate: f64,
    pub(crate) waived_rate: f64,
}

/// `handoff report`.
pub(crate) async fn run(ledger: &Ledger, since: Option<&str>, json: bool) -> anyhow::Result<()> {
    let since = since.map(parse_since).transpose()?;
    let reviews = ledger.list_reviews(since).await?;
    let report = build(since, &reviews);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_human(&report);
    }
    Ok(())
}

/// A date (00:00 UTC of that day) or an RFC 3339 instant.
fn parse_since(text: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(instant.to_utc());
    }
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map(|date| date.and_time(chrono::NaiveTime::MIN).and_utc())
        .map_err(|_| {
            Exit::config(format!(
                "--since {text:?}: give a date (2026-03-01) or an RFC 3339 instant"
            ))
        })
}

/// Groups the reviews by segment, then by gate or milestone.
pub(crate) fn build(since: Option<DateTime<Utc>>, reviews: &[ReviewRow]) -> Report {
    let mut by_segment: BTreeMap<(usize, String), Vec<&ReviewRow>> = BTreeMap::new();
    for review in reviews {
        let order = position(&SEGMENTS, &review.segment);
        by_segment
            .entry((order, review.segment.clone()))
            .or_default()
            .push(review);
    }
    let segments = by_segment
        .into_iter()
        .map(|((_, segment), reviews)| segment_report(segment, &reviews))
        .collect();
    Report {
        since,
        handoffs: reviews.len(),
        segments,
    }
}

fn segment_report(segment: String, reviews: &[&ReviewRow]) -> SegmentReport {
    let gates: Vec<&str> = Gate::ALL.iter().map(|gate| gate.name()).collect();
    let mut counts: BTreeMap<(usize, usize, String), [u32; 4]> = BTreeMap::new();
    for item in reviews.iter().flat_map(|review| review.items.iter()) {
        let (kind_order, order) = match item.kind.as_str() {
            "gate" => (0, position(&gates, &item.name)),
            _ => (1, position(&MILESTONES, &item.name)),
        };
        let slot = match item.status.as_str() {
            "met" => 0,
            "met_late" => 1,
            "breached" => 2,
            "waived" => 3,
            _ => continue,
        };
        counts
            .entry((kind_order, order, item.name.clone()))
            .or_default()[slot] += 1;
    }
    let milestones = counts
        .into_iter()
        .map(|((kind, _, name), counts)| attainment(name, kind == 0, counts))
        .collect();
    let mut days: Vec<f64> = reviews
        .iter()
        .filter_map(|review| review.time_to_first_value_days)
        .collect();
    SegmentReport {
        segment,
        handoffs: reviews.len(),
        median_time_to_first_value_days: median(&mut days),
        milestones,
    }
}

fn attainment(
    milestone: String,
    gate: bool,
    [met, met_late, breached, waived]: [u32; 4],
) -> Attainment {
    let total = met + met_late + breached + waived;
    let rate = |count: u32| {
        if total == 0 {
            0.0
        } else {
            f64::from(count) / f64::from(total)
        }
    };
    Attainment {
        milestone,
        kind: if gate { "gate" } else { "milestone" }.to_owned(),
        total,
        met,
        met_late,
        breached,
        waived,
        met_rate: rate(met),
        met_late_rate: rate(met_late),
        breached_rate: rate(breached),
        waived_rate: rate(waived),
    }
}

/// Index of `value` in the contract's order, unknown names last.
fn position(order: &[&str], value: &str) -> usize {
    order
        .iter()
        .position(|known| *known == value)
        .unwrap_or(order.len())
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    })
}

fn print_human(report: &Report) {
    if report.handoffs == 0 {
        println!("no finished handoffs in the ledger{}", window(report));
        return;
    }
    println!("{} finished handoff(s){}", report.handoffs, window(report));
    let cell = |count: u32, rate: f64| format!("{count} ({:.0}%)", rate * 100.0);
    let rows: Vec<Vec<String>> = report
        .segments
        .iter()
        .flat_map(|segment| {
            segment.milestones.iter().map(|m| {
                vec![
                    segment.segment.clone(),
                    m.milestone.clone(),
                    m.total.to_string(),
                    cell(m.met, m.met_rate),
                    cell(m.met_late, m.met_late_rate),
                    cell(m.breached, m.breached_rate),
                    cell(m.waived, m.waived_rate),
                ]
            })
        })
        .collect();
    print_table(
        &[
            "SEGMENT",
            "MILESTONE",
            "TOTAL",
            "MET",
            "MET LATE",
            "BREACHED",
            "WAIVED",
        ],
        &rows,
    );
    println!();
    let rows: Vec<Vec<String>> = report
        .segments
        .iter()
        .map(|s| {
            let median = s
                .median_time_to_first_value_days
                .map_or_else(|| "-".to_owned(), |days| format!("{days:.1}"));
            vec![s.segment.clone(), s.handoffs.to_string(), median]
        })
        .collect();
    print_table(
        &["SEGMENT", "HANDOFFS", "MEDIAN DAYS TO FIRST VALUE"],
        &rows,
    );
}

fn window(report: &Report) -> String {
    report
        .since
        .map(|since| format!(" ended since {}", since.to_rfc3339()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use handoff_activities::ledger::OutcomeRow;

    use super::*;

    fn review(segment: &str, ttfv: Option<f64>, statuses: &[(&str, &str, &str)]) -> ReviewRow {
        ReviewRow {
            workflow_id: format!("handoff-manual-{segment}"),
            segment: segment.to_owned(),
            outcome: "completed".to_owned(),
            ended_at: Utc::now(),
            time_to_first_value_days: ttfv,
            items: statuses
                .iter()
                .map(|(kind, name, status)| OutcomeRow {
                    kind: (*kind).to_owned(),
                    name: (*name).to_owned(),
                    status: (*status).to_owned(),
                })
                .collect(),
        }
    }

    #[test]
    fn attainment_is_counted_per_segment_and_milestone_in_contract_order() {
        let reviews = [
            review(
                "smb",
                Some(40.0),
                &[
                    ("milestone", "adoption", "met"),
                    ("milestone", "kickoff", "breached"),
                ],
            ),
            review(
                "smb",
                Some(50.0),
                &[
                    ("milestone", "kickoff", "met"),
                    ("gate", "signature", "met"),
                ],
            ),
            review("enterprise", None, &[("milestone", "kickoff", "waived")]),
            review("smb", Some(90.0), &[("milestone", "kickoff", "met_late")]),
        ];

        let report = build(None, &reviews);

        assert_eq!(report.handoffs, 4);
        let names: Vec<&str> = report.segments.iter().map(|s| s.segment.as_str()).collect();
        assert_eq!(names, ["smb", "enterprise"]);
        let smb = &report.segments[0];
        assert_eq!(smb.median_time_to_first_value_days, Some(50.0));
        let order: Vec<&str> = smb
            .milestones
            .iter()
            .map(|m| m.milestone.as_str())
            .collect();
        assert_eq!(order, ["signature", "kickoff", "adoption"]);
        let kickoff = &smb.milestones[1];
        assert_eq!(
            (
                kickoff.total,
                kickoff.met,
                kickoff.met_late,
                kickoff.breached
            ),
            (3, 1, 1, 1)
        );
        assert!((kickoff.breached_rate - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(report.segments[1].median_time_to_first_value_days, None);
    }

    #[test]
    fn since_takes_a_date_or_an_instant() {
        assert_eq!(
            parse_since("2026-03-01").unwrap().to_rfc3339(),
            "2026-03-01T00:00:00+00:00"
        );
        assert_eq!(
            parse_since("2026-03-01T12:00:00+01:00")
                .unwrap()
                .to_rfc3339(),
            "2026-03-01T11:00:00+00:00"
        );
        assert!(parse_since("last week").is_err());
    }
}
