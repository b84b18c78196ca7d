//! Erasure of personal data from the ledger, by request or by retention.
//!
//! Personal data sits in a few fields: a task's title and owner, a
//! notification's recipients, subject and body, and what a sink answered
//! (`detail` of `deliveries` and `delivery_attempts`, which may echo the
//! message). Erasing a deal replaces those fields with [`ERASED`] (the
//! recipients with `[]`) and keeps everything else: keys, kinds, statuses,
//! instants, levels, the registry and the final outcomes, so audits and
//! `handoff report` read the same as before.
//!
//! Each update touches only rows that still hold something, so a second
//! erasure changes nothing and records nothing; an erasure that changed rows
//! writes one row to `erasures` in the same transaction. Two replicas that
//! sweep at once therefore erase each row once.
//!
//! Retention counts from the wall instant the ledger recorded a handoff's
//! end: `handoff_reviews.recorded_at` for a completed handoff, and the
//! `created_at` of its `handoff_cancelled` notification for a cancelled one,
//! which writes no review. `handoff_reviews.ended_at` is a business instant:
//! it runs ahead of the wall clock under a time scale and lies in the past
//! for a backfill, so it says nothing about how long the data has been kept.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sqlx::Row;

use super::{Ledger, LedgerError, Pool, for_backend, now_text};

/// What an erased text field holds afterwards.
pub const ERASED: &str = "[erased]";

/// Why personal data was erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ErasureReason {
    /// An operator asked for it (`handoff ledger erase --deal`).
    Request,
    /// The handoff ended longer ago than the retention period.
    Retention,
}

impl ErasureReason {
    /// The name kept in `erasures.reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Retention => "retention",
        }
    }

    fn from_name(name: &str) -> Self {
        if name == "retention" {
            Self::Retention
        } else {
            Self::Request
        }
    }
}

/// One erasure of a deal: what it changed, as `erasures` keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Erasure {
    /// Workflow id of the deal.
    pub workflow_id: String,
    /// Why it was erased.
    pub reason: ErasureReason,
    /// When (wall time, RFC 3339).
    pub erased_at: String,
    /// Task rows changed.
    pub tasks: u64,
    /// Notification rows changed.
    pub notifications: u64,
    /// Delivery rows whose sink answer was erased.
    pub deliveries: u64,
    /// Delivery attempt rows whose sink answer was erased.
    pub delivery_attempts: u64,
}

impl Erasure {
    /// Rows changed, over every table.
    pub fn rows(&self) -> u64 {
        self.tasks + self.notifications + self.deliveries + self.delivery_attempts
    }
}

const ERASE_TASKS: &str = "UPDATE tasks SET title = $2, owner = $2
     WHERE workflow_id = $1 AND (title <> $2 OR owner <> $2)";

const ERASE_NOTIFICATIONS: &str =
    "UPDATE notifications SET recipients = '[]', subject = $2, body = $2
     WHERE workflow_id = $1 AND (recipients <> '[]' OR subject <> $2 OR body <> $2)";

// Effect keys are the workflow id, a slash and the business step; workflow
// ids hold no slash, so the prefix names one deal. A NULL detail stays NULL.
const ERASE_DELIVERIES: &str = "UPDATE deliveries SET detail = $2
     WHERE substr(effect_key, 1, length($1) + 1) = $1 || '/' AND detail <> $2";

const ERASE_DELIVERY_ATTEMPTS: &str = "UPDATE delivery_attempts SET detail = $2
     WHERE substr(effect_key, 1, length($1) + 1) = $1 || '/' AND detail <> $2";

const RECORD_ERASURE: &str = "INSERT INTO erasures (workflow_id, erased_at, reason, tasks,
                                                    notifications, deliveries, delivery_attempts)
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

// Instants are RFC 3339 UTC text of one width, so they compare as text. A
// handoff erased at or after its end holds nothing new and is left out.
const ENDED_BEFORE: &str = "SELECT DISTINCT ended.workflow_id FROM (
         SELECT workflow_id, recorded_at AS ended_at FROM handoff_reviews
         UNION ALL
         SELECT workflow_id, created_at AS ended_at FROM notifications
         WHERE kind = 'handoff_cancelled'
     ) AS ended
     WHERE ended.ended_at < $1
       AND NOT EXISTS (SELECT 1 FROM erasures
                       WHERE erasures.workflow_id = ended.workflow_id
                         AND erasures.erased_at >= ended.ended_at)
     ORDER BY ended.workflow_id";

impl Ledger {
    /// Erases the personal fields of a deal's rows and records the erasure
    /// when it changed something. `None` when the ledger holds no row of the
    /// deal.
    pub async fn erase_deal(
        &self,
        workflow_id: &str,
        reason: ErasureReason,
    ) -> Result<Option<Erasure>, LedgerError> {
        if !self.holds_deal(workflow_id).await? {
            return Ok(None);
        }
        let erased_at = now_text();
        let erasure = on_pool!(self, pool => {
            let mut transaction = pool.begin().await?;
            let mut changed = [0u64; 4];
            let statements = [
                ERASE_TASKS,
                ERASE_NOTIFICATIONS,
                ERASE_DELIVERIES,
                ERASE_DELIVERY_ATTEMPTS,
            ];
            for (count, sql) in changed.iter_mut().zip(statements) {
                let query = sqlx::query(sql).bind(workflow_id).bind(ERASED);
                *count = query.execute(&mut *transaction).await?.rows_affected();
            }
            let [tasks, notifications, deliveries, delivery_attempts] = changed;
            let erasure = Erasure {
                workflow_id: workflow_id.to_owned(),
                reason,
                erased_at,
                tasks,
                notifications,
                deliveries,
                delivery_attempts,
            };
            if erasure.rows() > 0 {
                sqlx::query(RECORD_ERASURE)
                    .bind(&erasure.workflow_id)
                    .bind(&erasure.erased_at)
                    .bind(reason.as_str())
                    .bind(erasure.tasks as i64)
                    .bind(erasure.notifications as i64)
                    .bind(erasure.deliveries as i64)
                    .bind(erasure.delivery_attempts as i64)
                    .execute(&mut *transaction)
                    .await?;
            }
            transaction.commit().await?;
            erasure
        });
        Ok(Some(erasure))
    }

    /// Handoffs that ended before `cutoff` and were not erased since they
    /// ended, by workflow id.
    pub async fn ended_before(&self, cutoff: DateTime<Utc>) -> Result<Vec<String>, LedgerError> {
        let cutoff = cutoff.to_rfc3339_opts(SecondsFormat::Millis, true);
        let ids: Vec<(String,)> = on_pool!(self, pool => {
            sqlx::query_as(ENDED_BEFORE).bind(&cutoff).fetch_all(pool).await?
        });
        Ok(ids.into_iter().map(|(id,)| id).collect())
    }

    /// Erases every handoff that ended before `cutoff`, each in its own
    /// transaction; returns the erasures that changed something.
    pub async fn erase_ended_before(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<Erasure>, LedgerError> {
        let mut erasures = Vec::new();
        for workflow_id in self.ended_before(cutoff).await? {
            if let Some(erasure) = self
                .erase_deal(&workflow_id, ErasureReason::Retention)
                .await?
                .filter(|erasure| erasure.rows() > 0)
            {
                erasures.push(erasure);
            }
        }
        Ok(erasures)
    }

    /// Recorded erasures, optionally of one deal, oldest first.
    pub async fn list_erasures(
        &self,
        workflow_id: Option<&str>,
    ) -> Result<Vec<Erasure>, LedgerError> {
        let sql = for_backend(
            "SELECT workflow_id, erased_at, reason, tasks, notifications, deliveries,
                    delivery_attempts
             FROM erasures WHERE ($1::text IS NULL OR workflow_id = $1) ORDER BY id",
            self.backend(),
        );
        let erasures = on_pool!(self, pool => {
            let mut erasures = Vec::new();
            for row in sqlx::query(&sql).bind(workflow_id).fetch_all(pool).await? {
                let reason: String = row.try_get("reason")?;
                erasures.push(Erasure {
                    workflow_id: row.try_get("workflow_id")?,
                    reason: ErasureReason::from_name(&reason),
                    erased_at: row.try_get("erased_at")?,
                    tasks: row.try_get::<i64, _>("tasks")? as u64,
                    notifications: row.try_get::<i64, _>("notifications")? as u64,
                    deliveries: row.try_get::<i64, _>("deliveries")? as u64,
                    delivery_attempts: row.try_get::<i64, _>("delivery_attempts")? as u64,
                });
            }
            erasures
        });
        Ok(erasures)
    }

    /// Whether the ledger holds any row of the deal: the registry, tasks or
    /// notifications.
    async fn holds_deal(&self, workflow_id: &str) -> Result<bool, LedgerError> {
        let found = on_pool!(self, pool => {
            let query = sqlx::query(
                "SELECT workflow_id FROM deals WHERE workflow_id = $1
                 UNION ALL SELECT workflow_id FROM tasks WHERE workflow_id = $1
                 UNION ALL SELECT workflow_id FROM notifications WHERE workflow_id = $1
                 LIMIT 1",
            )
            .bind(workflow_id);
            query.fetch_optional(pool).await?.is_some()
        });
        Ok(found)
    }
}

#[cfg(test)]
mod tests;
