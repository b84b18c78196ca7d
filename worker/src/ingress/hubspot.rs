//! `POST /webhooks/hubspot`: a batch of HubSpot webhook events, verified by
//! the v3 signature over the method, `HANDOFF_INGRESS_PUBLIC_URL` plus the
//! path, the body and the timestamp.
//!
//! Deal events come in two spellings, `deal.propertyChange` and the generic
//! `object.propertyChange` with `objectTypeId` `0-3`; both are read alike. A
//! stage change means what the stage catalog says (configured stages, then
//! the portal's pipelines read from the CRM API), never a literal id.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac as _};
use serde_json::{Value, json};
use sha2::Sha256;
use tracing::warn;

use handoff_workflows::bundle::ValidBundle;

use super::hubspot_api::id_text;
use super::{Delivery, Ingress, IngressConfig, Outcome, Refusal, accepted, body_text, header_text};
use crate::config::StageKind;

const SOURCE: &str = "hubspot";
const SIGNATURE_HEADER: &str = "x-hubspot-signature-v3";
const TIMESTAMP_HEADER: &str = "x-hubspot-request-timestamp";
/// How far a request's timestamp may be from now, as HubSpot advises.
const WINDOW_MS: i64 = 5 * 60 * 1000;
/// HubSpot's object type id of deals in `object.*` subscriptions.
const DEAL_OBJECT_TYPE: &str = "0-3";

/// What one event says about a deal.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    /// `dealstage` moved to this stage id.
    Stage(String),
    /// Another property changed.
    Property,
    /// Created or restored: read the deal to see where it stands.
    Appeared,
    Deleted,
    /// Merged into `primary`; `merged` are gone.
    Merged {
        primary: String,
        merged: Vec<String>,
    },
    /// Not about a deal, or nothing a handoff follows.
    Other,
}

/// One event of the batch, with what a handoff needs of it.
#[derive(Debug, Clone)]
struct Event {
    event_id: String,
    portal_id: String,
    object_id: String,
    occurred_at: DateTime<Utc>,
    change: Change,
}

pub(super) async fn receive(
    State(ingress): State<Arc<Ingress>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    let result = handle(&ingress, method.as_str(), &path, &headers, &body).await;
    ingress.count(SOURCE, &result);
    match result {
        Ok(outcomes) => accepted(&outcomes),
        Err(refusal) => refusal.into_response(),
    }
}

async fn handle(
    ingress: &Ingress,
    method: &str,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Vec<Outcome>, Refusal> {
    let now = Utc::now().timestamp_millis();
    verify(&ingress.config, method, path, headers, body, now)?;
    let events = parse(body_text(body)?)?;
    let mut outcomes = Vec::with_capacity(events.len());
    // HubSpot does not send a batch again after a 4xx, so one event that
    // cannot be used must not cost the others theirs: it is answered
    // `invalid`, logged with its reason, and the rest are applied.
    for (index, event) in events.into_iter().enumerate() {
        let applied = match event {
            Ok(event) => apply(ingress, &event).await,
            Err(m) => Err(Refusal::Malformed(m)),
        };
        match applied {
            Ok(outcome) => outcomes.push(outcome),
            Err(Refusal::Malformed(reason)) => {
                warn!(index, reason = %reason, "HubSpot event refused; the rest of its batch is applied");
                outcomes.push(Outcome::Invalid);
            }
            Err(refusal) => return Err(refusal),
        }
    }
    Ok(outcomes)
}

/// Checks `X-HubSpot-Signature-v3` and the timestamp window.
fn verify(
    config: &IngressConfig,
    method: &str,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
    now_ms: i64,
) -> Result<(), Refusal> {
    let unauthorized = |m: &str| Err(Refusal::Unauthorized(m.to_owned()));
    let Some(secret) = config.hubspot_client_secret.as_deref() else {
        return unauthorized("this receiver has no HANDOFF_HUBSPOT_CLIENT_SECRET");
    };
    let Some(public_url) = config.public_url.as_deref() else {
        return unauthorized(
            "this receiver has no HANDOFF_INGRESS_PUBLIC_URL, which HubSpot signatures cover",
        );
    };
    let (Some(given), Some(timestamp)) = (
        header_text(headers, SIGNATURE_HEADER),
        header_text(headers, TIMESTAMP_HEADER),
    ) else {
        return unauthorized("X-HubSpot-Signature-v3 and X-HubSpot-Request-Timestamp: required");
    };
    let Ok(sent_at) = timestamp.trim().parse::<i64>() else {
        return unauthorized("X-HubSpot-Request-Timestamp: expected epoch milliseconds");
    };
    if (now_ms - sent_at).abs() > WINDOW_MS {
        return unauthorized(
            "X-HubSpot-Request-Timestamp: more than 5 minutes from now (expired or replayed)",
        );
    }
    let uri = decode_uri(&format!("{public_url}{path}"));
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(method.as_bytes());
    mac.update(uri.as_bytes());
    mac.update(body);
    mac.update(timestamp.trim().as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    if super::constant_time_eq(given.trim().as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        unauthorized(
            "X-HubSpot-Signature-v3: does not match (check HANDOFF_HUBSPOT_CLIENT_SECRET and \
             that HANDOFF_INGRESS_PUBLIC_URL is the address HubSpot calls)",
        )
    }
}

/// HubSpot signs the URI with these escapes decoded.
fn decode_uri(uri: &str) -> String {
    const DECODED: [(&str, &str); 12] = [
        ("%3A", ":"),
        ("%2F", "/"),
        ("%3F", "?"),
        ("%40", "@"),
        ("%21", "!"),
        ("%24", "$"),
        ("%27", "'"),
        ("%28", "("),
        ("%29", ")"),
        ("%2A", "*"),
        ("%2C", ","),
        ("%3B", ";"),
    ];
    let mut out = String::with_capacity(uri.len());
    let mut rest = uri;
    'scan: while !rest.is_empty() {
        if rest.starts_with('%') {
            for (escape, plain) in DECODED {
                if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(escape) {
                    out.push_str(plain);
                    rest = &rest[3..];
                    continue 'scan;
                }
            }
        }
        let c = rest.chars().next().expect("not empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The batch: a JSON array of events, each read on its own; an event that
/// cannot be read is its reason, with its index named.
fn parse(body: &str) -> Result<Vec<Result<Event, String>>, Refusal> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| Refusal::Malformed(format!("body: {e}")))?;
    let items = value.as_array().ok_or_else(|| {
        Refusal::Malformed("body: expected a JSON array of HubSpot events".to_owned())
    })?;
    Ok(items
        .iter()
        .enumerate()
        .map(|(i, item)| event_of(item).map_err(|m| format!("[{i}].{m}")))
        .collect())
}

fn event_of(item: &Value) -> Result<Event, String> {
    let id = |name: &str| id_text(&item[name]).ok_or_else(|| format!("{name}: required, a number"));
    let text = |name: &str| item[name].as_str().map(str::trim).unwrap_or_default();
    let event_id = id("eventId")?;
    let portal_id = id("portalId")?;
    let occurred_at = item["occurredAt"]
        .as_i64()
        .and_then(DateTime::from_timestamp_millis)
        .ok_or_else(|| "occurredAt: required, epoch milliseconds".to_owned())?;
    let subscription = text("subscriptionType");
    if subscription.is_empty() {
        return Err("subscriptionType: required, e.g. deal.propertyChange".to_owned());
    }
    let (object, action) = subscription.split_once('.').unwrap_or((subscription, ""));
    let is_deal = object.eq_ignore_ascii_case("deal")
        || (object.eq_ignore_ascii_case("object") && text("objectTypeId") == DEAL_OBJECT_TYPE);
    let change = if !is_deal {
        Change::Other
    } else {
        match action.to_ascii_lowercase().as_str() {
            "propertychange" if text("propertyName").eq_ignore_ascii_case("dealstage") => {
                let stage = id_text(&item["propertyValue"])
                    .ok_or_else(|| "propertyValue: required for a dealstage change".to_owned())?;
                Change::Stage(stage)
            }
            "propertychange" => Change::Property,
            "creation" | "restore" => Change::Appeared,
            "deletion" => Change::Deleted,
            "merge" => {
                let primary = id_text(&item["primaryObjectId"])
                    .or_else(|| id_text(&item["newObjectId"]))
                    .ok_or_else(|| "primaryObjectId: required for a merge".to_owned())?;
                let merged = item["mergedObjectIds"]
                    .as_array()
                    .ok_or_else(|| "mergedObjectIds: required for a merge, a list".to_owned())?
                    .iter()
                    .filter_map(id_text)
                    .filter(|id| *id != primary)
                    .collect();
                Change::Merged { primary, merged }
            }
            _ => Change::Other,
        }
    };
    let object_id = match &change {
        Change::Merged { primary, .. } => primary.clone(),
        Change::Other => id_text(&item["objectId"]).unwrap_or_default(),
        _ => id("objectId")?,
    };
    Ok(Event {
        event_id: format!("{portal_id}-{event_id}"),
        portal_id,
        object_id,
        occurred_at,
        change,
    })
}

impl Event {
    fn deal_id(&self, object_id: &str) -> String {
        format!("{}-{object_id}", self.portal_id)
    }

    fn at(&self) -> String {
        self.occurred_at
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

async fn apply(ingress: &Ingress, event: &Event) -> Result<Outcome, Refusal> {
    if event.change == Change::Other {
        return Ok(Outcome::Ignored);
    }
    // The token reads one portal's deals: an event of another portal (an
    // app installed twice) would read this portal's deal of the same id.
    if let Some(portal) = ingress.config.hubspot_portal_id
        && event.portal_id != portal.to_string()
    {
        warn!(
            portal = %event.portal_id,
            expected = portal,
            "HubSpot event of another portal ignored (HANDOFF_HUBSPOT_PORTAL_ID)"
        );
        return Ok(Outcome::Ignored);
    }
    if ingress.seen(SOURCE, &event.event_id).await? {
        ingress.metrics.duplicate(SOURCE);
        return Ok(Outcome::Duplicate);
    }
    let target = ingress
        .target(SOURCE, &event.deal_id(&event.object_id))
        .await?;
    let signal = |signal: &'static str, payload: Value, existing_only: bool| Delivery {
        source: SOURCE,
        event_id: event.event_id.clone(),
        target: target.clone(),
        signal,
        payload,
        bundle: None,
        occurred_at: event.occurred_at.timestamp_millis(),
        ordered: true,
        same_instant_is_duplicate: true,
        existing_only,
    };
    match &event.change {
        Change::Stage(stage) => match stage_kind(ingress, stage).await? {
            Some(StageKind::Won) => won(ingress, event, &target, &event.at()).await,
            Some(StageKind::Lost) => {
                let payload = json!({ "reason": "lost", "at": event.at() });
                ingress.apply(signal("deal_lost", payload, true)).await
            }
            Some(StageKind::Open) => {
                let payload = json!({ "at": event.at() });
                ingress.apply(signal("deal_reopened", payload, true)).await
            }
            None => {
                warn!(
                    stage = %stage,
                    portal = %event.portal_id,
                    "HubSpot stage id in no catalog: add it under [crm.hubspot_stages]"
                );
                ingress.metrics.unknown_stage(SOURCE);
                Ok(Outcome::Ignored)
            }
        },
        Change::Deleted => {
            let payload = json!({ "reason": "deleted", "at": event.at() });
            ingress.apply(signal("deal_lost", payload, true)).await
        }
        Change::Property => amend(ingress, event, &target).await,
        Change::Appeared => {
            let Some(deal) = ingress.hubspot.deal(&event.object_id).await? else {
                return Ok(Outcome::Ignored);
            };
            let stage = deal.property("dealstage").unwrap_or_default();
            if stage_kind(ingress, &stage).await? != Some(StageKind::Won) {
                return Ok(Outcome::Ignored);
            }
            let closed = deal.property("closedate").unwrap_or_else(|| event.at());
            deliver_bundle(ingress, event, &target, &deal, &closed, true).await
        }
        Change::Merged { merged, .. } => merge(ingress, event, &target, merged).await,
        Change::Other => Ok(Outcome::Ignored),
    }
}

/// The configured catalog (with HubSpot's default pipeline), then the portal's.
async fn stage_kind(ingress: &Ingress, stage: &str) -> Result<Option<StageKind>, Refusal> {
    if stage.trim().is_empty() {
        return Ok(None);
    }
    if let Some(kind) = ingress.settings.hubspot_stage(stage) {
        return Ok(Some(kind));
    }
    ingress.hubspot.stage(stage).await
}

/// Closed won: the deal read from the CRM API becomes the bundle.
async fn won(
    ingress: &Ingress,
    event: &Event,
    target: &crate::temporal::Target,
    closed_won_at: &str,
) -> Result<Outcome, Refusal> {
    let Some(deal) = ingress.hubspot.deal(&event.object_id).await? else {
        warn!(deal = %event.object_id, "won HubSpot deal no longer exists; nothing started");
        return Ok(Outcome::Ignored);
    };
    deliver_bundle(ingress, event, target, &deal, closed_won_at, true).await
}

/// Another property of a deal that has a handoff: the bundle is refreshed
/// while the deal stands closed won; elsewhere nothing changes.
async fn amend(
    ingress: &Ingress,
    event: &Event,
    target: &crate::temporal::Target,
) -> Result<Outcome, Refusal> {
    if !ingress.known(&target.workflow_id).await? {
        return Ok(Outcome::Ignored);
    }
    let Some(deal) = ingress.hubspot.deal(&event.object_id).await? else {
        return Ok(Outcome::Ignored);
    };
    let stage = deal.property("dealstage").unwrap_or_default();
    if stage_kind(ingress, &stage).await? != Some(StageKind::Won) {
        return Ok(Outcome::Ignored);
    }
    let closed = deal.property("closedate").unwrap_or_else(|| event.at());
    deliver_bundle(ingress, event, target, &deal, &closed, false).await
}

async fn deliver_bundle(
    ingress: &Ingress,
    event: &Event,
    target: &crate::temporal::Target,
    deal: &super::hubspot_api::Deal,
    closed_won_at: &str,
    ordered: bool,
) -> Result<Outcome, Refusal> {
    let bundle = ingress
        .hubspot
        .bundle(&target.deal_id, deal, closed_won_at)
        .await?;
    let bundle = ValidBundle::from_value(bundle).map_err(|e| {
        Refusal::Malformed(format!(
            "deal {}: its CRM record does not make a bundle: {e}",
            event.object_id
        ))
    })?;
    let payload = json!({ "bundle": bundle.bundle, "at": event.at() });
    ingress
        .apply(Delivery {
            source: SOURCE,
            event_id: event.event_id.clone(),
            target: target.clone(),
            signal: "closed_won",
            payload,
            bundle: Some(&bundle),
            occurred_at: event.occurred_at.timestamp_millis(),
            ordered,
            same_instant_is_duplicate: true,
            existing_only: false,
        })
        .await
}

/// Merged deals: a surviving deal without a handoff of its own takes the
/// first merged deal's handoff as its alias, so its events reach it; any
/// other merged deal's handoff ends as lost (`merged`).
async fn merge(
    ingress: &Ingress,
    event: &Event,
    surviving: &crate::temporal::Target,
    merged: &[String],
) -> Result<Outcome, Refusal> {
    let surviving_id =
        handoff_workflows::identity::workflow_id(SOURCE, &event.deal_id(&event.object_id));
    let mut surviving_handoff = ingress
        .known(&surviving.workflow_id)
        .await?
        .then(|| surviving.workflow_id.clone());
    let mut outcome = Outcome::Ignored;
    for object_id in merged {
        let target = ingress.target(SOURCE, &event.deal_id(object_id)).await?;
        if !ingress.known(&target.workflow_id).await?
            || surviving_handoff.as_deref() == Some(target.workflow_id.as_str())
        {
            continue;
        }
        match &surviving_handoff {
            None => {
                ingress.alias(&surviving_id, &target.workflow_id).await?;
                surviving_handoff = Some(target.workflow_id.clone());
                outcome = Outcome::Accepted;
            }
            Some(_) => {
                let delivery = Delivery {
                    source: SOURCE,
                    event_id: format!("{}-{object_id}", event.event_id),
                    target,
                    signal: "deal_lost",
                    payload: json!({ "reason": "merged", "at": event.at() }),
                    bundle: None,
                    occurred_at: event.occurred_at.timestamp_millis(),
                    ordered: true,
                    same_instant_is_duplicate: true,
                    existing_only: true,
                };
                if ingress.apply(delivery).await? == Outcome::Accepted {
                    outcome = Outcome::Accepted;
                }
            }
        }
    }
    let workflow_id = surviving_handoff.unwrap_or(surviving_id);
    ingress
        .record(
            SOURCE,
            &event.event_id,
            &workflow_id,
            "merge",
            event,
            outcome,
        )
        .await?;
    Ok(outcome)
}

impl Ingress {
    async fn record(
        &self,
        source: &str,
        event_id: &str,
        workflow_id: &str,
        kind: &str,
        event: &Event,
        outcome: Outcome,
    ) -> Result<(), Refusal> {
        let record = handoff_activities::ledger::IngressEvent {
            source,
            event_id,
            workflow_id,
            kind,
            occurred_at: event.occurred_at.timestamp_millis(),
            outcome: outcome.as_str(),
        };
        self.ledger
            .record_ingress_event(&record)
            .await
            .map(|_| ())
            .map_err(|e| super::ledger_unavailable(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "hubspot-app-secret";
    const PUBLIC: &str = "https://hooks.example.com";

    fn config() -> IngressConfig {
        IngressConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            secret: None,
            public_url: Some(PUBLIC.to_owned()),
            hubspot_client_secret: Some(SECRET.to_owned()),
            hubspot_token: None,
            hubspot_api_url: "http://127.0.0.1:1".to_owned(),
            hubspot_portal_id: None,
            salesforce_org_id: None,
            salesforce_token: None,
        }
    }

    fn signed(secret: &str, uri: &str, body: &[u8], timestamp: i64) -> HeaderMap {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("POST{uri}").as_bytes());
        mac.update(body);
        mac.update(timestamp.to_string().as_bytes());
        let signature =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let mut headers = HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, signature.parse().unwrap());
        headers.insert(TIMESTAMP_HEADER, timestamp.to_string().parse().unwrap());
        headers
    }

    #[test]
    fn v3_signatures_cover_method_public_url_body_and_a_recent_timestamp() {
        let config = config();
        let body = br#"[{"eventId":1}]"#;
        let now = 1_772_830_800_000;
        let path = "/webhooks/hubspot";
        let uri = format!("{PUBLIC}{path}");
        let check = |headers: &HeaderMap, path: &str, body: &[u8], now: i64| {
            verify(&config, "POST", path, headers, body, now)
        };
        assert!(check(&signed(SECRET, &uri, body, now), path, body, now).is_ok());
        assert!(check(&signed(SECRET, &uri, body, now - 60_000), path, body, now).is_ok());
        // Expired, from the future, other secret, other body, other address.
        assert!(check(&signed(SECRET, &uri, body, now - 301_000), path, body, now).is_err());
        assert!(check(&signed(SECRET, &uri, body, now + 301_000), path, body, now).is_err());
        assert!(check(&signed("other", &uri, body, now), path, body, now).is_err());
        assert!(check(&signed(SECRET, &uri, body, now), path, b"[]", now).is_err());
        let elsewhere = "https://evil.example.com/webhooks/hubspot";
        assert!(check(&signed(SECRET, elsewhere, body, now), path, body, now).is_err());
        assert!(check(&HeaderMap::new(), path, body, now).is_err());
        // The query is covered, with HubSpot's escapes decoded.
        let query = "/webhooks/hubspot?portal=7%3A1";
        let decoded = format!("{PUBLIC}/webhooks/hubspot?portal=7:1");
        assert!(check(&signed(SECRET, &decoded, body, now), query, body, now).is_ok());
        // Without a secret or a public URL nothing passes.
        let mut bare = config.clone();
        bare.public_url = None;
        let headers = signed(SECRET, &uri, body, now);
        assert!(verify(&bare, "POST", path, &headers, body, now).is_err());
    }

    #[test]
    fn both_subscription_spellings_read_alike_and_other_objects_are_left_alone() {
        let legacy = r#"[{"eventId": 9100001, "portalId": 700001, "occurredAt": 1772830800000,
            "subscriptionType": "deal.propertyChange", "objectId": 880001,
            "propertyName": "dealstage", "propertyValue": "closedwon"}]"#;
        let generic = r#"[{"eventId": 9100050, "portalId": 700001, "occurredAt": 1772830800000,
            "subscriptionType": "object.propertyChange", "objectTypeId": "0-3", "objectId": 880001,
            "propertyName": "dealstage", "propertyValue": "closedwon"}]"#;
        let contact = r#"[{"eventId": 1, "portalId": 700001, "occurredAt": 1772830800000,
            "subscriptionType": "object.propertyChange", "objectTypeId": "0-1", "objectId": 5,
            "propertyName": "dealstage", "propertyValue": "closedwon"}]"#;
        let read = |body: &str| parse(body).unwrap().remove(0).unwrap();
        let (legacy, generic) = (&read(legacy), &read(generic));
        assert_eq!(legacy.change, Change::Stage("closedwon".to_owned()));
        assert_eq!(legacy.change, generic.change);
        assert_eq!(
            (&legacy.object_id, legacy.occurred_at),
            (&generic.object_id, generic.occurred_at)
        );
        assert_eq!(legacy.event_id, "700001-9100001");
        assert_eq!(read(contact).change, Change::Other);
    }

    #[test]
    fn merges_and_deletions_are_read() {
        let body = r#"[{"eventId": 9100060, "portalId": 700001, "occurredAt": 1773154800000,
            "subscriptionType": "deal.merge", "objectId": 880007, "primaryObjectId": 880007,
            "mergedObjectIds": [880006], "newObjectId": 880007},
            {"eventId": 9100070, "portalId": 700001, "occurredAt": 1773158400000,
            "subscriptionType": "deal.deletion", "objectId": 880001}]"#;
        let events: Vec<Event> = parse(body)
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            events[0].change,
            Change::Merged {
                primary: "880007".to_owned(),
                merged: vec!["880006".to_owned()]
            }
        );
        assert_eq!(events[1].change, Change::Deleted);
    }

    #[test]
    fn malformed_batches_name_the_event_and_field() {
        let refused = |body: &str| match parse(body) {
            Err(Refusal::Malformed(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert!(refused("{").starts_with("body:"));
        assert!(refused("{}").contains("JSON array"));
        let message = |body: &str| match parse(body).unwrap().pop() {
            Some(Err(m)) => m,
            other => panic!("expected an unreadable event, got {other:?}"),
        };
        assert_eq!(
            message(
                r#"[{"eventId": 1, "portalId": 2, "occurredAt": 3, "subscriptionType": "deal.deletion"}]"#
            ),
            "[0].objectId: required, a number"
        );
        assert_eq!(
            message(
                r#"[{"eventId": 1, "portalId": 2, "subscriptionType": "deal.deletion", "objectId": 4}]"#
            ),
            "[0].occurredAt: required, epoch milliseconds"
        );
        assert!(message(r#"[{"eventId": 1, "portalId": 2, "occurredAt": 3, "subscriptionType": "deal.propertyChange", "objectId": 4, "propertyName": "dealstage"}]"#)
            .starts_with("[0].propertyValue"));
    }
}
