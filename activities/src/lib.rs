//! Every side effect of the revenue handoff.
//!
//! - [`effects`]: counts of delivered effects, handed to the worker's
//!   metrics.
//! - [`calendars`]: holiday calendars from the playbook directory's
//!   `calendars/` files, merged with the built-in sets.
//! - [`ledger`]: the SQLite audit trail of deals, tasks and notifications.
//! - [`render`]: notification text.
//! - [`ledger_activities`]: the activities `DealHandoff` calls, by their pinned
//!   type names (`plan_handoff`, `create_tasks`, `cancel_tasks`, `notify`).
#![warn(missing_docs)]

pub mod calendars;
pub mod effects;
pub mod ledger;
pub mod ledger_activities;
pub mod render;

pub use ledger_activities::{LedgerActivities, PlanningSettings};
