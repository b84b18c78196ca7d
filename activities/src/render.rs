//! Text of notifications, rendered from the facts the workflow sends.
//!
//! CRM text is data: it is carried verbatim into the ledger and escaped by
//! each channel when delivered; terminals strip control and bidi characters
//! when they print it.

use handoff_workflows::activity::Notification;

/// A rendered notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One-line subject.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

/// Renders a notification as plain text.
pub fn render(notification: &Notification) -> Rendered {
    let fact = |name: &str| notification.facts.get(name).cloned().unwrap_or_default();
    let deal = format!("{}:{}", fact("source"), fact("deal_id"));
    let account = fact("account");
    let milestone = notification
        .milestone
        .as_deref()
        .unwrap_or("handoff")
        .replace('_', " ");
    let subject = match notification.kind.as_str() {
        "reminder" => format!(
            "Reminder: {milestone} for {account} is due {}",
            fact("due_at")
        ),
        "escalation" => format!(
            "Escalation level {}: {milestone} for {account} missed its due date",
            notification.level.unwrap_or(1)
        ),
        "milestone_met" => format!("{milestone} met for {account}"),
        "handoff_cancelled" => format!("Handoff for {account} cancelled ({})", fact("reason")),
        other => format!("{other}: {milestone} for {account}"),
    };
    let body = format!(
        "{subject}\n\nDeal: {deal}\nAccount: {account}\nHandoff: {}\n",
        notification.workflow_id
    );
    Rendered { subject, body }
}
