//! `POST /webhooks/generic`: one event of any signal of SPEC §6, signed with
//! `X-Handoff-Signature: sha256=<hex HMAC-SHA256 of the raw body>`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse as _, Response};
use hmac::{Hmac, Mac as _};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

use handoff_workflows::bundle::ValidBundle;
use handoff_workflows::message::SIGNAL_NAMES;

use super::{Delivery, Ingress, Outcome, Refusal, accepted, body_text, header_text};
use crate::deals::target_of;
use crate::temporal::Target;

const SOURCE: &str = "generic";
const SIGNATURE_HEADER: &str = "x-handoff-signature";

/// The body of a generic event.
#[derive(Debug, Deserialize)]
struct GenericEvent {
    event_id: String,
    #[serde(rename = "type")]
    kind: String,
    deal: Option<DealRef>,
    at: Option<String>,
    #[serde(default)]
    data: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct DealRef {
    source: String,
    id: String,
}

pub(super) async fn receive(
    State(ingress): State<Arc<Ingress>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = handle(&ingress, &headers, &body).await;
    ingress.count(SOURCE, &result);
    match result {
        Ok(outcomes) => accepted(&outcomes),
        Err(refusal) => refusal.into_response(),
    }
}

async fn handle(
    ingress: &Ingress,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Vec<Outcome>, Refusal> {
    verify(ingress.config.secret.as_deref(), headers, body)?;
    // The limit `deal start` holds bundles to: a handoff carries its bundle
    // in every history it writes.
    if body.len() as u64 > crate::deals::MAX_BUNDLE_BYTES {
        return Err(Refusal::Malformed(format!(
            "body: larger than {} KiB; a bundle carries facts, not documents",
            crate::deals::MAX_BUNDLE_BYTES / 1024
        )));
    }
    let value: Value = serde_json::from_str(body_text(body)?)
        .map_err(|e| Refusal::Malformed(format!("body: {e}")))?;
    if !value.is_object() {
        return Err(Refusal::Malformed(
            "body: expected one event, a JSON object with event_id, type, deal, at and data"
                .to_owned(),
        ));
    }
    let event: GenericEvent =
        serde_json::from_value(value).map_err(|e| Refusal::Malformed(format!("body: {e}")))?;
    if event.event_id.trim().is_empty() {
        return Err(Refusal::Malformed("event_id: must not be empty".to_owned()));
    }
    let at = match &event.at {
        Some(at) => Some(
            chrono::DateTime::parse_from_rfc3339(at)
                .map_err(|_| Refusal::Malformed(format!("at: {at:?} is not an RFC 3339 instant")))?
                .to_utc(),
        ),
        None => None,
    };
    let occurred_at = at.unwrap_or_else(chrono::Utc::now).timestamp_millis();
    let data = event.data.unwrap_or_else(|| serde_json::json!({}));
    if !data.is_object() {
        return Err(Refusal::Malformed("data: must be a JSON object".to_owned()));
    }
    if !SIGNAL_NAMES.contains(&event.kind.as_str()) {
        return Err(Refusal::Malformed(format!(
            "type: {:?} is not closed_won or a signal ({})",
            event.kind,
            SIGNAL_NAMES.join(", ")
        )));
    }
    let outcome = if event.kind == "closed_won" {
        let bundle = ValidBundle::from_value(data.clone())
            .map_err(|e| Refusal::Malformed(format!("data: {e}")))?;
        let mut payload = serde_json::json!({ "bundle": bundle.bundle });
        if let Some(at) = &event.at {
            payload["at"] = Value::String(at.clone());
        }
        let delivery = Delivery {
            source: SOURCE,
            event_id: event.event_id,
            target: target_of(&bundle),
            signal: "closed_won",
            payload,
            bundle: Some(&bundle),
            occurred_at,
            ordered: false,
            same_instant_is_duplicate: false,
            existing_only: false,
        };
        ingress.apply(delivery).await?
    } else {
        let deal = event
            .deal
            .ok_or_else(|| Refusal::Malformed("deal: required, {\"source\", \"id\"}".to_owned()))?;
        let target = target_of_deal(&deal)?;
        let mut payload = data;
        if let Some(at) = &event.at {
            payload["at"] = Value::String(at.clone());
        }
        // A lost or reopened deal that never had a handoff needs none.
        let existing_only = matches!(event.kind.as_str(), "deal_lost" | "deal_reopened");
        let delivery = Delivery {
            source: SOURCE,
            event_id: event.event_id,
            target,
            signal: &event.kind,
            payload,
            bundle: None,
            occurred_at,
            ordered: false,
            same_instant_is_duplicate: false,
            existing_only,
        };
        ingress.apply(delivery).await?
    };
    Ok(vec![outcome])
}

fn target_of_deal(deal: &DealRef) -> Result<Target, Refusal> {
    if deal.source.trim().is_empty() || deal.id.trim().is_empty() {
        return Err(Refusal::Malformed(
            "deal: source and id must not be empty".to_owned(),
        ));
    }
    let source = deal.source.trim().to_ascii_lowercase();
    Ok(Target {
        workflow_id: handoff_workflows::identity::workflow_id(&source, &deal.id),
        source,
        deal_id: deal.id.trim().to_owned(),
    })
}

/// Checks `X-Handoff-Signature` against the raw body.
fn verify(secret: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Result<(), Refusal> {
    let secret = secret.ok_or_else(|| {
        Refusal::Unauthorized("this receiver has no HANDOFF_INGRESS_SECRET".to_owned())
    })?;
    let header = header_text(headers, SIGNATURE_HEADER).ok_or_else(|| {
        Refusal::Unauthorized("X-Handoff-Signature: missing, expected sha256=<hex>".to_owned())
    })?;
    let given = header.trim().strip_prefix("sha256=").ok_or_else(|| {
        Refusal::Unauthorized(
            "X-Handoff-Signature: expected sha256=<hex HMAC-SHA256 of the body>".to_owned(),
        )
    })?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    let expected = hex::encode(mac.finalize().into_bytes());
    if super::constant_time_eq(given.to_ascii_lowercase().as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(Refusal::Unauthorized(
            "X-Handoff-Signature: does not match the body".to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(secret: &str, body: &[u8]) -> HeaderMap {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        let mut headers = HeaderMap::new();
        headers.insert(
            SIGNATURE_HEADER,
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
                .parse()
                .unwrap(),
        );
        headers
    }

    #[test]
    fn only_the_right_signature_of_the_exact_body_passes() {
        let body = br#"{"event_id":"e1"}"#;
        assert!(verify(Some("s3cret"), &signed("s3cret", body), body).is_ok());
        assert!(verify(Some("s3cret"), &signed("other", body), body).is_err());
        assert!(verify(Some("s3cret"), &signed("s3cret", body), b"{}").is_err());
        assert!(verify(Some("s3cret"), &HeaderMap::new(), body).is_err());
        assert!(verify(None, &signed("s3cret", body), body).is_err());
    }
}
