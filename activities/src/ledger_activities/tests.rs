//! The activities against real loopback receivers: an HTTP server (hyper)
//! standing in for the task system and Slack, and an SMTP server speaking
//! the protocol line by line.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use temporalio_sdk::activities::ActivityError;
use temporalio_sdk::testing::{
    ActivityEnvironment, ActivityEnvironmentError, TestActivityInfoOptions,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use handoff_workflows::activity::{
    CancelTasks, CreateTasks, Notification, Reach, Recipient, TaskSpec, TaskStatus,
};

use super::*;
use crate::playbooks::PlaybookSet;
use crate::sinks::{HttpSink, Routes, SmtpConfig, SmtpSink, SmtpTls, message_id_of, signature_of};

const SECRET: &str = "test-secret";

/// What the HTTP receiver answers to the next request.
#[derive(Debug, Clone)]
enum Reply {
    /// This status, committing nothing.
    Status(u16),
    /// 429 with `Retry-After: seconds`.
    TooMany(u64),
    /// Commits the task, then answers only after this long.
    CommitThenStall(Duration),
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    key: String,
    signature_valid: bool,
    body: serde_json::Value,
}

#[derive(Debug, Default)]
struct ReceiverState {
    /// Whether requests must carry a valid signature (Slack's do not).
    verify: bool,
    script: VecDeque<Reply>,
    received: Vec<Received>,
    /// Idempotency-Key → body: what a real task system would hold.
    committed: BTreeMap<String, serde_json::Value>,
}

/// A loopback HTTP receiver that verifies signatures and honours
/// `Idempotency-Key` (409 for a key it has committed).
struct Receiver {
    url: String,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    async fn start(script: Vec<Reply>) -> Self {
        Self::start_with(script, true).await
    }

    async fn start_with(script: Vec<Reply>, verify: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(ReceiverState {
            verify,
            script: script.into(),
            ..Default::default()
        }));
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| answer(request, state.clone()));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            url: format!("http://{addr}/hooks"),
            state,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    fn committed(&self) -> BTreeMap<String, serde_json::Value> {
        self.state.lock().unwrap().committed.clone()
    }
}

async fn answer(
    request: Request<Incoming>,
    state: Arc<Mutex<ReceiverState>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let headers = request.headers().clone();
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let key = header("idempotency-key");
    let signature_valid = header("x-handoff-signature") == signature_of(SECRET, &body);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let (reply, verify) = {
        let mut state = state.lock().unwrap();
        state.received.push(Received {
            key: key.clone(),
            signature_valid,
            body: json.clone(),
        });
        (state.script.pop_front(), state.verify)
    };
    let respond = |status: u16, text: &str| {
        let mut response = Response::new(Full::new(Bytes::from(text.to_owned())));
        *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
        response
    };
    if verify && !signature_valid {
        return Ok(respond(401, "bad signature"));
    }
    let commit = |state: &Arc<Mutex<ReceiverState>>| {
        let mut state = state.lock().unwrap();
        if state.committed.contains_key(&key) {
            return 409;
        }
        state.committed.insert(key.clone(), json.clone());
        201
    };
    Ok(match reply {
        Some(Reply::Status(code)) => respond(code, "scripted refusal"),
        Some(Reply::TooMany(seconds)) => {
            let mut response = respond(429, "slow down");
            response
                .headers_mut()
                .insert("retry-after", seconds.to_string().parse().unwrap());
            response
        }
        Some(Reply::CommitThenStall(stall)) => {
            let code = commit(&state);
            tokio::time::sleep(stall).await;
            respond(code, "")
        }
        None => {
            let code = commit(&state);
            respond(code, "")
        }
    })
}

/// A loopback SMTP server: answers each end of DATA with the next scripted
/// code (250 when the script is empty) and keeps every accepted message.
struct SmtpServer {
    port: u16,
    messages: Arc<Mutex<Vec<String>>>,
    connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl SmtpServer {
    async fn start(script: Vec<u16>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let kept = messages.clone();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let accepted = connections.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (kept, script) = (kept.clone(), script.clone());
                tokio::spawn(async move { smtp_session(stream, kept, script).await });
            }
        });
        Self {
            port,
            messages,
            connections,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }
}

async fn smtp_session(
    stream: tokio::net::TcpStream,
    kept: Arc<Mutex<Vec<String>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write
        .write_all(b"220 localhost ESMTP test\r\n")
        .await
        .unwrap();
    while let Ok(Some(line)) = lines.next_line().await {
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply = match verb.as_str() {
            "EHLO" | "HELO" => "250 localhost\r\n".to_owned(),
            "MAIL" | "RCPT" | "RSET" | "NOOP" => "250 OK\r\n".to_owned(),
            "DATA" => {
                write.write_all(b"354 go ahead\r\n").await.unwrap();
                let mut message = String::new();
                while let Ok(Some(data)) = lines.next_line().await {
                    if data == "." {
                        break;
                    }
                    message.push_str(&data);
                    message.push('\n');
                }
                let code = script.lock().unwrap().pop_front().unwrap_or(250);
                if code == 250 {
                    kept.lock().unwrap().push(message);
                }
                format!(
                    "{code} {}\r\n",
                    if code == 250 { "queued" } else { "refused" }
                )
            }
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => "502 unknown\r\n".to_owned(),
        };
        write.write_all(reply.as_bytes()).await.unwrap();
    }
}

/// Everything one test needs: a ledger, the shipped playbooks and the sinks.
struct Harness {
    heartbeats: Arc<std::sync::atomic::AtomicUsize>,
    ledger: Ledger,
    sinks: Sinks,
    playbooks: Arc<LivePlaybooks>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new(sinks: Sinks) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/handoff.db", dir.path().display());
        let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../playbooks");
        Self {
            heartbeats: Arc::default(),
            ledger: Ledger::open(&url).await.unwrap(),
            sinks,
            playbooks: Arc::new(LivePlaybooks::new(PlaybookSet::load(&shipped).unwrap())),
            _dir: dir,
        }
    }

    /// An environment whose activity runs as attempt `attempt`.
    fn env(&self, attempt: u32) -> ActivityEnvironment {
        let activities = LedgerActivities::new(
            self.ledger.clone(),
            PlanningSettings {
                bands: SegmentBands::default(),
                fallback_owner: None,
                calendars_dir: PathBuf::from("calendars"),
            },
            self.playbooks.clone(),
            self.sinks.clone(),
        );
        let heartbeats = self.heartbeats.clone();
        ActivityEnvironment::builder()
            .register_activities(activities)
            .on_heartbeat(move |_| {
                heartbeats.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            })
            .info(
                TestActivityInfoOptions::builder()
                    .attempt(attempt)
                    .heartbeat_timeout(Duration::from_secs(30))
                    .build(),
            )
            .build()
    }
}

fn webhook_sinks(url: &str, timeout: Duration) -> Sinks {
    let mut sinks = Sinks {
        webhook: Some(HttpSink::try_new(url, Some(SECRET.to_owned()), timeout).unwrap()),
        ..Default::default()
    };
    sinks.routes = sinks.default_routes();
    sinks
}

fn task(key: &str) -> TaskSpec {
    TaskSpec {
        key: key.into(),
        title: format!("Do {key}"),
        owner_role: "onboarding_manager".into(),
        owner: "om-04".into(),
        due_at: Utc::now(),
        depends_on: vec![],
        status: TaskStatus::Open,
        meets: None,
    }
}

fn batch(keys: &[&str]) -> CreateTasks {
    CreateTasks {
        workflow_id: "handoff-manual-D-1".into(),
        trigger: "day0".into(),
        tasks: keys.iter().map(|k| task(k)).collect(),
    }
}

/// The application failure of an activity error.
fn failure(error: ActivityEnvironmentError) -> Box<ApplicationFailure> {
    match error {
        ActivityEnvironmentError::Activity(ActivityError::Application(failure)) => failure,
        other => panic!("not an application failure: {other:?}"),
    }
}

#[tokio::test]
async fn signed_task_creations_reach_the_webhook_once_through_retries() {
    let receiver = Receiver::start(vec![]).await;
    let harness = Harness::new(webhook_sinks(&receiver.url, Duration::from_secs(5))).await;
    let tasks = batch(&["kickoff", "data_migration"]);

    let created = harness
        .env(1)
        .run(LedgerActivities::create_tasks, tasks.clone())
        .await;
    assert_eq!(created.unwrap().created, 2);
    let again = harness
        .env(2)
        .run(LedgerActivities::create_tasks, tasks)
        .await;
    assert_eq!(again.unwrap().created, 0);
    let heartbeats = harness.heartbeats.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(heartbeats, 4, "one heartbeat per task and attempt");

    let received = receiver.received();
    assert_eq!(received.len(), 2, "a retry after success sends nothing");
    assert!(received.iter().all(|r| r.signature_valid));
    assert_eq!(
        received.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
        [
            "handoff-manual-D-1/task/kickoff",
            "handoff-manual-D-1/task/data_migration"
        ]
    );
    assert_eq!(received[0].body["type"], "task.created");
    assert_eq!(received[0].body["task"]["owner"], "om-04");
}

#[tokio::test]
async fn a_receiver_that_commits_then_stalls_still_ends_with_one_task() {
    let receiver = Receiver::start(vec![Reply::CommitThenStall(Duration::from_secs(3))]).await;
    let harness = Harness::new(webhook_sinks(&receiver.url, Duration::from_millis(500))).await;
    let tasks = batch(&["kickoff"]);

    let first = harness
        .env(1)
        .run(LedgerActivities::create_tasks, tasks.clone())
        .await;
    let first = failure(first.unwrap_err());
    assert!(!first.is_non_retryable(), "a timeout is retried");
    assert!(
        first.source_error().to_string().contains("timed out"),
        "{first:?}"
    );

    // The retry carries the same Idempotency-Key; the receiver answers 409.
    harness
        .env(2)
        .run(LedgerActivities::create_tasks, tasks)
        .await
        .unwrap();
    assert_eq!(receiver.received().len(), 2);
    assert_eq!(receiver.committed().len(), 1);
    let attempts = harness
        .ledger
        .list_attempts("handoff-manual-D-1/task/kickoff")
        .await
        .unwrap();
    let outcomes: Vec<&str> = attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["retry", "delivered"]);
}

#[tokio::test]
async fn a_400_fails_for_good_with_the_response_and_is_not_sent_again() {
    let receiver = Receiver::start(vec![Reply::Status(400)]).await;
    let harness = Harness::new(webhook_sinks(&receiver.url, Duration::from_secs(5))).await;
    let tasks = batch(&["kickoff"]);

    let error = harness
        .env(1)
        .run(LedgerActivities::create_tasks, tasks.clone())
        .await;
    let error = failure(error.unwrap_err());
    assert!(error.is_non_retryable());
    assert!(
        error
            .source_error()
            .to_string()
            .contains("HTTP 400: scripted refusal"),
        "{error:?}"
    );
    // Even if the activity ran again, the ledger remembers the refusal.
    let again = harness
        .env(2)
        .run(LedgerActivities::create_tasks, tasks)
        .await;
    assert!(failure(again.unwrap_err()).is_non_retryable());
    assert_eq!(receiver.received().len(), 1);
    assert!(receiver.committed().is_empty());
}

#[tokio::test]
async fn a_409_counts_as_delivered() {
    let receiver = Receiver::start(vec![Reply::Status(409)]).await;
    let harness = Harness::new(webhook_sinks(&receiver.url, Duration::from_secs(5))).await;
    let result = harness
        .env(1)
        .run(LedgerActivities::create_tasks, batch(&["kickoff"]))
        .await;
    assert_eq!(result.unwrap().created, 1);
}

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after_and_a_503_until_it_clears() {
    let receiver = Receiver::start(vec![Reply::TooMany(7), Reply::Status(503)]).await;
    let harness = Harness::new(webhook_sinks(&receiver.url, Duration::from_secs(5))).await;
    let tasks = batch(&["kickoff"]);

    let limited = failure(
        harness
            .env(1)
            .run(LedgerActivities::create_tasks, tasks.clone())
            .await
            .unwrap_err(),
    );
    assert!(!limited.is_non_retryable());
    assert_eq!(limited.next_retry_delay(), Some(Duration::from_secs(7)));

    let unavailable = failure(
        harness
            .env(2)
            .run(LedgerActivities::create_tasks, tasks.clone())
            .await
            .unwrap_err(),
    );
    assert!(!unavailable.is_non_retryable());
    assert_eq!(unavailable.next_retry_delay(), None);
    assert!(unavailable.source_error().to_string().contains("HTTP 503"));

    harness
        .env(3)
        .run(LedgerActivities::create_tasks, tasks)
        .await
        .unwrap();
    assert_eq!(receiver.committed().len(), 1);
}

#[tokio::test]
async fn cancelled_tasks_reach_the_webhook_even_on_a_retry_after_the_ledger_closed_them() {
    let receiver = Receiver::start(vec![Reply::Status(503)]).await;
    let harness = Harness::new(webhook_sinks(&receiver.url, Duration::from_secs(5))).await;
    harness
        .ledger
        .insert_tasks(
            "handoff-manual-D-1",
            "day0",
            &[task("kickoff"), task("data_migration")],
        )
        .await
        .unwrap();
    let request = CancelTasks {
        workflow_id: "handoff-manual-D-1".into(),
        reason: "lost".into(),
    };

    let first = harness
        .env(1)
        .run(LedgerActivities::cancel_tasks, request.clone())
        .await;
    assert!(!failure(first.unwrap_err()).is_non_retryable());
    let second = harness
        .env(2)
        .run(LedgerActivities::cancel_tasks, request)
        .await;
    assert_eq!(
        second.unwrap().cancelled,
        0,
        "the ledger closed them on the first attempt"
    );

    let mut keys: Vec<String> = receiver.committed().into_keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "handoff-manual-D-1/task/data_migration/cancelled",
            "handoff-manual-D-1/task/kickoff/cancelled"
        ]
    );
}

fn hostile_escalation(level: u8, reach: Reach) -> Notification {
    Notification {
        key: format!("handoff-manual-D-1/escalate/kickoff/{level}"),
        workflow_id: "handoff-manual-D-1".into(),
        kind: "escalation".into(),
        milestone: Some("kickoff".into()),
        level: Some(level),
        recipients: vec![Recipient {
            role: "executive".into(),
            handle: String::new(),
            reach,
        }],
        facts: [
            ("account", "<!channel> Acme & <script>alert(1)</script>"),
            ("source", "manual"),
            ("deal_id", "D-1"),
            ("segment", "enterprise"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    }
}

#[tokio::test]
async fn slack_messages_escape_crm_text_and_mention_the_directory_chat_id() {
    let receiver = Receiver::start_with(vec![], false).await;
    let mut sinks = Sinks {
        slack: Some(HttpSink::try_new(&receiver.url, None, Duration::from_secs(5)).unwrap()),
        ..Default::default()
    };
    sinks.routes = sinks.default_routes();
    let harness = Harness::new(sinks).await;

    let notification = hostile_escalation(3, Reach::Executive);
    harness
        .env(1)
        .run(LedgerActivities::notify, notification.clone())
        .await
        .unwrap();
    harness
        .env(2)
        .run(LedgerActivities::notify, notification)
        .await
        .unwrap();

    let received = receiver.received();
    assert_eq!(received.len(), 1, "effectively once");
    let text = received[0].body["text"].as_str().unwrap();
    assert!(
        text.contains("&lt;!channel&gt; Acme &amp; &lt;script&gt;"),
        "{text}"
    );
    assert!(!text.contains("<!channel>"), "{text}");
    assert!(
        text.ends_with("<@U00VP0001>"),
        "the executive is mentioned: {text}"
    );
}

fn smtp_sinks(port: u16) -> Sinks {
    let config = SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        credentials: None,
        from: "Handoff <handoff@example.com>".into(),
        timeout: Duration::from_secs(5),
    };
    let mut sinks = Sinks {
        email: Some(SmtpSink::try_new(&config).unwrap()),
        ..Default::default()
    };
    sinks.routes = Routes {
        notifications: vec![Channel::Email],
        ..Default::default()
    };
    sinks
}

#[tokio::test]
async fn level_3_e_mails_reach_the_directory_executive_with_escaped_html() {
    let server = SmtpServer::start(vec![]).await;
    let harness = Harness::new(smtp_sinks(server.port)).await;
    let notification = hostile_escalation(3, Reach::Executive);

    harness
        .env(1)
        .run(LedgerActivities::notify, notification.clone())
        .await
        .unwrap();
    harness
        .env(2)
        .run(LedgerActivities::notify, notification.clone())
        .await
        .unwrap();

    let messages = server.messages();
    assert_eq!(
        messages.len(),
        1,
        "a retry after a recorded success sends nothing"
    );
    let message = &messages[0];
    assert!(message.contains("vivian.park@example.com"), "{message}");
    assert!(
        message.contains(&message_id_of(&notification.key)),
        "{message}"
    );
    assert!(message.contains("multipart/alternative"), "{message}");
    assert!(
        message.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{message}"
    );
    let html_part = message.split("text/html").nth(1).unwrap();
    assert!(!html_part.contains("<script>"), "{html_part}");
    let rows = harness.ledger.list_notifications(None).await.unwrap();
    assert_eq!(rows[0].status, "delivered");
}

#[tokio::test]
async fn e_mails_share_one_pooled_connection_to_the_relay() {
    let server = SmtpServer::start(vec![]).await;
    let harness = Harness::new(smtp_sinks(server.port)).await;
    for level in [2, 3] {
        let reach = if level == 2 {
            Reach::ManagerOf
        } else {
            Reach::Executive
        };
        harness
            .env(1)
            .run(LedgerActivities::notify, hostile_escalation(level, reach))
            .await
            .unwrap();
    }
    assert_eq!(server.messages().len(), 2);
    assert_eq!(
        server.connections(),
        1,
        "the second e-mail reuses the connection"
    );
}

#[tokio::test]
async fn smtp_4yz_is_retried_and_5yz_fails_for_good() {
    let server = SmtpServer::start(vec![451, 550]).await;
    let harness = Harness::new(smtp_sinks(server.port)).await;
    let notification = hostile_escalation(2, Reach::ManagerOf);

    let transient = failure(
        harness
            .env(1)
            .run(LedgerActivities::notify, notification.clone())
            .await
            .unwrap_err(),
    );
    assert!(!transient.is_non_retryable());
    let permanent = failure(
        harness
            .env(2)
            .run(LedgerActivities::notify, notification.clone())
            .await
            .unwrap_err(),
    );
    assert!(permanent.is_non_retryable());
    assert!(
        permanent.source_error().to_string().contains("550"),
        "{permanent:?}"
    );
    let rows = harness.ledger.list_notifications(None).await.unwrap();
    assert_eq!(rows[0].status, "failed");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn an_unknown_bundle_handle_becomes_a_bundle_problem_not_a_crash() {
    let harness = Harness::new(Sinks::default()).await;
    let bundle = handoff_workflows::bundle::ValidBundle::from_value(serde_json::json!({
        "deal": { "source": "manual", "id": "D-1", "closed_won_at": "2026-03-02T16:30:00Z",
                  "segment": "smb" },
        "account": { "name": "Example Corp" },
        "owners": { "account_executive": "ae-01", "onboarding_manager": "om-99" }
    }))
    .unwrap();
    let plan = harness
        .env(1)
        .run(
            LedgerActivities::plan_handoff,
            PlanRequest {
                workflow_id: "handoff-manual-D-1".into(),
                bundle,
            },
        )
        .await
        .unwrap();
    assert_eq!(plan.owner("onboarding_manager"), "revops-queue");
    assert_eq!(plan.owner("account_executive"), "ae-01");
    assert!(
        plan.missing_fields
            .iter()
            .any(|f| f.starts_with("owners.onboarding_manager (om-99")),
        "{:?}",
        plan.missing_fields
    );
    assert!(plan.directory.handles.contains("vp-customer"));
    assert_eq!(plan.directory.timezones["om-04"], "Europe/London");
}

#[tokio::test]
async fn only_the_send_that_settles_an_effect_is_counted_for_the_metrics() {
    use crate::sinks::Outcome;

    let harness = Harness::new(Sinks::default()).await;
    let delivery = Delivery {
        ledger: &harness.ledger,
        attempt: 1,
    };
    let retry = || async {
        Outcome::Retry {
            detail: "HTTP 503".to_owned(),
            after: None,
        }
    };

    let mut first = Tally::default();
    delivery
        .once(&mut first, Channel::Slack, "w/remind/a", retry())
        .await
        .unwrap();
    assert!(first.settled.is_empty(), "a retry settles nothing");

    let mut second = Tally::default();
    delivery
        .once(&mut second, Channel::Slack, "w/remind/a", async {
            Outcome::Delivered
        })
        .await
        .unwrap();
    delivery
        .once(&mut second, Channel::Email, "w/remind/a", async {
            Outcome::Failed {
                detail: "550 no such user".to_owned(),
            }
        })
        .await
        .unwrap();
    assert_eq!(
        second.settled,
        [(Channel::Slack, "delivered"), (Channel::Email, "failed")]
    );

    // A later attempt finds both settled in the ledger: sent and counted once.
    let mut third = Tally::default();
    for channel in [Channel::Slack, Channel::Email] {
        delivery
            .once(&mut third, channel, "w/remind/a", retry())
            .await
            .unwrap();
    }
    assert!(third.settled.is_empty());
    assert_eq!(third.delivered, 1);
    assert_eq!(third.failed.len(), 1);
}

#[tokio::test]
async fn the_ledger_names_the_people_manager_and_executive_escalations_reach() {
    let harness = Harness::new(Sinks::default()).await;
    let executive = hostile_escalation(3, Reach::Executive);
    let mut managers = hostile_escalation(2, Reach::ManagerOf);
    managers.recipients = vec![
        Recipient {
            role: "account_executive".into(),
            handle: "ae-01".into(),
            reach: Reach::ManagerOf,
        },
        Recipient {
            role: "handoff_owner".into(),
            handle: "ho-03".into(),
            reach: Reach::ManagerOf,
        },
    ];
    for notification in [executive, managers] {
        harness
            .env(1)
            .run(LedgerActivities::notify, notification)
            .await
            .unwrap();
    }
    let rows = harness
        .ledger
        .list_notifications(Some("handoff-manual-D-1"))
        .await
        .unwrap();
    let owners: Vec<&str> = rows.iter().map(|r| r.owner.as_str()).collect();
    assert_eq!(
        owners,
        ["vp-customer", "sales-director,cs-director"],
        "{rows:?}"
    );
}
