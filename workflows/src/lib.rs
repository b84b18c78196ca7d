//! Deterministic code of the revenue handoff: everything the `DealHandoff`
//! workflow decides, and nothing that touches the outside world.
//!
//! - [`bundle`]: the handoff bundle, its hard fields and its completeness.
//! - [`identity`]: workflow ids of deals, Salesforce 15→18 ids, `DEAL` refs.
//! - [`calendar`]: business-day arithmetic in a team's timezone.
//! - [`clock`]: business time, wall time sped up by the time scale.
//! - [`playbook`]: the typed playbook, segment bands and the frozen plan.
//! - [`engine`]: the handoff state machine, events in and commands out.
//! - [`message`]: signal names and payload decoding.
//! - [`status`]: the `status` query's answer and the post-close review.
//! - [`observe`]: business facts handed to the worker's metrics.
//! - [`activity`]: the activities the workflow calls and their inputs.
//! - [`deal_handoff`]: the workflow itself, a thin driver of the engine.
//!
//! The crate's `clippy.toml` bans clocks, sleeps, spawns, file I/O and
//! hash-ordered collections, so nondeterminism fails the lint, not a replay.
#![warn(missing_docs)]

pub mod activity;
pub mod bundle;
pub mod calendar;
pub mod ceiling;
pub mod clock;
pub mod deal_handoff;
pub mod engine;
pub mod identity;
pub mod message;
pub mod observe;
pub mod playbook;
pub mod status;
