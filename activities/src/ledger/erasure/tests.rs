use chrono::{Duration, TimeZone as _};
use handoff_workflows::activity::{Notification, Reach, Recipient, TaskSpec, TaskStatus};
use handoff_workflows::engine::MilestoneStatus;
use handoff_workflows::status::{Review, ReviewItem};

use super::*;
use crate::ledger::tests::ledgers;
use crate::ledger::{DeliveryState, NotificationRow, TaskRow, task_idempotency_key};

const CONTACT_NAME: &str = "Dana Whitfield";
const CONTACT_EMAIL: &str = "dana.whitfield@example.com";
const CONTACT_HANDLE: &str = "dana.whitfield";

/// How far a handoff written by [`write_handoff`] got.
#[derive(Clone, Copy)]
enum Ending {
    Running,
    Completed,
    Cancelled,
}

/// Writes a deal as the activities leave it: the registry, a task delivered
/// to the webhook, and a notification an SMTP relay refused with an answer
/// that echoes the address; a completed handoff also has its review.
async fn write_handoff(ledger: &Ledger, workflow_id: &str, ending: Ending) {
    ledger
        .record_deal(workflow_id, "manual", workflow_id, None)
        .await
        .unwrap();
    ledger
        .insert_tasks(workflow_id, "day0", &[task()])
        .await
        .unwrap();
    let kind = match ending {
        Ending::Running => "reminder",
        Ending::Completed => "post_close_review",
        Ending::Cancelled => "handoff_cancelled",
    };
    let notification = notification(workflow_id, kind);
    let subject = format!("Kickoff with {CONTACT_NAME}");
    let body = format!("Write to {CONTACT_NAME} at {CONTACT_EMAIL}");
    ledger
        .insert_notification(&notification, &subject, &body)
        .await
        .unwrap();

    let task_key = task_idempotency_key(workflow_id, "kickoff");
    deliver(ledger, &task_key, "webhook", None).await;
    let refusal = format!("550 no mailbox {CONTACT_EMAIL}");
    deliver(ledger, &notification.key, "email", Some(&refusal)).await;
    if let Ending::Completed = ending {
        ledger.record_review(&review(workflow_id)).await.unwrap();
    }
}

fn task() -> TaskSpec {
    TaskSpec {
        key: "kickoff".into(),
        title: format!("Call {CONTACT_NAME} <{CONTACT_EMAIL}>"),
        owner_role: "onboarding_manager".into(),
        owner: CONTACT_HANDLE.into(),
        due_at: Utc.with_ymd_and_hms(2026, 3, 5, 4, 59, 59).unwrap(),
        depends_on: vec!["bundle".into()],
        status: TaskStatus::Open,
        meets: None,
    }
}

fn notification(workflow_id: &str, kind: &str) -> Notification {
    Notification {
        key: format!("{workflow_id}/{kind}"),
        workflow_id: workflow_id.into(),
        kind: kind.into(),
        milestone: Some("kickoff".into()),
        level: Some(1),
        recipients: vec![Recipient {
            role: "handoff_owner".into(),
            handle: CONTACT_HANDLE.into(),
            reach: Reach::default(),
        }],
        facts: Default::default(),
    }
}

/// A review whose business end lies long before the wall instant it is
/// recorded, as a backfill or a time-scaled handoff gives.
fn review(workflow_id: &str) -> Review {
    let due_at = Utc.with_ymd_and_hms(2000, 1, 5, 4, 59, 59).unwrap();
    Review {
        workflow_id: workflow_id.to_owned(),
        deal_id: workflow_id.to_owned(),
        source: "manual".to_owned(),
        outcome: "completed".to_owned(),
        cancel_reason: None,
        segment: Some("smb".to_owned()),
        day0: None,
        ended_at: Some(Utc.with_ymd_and_hms(2000, 3, 31, 12, 0, 0).unwrap()),
        gates: vec![],
        milestones: vec![ReviewItem {
            name: "kickoff".to_owned(),
            status: MilestoneStatus::MetLate,
            due_at,
            actual_at: Some(due_at + Duration::days(1)),
            escalation_level: 1,
        }],
        breaches: 1,
        escalations: 1,
        time_to_first_value_days: None,
        expected_ttfv_days: Some(45),
        ttfv_within_expectation: None,
    }
}

async fn deliver(ledger: &Ledger, key: &str, channel: &str, refusal: Option<&str>) {
    let state = match refusal {
        Some(_) => ("failed", "failed"),
        None => ("delivered", "delivered"),
    };
    ledger.begin_delivery(key, channel).await.unwrap();
    ledger
        .finish_delivery(key, channel, 1, state, refusal)
        .await
        .unwrap();
}

/// Moves the wall instants the ledger recorded a handoff's rows at, its end
/// among them, to `at`.
async fn backdate(ledger: &Ledger, workflow_id: &str, at: DateTime<Utc>) {
    let at = at.to_rfc3339_opts(SecondsFormat::Millis, true);
    let statements = [
        "UPDATE handoff_reviews SET recorded_at = $2 WHERE workflow_id = $1",
        "UPDATE notifications SET created_at = $2 WHERE workflow_id = $1",
    ];
    for sql in statements {
        on_pool!(ledger, pool => {
            sqlx::query(sql).bind(workflow_id).bind(&at).execute(pool).await.unwrap();
        });
    }
}

/// Every text value of every row of the deal, in every table of the ledger.
async fn texts_of(ledger: &Ledger, workflow_id: &str) -> Vec<String> {
    let by_deal = "workflow_id = $1";
    let by_effect = "substr(effect_key, 1, length($1) + 1) = $1 || '/'";
    let tables = [
        ("deals", by_deal),
        ("tasks", by_deal),
        ("notifications", by_deal),
        ("deliveries", by_effect),
        ("delivery_attempts", by_effect),
        ("handoff_reviews", by_deal),
        ("milestone_outcomes", by_deal),
        ("erasures", by_deal),
    ];
    let mut texts = Vec::new();
    for (table, filter) in tables {
        let sql = format!("SELECT * FROM {table} WHERE {filter}");
        on_pool!(ledger, pool => {
            for row in sqlx::query(&sql).bind(workflow_id).fetch_all(pool).await.unwrap() {
                // Columns that are not text fail to decode as text and are
                // skipped: only text can hold a name.
                for index in 0..row.len() {
                    if let Ok(Some(text)) = row.try_get::<Option<String>, _>(index) {
                        texts.push(text);
                    }
                }
            }
        });
    }
    texts
}

fn sorted(mut texts: Vec<String>) -> Vec<String> {
    texts.sort();
    texts
}

fn holds_contact(texts: &[String]) -> bool {
    texts.iter().any(|text| {
        [CONTACT_NAME, CONTACT_EMAIL, CONTACT_HANDLE]
            .iter()
            .any(|personal| text.contains(personal))
    })
}

#[tokio::test]
async fn erasing_a_deal_replaces_personal_fields_and_keeps_the_rest() {
    for (ledger, _dir) in ledgers().await {
        let workflow_id = "handoff-manual-ERASE-1";
        write_handoff(&ledger, workflow_id, Ending::Completed).await;
        let tasks = ledger.list_tasks(Some(workflow_id)).await.unwrap();
        let notifications = ledger.list_notifications(Some(workflow_id)).await.unwrap();
        let reviews = ledger.list_reviews(None).await.unwrap();
        let notification_key = format!("{workflow_id}/post_close_review");
        assert!(holds_contact(&texts_of(&ledger, workflow_id).await));

        let erasure = ledger
            .erase_deal(workflow_id, ErasureReason::Request)
            .await
            .unwrap()
            .unwrap();

        let counts = (
            erasure.tasks,
            erasure.notifications,
            erasure.deliveries,
            erasure.delivery_attempts,
        );
        assert_eq!(counts, (1, 1, 1, 1));
        let texts = texts_of(&ledger, workflow_id).await;
        assert!(texts.iter().any(|text| text == workflow_id), "{texts:?}");
        assert!(!holds_contact(&texts), "{texts:?}");

        let erased_tasks: Vec<TaskRow> = tasks
            .into_iter()
            .map(|task| TaskRow {
                title: ERASED.into(),
                owner: ERASED.into(),
                ..task
            })
            .collect();
        assert_eq!(
            ledger.list_tasks(Some(workflow_id)).await.unwrap(),
            erased_tasks
        );
        let erased_notifications: Vec<NotificationRow> = notifications
            .into_iter()
            .map(|notification| NotificationRow {
                title: ERASED.into(),
                owner: String::new(),
                body: ERASED.into(),
                ..notification
            })
            .collect();
        assert_eq!(
            ledger.list_notifications(Some(workflow_id)).await.unwrap(),
            erased_notifications
        );
        assert_eq!(ledger.list_reviews(None).await.unwrap(), reviews);
        assert_eq!(
            ledger
                .delivery_state(&notification_key, "email")
                .await
                .unwrap(),
            DeliveryState::Failed(ERASED.into())
        );
        let task_key = task_idempotency_key(workflow_id, "kickoff");
        assert_eq!(
            ledger.delivery_state(&task_key, "webhook").await.unwrap(),
            DeliveryState::Delivered
        );
        let attempts = ledger.list_attempts(&notification_key).await.unwrap();
        let kept: Vec<(i64, &str, Option<&str>)> = attempts
            .iter()
            .map(|a| (a.attempt, a.outcome.as_str(), a.detail.as_deref()))
            .collect();
        assert_eq!(kept, [(1, "failed", Some(ERASED))]);
        assert_eq!(
            ledger.list_erasures(Some(workflow_id)).await.unwrap(),
            [erasure]
        );
    }
}

#[tokio::test]
async fn a_second_erasure_changes_and_records_nothing() {
    for (ledger, _dir) in ledgers().await {
        let workflow_id = "handoff-manual-ERASE-2";
        write_handoff(&ledger, workflow_id, Ending::Running).await;
        let first = ledger
            .erase_deal(workflow_id, ErasureReason::Request)
            .await
            .unwrap()
            .unwrap();

        let second = ledger
            .erase_deal(workflow_id, ErasureReason::Request)
            .await
            .unwrap()
            .unwrap();

        assert!(first.rows() > 0);
        assert_eq!(second.rows(), 0);
        assert_eq!(
            ledger.list_erasures(Some(workflow_id)).await.unwrap(),
            [first]
        );
    }
}

#[tokio::test]
async fn erasing_a_deal_leaves_other_deals_untouched() {
    for (ledger, _dir) in ledgers().await {
        // One id is a prefix of the other, as delivery keys go by prefix.
        let erased = "handoff-manual-ACME";
        let other = "handoff-manual-ACME-2";
        write_handoff(&ledger, erased, Ending::Completed).await;
        write_handoff(&ledger, other, Ending::Completed).await;
        let tasks = ledger.list_tasks(Some(other)).await.unwrap();
        let notifications = ledger.list_notifications(Some(other)).await.unwrap();
        let texts = sorted(texts_of(&ledger, other).await);

        ledger
            .erase_deal(erased, ErasureReason::Request)
            .await
            .unwrap();

        assert!(!holds_contact(&texts_of(&ledger, erased).await));
        assert_eq!(sorted(texts_of(&ledger, other).await), texts);
        assert_eq!(ledger.list_tasks(Some(other)).await.unwrap(), tasks);
        assert_eq!(
            ledger.list_notifications(Some(other)).await.unwrap(),
            notifications
        );
        assert!(ledger.list_erasures(Some(other)).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_deal_the_ledger_does_not_hold_is_not_erased() {
    for (ledger, _dir) in ledgers().await {
        write_handoff(&ledger, "handoff-manual-KNOWN", Ending::Running).await;

        let erasure = ledger
            .erase_deal("handoff-manual-UNKNOWN", ErasureReason::Request)
            .await
            .unwrap();

        assert_eq!(erasure, None);
        assert!(ledger.list_erasures(None).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn retention_erases_only_handoffs_that_ended_before_the_cutoff() {
    for (ledger, _dir) in ledgers().await {
        let now = Utc::now();
        let long_ago = now - Duration::days(40);
        let recently = now - Duration::days(5);
        let handoffs = [
            ("handoff-manual-OLD-DONE", Ending::Completed, long_ago),
            ("handoff-manual-OLD-LOST", Ending::Cancelled, long_ago),
            // Its review's business end is in 2000; the ledger recorded the
            // end five days ago, and that is what retention counts from.
            ("handoff-manual-NEW-DONE", Ending::Completed, recently),
            // Created long ago, still running: not ended, so kept.
            ("handoff-manual-RUNNING", Ending::Running, long_ago),
        ];
        for (workflow_id, ending, at) in handoffs {
            write_handoff(&ledger, workflow_id, ending).await;
            backdate(&ledger, workflow_id, at).await;
        }

        let erasures = ledger
            .erase_ended_before(now - Duration::days(30))
            .await
            .unwrap();

        let erased: Vec<(&str, ErasureReason)> = erasures
            .iter()
            .map(|e| (e.workflow_id.as_str(), e.reason))
            .collect();
        assert_eq!(
            erased,
            [
                ("handoff-manual-OLD-DONE", ErasureReason::Retention),
                ("handoff-manual-OLD-LOST", ErasureReason::Retention)
            ]
        );
        for (workflow_id, _, _) in handoffs {
            let kept = !erased.iter().any(|(id, _)| *id == workflow_id);
            let texts = texts_of(&ledger, workflow_id).await;
            assert_eq!(holds_contact(&texts), kept, "{workflow_id}: {texts:?}");
        }
        let again = ledger
            .erase_ended_before(now - Duration::days(30))
            .await
            .unwrap();
        assert!(again.is_empty(), "{again:?}");
        assert_eq!(ledger.list_erasures(None).await.unwrap(), erasures);
    }
}
