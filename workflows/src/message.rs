//! Signal payloads: names, decoding and validation.
//!
//! Every signal arrives as raw JSON so that nothing a sender writes can fail a
//! workflow task. A payload that cannot be understood becomes a rejection with
//! a reason naming the field; it is recorded in `status.rejected_events` and
//! changes nothing else.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::bundle::ValidBundle;
use crate::engine::{Event, Update};
use crate::identity::workflow_id;
use crate::playbook::Gate;

/// Every signal name of the product, in the order of its specification.
pub const SIGNAL_NAMES: [&str; 13] = [
    "closed_won",
    "contract_signed",
    "security_cleared",
    "financing_secured",
    "kickoff_held",
    "milestone_reached",
    "adoption_reported",
    "escalation_acknowledged",
    "customer_blocked",
    "customer_unblocked",
    "task_completed",
    "deal_reopened",
    "deal_lost",
];

/// Every update name of the product.
pub const UPDATE_NAMES: [&str; 3] = ["extend_deadline", "waive_milestone", "reassign_owner"];

/// The fields every signal may carry.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// When the event happened (business time); arrival when absent.
    pub at: DateTime<Utc>,
    /// Handle of who reported it.
    pub by: Option<String>,
    /// The whole payload object.
    pub fields: Map<String, Value>,
}

/// Reads the common fields of a payload received at business instant `now`.
///
/// `None` means the signal carried no payload at all, which is an empty object.
pub fn envelope(payload: Option<Value>, now: DateTime<Utc>) -> Result<Envelope, String> {
    let fields = match payload {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(fields)) => fields,
        Some(other) => {
            return Err(format!(
                "payload: expected a JSON object, got {}",
                kind(&other)
            ));
        }
    };
    let at = match fields.get("at") {
        None | Some(Value::Null) => now,
        Some(Value::String(text)) => DateTime::parse_from_rfc3339(text)
            .map_err(|_| "at: not an RFC 3339 instant".to_owned())?
            .with_timezone(&Utc),
        Some(other) => {
            return Err(format!(
                "at: expected an RFC 3339 instant, got {}",
                kind(other)
            ));
        }
    };
    if at > now {
        return Err(format!(
            "at: {} is later than business now {}",
            at.to_rfc3339(),
            now.to_rfc3339()
        ));
    }
    let by = optional_text(&fields, "by")?;
    Ok(Envelope { at, by, fields })
}

/// Decodes a signal for the handoff `handoff_workflow_id` into an engine event.
pub fn decode(
    signal: &str,
    payload: Option<Value>,
    now: DateTime<Utc>,
    handoff_workflow_id: &str,
) -> Result<Event, String> {
    let envelope = envelope(payload, now)?;
    let at = envelope.at;
    let fields = &envelope.fields;
    let gate = |gate| {
        Ok(Event::GatePassed {
            gate,
            at,
            by: envelope.by.clone(),
        })
    };
    match signal {
        "closed_won" => closed_won(&envelope, now, handoff_workflow_id),
        "contract_signed" => gate(Gate::Signature),
        "security_cleared" => gate(Gate::Security),
        "financing_secured" => gate(Gate::Financing),
        "kickoff_held" => Ok(Event::KickoffHeld { at }),
        "milestone_reached" => Ok(Event::MilestoneReached {
            milestone: required_text(fields, "milestone")?,
            at,
            evidence: optional_text(fields, "evidence")?,
        }),
        "adoption_reported" => Ok(Event::AdoptionReported {
            rate: adoption_rate(fields)?,
            at,
        }),
        "escalation_acknowledged" => Ok(Event::EscalationAcknowledged {
            milestone: required_text(fields, "milestone")?,
            by: envelope.by.clone(),
        }),
        "customer_blocked" => Ok(Event::CustomerBlocked {
            at,
            reason: optional_text(fields, "reason")?,
        }),
        "customer_unblocked" => Ok(Event::CustomerUnblocked { at }),
        "task_completed" => Ok(Event::TaskCompleted {
            key: required_text(fields, "key")?,
            at,
        }),
        "deal_reopened" => Ok(Event::DealReopened { at }),
        "deal_lost" => Ok(Event::DealLost {
            reason: optional_text(fields, "reason")?.unwrap_or_else(|| "lost".to_owned()),
            at,
        }),
        other => Err(format!(
            "signal: {other:?} is not a signal of this workflow"
        )),
    }
}

/// Decodes an update's payload into an engine update; the error names the field.
pub fn decode_update(name: &str, payload: Option<Value>) -> Result<Update, String> {
    let fields = match payload {
        Some(Value::Object(fields)) => fields,
        None | Some(Value::Null) => Map::new(),
        Some(other) => {
            return Err(format!(
                "payload: expected a JSON object, got {}",
                kind(&other)
            ));
        }
    };
    match name {
        "extend_deadline" => Ok(Update::ExtendDeadline {
            milestone: required_text(&fields, "milestone")?,
            new_due: required_instant(&fields, "new_due")?,
            reason: required_text(&fields, "reason")?,
        }),
        "waive_milestone" => Ok(Update::WaiveMilestone {
            milestone: required_text(&fields, "milestone")?,
            reason: required_text(&fields, "reason")?,
        }),
        "reassign_owner" => Ok(Update::ReassignOwner {
            role: required_text(&fields, "role")?,
            handle: required_text(&fields, "handle")?.trim().to_owned(),
        }),
        other => Err(format!(
            "update: {other:?} is not an update of this workflow"
        )),
    }
}

fn closed_won(
    envelope: &Envelope,
    now: DateTime<Utc>,
    handoff_workflow_id: &str,
) -> Result<Event, String> {
    let value = match envelope.fields.get("bundle") {
        Some(value @ Value::Object(_)) => value.clone(),
        None | Some(Value::Null) => return Err("bundle: required field is missing".to_owned()),
        Some(other) => {
            return Err(format!(
                "bundle: expected a JSON object, got {}",
                kind(other)
            ));
        }
    };
    let bundle = ValidBundle::from_value(value).map_err(|e| format!("bundle.{e}"))?;
    if workflow_id(&bundle.source, &bundle.deal_id) != handoff_workflow_id {
        return Err("bundle: deal.source and deal.id name a different handoff".to_owned());
    }
    let as_of = optional_instant(&envelope.fields, "as_of")?;
    if as_of.is_some_and(|a| a > now) {
        return Err("as_of: later than business now".to_owned());
    }
    Ok(Event::ClosedWon {
        bundle: Box::new(bundle),
        as_of,
        at: envelope.at,
    })
}

fn adoption_rate(fields: &Map<String, Value>) -> Result<f64, String> {
    if let Some(rate) = optional_number(fields, "rate")? {
        if !(0.0..=1.0).contains(&rate) {
            return Err(format!("rate: {rate} is outside 0..1"));
        }
        return Ok(rate);
    }
    let active = optional_number(fields, "active_users")?
        .ok_or("active_users: required unless rate is given")?;
    let licensed = optional_number(fields, "licensed_users")?
        .ok_or("licensed_users: required unless rate is given")?;
    if active < 0.0 {
        return Err("active_users: must not be negative".to_owned());
    }
    if licensed <= 0.0 {
        return Err("licensed_users: must be greater than 0".to_owned());
    }
    Ok((active / licensed).min(1.0))
}

fn required_text(fields: &Map<String, Value>, name: &str) -> Result<String, String> {
    optional_text(fields, name)?
        .filter(|text| !text.trim().is_empty())
        .ok_or_else(|| format!("{name}: required field is missing"))
}

fn optional_number(fields: &Map<String, Value>, name: &str) -> Result<Option<f64>, String> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => number
            .as_f64()
            .filter(|n| n.is_finite())
            .map(Some)
            .ok_or_else(|| format!("{name}: not a finite number")),
        Some(other) => Err(format!("{name}: expected a number, got {}", kind(other))),
    }
}

fn optional_instant(
    fields: &Map<String, Value>,
    name: &str,
) -> Result<Option<DateTime<Utc>>, String> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => DateTime::parse_from_rfc3339(text)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|_| format!("{name}: not an RFC 3339 instant")),
        Some(other) => Err(format!(
            "{name}: expected an RFC 3339 instant, got {}",
            kind(other)
        )),
    }
}

fn required_instant(fields: &Map<String, Value>, name: &str) -> Result<DateTime<Utc>, String> {
    optional_instant(fields, name)?.ok_or_else(|| format!("{name}: required field is missing"))
}

fn optional_text(fields: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(format!("{name}: expected a string, got {}", kind(other))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-05T13:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn reason(signal: &str, payload: Value) -> String {
        decode(signal, Some(payload), now(), "handoff-manual-D-1").unwrap_err()
    }

    #[test]
    fn malformed_payloads_name_the_field() {
        assert_eq!(
            reason("security_cleared", json!({"at": "yesterday"})),
            "at: not an RFC 3339 instant"
        );
        assert_eq!(
            reason("security_cleared", json!({"at": 5})),
            "at: expected an RFC 3339 instant, got a number"
        );
        assert_eq!(
            reason("contract_signed", json!(123)),
            "payload: expected a JSON object, got a number"
        );
        assert_eq!(
            reason("contract_signed", json!({"by": ["x"]})),
            "by: expected a string, got an array"
        );
        assert!(
            reason("kickoff_held", json!({"at": "2026-03-06T00:00:00Z"}))
                .contains("later than business now")
        );
        assert_eq!(
            reason("closed_won", json!({})),
            "bundle: required field is missing"
        );
        assert_eq!(
            reason("closed_won", json!({"bundle": {"deal": {}}})),
            "bundle.deal.source: required field is missing"
        );
    }

    #[test]
    fn a_bundle_for_another_deal_is_rejected() {
        let bundle = json!({"deal": {"source": "manual", "id": "OTHER", "closed_won_at": "2026-03-01"},
                            "account": {"name": "X"}});
        assert!(reason("closed_won", json!({ "bundle": bundle })).contains("different handoff"));
    }

    #[test]
    fn gates_default_to_arrival_time() {
        let event = decode("contract_signed", None, now(), "w").unwrap();
        assert_eq!(
            event,
            Event::GatePassed {
                gate: Gate::Signature,
                at: now(),
                by: None
            }
        );
    }
}
