//! Text of notifications, rendered from the facts the workflow sends and the
//! segment playbook's templates, once per channel.
//!
//! CRM text is data. It is carried verbatim into the ledger and the plain
//! text of e-mails, escaped in the HTML part of e-mails, and escaped for
//! Slack (`&`, `<`, `>`), so a CRM field holding `<!channel>` stays text;
//! terminals strip control and bidi characters when they print it.
//!
//! Templates are short texts with `{placeholder}`s (see [`PLACEHOLDERS`]);
//! `{{` and `}}` write literal braces:
//!
//! ```toml
//! [templates.email.reminder]
//! subject = "Reminder: {milestone} for {account} is due {due_at}"
//! body = "..."
//!
//! [templates.slack.reminder]
//! text = "Reminder: *{milestone}* for {account} is due {due_at}"
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use handoff_workflows::activity::Notification;

/// Notification kinds the workflow sends.
pub const KINDS: [&str; 6] = [
    "reminder",
    "escalation",
    "milestone_met",
    "milestone_met_late",
    "handoff_cancelled",
    "post_close_review",
];

/// Channels a playbook writes templates for.
pub const CHANNELS: [&str; 2] = ["email", "slack"];

/// Names a template may use in braces.
pub const PLACEHOLDERS: [&str; 13] = [
    "account",
    "deal",
    "deal_id",
    "source",
    "segment",
    "milestone",
    "due_at",
    "level",
    "reason",
    "detail",
    "milestones_met",
    "breaches",
    "workflow_id",
];

/// The e-mail template of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailTemplate {
    /// Subject line.
    pub subject: String,
    /// Plain-text body; the HTML part is its escaped copy.
    pub body: String,
}

/// Message templates per channel and notification kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templates {
    /// E-mail (and webhook) subject and body per kind.
    pub email: BTreeMap<String, EmailTemplate>,
    /// Slack text per kind.
    pub slack: BTreeMap<String, String>,
}

impl Templates {
    /// The templates the product ships.
    pub fn builtin() -> Self {
        let footer = "\n\nDeal: {deal}\nAccount: {account}\nHandoff: {workflow_id}";
        let email = |subject: &str| EmailTemplate {
            subject: subject.to_owned(),
            body: format!("{subject}.{footer}"),
        };
        let pairs = [
            (
                "reminder",
                "Reminder: {milestone} for {account} is due {due_at}",
            ),
            (
                "escalation",
                "Escalation level {level}: {milestone} for {account} missed its due date",
            ),
            ("milestone_met", "{milestone} met for {account}"),
            ("milestone_met_late", "{milestone} met late for {account}"),
            (
                "handoff_cancelled",
                "Handoff for {account} cancelled ({reason})",
            ),
            (
                "post_close_review",
                "Post-close review for {account}: {milestones_met} milestones met, {breaches} breaches",
            ),
        ];
        Self {
            email: pairs
                .iter()
                .map(|(kind, subject)| ((*kind).to_owned(), email(subject)))
                .collect(),
            slack: pairs
                .iter()
                .map(|(kind, subject)| ((*kind).to_owned(), format!("{subject} ({{deal}})")))
                .collect(),
        }
    }
}

/// One `[templates.<channel>.<kind>]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TemplateFile {
    subject: Option<Spanned<String>>,
    body: Option<Spanned<String>>,
    text: Option<Spanned<String>>,
}

/// The `[templates]` table of a playbook: channel → kind → template.
pub(crate) type TemplateTable =
    BTreeMap<Spanned<String>, BTreeMap<Spanned<String>, Spanned<TemplateFile>>>;

/// Reads the `[templates]` table of a playbook on top of the built-in
/// templates, reporting each problem through `report(offset, message)`.
pub(crate) fn parse_templates(
    table: &TemplateTable,
    report: &mut dyn FnMut(usize, String),
) -> Templates {
    let mut templates = Templates::builtin();
    for (channel, kinds) in table {
        if !CHANNELS.contains(&channel.get_ref().as_str()) {
            report(
                channel.span().start,
                format!(
                    "unknown template channel `{}`; channels are {}",
                    channel.get_ref(),
                    CHANNELS.join(", ")
                ),
            );
            continue;
        }
        for (kind, template) in kinds {
            if !KINDS.contains(&kind.get_ref().as_str()) {
                report(
                    kind.span().start,
                    format!(
                        "unknown notification kind `{}` in templates.{}; kinds are {}",
                        kind.get_ref(),
                        channel.get_ref(),
                        KINDS.join(", ")
                    ),
                );
                continue;
            }
            read_template(
                &mut templates,
                channel.get_ref(),
                kind.get_ref(),
                template,
                report,
            );
        }
    }
    templates
}

fn read_template(
    templates: &mut Templates,
    channel: &str,
    kind: &str,
    template: &Spanned<TemplateFile>,
    report: &mut dyn FnMut(usize, String),
) {
    let at = template.span().start;
    let file = template.get_ref();
    let check = |text: &Option<Spanned<String>>,
                 field: &str,
                 report: &mut dyn FnMut(usize, String)|
     -> Option<String> {
        let Some(text) = text else {
            report(
                at,
                format!("templates.{channel}.{kind}: `{field}` is required"),
            );
            return None;
        };
        if let Err(message) = check_placeholders(text.get_ref()) {
            report(
                text.span().start,
                format!("templates.{channel}.{kind}.{field}: {message}"),
            );
        }
        Some(text.get_ref().clone())
    };
    if channel == "email" {
        if file.text.is_some() {
            report(
                at,
                format!("templates.email.{kind}: e-mail templates have subject and body, not text"),
            );
        }
        let subject = check(&file.subject, "subject", report);
        let body = check(&file.body, "body", report);
        if let (Some(subject), Some(body)) = (subject, body) {
            templates
                .email
                .insert(kind.to_owned(), EmailTemplate { subject, body });
        }
    } else {
        if file.subject.is_some() || file.body.is_some() {
            report(
                at,
                format!("templates.slack.{kind}: Slack templates have text only"),
            );
        }
        if let Some(text) = check(&file.text, "text", report) {
            templates.slack.insert(kind.to_owned(), text);
        }
    }
}

/// Checks that every `{name}` is a known placeholder and braces balance.
fn check_placeholders(template: &str) -> Result<(), String> {
    fill(template, &|name| {
        PLACEHOLDERS.contains(&name).then(String::new)
    })
    .map(|_| ())
}

/// Substitutes `{name}` with `value(name)`; `{{` and `}}` are literal braces.
fn fill(template: &str, value: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                match value(name.trim()) {
                    Some(text) => out.push_str(&text),
                    None => {
                        return Err(format!(
                            "unknown placeholder `{{{name}}}`; placeholders are {}",
                            PLACEHOLDERS.join(", ")
                        ));
                    }
                }
            }
            '}' => return Err("a `}` without its `{` (write `}}` for a brace)".to_owned()),
            other => out.push(other),
        }
    }
    Ok(out)
}

/// A notification rendered for every channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One-line subject (e-mail, webhook, ledger).
    pub subject: String,
    /// Plain-text body (e-mail, webhook, ledger).
    pub body: String,
    /// The HTML alternative of the e-mail: the body, escaped.
    pub html: String,
    /// Slack `text`, with CRM values escaped.
    pub slack: String,
}

/// Renders a notification with `templates` (built-in ones for kinds the
/// templates lack).
pub fn render(notification: &Notification, templates: &Templates) -> Rendered {
    let builtin = Templates::builtin();
    let kind = notification.kind.as_str();
    let fallback = EmailTemplate {
        subject: format!("{kind}: {{milestone}} for {{account}}"),
        body: "{milestone} for {account}\n\nDeal: {deal}\nHandoff: {workflow_id}".to_owned(),
    };
    let email = templates
        .email
        .get(kind)
        .or_else(|| builtin.email.get(kind))
        .unwrap_or(&fallback);
    let slack = templates
        .slack
        .get(kind)
        .or_else(|| builtin.slack.get(kind))
        .cloned()
        .unwrap_or_else(|| format!("{} ({{deal}})", fallback.subject));

    let facts = facts_of(notification);
    // The ledger and the webhook get CRM text as given; e-mail and Slack get
    // it without control characters, escaped for their markup.
    let plain = |name: &str| facts.get(name).cloned();
    let escaped = |name: &str| {
        facts
            .get(name)
            .map(|value| escape_slack(&strip_controls(value)))
    };
    let subject = fill(&email.subject, &plain)
        .unwrap_or_else(|_| email.subject.clone())
        .replace(['\r', '\n'], " ");
    let body = fill(&email.body, &plain).unwrap_or_else(|_| email.body.clone());
    let slack = fill(&slack, &escaped).unwrap_or_else(|_| escape_slack(&slack));
    Rendered {
        html: html_of(&strip_controls(&body)),
        subject,
        body,
        slack,
    }
}

/// Every placeholder's value for a notification; missing facts are empty
/// or a readable stand-in.
fn facts_of(notification: &Notification) -> BTreeMap<&'static str, String> {
    let fact = |name: &str| notification.facts.get(name).cloned().unwrap_or_default();
    let mut facts = BTreeMap::new();
    let account = fact("account");
    facts.insert(
        "account",
        if account.is_empty() {
            "(unnamed account)".to_owned()
        } else {
            account
        },
    );
    facts.insert("deal", format!("{}:{}", fact("source"), fact("deal_id")));
    facts.insert(
        "milestone",
        notification
            .milestone
            .as_deref()
            .unwrap_or("handoff")
            .replace('_', " "),
    );
    facts.insert(
        "level",
        notification
            .level
            .map(|l| l.to_string())
            .unwrap_or_default(),
    );
    facts.insert("workflow_id", notification.workflow_id.clone());
    for name in [
        "deal_id",
        "source",
        "segment",
        "due_at",
        "reason",
        "detail",
        "milestones_met",
        "breaches",
    ] {
        facts.insert(name, fact(name));
    }
    facts
}

/// Slack's three control characters, escaped so CRM text stays text.
pub fn escape_slack(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            other => out.push(other),
        }
    }
    out
}

/// Text escaped for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// The HTML part of an e-mail: the plain body, escaped, one paragraph per
/// blank-line-separated block.
fn html_of(body: &str) -> String {
    let paragraphs: Vec<String> = body
        .split("\n\n")
        .map(|block| format!("<p>{}</p>", escape_html(block).replace('\n', "<br>\n")))
        .collect();
    format!(
        "<!DOCTYPE html>\n<html><body>\n{}\n</body></html>\n",
        paragraphs.join("\n")
    )
}

/// Control characters other than newline and tab removed: CRM text must not
/// forge headers or move a terminal's cursor.
pub fn strip_controls(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hostile(kind: &str) -> Notification {
        Notification {
            key: "handoff-manual-D-1/remind/kickoff/50pct".into(),
            workflow_id: "handoff-manual-D-1".into(),
            kind: kind.into(),
            milestone: Some("kickoff".into()),
            level: Some(3),
            recipients: vec![],
            facts: [
                ("account", "<!channel> Acme & <b>Sons</b>\u{7}"),
                ("source", "manual"),
                ("deal_id", "D-1"),
                ("due_at", "2026-03-05T04:59:59+00:00"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        }
    }

    #[test]
    fn slack_text_escapes_crm_markup_so_channel_pings_stay_text() {
        let rendered = render(&hostile("reminder"), &Templates::builtin());
        assert!(
            rendered
                .slack
                .contains("&lt;!channel&gt; Acme &amp; &lt;b&gt;Sons&lt;/b&gt;"),
            "{}",
            rendered.slack
        );
        assert!(!rendered.slack.contains("<!channel>"));
    }

    #[test]
    fn html_email_escapes_crm_text_and_plain_text_stays_readable() {
        let rendered = render(&hostile("escalation"), &Templates::builtin());
        assert!(
            rendered
                .html
                .contains("&lt;!channel&gt; Acme &amp; &lt;b&gt;Sons&lt;/b&gt;")
        );
        assert!(!rendered.html.contains("<b>Sons"));
        // Stored as given; the e-mail parts drop the control character.
        assert!(rendered.body.contains("<!channel> Acme & <b>Sons</b>\u{7}"));
        assert!(!rendered.html.contains('\u{7}'));
        assert_eq!(
            rendered.subject,
            "Escalation level 3: kickoff for <!channel> Acme & <b>Sons</b>\u{7} missed its due date"
        );
    }

    #[test]
    fn placeholders_fill_and_unknown_ones_are_refused() {
        let value = |name: &str| (name == "account").then(|| "Acme".to_owned());
        assert_eq!(fill("{account} {{x}}", &value).unwrap(), "Acme {x}");
        assert!(
            fill("{acount}", &value)
                .unwrap_err()
                .contains("unknown placeholder")
        );
        assert!(fill("oops }", &value).is_err());
    }
}
