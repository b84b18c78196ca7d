//! Logs and traces: one `tracing` subscriber for the process.
//!
//! Logs go to stderr, JSON unless stderr is a terminal, filtered by
//! `RUST_LOG`. When `OTEL_EXPORTER_OTLP_ENDPOINT` is set, the long-running
//! commands also export spans over OTLP/gRPC: the SDK's `RunActivity` spans
//! carry `temporalWorkflowID`, so a trace backend finds every activity of a
//! handoff by its workflow id. The exporter reads the standard `OTEL_*`
//! variables (endpoint, headers, timeout, `OTEL_SERVICE_NAME`).

use std::io::IsTerminal as _;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::SpanExporter;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _, Registry};

use crate::cli::{Command, LogFormat};

/// Service name on exported spans unless `OTEL_SERVICE_NAME` says otherwise.
const SERVICE_NAME: &str = "handoff";

/// Flushes exported spans when dropped at the end of `main`.
pub(crate) struct TracingGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("warning: flushing traces failed: {error}");
        }
    }
}

/// Installs the subscriber. Long-running commands log at `info`; one-shot
/// commands stay quiet unless something goes wrong, so their output can be
/// piped.
pub(crate) fn init(command: &Command, format: Option<LogFormat>) -> TracingGuard {
    let long_running = matches!(
        command,
        Command::Worker | Command::Dev(_) | Command::Ingress(_)
    );
    let default = if long_running { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let format = format.unwrap_or(if std::io::stderr().is_terminal() {
        LogFormat::Human
    } else {
        LogFormat::Json
    });
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Human => logs.boxed(),
        LogFormat::Json => logs.json().flatten_event(true).boxed(),
    };

    let (provider, otlp_error) = match otlp_endpoint().filter(|_| long_running) {
        Some(_) => match tracer_provider() {
            Ok(provider) => (Some(provider), None),
            Err(error) => (None, Some(error)),
        },
        None => (None, None),
    };
    // Spans are exported at `info` whatever `RUST_LOG` says about logs.
    let traces = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(SERVICE_NAME))
            .with_filter(LevelFilter::INFO)
    });
    Registry::default()
        .with(logs.with_filter(filter))
        .with(traces)
        .init();
    if let Some(error) = otlp_error {
        tracing::warn!(error = %error, "OTLP trace export disabled");
    }
    TracingGuard { provider }
}

fn otlp_endpoint() -> Option<String> {
    std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|value| !value.trim().is_empty())
}

fn tracer_provider() -> anyhow::Result<SdkTracerProvider> {
    let exporter = SpanExporter::builder().with_tonic().build()?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(SERVICE_NAME);
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}
