//! The ledger: the durable audit trail of every deal, task and notification.
//!
//! Every row carries its effect's idempotency key (workflow id plus business
//! step) as a unique key, and every write is `INSERT ... ON CONFLICT DO
//! NOTHING`, so an activity retried after a crash, or replayed after a
//! continue-as-new, writes nothing twice.
//!
//! The ledger lives in SQLite (`sqlite://PATH`, the default) or PostgreSQL
//! (`postgres://...`); each has its own sqlx migrations under `migrations/`,
//! and the same SQL runs on both. Deliveries to sinks are recorded per effect
//! and channel before the send and marked after it (see [`DeliveryState`]),
//! and every attempt is kept in `delivery_attempts`.
//!
//! Personal data (task titles and owners, notification recipients and text,
//! sink answers) can be erased per deal, by request or once a handoff ended
//! longer ago than the retention period; see [`Ledger::erase_deal`].

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use handoff_workflows::activity::{Notification, TaskChange, TaskSpec};

pub use erasure::{ERASED, Erasure, ErasureReason};
pub use ingress::IngressEvent;
pub use reviews::{OutcomeRow, ReviewRow};

/// Default location of the ledger, relative to the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://.handoff/handoff.db";

/// What can go wrong with the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The URL names no database this build can open.
    #[error("unsupported database url {0:?}: use sqlite://PATH or postgres://...")]
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

/// Where an effect's delivery to one channel stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryState {
    /// Never tried.
    New,
    /// Recorded before a send whose outcome is not known: the send may or
    /// may not have happened.
    Sending,
    /// A retryable failure was recorded.
    Retrying,
    /// Delivered; a retry sends nothing.
    Delivered,
    /// Failed for good, with what the sink said.
    Failed(String),
}

/// One delivery attempt, as `delivery_attempts` keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRow {
    /// Effect idempotency key.
    pub effect_key: String,
    /// `webhook`, `slack` or `email`.
    pub channel: String,
    /// Attempt number of the activity.
    pub attempt: i64,
    /// `delivered`, `retry` or `failed`.
    pub outcome: String,
    /// What the sink said.
    pub detail: Option<String>,
}

/// The database behind the ledger.
#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool the ledger has; the
/// SQL is the same on both.
macro_rules! on_pool {
    ($ledger:expr, $pool:ident => $body:expr) => {
        match &$ledger.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

mod erasure;
mod ingress;
mod reviews;

/// A handle on the ledger database.
#[derive(Debug, Clone)]
pub struct Ledger {
    pool: Pool,
}

impl Ledger {
    /// Opens (creating if needed) the ledger at `url` and migrates it.
    pub async fn open(url: &str) -> Result<Self, LedgerError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(30))
                .connect(url)
                .await?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            return Ok(Self {
                pool: Pool::Postgres(pool),
            });
        }
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
        // WAL with NORMAL sync: a commit survives the process dying at any
        // point, and the ledger stops paying a disk flush per write; only an
        // operating-system crash can lose the latest commits. Deployments that
        // need more run the ledger on PostgreSQL.
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self {
            pool: Pool::Sqlite(pool),
        })
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Records a deal in the registry; true when it was not known before.
    pub async fn record_deal(
        &self,
        workflow_id: &str,
        source: &str,
        deal_id: &str,
        run_id: Option<&str>,
    ) -> Result<bool, LedgerError> {
        let inserted = on_pool!(self, pool => {
            let query = sqlx::query(
                "INSERT INTO deals (workflow_id, source, deal_id, first_seen_at, first_run_id)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (workflow_id) DO NOTHING",
            )
            .bind(workflow_id)
            .bind(source)
            .bind(deal_id)
            .bind(now_text())
            .bind(run_id);
            query.execute(pool).await?.rows_affected()
        });
        Ok(inserted == 1)
    }

    /// Whether the registry has seen this deal.
    pub async fn deal_known(&self, workflow_id: &str) -> Result<bool, LedgerError> {
        let found = on_pool!(self, pool => {
            let query = sqlx::query("SELECT 1 FROM deals WHERE workflow_id = $1").bind(workflow_id);
            query.fetch_optional(pool).await?.is_some()
        });
        Ok(found)
    }

    /// Writes a batch of tasks; returns how many were new.
    pub async fn insert_tasks(
        &self,
        workflow_id: &str,
        trigger: &str,
        tasks: &[TaskSpec],
    ) -> Result<u32, LedgerError> {
        let now = now_text();
        let created = on_pool!(self, pool => {
            let mut transaction = pool.begin().await?;
            let mut created = 0;
            for task in tasks {
                let depends_on = serde_json::to_string(&task.depends_on)
                    .expect("a list of strings serialises");
                let result = sqlx::query(
                    "INSERT INTO tasks (idempotency_key, workflow_id, task_key, trigger_name, title,
                                        owner_role, owner, due_at, status, depends_on, created_at,
                                        updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
                     ON CONFLICT DO NOTHING",
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
            created
        });
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
        let now = now_text();
        let updated = on_pool!(self, pool => {
            let mut transaction = pool.begin().await?;
            let mut updated = 0;
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
            updated
        });
        Ok(updated)
    }

    /// Moves the deal's open and blocked tasks to `cancelled`; returns how many.
    pub async fn cancel_tasks(&self, workflow_id: &str) -> Result<u32, LedgerError> {
        let cancelled = on_pool!(self, pool => {
            let query = sqlx::query(
                "UPDATE tasks SET status = 'cancelled', updated_at = $2
                 WHERE workflow_id = $1 AND status IN ('open', 'blocked')",
            )
            .bind(workflow_id)
            .bind(now_text());
            query.execute(pool).await?.rows_affected()
        });
        Ok(cancelled as u32)
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
        let inserted = on_pool!(self, pool => {
            let query = sqlx::query(
                "INSERT INTO notifications (idempotency_key, workflow_id, kind, milestone, level,
                                            recipients, subject, body, status, created_at)
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
            .bind(now_text());
            query.execute(pool).await?.rows_affected()
        });
        Ok(inserted == 1)
    }

    /// Sets a recorded notification's status (`delivered`, `failed`).
    pub async fn mark_notification(&self, key: &str, status: &str) -> Result<(), LedgerError> {
        on_pool!(self, pool => {
            sqlx::query("UPDATE notifications SET status = $2 WHERE idempotency_key = $1")
                .bind(key)
                .bind(status)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Where the delivery of `effect_key` to `channel` stands.
    pub async fn delivery_state(
        &self,
        effect_key: &str,
        channel: &str,
    ) -> Result<DeliveryState, LedgerError> {
        let row: Option<(String, Option<String>)> = on_pool!(self, pool => {
            let query = sqlx::query(
                "SELECT status, detail FROM deliveries WHERE effect_key = $1 AND channel = $2",
            )
            .bind(effect_key)
            .bind(channel);
            match query.fetch_optional(pool).await? {
                Some(row) => Some((row.try_get("status")?, row.try_get("detail")?)),
                None => None,
            }
        });
        Ok(match row {
            None => DeliveryState::New,
            Some((status, detail)) => match status.as_str() {
                "delivered" => DeliveryState::Delivered,
                "failed" => DeliveryState::Failed(detail.unwrap_or_default()),
                "retrying" => DeliveryState::Retrying,
                _ => DeliveryState::Sending,
            },
        })
    }

    /// Records that a send to `channel` is about to happen. Committed before
    /// the send, so that a crash leaves a trace of it.
    pub async fn begin_delivery(&self, effect_key: &str, channel: &str) -> Result<(), LedgerError> {
        let now = now_text();
        on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO deliveries (effect_key, channel, status, detail, attempts, updated_at)
                 VALUES ($1, $2, 'sending', NULL, 1, $3)
                 ON CONFLICT (effect_key, channel)
                 DO UPDATE SET status = 'sending', attempts = deliveries.attempts + 1,
                               updated_at = $3",
            )
            .bind(effect_key)
            .bind(channel)
            .bind(&now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Records the outcome of a send: the delivery's state (`delivered`,
    /// `retrying`, `failed`) and one row of `delivery_attempts`.
    pub async fn finish_delivery(
        &self,
        effect_key: &str,
        channel: &str,
        attempt: i64,
        (status, outcome): (&str, &str),
        detail: Option<&str>,
    ) -> Result<(), LedgerError> {
        let now = now_text();
        on_pool!(self, pool => {
            let mut transaction = pool.begin().await?;
            sqlx::query(
                "UPDATE deliveries SET status = $3, detail = $4, updated_at = $5
                 WHERE effect_key = $1 AND channel = $2",
            )
            .bind(effect_key)
            .bind(channel)
            .bind(status)
            .bind(detail)
            .bind(&now)
            .execute(&mut *transaction)
            .await?;
            sqlx::query(
                "INSERT INTO delivery_attempts (effect_key, channel, attempt, outcome, detail, at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(effect_key)
            .bind(channel)
            .bind(attempt)
            .bind(outcome)
            .bind(detail)
            .bind(&now)
            .execute(&mut *transaction)
            .await?;
            transaction.commit().await?;
        });
        Ok(())
    }

    /// Every delivery attempt of an effect, oldest first.
    pub async fn list_attempts(&self, effect_key: &str) -> Result<Vec<AttemptRow>, LedgerError> {
        let rows = on_pool!(self, pool => {
            let query = sqlx::query(
                "SELECT effect_key, channel, attempt, outcome, detail FROM delivery_attempts
                 WHERE effect_key = $1 ORDER BY id",
            )
            .bind(effect_key);
            let mut rows = Vec::new();
            for row in query.fetch_all(pool).await? {
                rows.push(AttemptRow {
                    effect_key: row.try_get("effect_key")?,
                    channel: row.try_get("channel")?,
                    attempt: row.try_get("attempt")?,
                    outcome: row.try_get("outcome")?,
                    detail: row.try_get("detail")?,
                });
            }
            rows
        });
        Ok(rows)
    }

    /// Tasks, optionally of one deal, by deal then due instant.
    pub async fn list_tasks(&self, workflow_id: Option<&str>) -> Result<Vec<TaskRow>, LedgerError> {
        let sql = for_backend(
            "SELECT task_key, workflow_id, trigger_name, title, owner, owner_role, due_at, status,
                    depends_on, idempotency_key
             FROM tasks WHERE ($1::text IS NULL OR workflow_id = $1)
             ORDER BY workflow_id, due_at, task_key",
            self.backend(),
        );
        let rows = on_pool!(self, pool => {
            let mut rows = Vec::new();
            for row in sqlx::query(&sql).bind(workflow_id).fetch_all(pool).await? {
                let depends_on: String = row.try_get("depends_on")?;
                rows.push(TaskRow {
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
                });
            }
            rows
        });
        Ok(rows)
    }

    /// Notifications, optionally of one deal, oldest first.
    pub async fn list_notifications(
        &self,
        workflow_id: Option<&str>,
    ) -> Result<Vec<NotificationRow>, LedgerError> {
        let sql = for_backend(
            "SELECT idempotency_key, workflow_id, kind, subject, recipients, milestone, level,
                    status, body, created_at
             FROM notifications WHERE ($1::text IS NULL OR workflow_id = $1)
             ORDER BY created_at, idempotency_key",
            self.backend(),
        );
        let rows = on_pool!(self, pool => {
            let mut rows = Vec::new();
            for row in sqlx::query(&sql).bind(workflow_id).fetch_all(pool).await? {
                let recipients: String = row.try_get("recipients")?;
                rows.push(NotificationRow {
                    key: row.try_get("idempotency_key")?,
                    deal: row.try_get("workflow_id")?,
                    kind: row.try_get("kind")?,
                    title: row.try_get("subject")?,
                    owner: handles_of(&recipients),
                    milestone: row.try_get("milestone")?,
                    level: row.try_get("level")?,
                    status: row.try_get("status")?,
                    body: row.try_get("body")?,
                    created_at: row.try_get("created_at")?,
                });
            }
            rows
        });
        Ok(rows)
    }
}

/// PostgreSQL cannot infer the type of a parameter that is only compared
/// with NULL, so queries spell `$1::text`; SQLite has no such cast.
fn for_backend(sql: &str, backend: &str) -> String {
    if backend == "postgres" {
        sql.to_owned()
    } else {
        sql.replace("::text", "")
    }
}

/// Recipient handles of a notification row, comma-separated.
fn handles_of(recipients: &str) -> String {
    let values: Vec<serde_json::Value> = serde_json::from_str(recipients).unwrap_or_default();
    values
        .iter()
        .filter_map(|r| r.get("handle").and_then(|h| h.as_str()))
        .filter(|h| !h.is_empty())
        .collect::<Vec<_>>()
        .join(",")
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

    /// A fresh ledger on each backend: SQLite in a temporary directory, and
    /// PostgreSQL in a database of its own on the server
    /// `HANDOFF_TEST_POSTGRES_URL` names (`make test` starts one). Without
    /// that variable the PostgreSQL cases fail, loudly, unless
    /// `HANDOFF_TEST_POSTGRES=skip` says to leave them out.
    pub(super) async fn ledgers() -> Vec<(Ledger, Option<tempfile::TempDir>)> {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/nested/handoff.db", dir.path().display());
        let mut ledgers = vec![(Ledger::open(&url).await.unwrap(), Some(dir))];
        match std::env::var("HANDOFF_TEST_POSTGRES_URL") {
            Ok(admin) => ledgers.push((postgres_ledger(&admin).await, None)),
            Err(_) if std::env::var("HANDOFF_TEST_POSTGRES").as_deref() == Ok("skip") => {}
            Err(_) => panic!(
                "HANDOFF_TEST_POSTGRES_URL is not set: run `make test`, which starts PostgreSQL, \
                 or set HANDOFF_TEST_POSTGRES=skip to run the SQLite cases only"
            ),
        }
        ledgers
    }

    async fn postgres_ledger(admin: &str) -> Ledger {
        let name = format!("handoff_test_{}", uuid::Uuid::new_v4().simple());
        let pool = PgPool::connect(admin).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
        let ledger = Ledger::open(&format!("{base}/{name}")).await.unwrap();
        assert_eq!(ledger.backend(), "postgres");
        ledger
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
        for (ledger, _dir) in ledgers().await {
            let batch = [task("kickoff"), task("data_migration")];
            assert_eq!(ledger.insert_tasks("w1", "day0", &batch).await.unwrap(), 2);
            assert_eq!(ledger.insert_tasks("w1", "day0", &batch).await.unwrap(), 0);
            assert_eq!(ledger.list_tasks(Some("w1")).await.unwrap().len(), 2);
            assert_eq!(ledger.list_tasks(Some("w2")).await.unwrap().len(), 0);
            assert_eq!(ledger.list_tasks(None).await.unwrap().len(), 2);
        }
    }

    #[tokio::test]
    async fn cancel_closes_only_open_tasks_of_the_deal() {
        for (ledger, _dir) in ledgers().await {
            ledger
                .insert_tasks("w1", "day0", &[task("kickoff")])
                .await
                .unwrap();
            ledger
                .insert_tasks("w2", "day0", &[task("kickoff")])
                .await
                .unwrap();
            let done = [TaskChange::status("kickoff", TaskStatus::Done)];
            assert_eq!(ledger.update_tasks("w2", &done).await.unwrap(), 1);
            assert_eq!(ledger.cancel_tasks("w1").await.unwrap(), 1);
            assert_eq!(ledger.cancel_tasks("w1").await.unwrap(), 0);
            assert_eq!(ledger.cancel_tasks("w2").await.unwrap(), 0);
            assert_eq!(
                ledger.list_tasks(Some("w2")).await.unwrap()[0].status,
                "done"
            );
        }
    }

    #[tokio::test]
    async fn the_registry_remembers_each_deal_once() {
        for (ledger, _dir) in ledgers().await {
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
    }

    #[tokio::test]
    async fn notifications_are_recorded_once_and_read_back() {
        for (ledger, _dir) in ledgers().await {
            let notification = Notification {
                key: "w1/remind/kickoff/50pct".into(),
                workflow_id: "w1".into(),
                kind: "escalation".into(),
                milestone: Some("kickoff".into()),
                level: Some(2),
                recipients: vec![],
                facts: Default::default(),
            };
            assert!(
                ledger
                    .insert_notification(&notification, "s", "b")
                    .await
                    .unwrap()
            );
            assert!(
                !ledger
                    .insert_notification(&notification, "s", "b")
                    .await
                    .unwrap()
            );
            ledger
                .mark_notification(&notification.key, "delivered")
                .await
                .unwrap();
            let rows = ledger.list_notifications(Some("w1")).await.unwrap();
            assert_eq!(
                (rows[0].level, rows[0].status.as_str()),
                (Some(2), "delivered")
            );
        }
    }

    #[tokio::test]
    async fn deliveries_are_recorded_before_and_after_each_send() {
        for (ledger, _dir) in ledgers().await {
            let key = "w1/task/kickoff";
            assert_eq!(
                ledger.delivery_state(key, "webhook").await.unwrap(),
                DeliveryState::New
            );
            ledger.begin_delivery(key, "webhook").await.unwrap();
            assert_eq!(
                ledger.delivery_state(key, "webhook").await.unwrap(),
                DeliveryState::Sending
            );
            ledger
                .finish_delivery(key, "webhook", 1, ("retrying", "retry"), Some("HTTP 503"))
                .await
                .unwrap();
            ledger.begin_delivery(key, "webhook").await.unwrap();
            ledger
                .finish_delivery(
                    key,
                    "webhook",
                    2,
                    ("failed", "failed"),
                    Some("HTTP 400: no"),
                )
                .await
                .unwrap();
            assert_eq!(
                ledger.delivery_state(key, "webhook").await.unwrap(),
                DeliveryState::Failed("HTTP 400: no".into())
            );
            let attempts = ledger.list_attempts(key).await.unwrap();
            let outcomes: Vec<(i64, &str)> = attempts
                .iter()
                .map(|a| (a.attempt, a.outcome.as_str()))
                .collect();
            assert_eq!(outcomes, [(1, "retry"), (2, "failed")]);
        }
    }

    #[tokio::test]
    async fn unsupported_urls_say_what_to_use() {
        let err = Ledger::open("mysql://x").await.unwrap_err();
        assert!(err.to_string().contains("postgres://"), "{err}");
    }
}
