//! `handoff ingress` against the shared dev server, with a worker on a task
//! queue of its own: signatures, duplicates delivered at once, and Temporal
//! out of reach then back.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hmac::{Hmac, Mac as _};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::harness::{
    BIN, Stack, ago, bundle, free_port, stack, unique, wait_until, with_parent_death_signal,
};

pub(crate) const SECRET: &str = "ingress-test-secret";
pub(crate) const QUICK: Duration = Duration::from_secs(30);

/// A running `handoff ingress`, killed when dropped.
pub(crate) struct Receiver {
    child: Child,
    pub(crate) address: String,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A worker process, killed and reaped when dropped.
pub(crate) struct Worker(pub(crate) Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_ingress(stack: &Stack, task_queue: &str, temporal: Option<&str>) -> Receiver {
    spawn_ingress_with(stack, task_queue, temporal, &[])
}

pub(crate) fn spawn_ingress_with(
    stack: &Stack,
    task_queue: &str,
    temporal: Option<&str>,
    env: &[(&str, String)],
) -> Receiver {
    let address = format!("127.0.0.1:{}", free_port());
    let mut command = Command::new(BIN);
    command.arg("ingress");
    stack.configure(&mut command);
    command
        .env("HANDOFF_TASK_QUEUE", task_queue)
        .env("HANDOFF_INGRESS_ADDR", &address)
        .env("HANDOFF_INGRESS_SECRET", SECRET);
    if let Some(temporal) = temporal {
        command.env("TEMPORAL_ADDRESS", temporal);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let log = std::fs::File::create(stack.dir.join(format!("{}.log", unique("ingress")))).unwrap();
    command
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .stdin(Stdio::null());
    with_parent_death_signal(&mut command);
    let receiver = Receiver {
        child: command.spawn().unwrap(),
        address,
    };
    wait_until("ingress health", QUICK, || {
        (request(&receiver.address, "GET", "/healthz", &[], b"")
            .ok()?
            .0
            == 200)
            .then_some(())
    });
    receiver
}

/// One HTTP/1.1 exchange: the status and the body.
pub(crate) fn request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    request_typed(address, method, path, "application/json", headers, body)
}

pub(crate) fn request_typed(
    address: &str,
    method: &str,
    path: &str,
    content_type: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

pub(crate) fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub(crate) fn post_generic(receiver: &Receiver, event: &Value) -> (u16, String) {
    let body = serde_json::to_vec(event).unwrap();
    let headers = [("X-Handoff-Signature", signature(SECRET, &body))];
    request(
        &receiver.address,
        "POST",
        "/webhooks/generic",
        &headers,
        &body,
    )
    .unwrap()
}

pub(crate) fn metric(receiver: &Receiver, series: &str) -> f64 {
    let (_, page) = request(&receiver.address, "GET", "/metrics", &[], b"").unwrap();
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn generic_events_are_verified_and_concurrent_duplicates_start_one_handoff() {
    let stack = stack();
    let queue = unique("ingress-generic");
    let _worker = Worker(stack.spawn_worker(&queue));
    let receiver = spawn_ingress(stack, &queue, None);
    let id = unique("ingress");
    let deal = format!("manual:{id}");
    let won = json!({ "event_id": format!("{id}-won"), "type": "closed_won",
                      "deal": { "source": "manual", "id": id }, "data": bundle(&id, "smb") });
    let body = serde_json::to_vec(&won).unwrap();

    // Missing, wrong and stale-key signatures change nothing.
    let path = "/webhooks/generic";
    let missing = request(&receiver.address, "POST", path, &[], &body).unwrap();
    let wrong = [("X-Handoff-Signature", signature("not-the-secret", &body))];
    let wrong = request(&receiver.address, "POST", path, &wrong, &body).unwrap();
    assert_eq!((missing.0, wrong.0), (401, 401), "{missing:?} {wrong:?}");
    let garbled = b"{not json";
    let headers = [("X-Handoff-Signature", signature(SECRET, garbled))];
    let malformed = request(&receiver.address, "POST", path, &headers, garbled).unwrap();
    assert_eq!(malformed.0, 400);
    assert!(malformed.1.contains("body"), "{malformed:?}");
    assert!(
        !stack
            .handoff(&["deal", "status", &deal, "--json"])
            .status
            .success()
    );

    // The same event three times at once: one handoff, two duplicates.
    let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
        let posts: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| post_generic(&receiver, &won)))
            .collect();
        posts.into_iter().map(|p| p.join().unwrap()).collect()
    });
    assert!(
        answers.iter().all(|(status, _)| *status == 200),
        "{answers:?}"
    );
    let accepted = answers
        .iter()
        .filter(|(_, b)| b.contains("accepted"))
        .count();
    let duplicates = answers
        .iter()
        .filter(|(_, b)| b.contains("duplicate"))
        .count();
    assert_eq!((accepted, duplicates), (1, 2), "{answers:?}");
    stack.wait_status(&deal, "awaiting gates", QUICK, |s| {
        s["stage"] == "awaiting_gates"
    });

    // A signal with its own instant moves the handoff on.
    let signed = json!({ "event_id": format!("{id}-signed"), "type": "contract_signed",
                         "deal": { "source": "manual", "id": id }, "at": ago(600) });
    assert_eq!(post_generic(&receiver, &signed).0, 200);
    let status = stack.wait_status(&deal, "kickoff", QUICK, |s| s["stage"] == "kickoff");
    assert_eq!(status["gates"]["signature"]["status"], "passed");
    let tasks = wait_until("day-0 tasks", QUICK, || {
        Some(stack.tasks(&deal)).filter(|t| !t.is_empty())
    });
    assert_eq!(tasks.len(), 4, "one set of onboarding tasks");

    let series = |name: &str| metric(&receiver, name);
    assert_eq!(
        series("handoff_ingress_duplicates_total{source=\"generic\"}"),
        2.0
    );
    assert_eq!(
        series("handoff_ingress_signature_failures_total{source=\"generic\"}"),
        2.0
    );
    assert_eq!(
        series("handoff_ingress_requests_total{outcome=\"accepted\",source=\"generic\"}"),
        2.0
    );
}

/// Forwards every connection on `listener` to `upstream`.
fn forward(listener: TcpListener, upstream: String) {
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let (mut client_read, mut server_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut server_read, mut client_write) = (server, client);
            std::thread::spawn(move || std::io::copy(&mut client_read, &mut server_write));
            std::thread::spawn(move || std::io::copy(&mut server_read, &mut client_write));
        }
    });
}

#[test]
fn temporal_out_of_reach_answers_503_and_the_retry_is_applied() {
    let stack = stack();
    let queue = unique("ingress-outage");
    let _worker = Worker(stack.spawn_worker(&queue));
    let port = free_port();
    let temporal = format!("127.0.0.1:{port}");
    let receiver = spawn_ingress(stack, &queue, Some(&temporal));
    let id = unique("outage");
    let won = json!({ "event_id": format!("{id}-won"), "type": "closed_won",
                      "data": bundle(&id, "smb") });

    let (status, body) = post_generic(&receiver, &won);
    assert_eq!(status, 503, "{body}");
    let (ready, _) = request(&receiver.address, "GET", "/readyz", &[], b"").unwrap();
    assert_eq!(ready, 503);

    // Temporal comes back at the address the receiver uses; the sender retries.
    forward(TcpListener::bind(&temporal).unwrap(), stack.address.clone());
    let (status, body) = post_generic(&receiver, &won);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("accepted"), "{body}");
    stack.wait_status(&format!("manual:{id}"), "the handoff", QUICK, |s| {
        s["stage"] == "awaiting_gates"
    });
    let (_, again) = post_generic(&receiver, &won);
    assert!(again.contains("duplicate"), "{again}");
}

/// How many times the handoff's history holds a signal of this name.
fn signals_in_history(stack: &Stack, workflow_id: &str, name: &str) -> usize {
    let output = Command::new(crate::harness::temporal_bin())
        .args(["workflow", "show", "--address", &stack.address])
        .args(["-o", "json", "-w", workflow_id])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let history: Value = serde_json::from_slice(&output.stdout).unwrap();
    history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["workflowExecutionSignaledEventAttributes"]["signalName"].as_str() == Some(name)
        })
        .count()
}

#[test]
fn generic_events_the_handoff_would_drop_are_refused_and_a_resent_one_reaches_it_once() {
    let stack = stack();
    let queue = unique("ingress-checks");
    let _worker = Worker(stack.spawn_worker(&queue));
    let receiver = spawn_ingress(stack, &queue, None);
    let id = unique("checked");
    let deal = format!("manual:{id}");
    let workflow_id = format!("handoff-manual-{id}");
    let won = json!({ "event_id": format!("{id}-won"), "type": "closed_won",
                      "deal": { "source": "manual", "id": id }, "data": bundle(&id, "smb") });
    assert_eq!(post_generic(&receiver, &won).0, 200);
    stack.wait_status(&deal, "awaiting gates", QUICK, |s| {
        s["stage"] == "awaiting_gates"
    });

    // What the handoff's decoder refuses is a 400 naming the field, not an
    // acknowledged event the handoff then drops.
    let no_key = json!({ "event_id": format!("{id}-done"), "type": "task_completed",
                         "deal": { "source": "manual", "id": id }, "data": {} });
    let answer = post_generic(&receiver, &no_key);
    assert_eq!(answer.0, 400, "{answer:?}");
    assert!(answer.1.contains("key"), "{answer:?}");
    // An instant an hour ahead of the receiver's clock: refused, and not
    // remembered as the deal's latest.
    let ahead = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let future = json!({ "event_id": format!("{id}-future"), "type": "contract_signed",
                         "deal": { "source": "manual", "id": id }, "at": ahead });
    let answer = post_generic(&receiver, &future);
    assert_eq!(answer.0, 400, "{answer:?}");
    assert!(
        answer.1.contains("later than this receiver's clock"),
        "{answer:?}"
    );

    // A sender's clock a few seconds fast: taken as now, and the handoff
    // uses it instead of refusing it.
    let skewed = (chrono::Utc::now() + chrono::Duration::seconds(5)).to_rfc3339();
    let signed = json!({ "event_id": format!("{id}-signed"), "type": "contract_signed",
                         "deal": { "source": "manual", "id": id }, "at": skewed });
    assert_eq!(outcome_of(&post_generic(&receiver, &signed)), "accepted");
    let status = stack.wait_status(&deal, "kickoff", QUICK, |s| s["stage"] == "kickoff");
    assert_eq!(status["rejected_events"]["total"], 0, "{status:#}");

    // The same event at a receiver whose ledger lost its record (a crash
    // between the signal and the record): Temporal drops the second signal.
    let forgetful = spawn_ingress_with(
        stack,
        &queue,
        None,
        &[(
            "HANDOFF_DATABASE_URL",
            format!("sqlite://{}", stack.dir.join(format!("{id}.db")).display()),
        )],
    );
    assert_eq!(outcome_of(&post_generic(&forgetful, &signed)), "accepted");
    assert_eq!(
        signals_in_history(stack, &workflow_id, "contract_signed"),
        1
    );
    // The same for a deal both receivers know, which is signalled without a
    // start: the usual case after a crash.
    let held = json!({ "event_id": format!("{id}-kickoff"), "type": "kickoff_held",
                       "deal": { "source": "manual", "id": id }, "at": ago(60) });
    assert_eq!(outcome_of(&post_generic(&receiver, &held)), "accepted");
    let note = json!({ "event_id": format!("{id}-adoption"), "type": "adoption_reported",
                       "deal": { "source": "manual", "id": id }, "data": { "rate": 0.5 } });
    assert_eq!(outcome_of(&post_generic(&forgetful, &note)), "accepted");
    assert_eq!(outcome_of(&post_generic(&forgetful, &held)), "accepted");
    assert_eq!(signals_in_history(stack, &workflow_id, "kickoff_held"), 1);

    // Won, then lost at once (before the plan is back, as a rule): the
    // deal gets its grace, paused, instead of being cancelled.
    let flip = unique("flip");
    let won = json!({ "event_id": format!("{flip}-won"), "type": "closed_won",
                      "deal": { "source": "manual", "id": flip }, "data": bundle(&flip, "smb") });
    let lost = json!({ "event_id": format!("{flip}-lost"), "type": "deal_lost",
                       "deal": { "source": "manual", "id": flip }, "data": { "reason": "misclick" } });
    assert_eq!(outcome_of(&post_generic(&receiver, &won)), "accepted");
    assert_eq!(outcome_of(&post_generic(&receiver, &lost)), "accepted");
    let status = stack.wait_status(&format!("manual:{flip}"), "the grace", QUICK, |s| {
        !s["paused"]["lost_grace_until"].is_null()
    });
    assert!(status["cancel_reason"].is_null(), "{status:#}");

    // A bundle larger than `deal start` takes is refused here too.
    let mut huge = bundle(&unique("huge"), "smb");
    huge["use_case"] = json!("x".repeat(300 * 1024));
    let huge = json!({ "event_id": unique("huge-won"), "type": "closed_won", "data": huge });
    let answer = post_generic(&receiver, &huge);
    assert_eq!(answer.0, 400, "{answer:?}");
    assert!(answer.1.contains("larger than 256 KiB"), "{answer:?}");

    // A batch is not an event.
    let batch = serde_json::to_vec(&json!([won])).unwrap();
    let headers = [("X-Handoff-Signature", signature(SECRET, &batch))];
    let answer = request(
        &receiver.address,
        "POST",
        "/webhooks/generic",
        &headers,
        &batch,
    )
    .unwrap();
    assert_eq!(answer.0, 400, "{answer:?}");
    assert!(answer.1.contains("expected one event"), "{answer:?}");

    // `deal list` says when it shows fewer handoffs than there are.
    let listed = stack.handoff(&["deal", "list", "--limit", "1"]);
    assert!(listed.status.success());
    assert!(
        String::from_utf8_lossy(&listed.stderr).contains("showing the 1 soonest of"),
        "{listed:?}"
    );

    // A lost deal that never had a handoff needs none.
    let stranger = unique("never-won");
    let lost = json!({ "event_id": format!("{stranger}-lost"), "type": "deal_lost",
                       "deal": { "source": "manual", "id": stranger }, "data": { "reason": "budget" } });
    assert_eq!(outcome_of(&post_generic(&receiver, &lost)), "ignored");
    assert!(
        !stack
            .handoff(&["deal", "status", &format!("manual:{stranger}"), "--json"])
            .status
            .success()
    );
}

fn outcome_of(answer: &(u16, String)) -> String {
    assert_eq!(answer.0, 200, "{answer:?}");
    let body: Value = serde_json::from_str(&answer.1).unwrap();
    body["outcomes"][0].as_str().unwrap().to_owned()
}
