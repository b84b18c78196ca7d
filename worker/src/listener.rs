//! The worker's one HTTP listener: `/metrics`, `/healthz` and `/readyz`.
//!
//! The SDK's Prometheus exporter serves only `/metrics` on a socket of its
//! own and keeps its registry private, so it listens on an ephemeral loopback
//! port that nothing else is told about; `/metrics` here reads it and appends
//! the business metrics. Operators see one address, `HANDOFF_METRICS_ADDR`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tracing::warn;

use crate::exit::Exit;
use crate::metrics::BusinessMetrics;

/// Content type of the Prometheus text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Liveness and readiness of the worker, shared with the run loop.
#[derive(Debug, Clone, Default)]
pub(crate) struct Health {
    polling: Arc<AtomicBool>,
    draining: Arc<AtomicBool>,
}

impl Health {
    /// The worker is connected and its pollers are running.
    pub(crate) fn set_polling(&self) {
        self.polling.store(true, Ordering::SeqCst);
    }

    /// Shutdown began: readiness goes false for good, so no new traffic or
    /// rollout waits on this process.
    pub(crate) fn set_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    fn readiness(&self) -> Result<(), &'static str> {
        if self.draining.load(Ordering::SeqCst) {
            Err("shutting down")
        } else if !self.polling.load(Ordering::SeqCst) {
            Err("starting")
        } else {
            Ok(())
        }
    }
}

#[derive(Clone)]
struct Shared {
    health: Health,
    business: BusinessMetrics,
    sdk_exporter: SocketAddr,
}

/// Binds `addr` and serves the three paths until the process ends.
pub(crate) async fn serve(
    addr: SocketAddr,
    health: Health,
    business: BusinessMetrics,
    sdk_exporter: SocketAddr,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| Exit::config(format!("cannot listen for metrics on {addr}: {e}")))?;
    let bound = listener.local_addr()?;
    let shared = Shared {
        health,
        business,
        sdk_exporter,
    };
    let router = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(shared);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            warn!(error = %error, "metrics listener stopped");
        }
    });
    Ok(bound)
}

async fn metrics(State(shared): State<Shared>) -> Response {
    let sdk = match scrape(shared.sdk_exporter).await {
        Ok(text) => text,
        Err(error) => {
            warn!(error = %error, "SDK metrics unavailable");
            String::new()
        }
    };
    let body = format!("{sdk}{}", shared.business.render());
    ([(header::CONTENT_TYPE, TEXT_FORMAT)], body).into_response()
}

/// Alive while the process answers: never a check of Temporal or the
/// ledger, or an outage of either would restart every replica at once.
async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(shared): State<Shared>) -> Response {
    match shared.health.readiness() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        )
            .into_response(),
    }
}

/// The SDK exporter's text, fetched over a one-shot HTTP/1.0 request.
async fn scrape(addr: SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("malformed response from the SDK exporter"))?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        let status = head.lines().next().unwrap_or_default().to_owned();
        return Err(std::io::Error::other(format!(
            "SDK exporter answered {status}"
        )));
    }
    Ok(body.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_needs_polling_and_ends_with_shutdown() {
        let health = Health::default();
        assert_eq!(health.readiness(), Err("starting"));
        health.set_polling();
        assert_eq!(health.readiness(), Ok(()));
        health.set_draining();
        assert_eq!(health.readiness(), Err("shutting down"));
    }
}
