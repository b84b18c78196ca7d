//! Deterministic code of the revenue handoff.
pub mod activity;
pub mod bundle;
pub mod calendar;
pub mod clock;
pub mod deal_handoff;
pub mod engine;
pub mod identity;
pub mod message;
pub mod playbook;
pub mod status;
