//! What `ops/` says about metrics: the names its alert rules and dashboards
//! query, and the business metric names SPEC §9 allows.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

/// The `handoff_*` families of SPEC §9, and nothing else.
pub(crate) const SPEC_METRICS: [&str; 11] = [
    "handoff_started_total",
    "handoff_gate_passed_total",
    "handoff_milestone_total",
    "handoff_escalations_total",
    "handoff_time_to_first_value_seconds",
    "handoff_tasks_created_total",
    "handoff_notifications_total",
    "handoff_signals_rejected_total",
    "handoff_completed_total",
    "handoff_open",
    "handoff_due_within_24h",
];

/// Series Prometheus makes itself rather than scraping them.
pub(crate) const SYNTHETIC: [&str; 1] = ["up"];

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every PromQL expression in the alert rules and the dashboards.
pub(crate) fn expressions() -> Vec<String> {
    let mut exprs = Vec::new();
    for file in files(&repo().join("ops/prometheus"), ".rules.yaml") {
        let doc: Value = serde_yaml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        for group in doc["groups"].as_sequence().unwrap() {
            for rule in group["rules"].as_sequence().unwrap() {
                exprs.push(rule["expr"].as_str().unwrap().to_owned());
            }
        }
    }
    for file in files(&repo().join("ops/grafana"), ".json") {
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        collect_json_exprs(&doc, &mut exprs);
    }
    exprs
}

fn collect_json_exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", serde_json::Value::String(expr)) => out.push(expr.clone()),
                    _ => collect_json_exprs(value, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_json_exprs(v, out)),
        _ => {}
    }
}

/// Metric names an expression reads: identifiers of the worker's families,
/// plus Prometheus's own `up`.
pub(crate) fn metric_names(expr: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|token| {
            token.starts_with("temporal_") || token.starts_with("handoff_") || *token == "up"
        })
        .map(str::to_owned)
        .collect()
}

/// Every metric name `ops/` queries.
pub(crate) fn referenced_metrics() -> BTreeSet<String> {
    expressions().iter().flat_map(|e| metric_names(e)).collect()
}

pub(crate) fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}
