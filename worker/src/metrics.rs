//! The business metrics of SPEC §9, and nothing else named `handoff_*`.
//!
//! Counters come from two places. The workflow hands its business facts
//! ([`Observation`]) to the sink installed here, only when it is not replaying
//! history, so a fact is counted once. The activities count the effects they
//! delivered (tasks created, notifications) through
//! [`handoff_activities::effects`]. The two gauges are set from a periodic
//! visibility count (see `open_handoffs`).
//!
//! Every label value is checked against a fixed list; anything else becomes
//! `unknown` (or `other`), so a bad signal name or a custom playbook cannot
//! grow the number of series without bound.

use prometheus::{
    Encoder as _, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use handoff_activities::effects::EffectMeter;
use handoff_workflows::engine::Observation;
use handoff_workflows::message::SIGNAL_NAMES;
use handoff_workflows::observe::ObservationSink;
use handoff_workflows::playbook::{Gate, MILESTONES, SEGMENTS};

/// Stages of a running handoff, the values of `handoff_open{stage}`.
pub(crate) const OPEN_STAGES: [&str; 4] =
    ["awaiting_bundle", "awaiting_gates", "kickoff", "onboarding"];

/// Day length of the time-to-first-value buckets.
const DAY: f64 = 86_400.0;

/// Upper bounds of `handoff_time_to_first_value_seconds`, in days: the
/// contract's day 90 sits in the middle, and late handoffs still land in a
/// finite bucket up to about half a year.
const TTFV_BUCKET_DAYS: [f64; 12] = [
    7.0, 14.0, 21.0, 30.0, 45.0, 60.0, 75.0, 90.0, 105.0, 120.0, 150.0, 180.0,
];

const MILESTONE_OUTCOMES: [&str; 4] = ["met", "met_late", "breached", "waived"];
const COMPLETION_OUTCOMES: [&str; 6] = [
    "completed",
    "cancelled",
    "lost",
    "deleted",
    "gate_timeout",
    "operator",
];
const LEVELS: [&str; 3] = ["1", "2", "3"];
const SINKS: [&str; 4] = ["ledger", "webhook", "slack", "email"];
const NOTIFICATION_KINDS: [&str; 6] = [
    "reminder",
    "escalation",
    "milestone_met",
    "milestone_met_late",
    "handoff_cancelled",
    "post_close_review",
];
const DELIVERY_OUTCOMES: [&str; 3] = ["delivered", "failed", "skipped"];

/// The business metrics in their own registry, rendered after the SDK's.
///
/// Cloning is cheap and every clone records into the same series.
#[derive(Clone)]
pub(crate) struct BusinessMetrics {
    registry: Registry,
    started: IntCounterVec,
    gate_passed: IntCounterVec,
    milestone: IntCounterVec,
    escalations: IntCounterVec,
    time_to_first_value: HistogramVec,
    tasks_created: IntCounterVec,
    notifications: IntCounterVec,
    signals_rejected: IntCounterVec,
    completed: IntCounterVec,
    open: IntGaugeVec,
    due_within_24h: IntGauge,
}

impl BusinessMetrics {
    /// Registers every business metric.
    pub(crate) fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let counter = IntCounterVec::new(Opts::new(name, help), labels)
                .expect("metric names and labels are valid");
            registry
                .register(Box::new(counter.clone()))
                .expect("each metric is registered once");
            counter
        };
        let metrics = Self {
            started: counter(
                "handoff_started_total",
                "Handoffs whose plan was frozen.",
                &["segment"],
            ),
            gate_passed: counter(
                "handoff_gate_passed_total",
                "Gates passed.",
                &["gate", "segment"],
            ),
            milestone: counter(
                "handoff_milestone_total",
                "Milestones resolved, by outcome; a breach met later counts once as breached and once as met_late.",
                &["milestone", "segment", "outcome"],
            ),
            escalations: counter(
                "handoff_escalations_total",
                "Escalation notifications sent, by ladder level.",
                &["milestone", "level"],
            ),
            time_to_first_value: histogram(&registry),
            tasks_created: counter(
                "handoff_tasks_created_total",
                "Tasks written to a sink for the first time.",
                &["sink"],
            ),
            notifications: counter(
                "handoff_notifications_total",
                "Notification deliveries, by channel and outcome.",
                &["channel", "kind", "outcome"],
            ),
            signals_rejected: counter(
                "handoff_signals_rejected_total",
                "Signals whose payload could not be used.",
                &["signal"],
            ),
            completed: counter(
                "handoff_completed_total",
                "Handoffs that ended, by outcome (completed or the cancel reason).",
                &["segment", "outcome"],
            ),
            open: gauge_vec(&registry),
            due_within_24h: {
                let gauge = IntGauge::new(
                    "handoff_due_within_24h",
                    "Running handoffs whose next timer fires within 24 hours (wall time).",
                )
                .expect("metric name is valid");
                registry
                    .register(Box::new(gauge.clone()))
                    .expect("each metric is registered once");
                gauge
            },
            registry,
        };
        metrics.seed_gauges();
        metrics
    }

    /// Gauges start at zero, so a dashboard shows 0 rather than no data
    /// before the first visibility count.
    fn seed_gauges(&self) {
        for stage in OPEN_STAGES {
            self.open.with_label_values(&[stage]).set(0);
        }
        self.due_within_24h.set(0);
    }

    /// Sets `handoff_open{stage}` for one stage of [`OPEN_STAGES`].
    pub(crate) fn set_open(&self, stage: &str, count: i64) {
        let stage = bounded(stage, &OPEN_STAGES, "unknown");
        self.open.with_label_values(&[stage]).set(count);
    }

    /// Sets `handoff_due_within_24h`.
    pub(crate) fn set_due_within_24h(&self, count: i64) {
        self.due_within_24h.set(count);
    }

    /// The Prometheus text exposition of the business metrics.
    pub(crate) fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("encoding to a Vec cannot fail");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }
}

fn histogram(registry: &Registry) -> HistogramVec {
    let buckets = TTFV_BUCKET_DAYS.iter().map(|days| days * DAY).collect();
    let histogram = HistogramVec::new(
        HistogramOpts::new(
            "handoff_time_to_first_value_seconds",
            "Business seconds from the contract signature to first_value.",
        )
        .buckets(buckets),
        &["segment"],
    )
    .expect("metric name and buckets are valid");
    registry
        .register(Box::new(histogram.clone()))
        .expect("each metric is registered once");
    histogram
}

fn gauge_vec(registry: &Registry) -> IntGaugeVec {
    let gauge = IntGaugeVec::new(
        Opts::new(
            "handoff_open",
            "Running handoffs by stage, from a periodic visibility count.",
        ),
        &["stage"],
    )
    .expect("metric name and labels are valid");
    registry
        .register(Box::new(gauge.clone()))
        .expect("each metric is registered once");
    gauge
}

/// `value` when it is one of `known`, else `fallback`.
fn bounded<'a>(value: &'a str, known: &[&str], fallback: &'a str) -> &'a str {
    if known.contains(&value) {
        value
    } else {
        fallback
    }
}

fn segment(value: &str) -> &str {
    bounded(value, &SEGMENTS, "unknown")
}

/// Milestones and gates share the `milestone` label: escalations climb both.
fn milestone(value: &str) -> &str {
    let is_gate = Gate::ALL.iter().any(|gate| gate.name() == value);
    if is_gate || MILESTONES.contains(&value) {
        value
    } else {
        "other"
    }
}

impl ObservationSink for BusinessMetrics {
    fn record(&self, observation: &Observation) {
        match observation {
            Observation::Started { segment: s } => {
                self.started.with_label_values(&[segment(s)]).inc();
            }
            Observation::GatePassed { gate, segment: s } => {
                let gate = milestone(gate);
                self.gate_passed
                    .with_label_values(&[gate, segment(s)])
                    .inc();
            }
            Observation::Milestone {
                milestone: m,
                segment: s,
                outcome,
            } => {
                let outcome = bounded(outcome, &MILESTONE_OUTCOMES, "other");
                self.milestone
                    .with_label_values(&[milestone(m), segment(s), outcome])
                    .inc();
            }
            Observation::Escalation {
                milestone: m,
                level,
            } => {
                let level = level.to_string();
                let level = bounded(&level, &LEVELS, "other");
                self.escalations
                    .with_label_values(&[milestone(m), level])
                    .inc();
            }
            Observation::TimeToFirstValue {
                segment: s,
                seconds,
            } => {
                self.time_to_first_value
                    .with_label_values(&[segment(s)])
                    .observe(*seconds);
            }
            Observation::Completed {
                segment: s,
                outcome,
            } => {
                let outcome = bounded(outcome, &COMPLETION_OUTCOMES, "other");
                self.completed
                    .with_label_values(&[segment(s), outcome])
                    .inc();
            }
            Observation::SignalRejected { signal } => {
                let signal = bounded(signal, &SIGNAL_NAMES, "unknown");
                self.signals_rejected.with_label_values(&[signal]).inc();
            }
        }
    }
}

impl EffectMeter for BusinessMetrics {
    fn tasks_created(&self, sink: &str, count: u64) {
        let sink = bounded(sink, &SINKS, "other");
        self.tasks_created.with_label_values(&[sink]).inc_by(count);
    }

    fn notification(&self, channel: &str, kind: &str, outcome: &str) {
        let channel = bounded(channel, &SINKS, "other");
        let kind = bounded(kind, &NOTIFICATION_KINDS, "other");
        let outcome = bounded(outcome, &DELIVERY_OUTCOMES, "other");
        self.notifications
            .with_label_values(&[channel, kind, outcome])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
    }

    #[test]
    fn observations_become_bounded_series() {
        let metrics = BusinessMetrics::new();
        metrics.record(&Observation::SignalRejected {
            signal: "contract_signed".into(),
        });
        metrics.record(&Observation::SignalRejected {
            signal: "<script>".into(),
        });
        metrics.record(&Observation::Milestone {
            milestone: "go_live_party".into(),
            segment: "galactic".into(),
            outcome: "breached",
        });
        metrics.record(&Observation::Escalation {
            milestone: "security".into(),
            level: 7,
        });

        let text = metrics.render();
        let rejected = "handoff_signals_rejected_total{signal=\"contract_signed\"}";
        assert_eq!(sample(&text, rejected), Some(1.0));
        let unknown = "handoff_signals_rejected_total{signal=\"unknown\"}";
        assert_eq!(sample(&text, unknown), Some(1.0));
        let clamped =
            "handoff_milestone_total{milestone=\"other\",outcome=\"breached\",segment=\"unknown\"}";
        assert_eq!(sample(&text, clamped), Some(1.0), "{text}");
        let level = "handoff_escalations_total{level=\"other\",milestone=\"security\"}";
        assert_eq!(sample(&text, level), Some(1.0), "{text}");
        assert!(!text.contains("<script>"));
    }

    #[test]
    fn time_to_first_value_buckets_reach_half_a_year() {
        let metrics = BusinessMetrics::new();
        metrics.record(&Observation::TimeToFirstValue {
            segment: "smb".into(),
            seconds: 40.0 * DAY,
        });

        let text = metrics.render();
        let bucket = |le: &str| {
            sample(
                &text,
                &format!(
                    "handoff_time_to_first_value_seconds_bucket{{segment=\"smb\",le=\"{le}\"}}"
                ),
            )
        };
        assert_eq!(bucket("2592000"), Some(0.0), "{text}");
        assert_eq!(bucket("3888000"), Some(1.0));
        assert_eq!(bucket("15552000"), Some(1.0));
    }

    #[test]
    fn gauges_start_at_zero_and_effects_are_counted() {
        let metrics = BusinessMetrics::new();
        metrics.tasks_created("ledger", 4);
        metrics.notification("ledger", "escalation", "delivered");
        metrics.set_open("kickoff", 3);

        let text = metrics.render();
        assert_eq!(sample(&text, "handoff_open{stage=\"kickoff\"}"), Some(3.0));
        assert_eq!(
            sample(&text, "handoff_open{stage=\"onboarding\"}"),
            Some(0.0)
        );
        assert_eq!(sample(&text, "handoff_due_within_24h"), Some(0.0));
        assert_eq!(
            sample(&text, "handoff_tasks_created_total{sink=\"ledger\"}"),
            Some(4.0)
        );
        let delivered = "handoff_notifications_total{channel=\"ledger\",kind=\"escalation\",outcome=\"delivered\"}";
        assert_eq!(sample(&text, delivered), Some(1.0));
    }
}
