//! Where the engine's business facts go: the worker installs one sink, which
//! turns them into Prometheus counters.
//!
//! Workflow code calls [`emit`] only when it is not replaying, so a fact is
//! counted once when it happens and never again on replay or cache eviction.
//! Writing to an in-memory counter is not an effect on the handoff, so it does
//! not threaten determinism.

use std::sync::OnceLock;

use crate::engine::Observation;

/// Receives business facts as they happen.
pub trait ObservationSink: Send + Sync {
    /// Records one fact.
    fn record(&self, observation: &Observation);
}

static SINK: OnceLock<Box<dyn ObservationSink>> = OnceLock::new();

/// Installs the process's sink; only the first call takes effect, and the
/// return value says whether this one did.
pub fn install(sink: Box<dyn ObservationSink>) -> bool {
    SINK.set(sink).is_ok()
}

/// Hands facts to the installed sink, if any.
pub fn emit(observations: &[Observation]) {
    if let Some(sink) = SINK.get() {
        for observation in observations {
            sink.record(observation);
        }
    }
}
