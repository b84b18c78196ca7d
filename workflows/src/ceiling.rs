//! `BenchCeiling`: the benchmark's yardstick. It receives the same signals
//! as a handoff and issues the same kinds of commands (activities, one timer
//! at a time cancelled by the next signal, a search attribute upsert) with no
//! business logic, so the server's and the SDK's cost per handoff can be told
//! apart from the engine's. Only `handoff bench` starts it.
// The SDK macros generate a marker constant per method, which cannot carry
// docs of its own.
#![allow(missing_docs)]

use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use temporalio_common::data_converters::RawValue;
use temporalio_macros::{activity_definitions, workflow, workflow_methods};
use temporalio_sdk::activities::ActivityError;
use temporalio_sdk::{
    ActivityOptions, CancellableFuture, SyncWorkflowContext, TimerResult, WorkflowContext,
    WorkflowContextView, WorkflowResult,
};

use crate::deal_handoff::HANDOFF_STAGE;

/// Workflow type name.
pub const CEILING_WORKFLOW_TYPE: &str = "BenchCeiling";

/// The event profile a ceiling run imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CeilingInput {
    /// Signals after which the run completes.
    pub signals: u32,
    /// Activities in the whole run, spread evenly over the signals and run
    /// one after another.
    pub activities: u32,
    /// Timers in the whole run: one is armed after each of the first
    /// signals, and cancelled by the next.
    pub timers: u32,
    /// Search attribute upserts in the whole run, spread over the signals.
    pub upserts: u32,
    /// Length of each timer, in seconds.
    pub timer_seconds: u64,
}

impl CeilingInput {
    /// How many of `total` fall to the `step`-th signal (1-based), so that
    /// every signal gets its share and the shares add up to `total`.
    pub fn share(&self, total: u32, step: u32) -> u32 {
        let signals = u64::from(self.signals.max(1));
        let upto = |n: u32| (u64::from(total) * u64::from(n) / signals) as u32;
        upto(step) - upto(step.saturating_sub(1))
    }
}

/// The no-op activity a ceiling run calls.
pub struct CeilingActivities;

#[activity_definitions]
impl CeilingActivities {
    /// Returns its input.
    #[activity(name = "bench_noop")]
    pub fn noop(_step: u32) -> Result<u32, ActivityError> {
        unimplemented!()
    }
}

/// The `BenchCeiling` workflow.
#[workflow]
pub struct CeilingWorkflow {
    input: CeilingInput,
    received: u32,
}

#[workflow_methods]
impl CeilingWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: CeilingInput) -> Self {
        Self { input, received: 0 }
    }

    #[run(name = "BenchCeiling")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<u32> {
        let mut handled = 0;
        let mut timer: Option<Pin<Box<dyn CancellableFuture<Output = TimerResult> + '_>>> = None;
        loop {
            let (received, input) = ctx.state(|s| (s.received, s.input));
            while handled < received {
                handled += 1;
                if let Some(armed) = timer.take() {
                    armed.cancel();
                }
                for _ in 0..input.share(input.activities, handled) {
                    let options =
                        ActivityOptions::with_start_to_close_timeout(Duration::from_secs(60))
                            .build();
                    // A failed no-op is the server's problem, not the yardstick's.
                    let _ = ctx
                        .execute_activity(CeilingActivities::noop, handled, options)
                        .await;
                }
                if input.share(input.upserts, handled) > 0 {
                    ctx.upsert_search_attributes(vec![
                        HANDOFF_STAGE.value_set(format!("step-{handled}")),
                    ]);
                }
            }
            if handled >= input.signals {
                if let Some(armed) = timer.take() {
                    armed.cancel();
                }
                return Ok(handled);
            }
            if timer.is_none() && handled <= input.timers {
                timer = Some(Box::pin(
                    ctx.timer(Duration::from_secs(input.timer_seconds.max(1))),
                ));
            }
            let seen = handled;
            let more = ctx.wait_condition(move |s| s.received > seen);
            futures::pin_mut!(more);
            let fired = match timer.as_mut() {
                Some(armed) => {
                    let mut armed = armed;
                    temporalio_sdk::workflows::select! {
                        _ = armed => true,
                        _ = more => false,
                    }
                }
                None => {
                    let _ = more.await;
                    false
                }
            };
            if fired {
                timer = None;
            }
        }
    }

    #[signal(name = "closed_won")]
    pub fn closed_won(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _payload: RawValue) {
        self.received += 1;
    }

    #[signal(name = "contract_signed")]
    pub fn contract_signed(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _payload: RawValue) {
        self.received += 1;
    }

    #[signal(name = "security_cleared")]
    pub fn security_cleared(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _payload: RawValue) {
        self.received += 1;
    }

    #[signal(name = "financing_secured")]
    pub fn financing_secured(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _payload: RawValue) {
        self.received += 1;
    }

    #[signal(name = "kickoff_held")]
    pub fn kickoff_held(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _payload: RawValue) {
        self.received += 1;
    }

    #[signal(name = "milestone_reached")]
    pub fn milestone_reached(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _payload: RawValue) {
        self.received += 1;
    }

    #[signal(name = "adoption_reported")]
    pub fn adoption_reported(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _payload: RawValue) {
        self.received += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_spread_a_total_over_the_signals() {
        let input = CeilingInput {
            signals: 7,
            activities: 10,
            timers: 3,
            upserts: 5,
            timer_seconds: 60,
        };
        let activities: Vec<u32> = (1..=7).map(|s| input.share(10, s)).collect();
        assert_eq!(activities.iter().sum::<u32>(), 10);
        assert!(
            activities.iter().all(|&n| n == 1 || n == 2),
            "{activities:?}"
        );
        assert_eq!((1..=7).map(|s| input.share(5, s)).sum::<u32>(), 5);
    }
}
