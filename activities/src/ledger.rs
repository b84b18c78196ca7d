//! The ledger: the durable audit trail of every deal, task and notification.
//!
//! Every row carries its effect's idempotency key (workflow id plus business
//! step) as a unique key, and every write is `INSERT ... ON CONFLICT DO
//! NOTHING`, so an activity retried after a crash, or replayed after a
//! continue-as-new, writes nothing twice.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};

use handoff_workflows::activity::{Notification, TaskChange, TaskSpec};

mod reviews;
pub use reviews::{OutcomeRow, ReviewRow};

/// Default location of the ledger, relative to the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://.handoff/handoff.db";

/// What can go wrong with the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The URL names no database this build can open.
    #[error("unsupported database url {0:?}: use sqlite://PATH")]
    UnsupportedUrl(String),
    /// The database could not be reached or answered with an error.
    #[error("ledger database error")]
    Database(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("ledger migration failed")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The ledger's directory could not be created.
    #[error("cannot create the ledger directory {path}")]
    Directory {
        /// The directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// One task row as `handoff tasks list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRow {
    /// Task key, unique within the deal.
    pub key: String,
    /// Workflow id of the deal.
    pub deal: String,
    /// Trigger that created it.
    pub kind: String,
    /// What to do.
    pub title: String,
    /// Owner handle.
    pub owner: String,
    /// Owner role.
    pub owner_role: String,
    /// Business instant it is due.
    pub due_at: String,
    /// `open`, `blocked`, `done` or `cancelled`.
    pub status: String,
    /// Keys it depends on.
    pub depends_on: Vec<String>,
    /// Effect idempotency key.
    pub idempotency_key: String,
}

/// One notification row as `handoff notifications list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRow {
    /// Effect idempotency key.
    pub key: String,
    /// Workflow id of the deal.
    pub deal: String,
    /// `reminder`, `escalation`, `milestone_met`, `handoff_cancelled`.
    pub kind: String,
    /// Rendered subject line.
    pub title: String,
    /// Recipient handles, comma-separated.
    pub owner: String,
    /// Milestone it is about.
    pub milestone: Option<String>,
    /// Escalation level.
    pub level: Option<i64>,
    /// `recorded`, `delivered` or `failed`.
    pub status: String,
    /// Rendered body.
    pub body: String,
    /// When it was recorded (wall time).
    pub created_at: String,
}

/// A handle on the ledger database.
#[derive(Debug, Clone)]
pub struct Ledger {
    pool: SqlitePool,
}

impl Ledger {
    /// Opens (creating if needed) the ledger at `url` and migrates it.
    pub async fn open(url: &str) -> Result<Self, LedgerError> {
        let path = sqlite_path(url).ok_or_else(|| LedgerError::UnsupportedUrl(url.to_owned()))?;
        if let Some(parent) = Path::new(&path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|source| LedgerError::Directory {
                path: parent.display().to_string(),
                source,
            })?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Records a deal in the registry; true when it was not known before.
    pub async fn record_deal(
        &self,
        workflow_id: &str,
        source: &str,
        deal_id: &str,
        run_id: Option<&str>,
    ) -> Result<bool, LedgerError> {
        let result = sqlx::query(
            "INSERT INTO deals (workflow_id, source, deal_id, first_seen_at, first_run_id)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (workflow_id) DO NOTHING",
        )
        .bind(workflow_id)
        .bind(source)
        .bind(deal_id)
        .bind(now_text())
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Whether the registry has seen this deal.
    pub async fn deal_known(&self, workflow_id: &str) -> Result<bool, LedgerError> {
        let row = sqlx::query("SELECT 1 FROM deals WHERE workflow_id = $1")
            .bind(workflow_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Writes a batch of tasks; returns how many were new.
    pub async fn insert_tasks(
        &self,
        workflow_id: &str,
        trigger: &str,
        tasks: &[TaskSpec],
    ) -> Result<u32, LedgerError> {
        let mut transaction = self.pool.begin().await?;
        let mut created = 0;
        let now = now_text();
        for task in tasks {
            let depends_on =
                serde_json::to_string(&task.depends_on).expect("a list of strings serialises");
            let result = sqlx::query(
                "INSERT INTO tasks (idempotency_key, workflow_id, task_key, trigger_name, title, owner_role,
                                    owner, due_at, status, depends_on, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) ON CONFLICT DO NOTHING",
            )
            .bind(task_idempotency_key(workflow_id, &task.key))
            .bind(workflow_id)
            .bind(&task.key)
            .bind(trigger)
            .bind(&task.title)
            .bind(&task.owner_role)
            .bind(&task.owner)
            .bind(instant_text(task.due_at))
            .bind(task.status.as_str())
            .bind(depends_on)
            .bind(&now)
            .execute(&mut *transaction)
            .await?;
            created += result.rows_affected() as u32;
        }
        transaction.commit().await?;
        Ok(created)
    }

    /// Applies status and owner changes to a deal's tasks; returns the rows changed.
    ///
    /// Each change sets values, so applying a batch twice leaves the same rows.
    pub async fn update_tasks(
        &self,
        workflow_id: &str,
        changes: &[TaskChange],
    ) -> Result<u32, LedgerError> {
        let mut transaction = self.pool.begin().await?;
        let mut updated = 0;
        let now = now_text();
        for change in changes {
            let result = sqlx::query(
                "UPDATE tasks SET status = COALESCE($3, status), owner = COALESCE($4, owner),
                                  updated_at = $5
                 WHERE workflow_id = $1 AND task_key = $2",
            )
            .bind(workflow_id)
            .bind(&change.key)
            .bind(change.status.map(|s| s.as_str()))
            .bind(change.owner.as_deref())
            .bind(&now)
            .execute(&mut *transaction)
            .await?;
            updated += result.rows_affected() as u32;
        }
        transaction.commit().await?;
        Ok(updated)
    }

    /// Moves the deal's open and blocked tasks to `cancelled`; returns how many.
    pub async fn cancel_tasks(&self, workflow_id: &str) -> Result<u32, LedgerError> {
        let result = sqlx::query(
            "UPDATE tasks SET status = 'cancelled', updated_at = $2
             WHERE workflow_id = $1 AND status IN ('open', 'blocked')",
        )
        .bind(workflow_id)
        .bind(now_text())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() as u32)
    }

    /// Records a notification; false when its key was recorded before.
    pub async fn insert_notification(
        &self,
        notification: &Notification,
        subject: &str,
        body: &str,
    ) -> Result<bool, LedgerError> {
        let recipients =
            serde_json::to_string(&notification.recipients).expect("recipients serialise");
        let result = sqlx::query(
            "INSERT INTO notifications (idempotency_key, workflow_id, kind, milestone, level, recipients,
                                        subject, body, status, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'recorded', $9) ON CONFLICT DO NOTHING",
        )
        .bind(&notification.key)
        .bind(&notification.workflow_id)
        .bind(&notification.kind)
        .bind(notification.milestone.as_deref())
        .bind(notification.level.map(i64::from))
        .bind(recipients)
        .bind(subject)
        .bind(body)
        .bind(now_text())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Marks a recorded notification delivered.
    pub async fn mark_notification(&self, key: &str, status: &str) -> Result<(), LedgerError> {
        sqlx::query("UPDATE notifications SET status = $2 WHERE idempotency_key = $1")
            .bind(key)
            .bind(status)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Tasks, optionally of one deal, by deal then due instant.
    pub async fn list_tasks(&self, workflow_id: Option<&str>) -> Result<Vec<TaskRow>, LedgerError> {
        let rows = sqlx::query(
            "SELECT task_key, workflow_id, trigger_name, title, owner, owner_role, due_at, status,
                    depends_on, idempotency_key
             FROM tasks WHERE ($1 IS NULL OR workflow_id = $1) ORDER BY workflow_id, due_at, task_key",
        )
        .bind(workflow_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let depends_on: String = row.try_get("depends_on")?;
                Ok(TaskRow {
                    key: row.try_get("task_key")?,
                    deal: row.try_get("workflow_id")?,
                    kind: row.try_get("trigger_name")?,
                    title: row.try_get("title")?,
                    owner: row.try_get("owner")?,
                    owner_role: row.try_get("owner_role")?,
                    due_at: row.try_get("due_at")?,
                    status: row.try_get("status")?,
                    depends_on: serde_json::from_str(&depends_on).unwrap_or_default(),
                    idempotency_key: row.try_get("idempotency_key")?,
                })
            })
            .collect()
    }

    /// Notifications, optionally of one deal, oldest first.
    pub async fn list_notifications(
        &self,
        workflow_id: Option<&str>,
    ) -> Result<Vec<NotificationRow>, LedgerError> {
        let rows = sqlx::query(
            "SELECT idempotency_key, workflow_id, kind, subject, recipients, milestone, level, status, body,
                    created_at
             FROM notifications WHERE ($1 IS NULL OR workflow_id = $1) ORDER BY created_at, idempotency_key",
        )
        .bind(workflow_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let recipients: String = row.try_get("recipients")?;
                let handles: Vec<serde_json::Value> =
                    serde_json::from_str(&recipients).unwrap_or_default();
                let owner = handles
                    .iter()
                    .filter_map(|r| r.get("handle").and_then(|h| h.as_str()))
                    .collect::<Vec<_>>()
                    .join(",");
                Ok(NotificationRow {
                    key: row.try_get("idempotency_key")?,
                    deal: row.try_get("workflow_id")?,
                    kind: row.try_get("kind")?,
                    title: row.try_get("subject")?,
                    owner,
                    milestone: row.try_get("milestone")?,
                    level: row.try_get("level")?,
                    status: row.try_get("status")?,
                    body: row.try_get("body")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }
}

/// Idempotency key of a task.
pub fn task_idempotency_key(workflow_id: &str, task_key: &str) -> String {
    format!("{workflow_id}/task/{task_key}")
}

/// The file path of a `sqlite:` URL (or of a bare path).
fn sqlite_path(url: &str) -> Option<String> {
    if let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let path = rest.split('?').next().unwrap_or(rest);
        return (!path.is_empty()).then(|| path.to_owned());
    }
    // TODO(#4): PostgreSQL when the URL is postgres://.
    (!url.contains("://")).then(|| url.to_owned())
}

fn instant_text(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use handoff_workflows::activity::TaskStatus;

    use super::*;

    async fn ledger() -> (Ledger, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/nested/handoff.db", dir.path().display());
        (Ledger::open(&url).await.unwrap(), dir)
    }

    fn task(key: &str) -> TaskSpec {
        TaskSpec {
            key: key.into(),
            title: "Hold the kickoff".into(),
            owner_role: "onboarding_manager".into(),
            owner: "om-1".into(),
            due_at: Utc::now(),
            depends_on: vec![],
            status: TaskStatus::Open,
            meets: None,
        }
    }

    #[tokio::test]
    async fn a_repeated_batch_creates_nothing_twice() {
        let (ledger, _dir) = ledger().await;
        let batch = [task("kickoff"), task("data_migration")];
        assert_eq!(ledger.insert_tasks("w1", "day0", &batch).await.unwrap(), 2);
        assert_eq!(ledger.insert_tasks("w1", "day0", &batch).await.unwrap(), 0);
        assert_eq!(ledger.list_tasks(Some("w1")).await.unwrap().len(), 2);
        assert_eq!(ledger.list_tasks(Some("w2")).await.unwrap().len(), 0);
    }

    #[tokio::test]
    async fn cancel_closes_only_open_tasks_of_the_deal() {
        let (ledger, _dir) = ledger().await;
        ledger
            .insert_tasks("w1", "day0", &[task("kickoff")])
            .await
            .unwrap();
        ledger
            .insert_tasks("w2", "day0", &[task("kickoff")])
            .await
            .unwrap();
        assert_eq!(ledger.cancel_tasks("w1").await.unwrap(), 1);
        assert_eq!(ledger.cancel_tasks("w1").await.unwrap(), 0);
        assert_eq!(
            ledger.list_tasks(Some("w2")).await.unwrap()[0].status,
            "open"
        );
    }

    #[tokio::test]
    async fn the_registry_remembers_each_deal_once() {
        let (ledger, _dir) = ledger().await;
        assert!(!ledger.deal_known("w1").await.unwrap());
        assert!(
            ledger
                .record_deal("w1", "manual", "D-1", Some("run"))
                .await
                .unwrap()
        );
        assert!(
            !ledger
                .record_deal("w1", "manual", "D-1", None)
                .await
                .unwrap()
        );
        assert!(ledger.deal_known("w1").await.unwrap());
    }

    #[tokio::test]
    async fn unsupported_urls_say_what_to_use() {
        let err = Ledger::open("mysql://x").await.unwrap_err();
        assert!(err.to_string().contains("sqlite://"), "{err}");
    }
}
