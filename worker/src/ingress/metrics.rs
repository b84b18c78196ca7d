//! The receiver's own metrics, on its own `/metrics`: SPEC §10 asks that
//! every request be accounted for, so these sit beside the §9 families.

use prometheus::{Encoder as _, IntCounterVec, Opts, Registry, TextEncoder};

const SOURCES: [&str; 3] = ["generic", "hubspot", "salesforce"];
const OUTCOMES: [&str; 7] = [
    "accepted",
    "duplicate",
    "late",
    "ignored",
    "unauthorized",
    "malformed",
    "unavailable",
];

/// Counters of `handoff ingress`.
pub(crate) struct IngressMetrics {
    registry: Registry,
    requests: IntCounterVec,
    signature_failures: IntCounterVec,
    duplicates: IntCounterVec,
    late: IntCounterVec,
    unknown_stages: IntCounterVec,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let counter = IntCounterVec::new(Opts::new(name, help), labels)
        .expect("the metric name and labels are valid");
    registry
        .register(Box::new(counter.clone()))
        .expect("each metric is registered once");
    counter
}

/// A fixed label value, so a sender cannot grow the series.
fn known<'a>(value: &'a str, known: &[&'static str]) -> &'a str {
    if known.contains(&value) {
        value
    } else {
        "other"
    }
}

impl IngressMetrics {
    /// Registers every family, with each source's series at zero.
    pub(crate) fn new() -> Self {
        let registry = Registry::new();
        let metrics = Self {
            requests: counter(
                &registry,
                "handoff_ingress_requests_total",
                "Webhook events by source and outcome",
                &["source", "outcome"],
            ),
            signature_failures: counter(
                &registry,
                "handoff_ingress_signature_failures_total",
                "Webhook requests refused for a missing or wrong signature",
                &["source"],
            ),
            duplicates: counter(
                &registry,
                "handoff_ingress_duplicates_total",
                "Webhook events acknowledged as already applied",
                &["source"],
            ),
            late: counter(
                &registry,
                "handoff_ingress_late_events_total",
                "Webhook events for finished handoffs or older than the last stage change",
                &["source"],
            ),
            unknown_stages: counter(
                &registry,
                "handoff_ingress_unknown_stages_total",
                "CRM stage ids the stage catalog does not know",
                &["source"],
            ),
            registry,
        };
        for source in SOURCES {
            for family in [
                &metrics.signature_failures,
                &metrics.duplicates,
                &metrics.late,
                &metrics.unknown_stages,
            ] {
                family.with_label_values(&[source]);
            }
        }
        metrics
    }

    pub(crate) fn request(&self, source: &str, outcome: &str) {
        self.requests
            .with_label_values(&[known(source, &SOURCES), known(outcome, &OUTCOMES)])
            .inc();
    }

    pub(crate) fn signature_failure(&self, source: &str) {
        self.signature_failures
            .with_label_values(&[known(source, &SOURCES)])
            .inc();
    }

    pub(crate) fn duplicate(&self, source: &str) {
        self.duplicates
            .with_label_values(&[known(source, &SOURCES)])
            .inc();
    }

    pub(crate) fn late(&self, source: &str) {
        self.late
            .with_label_values(&[known(source, &SOURCES)])
            .inc();
    }

    pub(crate) fn unknown_stage(&self, source: &str) {
        self.unknown_stages
            .with_label_values(&[known(source, &SOURCES)])
            .inc();
    }

    /// The text exposition format.
    pub(crate) fn render(&self) -> String {
        let mut buffer = Vec::new();
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}
