//! Every side effect of the revenue handoff.
//!
//! - [`effects`]: counts of delivered effects, handed to the worker's
//!   metrics.
//! - [`calendars`]: holiday calendars from the playbook directory's
//!   `calendars/` files, merged with the built-in sets.
//! - [`playbooks`]: segment playbooks and message templates read from the
//!   playbook directory, with every problem reported by file and line.
//! - [`directory`]: the owner directory, handle → person, manager, executive.
//! - [`ledger`]: the audit trail of deals, tasks, notifications and delivery
//!   attempts, on SQLite or PostgreSQL, and the erasure of the personal data
//!   in it.
//! - [`render`]: notification text per channel, escaped for each.
//! - [`sinks`]: the generic webhook, the Slack incoming webhook and SMTP
//!   e-mail, with the outcomes of SPEC §7.
//! - [`ledger_activities`]: the activities `DealHandoff` calls, by their pinned
//!   type names (`plan_handoff`, `create_tasks`, `update_tasks`,
//!   `cancel_tasks`, `notify`).
#![warn(missing_docs)]

pub mod calendars;
pub mod directory;
pub mod effects;
pub mod ledger;
pub mod ledger_activities;
pub mod playbooks;
pub mod render;
pub mod sinks;

pub use ledger_activities::{LedgerActivities, PlanningSettings};
