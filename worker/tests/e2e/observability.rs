//! What operators and SREs see of a real worker: the metrics listener and its
//! health paths, the metric names `ops/` relies on, traces over OTLP, the
//! attainment report, `deal list` filters, and no personal data in Temporal.

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use serde_json::{Value, json};

use crate::harness::{
    Stack, ago, bundle, describe, free_port, stack, temporal_bin, unique, wait_until,
};

#[allow(dead_code)]
#[path = "../common/ops_files.rs"]
mod ops_files;

const QUICK: Duration = Duration::from_secs(30);

/// One HTTP/1.0 GET; `None` while nothing listens.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// Names of the samples in a scrape (`name{labels} value`).
fn sample_names(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| line.split(['{', ' ']).next().unwrap().to_owned())
        .collect()
}

fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// A worker of its own: task queue, ledger and metrics port.
struct OwnWorker {
    queue: String,
    database_url: String,
    port: u16,
    child: Child,
}

impl OwnWorker {
    fn spawn(stack: &Stack, prefix: &str, env: &[(&str, String)]) -> Self {
        let queue = unique(prefix);
        let database_url = format!("sqlite://{}/{queue}.db", stack.dir.display());
        let port = free_port();
        let mut all = vec![
            ("HANDOFF_METRICS_ADDR", format!("127.0.0.1:{port}")),
            ("HANDOFF_DATABASE_URL", database_url.clone()),
        ];
        all.extend(env.iter().cloned());
        let child = stack.spawn_worker_with(&queue, &all);
        let worker = Self {
            queue,
            database_url,
            port,
            child,
        };
        wait_until("the worker ready", Duration::from_secs(60), || {
            (http_get(worker.port, "/readyz")?.0 == 200).then_some(())
        });
        worker
    }

    /// `handoff ARGS` against this worker's queue and ledger.
    fn ok(&self, stack: &Stack, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend([
            "--task-queue",
            &self.queue,
            "--database-url",
            &self.database_url,
        ]);
        let output = stack.handoff(&all);
        assert!(
            output.status.success(),
            "handoff {args:?}: {}",
            describe(&output)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn start(&self, stack: &Stack, bundle: &Value, scale: &str) {
        let file = stack.write_json(bundle);
        self.ok(
            stack,
            &[
                "deal",
                "start",
                file.to_str().unwrap(),
                "--time-scale",
                scale,
            ],
        );
    }

    fn signal(&self, stack: &Stack, deal: &str, name: &str, data: Value) {
        self.ok(
            stack,
            &["deal", "signal", deal, name, "--data", &data.to_string()],
        );
    }

    fn scrape(&self) -> String {
        let (status, body) = http_get(self.port, "/metrics").unwrap();
        assert_eq!(status, 200);
        body
    }
}

impl Drop for OwnWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every milestone met, the kickoff after its breach: a completed handoff
/// that touched every business counter.
fn drive_to_completion(stack: &Stack, worker: &OwnWorker, deal: &str) {
    worker.signal(stack, deal, "contract_signed", json!({ "at": ago(60) }));
    // A malformed instant, past `deal signal`'s own check: rejected and counted.
    stack.raw_signal(deal, "kickoff_held", r#"{"at":"last tuesday"}"#);
    // 20000 business seconds a second: the kickoff breaches within ~20 s.
    stack.wait_status(deal, "the kickoff breach", Duration::from_secs(90), |s| {
        s["milestones"][0]["status"] == "breached"
    });
    worker.signal(stack, deal, "kickoff_held", json!({}));
    for milestone in ["data_mapping", "first_integration_test"] {
        worker.signal(
            stack,
            deal,
            "milestone_reached",
            json!({ "milestone": milestone }),
        );
    }
    worker.signal(stack, deal, "adoption_reported", json!({ "rate": 0.9 }));
    let evidence = json!({ "milestone": "first_value", "evidence": "sync live" });
    worker.signal(stack, deal, "milestone_reached", evidence);
    stack.wait_status(deal, "completion", QUICK, |s| s["stage"] == "completed");
}

/// A workflow task that cannot decode its input fails, and keeps failing.
fn fail_a_workflow_task(stack: &Stack, worker: &OwnWorker) {
    let workflow_id = unique("undecodable");
    let output = Command::new(temporal_bin())
        .args([
            "workflow",
            "start",
            "--type",
            "DealHandoff",
            "--input",
            "\"not an input\"",
        ])
        .args(["--task-queue", &worker.queue, "--workflow-id", &workflow_id])
        .args(["--address", &stack.address])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    wait_until("a workflow task failure", QUICK, || {
        sample_names(&worker.scrape())
            .contains("temporal_workflow_task_execution_failed_total")
            .then_some(())
    });
    Command::new(temporal_bin())
        .args([
            "workflow",
            "terminate",
            "--workflow-id",
            &workflow_id,
            "--reason",
            "test",
        ])
        .args(["--address", &stack.address])
        .output()
        .unwrap();
}

/// The ledger's notifications table goes away for a moment, so one `notify`
/// attempt fails and is retried.
fn fail_an_activity(stack: &Stack, worker: &OwnWorker, deal: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = worker.database_url.clone();
    let execute = |statement: &'static str| {
        let url = url.clone();
        runtime.block_on(async move {
            use sqlx::Connection as _;
            let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query(statement)
                .execute(&mut connection)
                .await
                .unwrap();
        });
    };
    execute("ALTER TABLE notifications RENAME TO notifications_away");
    worker.signal(stack, deal, "kickoff_held", json!({}));
    wait_until("an activity failure", QUICK, || {
        sample_names(&worker.scrape())
            .contains("temporal_activity_execution_failed_total")
            .then_some(())
    });
    execute("ALTER TABLE notifications_away RENAME TO notifications");
}

#[test]
fn a_scrape_after_a_handoff_serves_every_metric_the_rules_and_dashboards_use() {
    let stack = stack();
    let mut worker = OwnWorker::spawn(stack, "metrics", &[]);
    assert_eq!(
        http_get(worker.port, "/healthz").unwrap(),
        (200, "ok\n".to_owned())
    );

    let id = unique("scraped");
    let deal = format!("manual:{id}");
    worker.start(stack, &bundle(&id, "smb"), "20000");
    drive_to_completion(stack, &worker, &deal);
    // Queries of a finished handoff replay its history: nothing is counted again.
    for _ in 0..2 {
        stack.ok(&["deal", "status", &deal, "--json"]);
    }
    fail_a_workflow_task(stack, &worker);
    let second = unique("ledger-outage");
    worker.start(stack, &bundle(&second, "mid_market"), "1");
    let second = format!("manual:{second}");
    worker.signal(stack, &second, "contract_signed", json!({}));
    stack.wait_status(&second, "kickoff", QUICK, |s| s["stage"] == "kickoff");
    fail_an_activity(stack, &worker, &second);
    stack.wait_status(&second, "onboarding", QUICK, |s| s["stage"] == "onboarding");

    // Business series of the completed handoff, counted once each.
    let scrape = wait_until("the visibility gauges", QUICK, || {
        let scrape = worker.scrape();
        (sample(&scrape, "handoff_open{stage=\"onboarding\"}") == Some(1.0)).then_some(scrape)
    });
    for (series, value) in [
        ("handoff_started_total{segment=\"smb\"}", 1.0),
        (
            "handoff_milestone_total{milestone=\"kickoff\",outcome=\"breached\",segment=\"smb\"}",
            1.0,
        ),
        (
            "handoff_milestone_total{milestone=\"kickoff\",outcome=\"met_late\",segment=\"smb\"}",
            1.0,
        ),
        (
            "handoff_escalations_total{level=\"1\",milestone=\"kickoff\"}",
            1.0,
        ),
        (
            "handoff_completed_total{outcome=\"completed\",segment=\"smb\"}",
            1.0,
        ),
        (
            "handoff_signals_rejected_total{signal=\"kickoff_held\"}",
            1.0,
        ),
        (
            "handoff_time_to_first_value_seconds_count{segment=\"smb\"}",
            1.0,
        ),
    ] {
        assert_eq!(sample(&scrape, series), Some(value), "{series}\n{scrape}");
    }

    // Every name a rule or panel reads is served, and no other handoff_*.
    let served = sample_names(&scrape);
    let missing: Vec<String> = ops_files::referenced_metrics()
        .into_iter()
        .filter(|name| !served.contains(name) && !ops_files::SYNTHETIC.contains(&name.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "not in the scrape: {missing:?}\n{scrape}"
    );
    let families: BTreeSet<&str> = scrape
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split(' ').next())
        .filter(|name| name.starts_with("handoff_"))
        .collect();
    assert_eq!(families, ops_files::SPEC_METRICS.into_iter().collect());
    assert!(served.contains("temporal_workflow_task_schedule_to_start_latency_seconds_bucket"));
    assert!(scrape.contains("temporal_workflow_task_execution_latency_seconds_bucket{"));
    assert!(
        scrape.contains("le=\"60\""),
        "bucket overrides reach the alert thresholds"
    );

    // SIGTERM: never ready again, and the process exits cleanly.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(worker.child.id() as libc::pid_t, libc::SIGTERM) };
    // The signal takes a moment to arrive; once not ready, never ready again.
    let mut not_ready = false;
    let exited = wait_until("worker exit", Duration::from_secs(20), || {
        if let Some((status, _)) = http_get(worker.port, "/readyz") {
            assert!(!(not_ready && status == 200), "ready again after SIGTERM");
            not_ready |= status == 503;
        }
        worker.child.try_wait().unwrap()
    });
    assert!(exited.success(), "{exited:?}");

    // The attainment report reads the review the completed handoff left.
    let report: Value = serde_json::from_str(&worker.ok(stack, &["report", "--json"])).unwrap();
    assert_eq!(report["handoffs"], 1, "{report:#}");
    let smb = &report["segments"][0];
    assert_eq!(smb["segment"], "smb");
    let kickoff = smb["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["milestone"] == "kickoff")
        .unwrap();
    assert_eq!(
        (kickoff["total"].as_u64(), kickoff["met_late"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(smb["median_time_to_first_value_days"].as_f64().unwrap() > 0.0);
    let table = worker.ok(stack, &["report", "--since", "2000-01-01"]);
    assert!(
        table.contains("first_value") && table.contains("MET LATE"),
        "{table}"
    );
    let later = worker.ok(stack, &["report", "--since", "2999-01-01", "--json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&later).unwrap()["handoffs"],
        0
    );
}

/// An OTLP/gRPC trace collector that keeps what it receives.
#[derive(Clone, Default)]
struct Collector {
    received: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.received.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    /// Names of spans that carry `workflow_id` as `temporalWorkflowID`.
    fn spans_of(&self, workflow_id: &str) -> BTreeSet<String> {
        let received = self.received.lock().unwrap();
        received
            .iter()
            .flat_map(|request| &request.resource_spans)
            .flat_map(|resource| &resource.scope_spans)
            .flat_map(|scope| &scope.spans)
            .filter(|span| {
                span.attributes.iter().any(|attribute| {
                    attribute.key == "temporalWorkflowID"
                        && matches!(
                            attribute.value.as_ref().and_then(|v| v.value.as_ref()),
                            Some(AnyValue::StringValue(value)) if value == workflow_id
                        )
                })
            })
            .map(|span| span.name.clone())
            .collect()
    }
}

#[test]
fn activity_spans_reach_an_otlp_collector_with_the_workflow_id() {
    let stack = stack();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let collector = Collector::default();
    let port = free_port();
    let service = TraceServiceServer::new(collector.clone());
    runtime.spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve(([127, 0, 0, 1], port).into())
            .await
            .unwrap();
    });
    let endpoint = format!("http://127.0.0.1:{port}");
    let worker = OwnWorker::spawn(
        stack,
        "traced",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "200".to_owned()),
        ],
    );

    let id = unique("traced");
    worker.start(stack, &bundle(&id, "smb"), "1");
    worker.signal(stack, &format!("manual:{id}"), "contract_signed", json!({}));

    let workflow_id = format!("handoff-manual-{id}");
    let spans = wait_until("activity spans at the collector", QUICK, || {
        let spans = collector.spans_of(&workflow_id);
        spans.contains("RunActivity:create_tasks").then_some(spans)
    });
    assert!(spans.contains("RunActivity:plan_handoff"), "{spans:?}");
    drop(worker);
}

/// Every string in a JSON document, and what base64 payload data decodes to.
fn texts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) => {
            out.push(text.clone());
            if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text) {
                out.push(String::from_utf8_lossy(&bytes).into_owned());
            }
        }
        Value::Array(items) => items.iter().for_each(|item| texts(item, out)),
        Value::Object(map) => map.iter().for_each(|(key, item)| {
            out.push(key.clone());
            texts(item, out);
        }),
        _ => {}
    }
}

fn temporal_json(stack: &Stack, args: &[&str]) -> Value {
    let output = Command::new(temporal_bin())
        .args(args)
        .args(["--address", &stack.address, "--output", "json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The parts of a history an operator sees without opening payloads:
/// summaries of timers and activities, search attribute upserts.
fn metadata_of_history(history: &Value, out: &mut Vec<String>) {
    for event in history["events"].as_array().unwrap() {
        for field in [
            "userMetadata",
            "upsertWorkflowSearchAttributesEventAttributes",
        ] {
            if let Some(value) = event.get(field) {
                texts(value, out);
            }
        }
    }
}

#[test]
fn no_contact_personal_data_reaches_ids_summaries_or_search_attributes() {
    let stack = stack();
    let id = unique("private");
    let deal = format!("manual:{id}");
    let contact = bundle(&id, "enterprise")["contacts"][0].clone();
    let (name, email) = (
        contact["name"].as_str().unwrap(),
        contact["email"].as_str().unwrap(),
    );
    stack.start(&bundle(&id, "enterprise"), &[]);
    stack.signal(&deal, "contract_signed", json!({}), &[]);
    stack.signal(&deal, "security_cleared", json!({}), &[]);
    stack.signal(&deal, "kickoff_held", json!({}), &[]);
    stack.wait_status(&deal, "onboarding", QUICK, |s| s["stage"] == "onboarding");

    let workflow_id = format!("handoff-manual-{id}");
    let described = temporal_json(
        stack,
        &["workflow", "describe", "--workflow-id", &workflow_id],
    );
    let history = temporal_json(stack, &["workflow", "show", "--workflow-id", &workflow_id]);
    let mut seen = vec![workflow_id.clone()];
    texts(&described, &mut seen);
    metadata_of_history(&history, &mut seen);

    let joined = seen.join("\n");
    assert!(
        joined.contains("Example Corp"),
        "the summary names the account: {joined}"
    );
    assert!(
        joined.contains("create tasks"),
        "activity summaries are there"
    );
    for secret in [name, email] {
        assert!(
            !joined.contains(secret),
            "{secret} visible in Temporal:\n{joined}"
        );
    }
    let log = std::fs::read_to_string(stack.dir.join("dev.log")).unwrap();
    assert!(!log.contains(email), "the worker logged a contact");
}

fn listed(stack: &Stack, filters: &[&str]) -> Vec<String> {
    let mut args = vec!["deal", "list", "--json"];
    args.extend_from_slice(filters);
    let rows: Vec<Value> = serde_json::from_str(&stack.ok(&args)).unwrap();
    let mut ids: Vec<String> = rows
        .iter()
        .map(|r| r["deal_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[test]
fn deal_list_filters_by_stage_segment_owner_risk_deadline_and_status() {
    let stack = stack();
    let owner = unique("owner").replace('-', "_");
    let with_owner = |id: &str, segment: &str| {
        let mut bundle = bundle(id, segment);
        bundle["owners"]["handoff_owner"] = json!(owner);
        bundle
    };
    let ids: Vec<String> = ["risky", "calm", "lost"]
        .iter()
        .map(|p| unique(p))
        .collect();
    let (risky, calm, lost) = (&ids[0], &ids[1], &ids[2]);
    stack.start(&with_owner(risky, "smb"), &["--time-scale", "20000"]);
    stack.start(&with_owner(calm, "enterprise"), &[]);
    stack.start(&with_owner(lost, "smb"), &[]);
    stack.signal(
        &format!("manual:{risky}"),
        "contract_signed",
        json!({}),
        &[],
    );
    // Lost once planned, so its owner is already in visibility.
    let lost_deal = format!("manual:{lost}");
    stack.signal(&lost_deal, "contract_signed", json!({}), &[]);
    stack.wait_status(&lost_deal, "kickoff", QUICK, |s| s["stage"] == "kickoff");
    stack.signal(&lost_deal, "deal_lost", json!({ "reason": "deleted" }), &[]);
    stack.wait_status(
        &format!("manual:{risky}"),
        "the breach",
        Duration::from_secs(90),
        |s| s["at_risk"] == true,
    );

    let mine = ["--owner", owner.as_str()];
    let mut all = vec![risky.clone(), calm.clone(), lost.clone()];
    all.sort();
    // Visibility catches up within seconds; poll until it shows all three.
    wait_until("visibility", QUICK, || {
        let running = listed(stack, &mine);
        let every = listed(stack, &[&mine[..], &["--all"]].concat());
        let risky_only = listed(stack, &[&mine[..], &["--at-risk"]].concat());
        (running.len() == 2 && every == all && risky_only == [risky.clone()]).then_some(())
    });
    assert_eq!(
        listed(stack, &[&mine[..], &["--segment", "enterprise"]].concat()),
        [calm.as_str()]
    );
    assert_eq!(
        listed(stack, &[&mine[..], &["--stage", "kickoff"]].concat()),
        [risky.as_str()]
    );
    assert_eq!(
        listed(
            stack,
            &[&mine[..], &["--stage", "cancelled", "--all"]].concat()
        ),
        [lost.as_str()]
    );
    // The calm deal waits for its security gate, days away at time scale 1.
    assert!(!listed(stack, &[&mine[..], &["--due-within", "1h"]].concat()).contains(calm));
    assert!(listed(stack, &[&mine[..], &["--due-within", "3650days"]].concat()).contains(calm));
    assert_eq!(
        listed(stack, &[&mine[..], &["--limit", "1"]].concat()).len(),
        1
    );
}
