//! Final outcomes of finished handoffs, from their post-close reviews.
//!
//! The review travels as a fact of the `post_close_review` notification, so
//! recording it costs the workflow no extra activity. Rows are written once
//! per handoff (`ON CONFLICT DO NOTHING`), like every other ledger write.

use chrono::{DateTime, Utc};
use serde::Serialize;

use handoff_workflows::engine::MilestoneStatus;
use handoff_workflows::status::Review;

use super::{Ledger, LedgerError, Pool, instant_text, now_text};

/// One finished handoff as the report reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewRow {
    /// Workflow id of the deal.
    pub workflow_id: String,
    /// Segment of its plan.
    pub segment: String,
    /// `completed`, or the cancel reason.
    pub outcome: String,
    /// Business instant it ended.
    pub ended_at: DateTime<Utc>,
    /// Days from the signature to `first_value`, when it was met.
    pub time_to_first_value_days: Option<f64>,
    /// Gates and milestones with their final status.
    pub items: Vec<OutcomeRow>,
}

/// One gate or milestone of a finished handoff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomeRow {
    /// `gate` or `milestone`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// `met`, `met_late`, `breached`, `waived`, or `pending` for a gate that
    /// never passed.
    pub status: String,
}

impl Ledger {
    /// Records a finished handoff's review; false when it was already there.
    /// The gates and milestones go first, so a reader never sees a review
    /// without them, and a retry after a crash fills in what is missing.
    pub async fn record_review(&self, review: &Review) -> Result<bool, LedgerError> {
        let gates = review.gates.iter().map(|item| ("gate", item));
        let milestones = review.milestones.iter().map(|item| ("milestone", item));
        for (kind, item) in gates.chain(milestones) {
            on_pool!(self, pool => {
                sqlx::query(
                    "INSERT INTO milestone_outcomes (workflow_id, kind, name, status, due_at,
                                                     actual_at, escalation_level)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                )
                .bind(&review.workflow_id)
                .bind(kind)
                .bind(&item.name)
                .bind(status_text(item.status))
                .bind(instant_text(item.due_at))
                .bind(item.actual_at.map(instant_text))
                .bind(i64::from(item.escalation_level))
                .execute(pool)
                .await?
                .rows_affected()
            });
        }
        let ended_at = review.ended_at.or(review.day0).unwrap_or_else(Utc::now);
        let inserted = on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO handoff_reviews (workflow_id, segment, outcome, ended_at,
                                              time_to_first_value_days, expected_ttfv_days,
                                              recorded_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            )
            .bind(&review.workflow_id)
            .bind(review.segment.as_deref().unwrap_or("unknown"))
            .bind(review.cancel_reason.as_deref().unwrap_or(&review.outcome))
            .bind(instant_text(ended_at))
            .bind(review.time_to_first_value_days)
            .bind(review.expected_ttfv_days.map(i64::from))
            .bind(now_text())
            .execute(pool)
            .await?
            .rows_affected()
        }) == 1;
        Ok(inserted)
    }

    /// Finished handoffs that ended at or after `since`, oldest first.
    pub async fn list_reviews(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<ReviewRow>, LedgerError> {
        let rows: Vec<(String, String, String, String, Option<f64>)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT workflow_id, segment, outcome, ended_at, time_to_first_value_days
                 FROM handoff_reviews ORDER BY ended_at, workflow_id",
            )
            .fetch_all(pool)
            .await?
        });
        let mut reviews = Vec::new();
        for (workflow_id, segment, outcome, ended_at, time_to_first_value_days) in rows {
            let ended_at = DateTime::parse_from_rfc3339(&ended_at)
                .map_err(|e| LedgerError::Database(sqlx::Error::Decode(Box::new(e))))?
                .to_utc();
            if since.is_some_and(|since| ended_at < since) {
                continue;
            }
            let items = self.list_outcomes(&workflow_id).await?;
            reviews.push(ReviewRow {
                workflow_id,
                segment,
                outcome,
                ended_at,
                time_to_first_value_days,
                items,
            });
        }
        Ok(reviews)
    }

    async fn list_outcomes(&self, workflow_id: &str) -> Result<Vec<OutcomeRow>, LedgerError> {
        let rows: Vec<(String, String, String)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT kind, name, status FROM milestone_outcomes WHERE workflow_id = $1
                 ORDER BY kind, due_at, name",
            )
            .bind(workflow_id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(kind, name, status)| OutcomeRow { kind, name, status })
            .collect())
    }
}

fn status_text(status: MilestoneStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;
    use handoff_workflows::status::ReviewItem;

    use super::*;

    fn item(name: &str, status: MilestoneStatus) -> ReviewItem {
        ReviewItem {
            name: name.to_owned(),
            status,
            due_at: Utc.with_ymd_and_hms(2026, 3, 10, 4, 59, 59).unwrap(),
            actual_at: None,
            escalation_level: 0,
        }
    }

    fn review(workflow_id: &str, ended: DateTime<Utc>) -> Review {
        Review {
            workflow_id: workflow_id.to_owned(),
            deal_id: "D-1".to_owned(),
            source: "manual".to_owned(),
            outcome: "completed".to_owned(),
            cancel_reason: None,
            segment: Some("smb".to_owned()),
            day0: None,
            ended_at: Some(ended),
            gates: vec![item("signature", MilestoneStatus::Met)],
            milestones: vec![
                item("kickoff", MilestoneStatus::MetLate),
                item("adoption", MilestoneStatus::Waived),
            ],
            breaches: 1,
            escalations: 1,
            time_to_first_value_days: Some(42.5),
            expected_ttfv_days: Some(45),
            ttfv_within_expectation: Some(true),
        }
    }

    #[tokio::test]
    async fn a_review_is_recorded_once_and_read_back_by_end_date() {
        for (ledger, _dir) in super::super::tests::ledgers().await {
            let march = Utc.with_ymd_and_hms(2026, 3, 31, 12, 0, 0).unwrap();
            let june = Utc.with_ymd_and_hms(2026, 6, 30, 12, 0, 0).unwrap();

            assert!(
                ledger
                    .record_review(&review("handoff-manual-a", march))
                    .await
                    .unwrap()
            );
            assert!(
                !ledger
                    .record_review(&review("handoff-manual-a", march))
                    .await
                    .unwrap()
            );
            ledger
                .record_review(&review("handoff-manual-b", june))
                .await
                .unwrap();

            let all = ledger.list_reviews(None).await.unwrap();
            assert_eq!(all.len(), 2);
            let statuses: Vec<(&str, &str, &str)> = all[0]
                .items
                .iter()
                .map(|i| (i.kind.as_str(), i.name.as_str(), i.status.as_str()))
                .collect();
            assert_eq!(
                statuses,
                [
                    ("gate", "signature", "met"),
                    ("milestone", "adoption", "waived"),
                    ("milestone", "kickoff", "met_late")
                ]
            );
            assert_eq!(all[0].time_to_first_value_days, Some(42.5));
            let since_april = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap();
            let recent = ledger.list_reviews(Some(since_april)).await.unwrap();
            assert_eq!(recent.len(), 1);
            assert_eq!(recent[0].workflow_id, "handoff-manual-b");
        }
    }
}
