//! Signal payloads: names, decoding and validation.
//!
//! Every signal arrives as raw JSON so that nothing a sender writes can fail a
//! workflow task. A payload that cannot be understood becomes a rejection with
//! a reason naming the field; it is recorded in `status.rejected_events` and
//! changes nothing else.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::bundle::ValidBundle;
use crate::engine::Event;
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
///
/// `Ok(None)` is a well-formed signal this build does not act on yet.
pub fn decode(
    signal: &str,
    payload: Option<Value>,
    now: DateTime<Utc>,
    handoff_workflow_id: &str,
) -> Result<Option<Event>, String> {
    let envelope = envelope(payload, now)?;
    let gate = |gate| {
        Ok(Some(Event::GatePassed {
            gate,
            at: envelope.at,
            by: envelope.by.clone(),
        }))
    };
    match signal {
        "closed_won" => closed_won(&envelope, handoff_workflow_id).map(Some),
        "contract_signed" => gate(Gate::Signature),
        "security_cleared" => gate(Gate::Security),
        "financing_secured" => gate(Gate::Financing),
        "kickoff_held" => Ok(Some(Event::KickoffHeld { at: envelope.at })),
        "deal_lost" => {
            let reason =
                optional_text(&envelope.fields, "reason")?.unwrap_or_else(|| "lost".to_owned());
            Ok(Some(Event::DealLost { reason }))
        }
        // TODO(#3): milestones after kickoff, pauses, acknowledgements and reopen.
        // TODO(#4): task_completed with dependencies.
        _ => Err("signal not handled by this build".to_owned()),
    }
}

// TODO(#3): read `as_of` (the gate SLA anchor of backfills) once gate SLAs exist.
fn closed_won(envelope: &Envelope, handoff_workflow_id: &str) -> Result<Event, String> {
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
    Ok(Event::ClosedWon(Box::new(bundle)))
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
            Some(Event::GatePassed {
                gate: Gate::Signature,
                at: now(),
                by: None
            })
        );
    }
}
