//! Counting the effects the activities delivered, for the worker's metrics.
//!
//! The worker installs one [`EffectMeter`] at start. Activities call
//! [`count_tasks_created`] and [`count_notification`] after an effect
//! landed (or finally failed), naming the sink or channel that carried it;
//! without a meter installed (tests, the CLI) the calls do nothing.

use std::sync::OnceLock;

/// Receives counts of delivered effects.
pub trait EffectMeter: Send + Sync {
    /// `count` tasks were written to `sink` for the first time.
    fn tasks_created(&self, sink: &str, count: u64);
    /// One notification of `kind` went through `channel` with `outcome`
    /// (`delivered`, `failed` or `skipped`).
    fn notification(&self, channel: &str, kind: &str, outcome: &str);
}

static METER: OnceLock<Box<dyn EffectMeter>> = OnceLock::new();

/// Installs the process's meter; only the first call takes effect, and the
/// return value says whether this one did.
pub fn install(meter: Box<dyn EffectMeter>) -> bool {
    METER.set(meter).is_ok()
}

/// Counts tasks newly written to `sink` (`ledger`, `webhook`, ...).
pub fn count_tasks_created(sink: &str, count: u64) {
    if let (Some(meter), true) = (METER.get(), count > 0) {
        meter.tasks_created(sink, count);
    }
}

/// Counts one notification delivery through `channel`.
pub fn count_notification(channel: &str, kind: &str, outcome: &str) {
    if let Some(meter) = METER.get() {
        meter.notification(channel, kind, outcome);
    }
}
