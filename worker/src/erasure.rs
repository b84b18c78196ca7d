//! `handoff ledger erase` and the worker's retention sweep: personal data out
//! of the ledger, on request or once a handoff ended longer ago than the
//! retention period.
//!
//! The sweep is housekeeping of the ledger on the wall clock, so it runs in
//! the worker process, never in a workflow. Every replica sweeps; an erasure
//! changes each row once, whichever replica gets there first.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::Serialize;
use tokio::time::MissedTickBehavior;
use tracing::{info, warn};

use handoff_activities::ledger::{Erasure, ErasureReason, Ledger, LedgerError};

use crate::deals::target_of_ref;
use crate::exit::Exit;

/// How often the worker sweeps, after the sweep at start.
pub(crate) const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// `handoff ledger erase --deal --json`: the erasure, the rows it changed in
/// all, and when the deal was erased before.
#[derive(Debug, Serialize)]
struct DealReport<'a> {
    #[serde(flatten)]
    erasure: &'a Erasure,
    rows: u64,
    previously_erased_at: Option<&'a str>,
}

/// One retention sweep, as `handoff ledger erase --expired --json` prints it.
#[derive(Debug, Default, PartialEq, Serialize)]
pub(crate) struct Sweep {
    pub(crate) retention_days: u32,
    /// Handoffs that ended before this wall instant were erased; `None` when
    /// the period reaches back before any instant a ledger can hold.
    pub(crate) cutoff: Option<String>,
    /// Workflow ids of the handoffs erased now.
    pub(crate) erased: Vec<String>,
    pub(crate) tasks: u64,
    pub(crate) notifications: u64,
    pub(crate) deliveries: u64,
    pub(crate) delivery_attempts: u64,
}

impl Sweep {
    fn of(retention_days: u32, cutoff: Option<DateTime<Utc>>, erasures: &[Erasure]) -> Self {
        let mut sweep = Self {
            retention_days,
            cutoff: cutoff.map(|c| c.to_rfc3339_opts(SecondsFormat::Secs, true)),
            ..Self::default()
        };
        for erasure in erasures {
            sweep.erased.push(erasure.workflow_id.clone());
            sweep.tasks += erasure.tasks;
            sweep.notifications += erasure.notifications;
            sweep.deliveries += erasure.deliveries;
            sweep.delivery_attempts += erasure.delivery_attempts;
        }
        sweep
    }
}

/// `handoff ledger erase --deal DEAL`.
pub(crate) async fn erase_deal(ledger: &Ledger, deal: &str, json: bool) -> anyhow::Result<()> {
    let target = target_of_ref(deal)?;
    let workflow_id = target.workflow_id.as_str();
    let previous = ledger.list_erasures(Some(workflow_id)).await?.pop();

    let erasure = ledger
        .erase_deal(workflow_id, ErasureReason::Request)
        .await?
        .ok_or_else(|| {
            Exit::runtime(format!(
                "no handoff {workflow_id} in the ledger: check the id with `handoff tasks list`"
            ))
        })?;

    let previously_erased_at = previous.as_ref().map(|e| e.erased_at.as_str());
    if json {
        let report = DealReport {
            erasure: &erasure,
            rows: erasure.rows(),
            previously_erased_at,
        };
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", deal_line(&erasure, previous.as_ref()));
    }
    Ok(())
}

fn deal_line(erasure: &Erasure, previous: Option<&Erasure>) -> String {
    if erasure.rows() > 0 {
        return format!(
            "erased {}: {}",
            erasure.workflow_id,
            counts(
                erasure.tasks,
                erasure.notifications,
                erasure.deliveries,
                erasure.delivery_attempts
            )
        );
    }
    match previous {
        Some(previous) => format!(
            "nothing left to erase in {} (erased at {} by {})",
            erasure.workflow_id,
            previous.erased_at,
            previous.reason.as_str()
        ),
        None => format!(
            "nothing to erase in {}: it holds no personal data",
            erasure.workflow_id
        ),
    }
}

fn counts(tasks: u64, notifications: u64, deliveries: u64, delivery_attempts: u64) -> String {
    format!(
        "tasks {tasks}, notifications {notifications}, deliveries {deliveries}, \
         delivery attempts {delivery_attempts}"
    )
}

/// `handoff ledger erase --expired`.
pub(crate) async fn erase_expired(
    ledger: &Ledger,
    retention_days: Option<u32>,
    json: bool,
) -> anyhow::Result<()> {
    let days = retention_days.ok_or_else(|| {
        Exit::config(
            "no retention period: set --ledger-retention-days, \
             HANDOFF_LEDGER_RETENTION_DAYS or ledger_retention_days in handoff.toml",
        )
    })?;

    let sweep = sweep(ledger, days, Utc::now()).await?;

    if json {
        println!("{}", serde_json::to_string(&sweep)?);
    } else {
        println!(
            "erased {} handoff(s) that ended more than {days} day(s) ago: {}",
            sweep.erased.len(),
            counts(
                sweep.tasks,
                sweep.notifications,
                sweep.deliveries,
                sweep.delivery_attempts
            )
        );
    }
    Ok(())
}

/// Erases every handoff that ended more than `retention_days` before `now`.
pub(crate) async fn sweep(
    ledger: &Ledger,
    retention_days: u32,
    now: DateTime<Utc>,
) -> Result<Sweep, LedgerError> {
    let cutoff = cutoff(now, retention_days);
    let erasures = match cutoff {
        Some(cutoff) => ledger.erase_ended_before(cutoff).await?,
        None => Vec::new(),
    };
    Ok(Sweep::of(retention_days, cutoff, &erasures))
}

/// The instant `days` before `now`; `None` when that is before the earliest
/// instant chrono represents, so nothing can have ended before it.
fn cutoff(now: DateTime<Utc>, days: u32) -> Option<DateTime<Utc>> {
    TimeDelta::try_days(i64::from(days)).and_then(|period| now.checked_sub_signed(period))
}

/// Sweeps now, then every [`SWEEP_INTERVAL`], until the process ends.
pub(crate) fn spawn_sweeps(ledger: Ledger, retention_days: u32) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match sweep(&ledger, retention_days, Utc::now()).await {
                Ok(sweep) => info!(
                    retention_days,
                    handoffs = sweep.erased.len(),
                    tasks = sweep.tasks,
                    notifications = sweep.notifications,
                    deliveries = sweep.deliveries,
                    delivery_attempts = sweep.delivery_attempts,
                    "ledger retention sweep done"
                ),
                Err(error) => {
                    let error = anyhow::Error::from(error);
                    warn!(error = %format!("{error:#}"), "ledger retention sweep failed; the next one retries");
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;
    use clap::Parser as _;

    use super::*;
    use crate::cli::{Cli, Command, LedgerCommand};

    fn erase_args(args: &[&str]) -> Result<crate::cli::EraseArgs, clap::Error> {
        let cli = Cli::try_parse_from([&["handoff", "ledger", "erase"], args].concat())?;
        match cli.command {
            Command::Ledger(LedgerCommand::Erase(args)) => Ok(args),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn erase_takes_either_a_deal_or_expired() {
        let by_deal = erase_args(&["--deal", "manual:D-1", "--json"]).unwrap();
        assert_eq!(by_deal.deal.as_deref(), Some("manual:D-1"));
        assert!(by_deal.json && !by_deal.expired);
        assert!(erase_args(&["--expired"]).unwrap().expired);

        assert!(erase_args(&[]).is_err());
        assert!(erase_args(&["--deal", "manual:D-1", "--expired"]).is_err());
    }

    #[test]
    fn the_cutoff_is_the_retention_period_before_now() {
        let now = Utc.with_ymd_and_hms(2026, 3, 31, 12, 0, 0).unwrap();

        assert_eq!(
            cutoff(now, 30),
            Some(Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap())
        );
        assert_eq!(cutoff(now, u32::MAX), None);
    }

    #[test]
    fn a_second_erasure_says_when_the_first_was() {
        let erasure = |rows: u64, reason| Erasure {
            workflow_id: "handoff-manual-D-1".to_owned(),
            reason,
            erased_at: "2026-03-31T12:00:00.000Z".to_owned(),
            tasks: rows,
            notifications: rows,
            deliveries: 0,
            delivery_attempts: 0,
        };
        let first = erasure(2, ErasureReason::Retention);

        assert_eq!(
            deal_line(&first, None),
            "erased handoff-manual-D-1: tasks 2, notifications 2, deliveries 0, \
             delivery attempts 0"
        );
        assert_eq!(
            deal_line(&erasure(0, ErasureReason::Request), Some(&first)),
            "nothing left to erase in handoff-manual-D-1 \
             (erased at 2026-03-31T12:00:00.000Z by retention)"
        );
    }
}
