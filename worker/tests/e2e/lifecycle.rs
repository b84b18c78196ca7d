//! Starting and stopping: the dev stack, the worker's start-up checks, and
//! cancellation from Temporal.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::harness::{
    BIN, bundle, describe, free_port, keep_alive, stack, temporal_bin, unique, wait_for_log,
    wait_until,
};

/// Pids of a process's children, from procfs.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn alive(pid: u32) -> bool {
    // A zombie has no cmdline left; anything else still runs.
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|status| {
        !status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains("Z"))
    })
}

fn start_dev(dir: &std::path::Path) -> (u32, u32) {
    let mut command = Command::new(BIN);
    command
        .args([
            "dev",
            "--port",
            &free_port().to_string(),
            "--ui-port",
            &free_port().to_string(),
        ])
        .arg("--state-dir")
        .arg(dir)
        .env("HANDOFF_TEMPORAL_BIN", temporal_bin())
        .env("HANDOFF_METRICS_ADDR", format!("127.0.0.1:{}", free_port()))
        .env(
            "HANDOFF_DATABASE_URL",
            format!("sqlite://{}/ledger.db", dir.display()),
        )
        .env("HANDOFF_LOG_FORMAT", "human");
    let log = dir.join("dev.log");
    std::fs::create_dir_all(dir).unwrap();
    let pid = keep_alive(command, &log);
    wait_for_log(&log, "worker started", Duration::from_secs(90));
    let server = wait_until("the dev server child", Duration::from_secs(5), || {
        children(pid).first().copied()
    });
    (pid, server)
}

#[test]
fn the_dev_stack_leaves_no_orphan_on_sigterm_or_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    for signal in [libc::SIGTERM, libc::SIGKILL] {
        let (dev, server) = start_dev(&dir.path().join(format!("signal-{signal}")));
        // SAFETY: signalling a process this test started.
        unsafe { libc::kill(dev as libc::pid_t, signal) };
        wait_until("the dev stack to exit", Duration::from_secs(30), || {
            (!alive(dev)).then_some(())
        });
        wait_until(
            "the Temporal server to exit",
            Duration::from_secs(30),
            || (!alive(server)).then_some(()),
        );
    }
}

#[test]
fn the_worker_refuses_to_start_without_its_search_attributes() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Command::new(temporal_bin());
    server
        .args([
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            &port.to_string(),
        ])
        .args(["--log-level", "error"]);
    keep_alive(server, &dir.path().join("bare.log"));
    let address = format!("127.0.0.1:{port}");
    let run = || {
        Command::new(BIN)
            .arg("worker")
            .env("TEMPORAL_ADDRESS", &address)
            .env(
                "HANDOFF_DATABASE_URL",
                format!("sqlite://{}/ledger.db", dir.path().display()),
            )
            .env("HANDOFF_METRICS_ADDR", format!("127.0.0.1:{}", free_port()))
            .output()
            .unwrap()
    };
    let output = wait_until("the bare server to answer", Duration::from_secs(30), || {
        let output = run();
        (!String::from_utf8_lossy(&output.stderr).contains("cannot reach")).then_some(output)
    });
    assert_eq!(output.status.code(), Some(64), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("NextDeadline (Datetime) is missing"),
        "{stderr}"
    );
    assert!(
        stderr.contains("temporal operator search-attribute create --name DealId --type Keyword"),
        "{stderr}"
    );

    // Every attribute there, but one with the wrong type: named, with the fix.
    let operator = |args: &[&str]| {
        let output = Command::new(temporal_bin())
            .args(["operator", "search-attribute"])
            .args(args)
            .args(["--address", &address])
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {}", describe(&output));
    };
    for (name, kind) in handoff_workflows::deal_handoff::SEARCH_ATTRIBUTES {
        let kind = if name == "DealAmount" {
            "Keyword"
        } else {
            kind
        };
        operator(&["create", "--name", name, "--type", kind]);
    }
    let output = run();
    assert_eq!(output.status.code(), Some(64), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("DealAmount is registered as KEYWORD, but handoffs write it as Double"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("DealId"),
        "only the wrong one is named: {stderr}"
    );
    assert!(
        stderr.contains("temporal operator search-attribute remove --name DealAmount"),
        "{stderr}"
    );

    // Fixed as the message says, the worker starts (and stops on SIGTERM).
    operator(&["remove", "--name", "DealAmount", "--yes"]);
    operator(&["create", "--name", "DealAmount", "--type", "Double"]);
    let mut worker = Command::new(BIN);
    worker
        .arg("worker")
        .env("TEMPORAL_ADDRESS", &address)
        .env(
            "HANDOFF_DATABASE_URL",
            format!("sqlite://{}/ledger.db", dir.path().display()),
        )
        .env("HANDOFF_METRICS_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("HANDOFF_TASK_QUEUE", "attributes-fixed");
    let log = dir.path().join("fixed.log");
    let pid = keep_alive(worker, &log);
    crate::harness::wait_for_log(&log, "worker started", Duration::from_secs(60));
    // SAFETY: signalling the worker this test started.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
}

#[test]
fn bad_configuration_exits_64_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("handoff.toml");
    std::fs::write(&config, "task_queue = \"q\"\ntime_scale = 0\n").unwrap();
    let output = Command::new(BIN)
        .args(["worker", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("time scale must be at least 1"));

    std::fs::write(&config, "[crm]\nwon_stage = [\"Won\"]\n").unwrap();
    let output = Command::new(BIN)
        .args(["deal", "list", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("won_stage"));
}

#[test]
fn a_cancellation_from_temporal_runs_the_cleanup() {
    let stack = stack();
    let id = unique("operator");
    let deal = format!("manual:{id}");
    stack.start(&bundle(&id, "smb"), &[]);
    stack.signal(&deal, "contract_signed", json!({}), &[]);
    wait_until("tasks", Duration::from_secs(30), || {
        Some(stack.tasks(&deal)).filter(|t| t.len() == 4)
    });

    let output = Command::new(temporal_bin())
        .args([
            "workflow",
            "cancel",
            "--address",
            &stack.address,
            "--workflow-id",
            &format!("handoff-manual-{id}"),
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let status = stack.wait_status(
        &deal,
        "operator cancellation",
        Duration::from_secs(30),
        |s| s["stage"] == "cancelled" && s["notifications"]["sent"] == 1,
    );
    assert_eq!(status["cancel_reason"], "operator");
    assert!(
        stack
            .tasks(&deal)
            .iter()
            .all(|t| t["status"] == "cancelled")
    );
}

// Regression (#2): printing to a pipe whose reader had gone panicked.
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/ledger.db", dir.path().display());
    let mut command = std::process::Command::new(crate::harness::BIN);
    command
        .args(["tasks", "list", "--json", "--database-url", &url])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    // Close the read end before the child writes.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(output.status.code(), Some(101));
}

#[test]
fn encrypted_payloads_are_unreadable_in_temporal_and_readable_through_the_codec() {
    use base64::Engine as _;

    use crate::harness::{bundle, describe, free_port, stack, unique, wait_until};

    let stack = stack();
    let keys = "k2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=,k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    let queue = unique("codec");
    let mut worker = Command::new(crate::harness::BIN);
    worker.arg("worker");
    stack.configure(&mut worker);
    worker
        .env("HANDOFF_TASK_QUEUE", &queue)
        .env("HANDOFF_CODEC_KEYS", keys)
        .env("HANDOFF_METRICS_ADDR", format!("127.0.0.1:{}", free_port()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    crate::harness::with_parent_death_signal(&mut worker);
    let mut worker = worker.spawn().unwrap();

    let id = unique("sealed");
    let deal = format!("manual:{id}");
    let with_keys = [
        ("HANDOFF_CODEC_KEYS", keys),
        ("HANDOFF_TASK_QUEUE", queue.as_str()),
    ];
    let file = stack.write_json(&bundle(&id, "smb"));
    let output = stack.handoff_with(&["deal", "start", file.to_str().unwrap()], &with_keys);
    assert!(output.status.success(), "{}", describe(&output));
    let data = json!({}).to_string();
    let output = stack.handoff_with(
        &["deal", "signal", &deal, "contract_signed", "--data", &data],
        &with_keys,
    );
    assert!(output.status.success(), "{}", describe(&output));
    let status: serde_json::Value =
        wait_until("day 0 through the codec", Duration::from_secs(30), || {
            let output = stack.handoff_with(&["deal", "status", &deal, "--json"], &with_keys);
            let status: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
            (!status["day0"].is_null()).then_some(status)
        });
    assert_eq!(status["stage"], "kickoff");

    // At rest in Temporal: no bundle text, only ciphertext.
    let history = Command::new(crate::harness::temporal_bin())
        .args([
            "workflow",
            "show",
            "--address",
            &stack.address,
            "-o",
            "json",
            "-w",
        ])
        .arg(format!("handoff-manual-{id}"))
        .output()
        .unwrap();
    let history = String::from_utf8_lossy(&history.stdout).into_owned();
    assert!(
        history.contains("YmluYXJ5L2VuY3J5cHRlZA=="),
        "binary/encrypted payloads"
    );
    assert!(!history.contains("Example Corp") && !history.contains("a.person@example.com"));
    // Without the keys, the status cannot be read.
    let blind = stack.handoff(&["deal", "status", &deal, "--json"]);
    assert!(!blind.status.success());

    // Temporal UI's codec server opens what the history holds.
    let port = free_port();
    let mut server = Command::new(crate::harness::BIN);
    server
        .args(["codec-server", "--listen", &format!("127.0.0.1:{port}")])
        .env("HANDOFF_CODEC_KEYS", keys)
        .env("HANDOFF_CODEC_TOKEN", "operator-token")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    crate::harness::with_parent_death_signal(&mut server);
    let mut server = server.spawn().unwrap();
    let events: serde_json::Value = serde_json::from_str(&history).unwrap();
    let signal = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED")
        .unwrap();
    let body = json!({ "payloads": signal["workflowExecutionSignaledEventAttributes"]["input"]["payloads"] });
    let decoded = wait_until("the codec server", Duration::from_secs(20), || {
        post_json(port, "/decode", Some("operator-token"), &body.to_string())
    });
    assert!(decoded.starts_with("HTTP/1.1 200"), "{decoded}");
    let plain: serde_json::Value =
        serde_json::from_str(decoded.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let data = base64::engine::general_purpose::STANDARD
        .decode(plain["payloads"][0]["data"].as_str().unwrap())
        .unwrap();
    assert!(String::from_utf8_lossy(&data).contains("Example Corp"));
    let refused = post_json(port, "/decode", None, &body.to_string()).unwrap();
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");

    for child in [&mut server, &mut worker] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A minimal HTTP/1.1 POST over a loopback socket; `None` until it connects.
fn post_json(port: u16, path: &str, token: Option<&str>, body: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

#[test]
fn the_benchmark_runs_end_to_end_and_reports_every_measure() {
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args([
            "bench",
            "--deals",
            "4",
            "--breached",
            "3",
            "--open",
            "40",
            "--latency-samples",
            "3",
            "--histories",
        ])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/histories"))
        .arg("--out")
        .arg(out.path())
        .env("HANDOFF_TEMPORAL_BIN", temporal_bin())
        .env_remove("HANDOFF_CONFIG")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("| throughput, share of the ceiling |"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("bench.json")).unwrap()).unwrap();
    for measure in [
        "handoffs_per_second",
        "ceiling_handoffs_per_second",
        "cpu_ms_per_workflow_task",
        "peak_rss_mib",
        "signal_to_status_ms_p50",
    ] {
        assert!(
            report[measure].as_f64().unwrap() > 0.0,
            "{measure} in {report:#}"
        );
    }
    // The longest recorded history is the whole breached handoff; the
    // shortest shows what a replay costs before its events.
    assert_eq!(report["replay"]["history"], "breached.json", "{report:#}");
    assert_eq!(
        report["replay_shortest"]["history"], "happy.json",
        "{report:#}"
    );
    for replay in ["replay", "replay_shortest"] {
        assert!(report[replay]["ms"].as_f64().unwrap() > 0.0, "{report:#}");
    }
    let counted: f64 = report["counting"]
        .as_object()
        .unwrap()
        .values()
        .map(|segment| segment["billable_actions"].as_f64().unwrap())
        .sum();
    assert!(counted > 0.0, "{report:#}");
    assert!(!report["breached"].as_object().unwrap().is_empty());
    // The numbers describe the schedules only if every counting handoff
    // completed and no handoff refused a signal of its schedule.
    assert_eq!(
        report["counting_outcomes"],
        serde_json::json!({ "ended": { "completed": 4 }, "signals_refused": 0 }),
        "{report:#}"
    );
    assert_eq!(
        report["breached_outcomes"]["signals_refused"], 0,
        "{report:#}"
    );
}
