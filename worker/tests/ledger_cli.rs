//! `handoff ledger erase` as an operator runs it, against a SQLite ledger
//! written through the library; no Temporal server is involved.

// Test support code panics on setup failures by design.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use chrono::{Duration, SecondsFormat, Utc};
use serde_json::Value;
use tempfile::TempDir;

use handoff_activities::ledger::{ERASED, Ledger};
use handoff_workflows::activity::{Notification, Reach, Recipient, TaskSpec, TaskStatus};

const CONTACT_NAME: &str = "Dana Whitfield";
const CONTACT_EMAIL: &str = "dana.whitfield@example.com";

/// A ledger in a temporary directory, and the binary pointed at it.
struct Fixture {
    dir: TempDir,
    url: String,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/handoff.db", dir.path().display());
        Self { dir, url }
    }

    async fn ledger(&self) -> Ledger {
        Ledger::open(&self.url).await.unwrap()
    }

    /// Runs `handoff` with a clean environment in the fixture's directory,
    /// so no `handoff.toml` or `HANDOFF_*` variable of the caller applies.
    fn handoff(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_handoff"))
            .args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HANDOFF_DATABASE_URL", &self.url)
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    /// Moves the instant a deal's notifications were recorded, its end among
    /// them, to `days` ago.
    async fn backdate(&self, workflow_id: &str, days: i64) {
        let at = (Utc::now() - Duration::days(days)).to_rfc3339_opts(SecondsFormat::Millis, true);
        let pool = sqlx::SqlitePool::connect(&self.url).await.unwrap();
        sqlx::query("UPDATE notifications SET created_at = $1 WHERE workflow_id = $2")
            .bind(at)
            .bind(workflow_id)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
}

/// A deal with a task and a notification that name the contact; `kind`
/// `handoff_cancelled` marks it ended.
async fn write_deal(ledger: &Ledger, deal_id: &str, kind: &str) -> String {
    let workflow_id = format!("handoff-manual-{deal_id}");
    ledger
        .record_deal(&workflow_id, "manual", deal_id, None)
        .await
        .unwrap();
    let task = TaskSpec {
        key: "kickoff".into(),
        title: format!("Call {CONTACT_NAME} <{CONTACT_EMAIL}>"),
        owner_role: "onboarding_manager".into(),
        owner: "om-1".into(),
        due_at: Utc::now(),
        depends_on: vec![],
        status: TaskStatus::Open,
        meets: None,
    };
    ledger
        .insert_tasks(&workflow_id, "day0", &[task])
        .await
        .unwrap();
    let notification = Notification {
        key: format!("{workflow_id}/{kind}"),
        workflow_id: workflow_id.clone(),
        kind: kind.into(),
        milestone: None,
        level: None,
        recipients: vec![Recipient {
            role: "handoff_owner".into(),
            handle: "om-1".into(),
            reach: Reach::default(),
        }],
        facts: Default::default(),
    };
    let body = format!("Write to {CONTACT_NAME} at {CONTACT_EMAIL}");
    ledger
        .insert_notification(&notification, "Kickoff", &body)
        .await
        .unwrap();
    workflow_id
}

fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn names_contact(text: &str) -> bool {
    text.contains(CONTACT_NAME) || text.contains(CONTACT_EMAIL)
}

#[tokio::test]
async fn erase_blanks_one_deal_and_a_second_run_says_nothing_is_left() {
    let fixture = Fixture::new();
    let ledger = fixture.ledger().await;
    let erased = write_deal(&ledger, "ACME-1", "reminder").await;
    let other = write_deal(&ledger, "ACME-2", "reminder").await;

    let output = fixture.handoff(
        &["ledger", "erase", "--deal", "manual:ACME-1", "--json"],
        &[],
    );

    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["workflow_id"], erased.as_str());
    assert_eq!(report["reason"], "request");
    assert_eq!(
        (report["tasks"].as_u64(), report["notifications"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(report["rows"], 2);
    assert_eq!(report["previously_erased_at"], Value::Null);
    let tasks = ledger.list_tasks(Some(&erased)).await.unwrap();
    assert_eq!(
        (tasks[0].title.as_str(), tasks[0].owner.as_str()),
        (ERASED, ERASED)
    );
    let listed = fixture.handoff(
        &["notifications", "list", "--deal", "manual:ACME-1", "--json"],
        &[],
    );
    assert!(!names_contact(&stdout(&listed)));
    let untouched = ledger.list_notifications(Some(&other)).await.unwrap();
    assert!(names_contact(&untouched[0].body));

    let again = fixture.handoff(&["ledger", "erase", "--deal", &erased], &[]);
    let line = stdout(&again);
    assert!(
        line.starts_with(&format!("nothing left to erase in {erased} (erased at ")),
        "{line}"
    );
    assert!(line.trim_end().ends_with("by request)"), "{line}");
}

#[tokio::test]
async fn erasing_a_deal_the_ledger_does_not_know_exits_1_naming_it() {
    let fixture = Fixture::new();
    write_deal(&fixture.ledger().await, "ACME-1", "reminder").await;

    let output = fixture.handoff(&["ledger", "erase", "--deal", "manual:NOPE"], &[]);

    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no handoff handoff-manual-NOPE in the ledger"),
        "{stderr}"
    );
}

#[tokio::test]
async fn expired_erases_handoffs_that_ended_before_the_retention_period() {
    let fixture = Fixture::new();
    let ledger = fixture.ledger().await;
    let old = write_deal(&ledger, "OLD", "handoff_cancelled").await;
    let recent = write_deal(&ledger, "RECENT", "handoff_cancelled").await;
    fixture.backdate(&old, 40).await;
    fixture.backdate(&recent, 20).await;
    let retention = [("HANDOFF_LEDGER_RETENTION_DAYS", "30")];

    let unset = fixture.handoff(&["ledger", "erase", "--expired"], &[]);
    let first = fixture.handoff(&["ledger", "erase", "--expired", "--json"], &retention);
    let second = fixture.handoff(&["ledger", "erase", "--expired", "--json"], &retention);

    assert_eq!(unset.status.code(), Some(64), "{unset:?}");
    assert!(String::from_utf8_lossy(&unset.stderr).contains("--ledger-retention-days"));
    let sweep: Value = serde_json::from_str(&stdout(&first)).unwrap();
    assert_eq!(sweep["retention_days"], 30);
    assert_eq!(sweep["erased"], serde_json::json!([old]));
    assert_eq!(
        (sweep["tasks"].as_u64(), sweep["notifications"].as_u64()),
        (Some(1), Some(1))
    );
    let again: Value = serde_json::from_str(&stdout(&second)).unwrap();
    assert_eq!(again["erased"], serde_json::json!([]));
    let kept = ledger.list_notifications(Some(&recent)).await.unwrap();
    assert!(names_contact(&kept[0].body));
}
