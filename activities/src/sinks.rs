//! Where tasks and notifications go besides the ledger: a generic webhook, a
//! Slack-compatible incoming webhook and SMTP e-mail.
//!
//! Each send has one of three [`Outcome`]s, decided here once per protocol
//! (SPEC §7):
//!
//! | sink | delivered | retried | failed for good |
//! |---|---|---|---|
//! | webhook, Slack | 2xx; 409 (a repeated `Idempotency-Key`) | 408, 429 (after `Retry-After`), 5xx, network errors and timeouts | any other status, recorded with the response |
//! | SMTP | 2yz | 4yz replies, connection and TLS errors, timeouts | 5yz replies; no address for a recipient |
//!
//! [`Delivery`] wraps every send in the ledger: the delivery of an effect to
//! a channel is recorded before the send and marked after it, so a retry
//! after a recorded success (or a recorded permanent failure) sends nothing,
//! and every attempt is kept. The webhook also carries the effect's key as
//! `Idempotency-Key`, so a receiver that honours it gets each effect exactly
//! once; Slack and SMTP get it effectively once (only a crash between the
//! send and its record repeats one, and an e-mail repeated that way carries
//! the same Message-ID).

mod http;
mod smtp;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::directory::Addressee;
use crate::ledger::{DeliveryState, Ledger, LedgerError};
use crate::render::{Rendered, strip_controls};

pub use http::{HttpSink, HttpSinkError, signature_of};
pub use smtp::{Email, SmtpConfig, SmtpSink, SmtpSinkError, SmtpTls, message_id_of};

/// A kind of sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The generic webhook.
    Webhook,
    /// The Slack-compatible incoming webhook.
    Slack,
    /// SMTP e-mail.
    Email,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Channel; 3] = [Channel::Webhook, Channel::Slack, Channel::Email];

    /// The channel's name in configuration and the ledger.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Slack => "slack",
            Self::Email => "email",
        }
    }

    /// The channel of a name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The sink has it.
    Delivered,
    /// Worth trying again, no sooner than `after` when the sink said so.
    Retry {
        /// What went wrong.
        detail: String,
        /// The sink's `Retry-After`, if any.
        after: Option<Duration>,
    },
    /// Trying again cannot help.
    Failed {
        /// What the sink said.
        detail: String,
    },
}

/// Which channels each kind of effect goes to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    /// Channels of task creations, updates and cancellations (webhook only).
    pub tasks: Vec<Channel>,
    /// Channels of every notification kind without a route of its own.
    pub notifications: Vec<Channel>,
    /// Channels per notification kind (`reminder`, `escalation`, ...).
    pub by_kind: BTreeMap<String, Vec<Channel>>,
}

impl Routes {
    /// The channels of a notification kind.
    pub fn for_kind(&self, kind: &str) -> &[Channel] {
        self.by_kind.get(kind).unwrap_or(&self.notifications)
    }
}

/// The configured sinks and their routes.
#[derive(Debug, Clone, Default)]
pub struct Sinks {
    /// The generic webhook, when configured.
    pub webhook: Option<HttpSink>,
    /// The Slack incoming webhook, when configured.
    pub slack: Option<HttpSink>,
    /// SMTP e-mail, when configured.
    pub email: Option<SmtpSink>,
    /// Routing.
    pub routes: Routes,
}

impl Sinks {
    /// Whether a channel has a sink.
    pub fn has(&self, channel: Channel) -> bool {
        match channel {
            Channel::Webhook => self.webhook.is_some(),
            Channel::Slack => self.slack.is_some(),
            Channel::Email => self.email.is_some(),
        }
    }

    /// Routes for channels that are configured: tasks to the webhook, every
    /// notification to every channel, unless `routes` says otherwise.
    pub fn default_routes(&self) -> Routes {
        Routes {
            tasks: [Channel::Webhook]
                .into_iter()
                .filter(|c| self.has(*c))
                .collect(),
            notifications: Channel::ALL.into_iter().filter(|c| self.has(*c)).collect(),
            by_kind: BTreeMap::new(),
        }
    }
}

/// Installs the process's TLS crypto provider once (ring); every TLS client
/// of the sinks uses it.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is just as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// What a batch of sends came to.
#[derive(Debug, Default)]
pub struct Tally {
    /// Sends that reached their sink.
    pub delivered: u32,
    /// Retryable failures, as `channel key: detail`.
    pub retry: Vec<String>,
    /// The longest `Retry-After` among them.
    pub retry_after: Option<Duration>,
    /// Permanent failures, as `channel key: detail`.
    pub failed: Vec<String>,
    /// Sends this attempt settled for good, `delivered` or `failed`, by
    /// channel: what the metrics count, once per effect and channel.
    pub settled: Vec<(Channel, &'static str)>,
}

impl Tally {
    fn add(&mut self, channel: Channel, key: &str, outcome: Outcome) {
        match outcome {
            Outcome::Delivered => self.delivered += 1,
            Outcome::Retry { detail, after } => {
                self.retry.push(format!("{channel} {key}: {detail}"));
                self.retry_after = self.retry_after.max(after);
            }
            Outcome::Failed { detail } => self.failed.push(format!("{channel} {key}: {detail}")),
        }
    }
}

/// Sends wrapped in the ledger, so that each effect reaches each channel once.
pub struct Delivery<'a> {
    /// The ledger the deliveries are recorded in.
    pub ledger: &'a Ledger,
    /// The activity attempt, for `delivery_attempts`.
    pub attempt: i64,
}

impl Delivery<'_> {
    /// Sends `effect_key` to `channel` with `send`, unless the ledger says it
    /// was delivered or failed for good already; records the outcome.
    pub async fn once<F>(
        &self,
        tally: &mut Tally,
        channel: Channel,
        effect_key: &str,
        send: F,
    ) -> Result<(), LedgerError>
    where
        F: Future<Output = Outcome>,
    {
        let name = channel.as_str();
        match self.ledger.delivery_state(effect_key, name).await? {
            DeliveryState::Delivered => {
                tally.add(channel, effect_key, Outcome::Delivered);
                return Ok(());
            }
            DeliveryState::Failed(detail) => {
                tally.add(channel, effect_key, Outcome::Failed { detail });
                return Ok(());
            }
            DeliveryState::New | DeliveryState::Sending | DeliveryState::Retrying => {}
        }
        // Recorded before the send: only a crash between here and the record
        // below can repeat a message.
        self.ledger.begin_delivery(effect_key, name).await?;
        let outcome = send.await;
        let (state, detail) = match &outcome {
            Outcome::Delivered => (("delivered", "delivered"), None),
            Outcome::Retry { detail, .. } => (("retrying", "retry"), Some(detail.as_str())),
            Outcome::Failed { detail } => (("failed", "failed"), Some(detail.as_str())),
        };
        self.ledger
            .finish_delivery(effect_key, name, self.attempt, state, detail)
            .await?;
        match outcome {
            Outcome::Delivered => tally.settled.push((channel, "delivered")),
            Outcome::Failed { .. } => tally.settled.push((channel, "failed")),
            Outcome::Retry { .. } => {}
        }
        tally.add(channel, effect_key, outcome);
        Ok(())
    }
}

/// Sends a rendered notification as one e-mail to every addressee. An
/// addressee without an address (no owner directory, or no entry) makes the
/// send fail for good: retrying cannot find one.
pub async fn smtp_email(
    smtp: &SmtpSink,
    key: &str,
    rendered: &Rendered,
    addressees: &[Addressee],
) -> Outcome {
    let missing: Vec<&str> = addressees
        .iter()
        .filter(|a| a.email.is_none())
        .map(|a| a.handle.as_str())
        .collect();
    if !missing.is_empty() {
        return Outcome::Failed {
            detail: format!(
                "no e-mail address for {} (not in the owner directory)",
                missing.join(", ")
            ),
        };
    }
    let to: Vec<(String, String)> = addressees
        .iter()
        .filter_map(|a| a.email.clone().map(|email| (a.name.clone(), email)))
        .collect();
    if to.is_empty() {
        return Outcome::Failed {
            detail: "no recipients".to_owned(),
        };
    }
    smtp.send(&Email {
        key,
        to: &to,
        subject: &strip_controls(&rendered.subject),
        text: &strip_controls(&rendered.body),
        html: &rendered.html,
    })
    .await
}
