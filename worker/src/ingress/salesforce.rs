//! `POST /webhooks/salesforce`: Salesforce Outbound Messages, SOAP 1.1 with
//! up to 100 notifications of one organisation.
//!
//! Outbound Messages are not signed: the organisation id in the message must
//! be `HANDOFF_SALESFORCE_ORG_ID`, and when `HANDOFF_SALESFORCE_TOKEN` is set
//! the endpoint URL must carry it as `?token=`. Each notification is a
//! snapshot of the opportunity's selected fields; `IsWon` decides closed won
//! (the stage name only when `IsWon` is not sent), `IsClosed` without
//! `IsWon` is lost, anything else open. Salesforce retries a message until
//! it gets the acknowledgement, so every answer but the acknowledgement
//! makes it come again.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse as _, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use serde_json::{Value, json};

use handoff_workflows::bundle::ValidBundle;
use handoff_workflows::identity::salesforce_id_18;

use super::{Delivery, Ingress, Outcome, Refusal, body_text};

const SOURCE: &str = "salesforce";
/// Fields of the opportunity the bundle reads beyond the standard ones;
/// formula fields, because an Outbound Message carries one object only.
const ACCOUNT_NAME: &str = "Account_Name__c";
const ACCOUNT_INDUSTRY: &str = "Account_Industry__c";
const ACCOUNT_WEBSITE: &str = "Account_Website__c";

/// The acknowledgement Salesforce waits for.
const ACK: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">"#,
    r#"<soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">"#,
    r#"<Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>"#
);

/// One Outbound Message.
#[derive(Debug, Default, PartialEq)]
struct Message {
    organization_id: Option<String>,
    notifications: Vec<Notification>,
}

/// One notification: its id and the sObject's fields (`None` for `xsi:nil`).
#[derive(Debug, Default, PartialEq)]
struct Notification {
    id: Option<String>,
    object_type: Option<String>,
    fields: BTreeMap<String, Option<String>>,
}

impl Notification {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_deref())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    /// A checkbox field: `true`, `false`, or absent; anything else is refused.
    fn flag(&self, name: &str) -> Result<Option<bool>, Refusal> {
        match self.field(name) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(Refusal::Malformed(format!(
                "sObject.{name}: {v:?} is not true or false"
            ))),
        }
    }
}

pub(super) async fn receive(
    State(ingress): State<Arc<Ingress>>,
    uri: Uri,
    body: Bytes,
) -> Response {
    let token = uri.query().and_then(|query| {
        let url = reqwest::Url::parse(&format!("http://receiver/?{query}")).ok()?;
        url.query_pairs()
            .find(|(name, _)| name == "token")
            .map(|(_, value)| value.into_owned())
    });
    let result = handle(&ingress, token.as_deref(), &body).await;
    ingress.count(SOURCE, &result);
    match result {
        Ok(_) => ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], ACK).into_response(),
        Err(refusal) => fault(refusal),
    }
}

/// A SOAP fault with the status SPEC §10 gives the refusal.
fn fault(refusal: Refusal) -> Response {
    let (status, code, message) = match refusal {
        Refusal::Unauthorized(m) => (StatusCode::UNAUTHORIZED, "soapenv:Client", m),
        Refusal::Malformed(m) => (StatusCode::BAD_REQUEST, "soapenv:Client", m),
        Refusal::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "soapenv:Server", m),
    };
    let message = quick_xml::escape::escape(message.as_str()).into_owned();
    let body = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>{code}</faultcode><faultstring>{message}</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn handle(
    ingress: &Ingress,
    token: Option<&str>,
    body: &Bytes,
) -> Result<Vec<Outcome>, Refusal> {
    let config = &ingress.config;
    let Some(organization) = config.salesforce_org_id.as_deref() else {
        return Err(Refusal::Unauthorized(
            "this receiver has no HANDOFF_SALESFORCE_ORG_ID".to_owned(),
        ));
    };
    if let Some(expected) = config.salesforce_token.as_deref()
        && !token.is_some_and(|t| super::constant_time_eq(t.as_bytes(), expected.as_bytes()))
    {
        return Err(Refusal::Unauthorized(
            "token: missing or wrong in the endpoint URL (?token=)".to_owned(),
        ));
    }
    let message = parse(body_text(body)?)?;
    let given = message
        .organization_id
        .as_deref()
        .and_then(salesforce_id_18)
        .ok_or_else(|| Refusal::Unauthorized("OrganizationId: missing".to_owned()))?;
    // The first 15 characters are the id; the last 3 only encode their case.
    if given[..15] != organization[..15] {
        return Err(Refusal::Unauthorized(format!(
            "OrganizationId: {given} is not the organisation this receiver accepts"
        )));
    }
    let mut outcomes = Vec::with_capacity(message.notifications.len());
    for (i, notification) in message.notifications.iter().enumerate() {
        let outcome = apply(ingress, notification).await.map_err(|r| match r {
            Refusal::Malformed(m) => Refusal::Malformed(format!("Notification[{i}]: {m}")),
            other => other,
        })?;
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

async fn apply(ingress: &Ingress, notification: &Notification) -> Result<Outcome, Refusal> {
    let event_id = notification
        .id
        .clone()
        .filter(|id| !id.trim().is_empty())
        .ok_or_else(|| Refusal::Malformed("Id: required".to_owned()))?;
    if !notification
        .object_type
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("Opportunity"))
    {
        tracing::warn!(
            object_type = notification.object_type.as_deref().unwrap_or("none"),
            "outbound message for an object other than Opportunity ignored"
        );
        return Ok(Outcome::Ignored);
    }
    let id = notification
        .field("Id")
        .and_then(salesforce_id_18)
        .ok_or_else(|| Refusal::Malformed("sObject.Id: required, an opportunity id".to_owned()))?;
    let occurred_at = match notification
        .field("LastModifiedDate")
        .or_else(|| notification.field("SystemModstamp"))
    {
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map_err(|_| {
                Refusal::Malformed(format!(
                    "sObject.LastModifiedDate: {text:?} is not an RFC 3339 instant"
                ))
            })?
            .to_utc(),
        None => Utc::now(),
    };
    let at = occurred_at.to_rfc3339_opts(SecondsFormat::Millis, true);
    let won = match (notification.flag("IsWon")?, notification.field("StageName")) {
        (Some(won), _) => won,
        (None, Some(stage)) => ingress.settings.is_won_stage(stage),
        (None, None) => {
            return Err(Refusal::Malformed(
                "sObject: send IsWon (or StageName) in the outbound message".to_owned(),
            ));
        }
    };
    let closed = notification.flag("IsClosed")?.unwrap_or(won);
    let target = ingress.target(SOURCE, &id).await?;
    let mut delivery = Delivery {
        source: SOURCE,
        event_id,
        target,
        signal: "deal_reopened",
        payload: json!({ "at": at }),
        bundle: None,
        occurred_at: occurred_at.timestamp_millis(),
        ordered: true,
        // Each notification is the whole record: one at the same instant
        // as the last applied may carry other fields, and is applied.
        same_instant_is_duplicate: false,
        existing_only: true,
    };
    if !won {
        if closed {
            delivery.signal = "deal_lost";
            delivery.payload = json!({ "reason": "lost", "at": at });
        }
        return ingress.apply(delivery).await;
    }
    // A dropped amount would put the deal in another segment's playbook.
    if let Some(amount) = notification.field("Amount")
        && !amount.parse::<f64>().is_ok_and(f64::is_finite)
    {
        return Err(Refusal::Malformed(format!(
            "sObject.Amount: {amount:?} is not a number"
        )));
    }
    let bundle = ValidBundle::from_value(bundle_of(&delivery.target.deal_id, notification, &at))
        .map_err(|e| {
            Refusal::Malformed(format!(
                "the opportunity does not make a bundle: {e} (the outbound message must send \
                 {ACCOUNT_NAME}, a formula field of Account.Name)"
            ))
        })?;
    delivery.signal = "closed_won";
    delivery.payload = json!({ "bundle": bundle.bundle, "at": at });
    delivery.bundle = Some(&bundle);
    delivery.existing_only = false;
    ingress.apply(delivery).await
}

/// The bundle of an opportunity's fields.
fn bundle_of(deal_id: &str, notification: &Notification, at: &str) -> Value {
    let field = |name: &str| notification.field(name).map(str::to_owned);
    let bundle = json!({
        "deal": {
            "source": SOURCE,
            "id": deal_id,
            "name": field("Name"),
            "amount": field("Amount").and_then(|a| a.parse::<f64>().ok()),
            "currency": field("CurrencyIsoCode"),
            "closed_won_at": at,
        },
        "account": {
            "name": field(ACCOUNT_NAME),
            "industry": field(ACCOUNT_INDUSTRY),
            "domain": field(ACCOUNT_WEBSITE).map(|w| crate::import::domain_of(&w)),
        },
        "use_case": field("Description"),
    });
    crate::import::strip_nulls(bundle)
}

/// Reads the envelope: the organisation id and every notification.
fn parse(xml: &str) -> Result<Message, Refusal> {
    let malformed = |m: String| Refusal::Malformed(format!("body: {m}"));
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut path: Vec<String> = Vec::new();
    let mut message = Message::default();
    let mut seen_notifications = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| malformed(format!("not XML: {e}")))?;
        match event {
            Event::Start(start) => {
                let name = local_name(&start);
                opened(&mut message, &path, &name, &start, &mut seen_notifications);
                path.push(name);
            }
            Event::Empty(start) => {
                let name = local_name(&start);
                opened(&mut message, &path, &name, &start, &mut seen_notifications);
                path.push(name);
                text(&mut message, &path, None);
                path.pop();
            }
            Event::Text(t) => {
                let value = t
                    .unescape()
                    .map_err(|e| malformed(format!("bad text: {e}")))?;
                text(&mut message, &path, Some(value.into_owned()));
            }
            Event::CData(c) => {
                let value = String::from_utf8_lossy(&c.into_inner()).into_owned();
                text(&mut message, &path, Some(value));
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Eof => {
                if let Some(open) = path.last() {
                    return Err(malformed(format!("not XML: it ends inside <{open}>")));
                }
                break;
            }
            _ => {}
        }
    }
    if !seen_notifications {
        return Err(malformed(
            "not a Salesforce Outbound Message (no notifications element)".to_owned(),
        ));
    }
    Ok(message)
}

fn local_name(start: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(start.local_name().as_ref()).into_owned()
}

/// An element opened under `path`.
fn opened(
    message: &mut Message,
    path: &[String],
    name: &str,
    start: &BytesStart<'_>,
    seen_notifications: &mut bool,
) {
    let parent = path.last().map(String::as_str);
    if name == "notifications" {
        *seen_notifications = true;
    }
    if name == "Notification" && parent == Some("notifications") {
        message.notifications.push(Notification::default());
    }
    if name == "sObject"
        && parent == Some("Notification")
        && let Some(notification) = message.notifications.last_mut()
    {
        notification.object_type = start
            .attributes()
            .flatten()
            .find(|a| a.key.local_name().as_ref() == b"type")
            .and_then(|a| a.unescape_value().ok())
            .map(|t| t.rsplit(':').next().unwrap_or_default().to_owned());
    }
}

/// Text (or `None` for an empty element) at the end of `path`.
fn text(message: &mut Message, path: &[String], value: Option<String>) {
    let depth = path.len();
    let (Some(name), Some(parent)) = (path.last(), depth.checked_sub(2).map(|i| &path[i])) else {
        return;
    };
    match (parent.as_str(), name.as_str()) {
        ("notifications", "OrganizationId") => message.organization_id = value,
        ("Notification", "Id") => {
            if let Some(notification) = message.notifications.last_mut() {
                notification.id = value;
            }
        }
        ("sObject", field) if depth >= 3 && path[depth - 3] == "Notification" => {
            if let Some(notification) = message.notifications.last_mut() {
                notification.fields.insert(field.to_owned(), value);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00D000000000001AAA</OrganizationId>
   <ActionId>04k000000000001AAA</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://example.my.salesforce.com/services/Soap/c/60.0/00D000000000001</EnterpriseUrl>
   <PartnerUrl>https://example.my.salesforce.com/services/Soap/u/60.0/00D000000000001</PartnerUrl>
   <Notification>
    <Id>04l000000000001AAA</Id>
    <sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>006000000000AAAAA1</sf:Id>
     <sf:Account_Name__c>Example &amp; Co</sf:Account_Name__c>
     <sf:Amount>52000.0</sf:Amount>
     <sf:Description xsi:nil="true"/>
     <sf:IsClosed>true</sf:IsClosed>
     <sf:IsWon>true</sf:IsWon>
     <sf:LastModifiedDate>2026-03-06T21:00:01.000Z</sf:LastModifiedDate>
     <sf:Name>Platform rollout</sf:Name>
     <sf:StageName>Closed/Won</sf:StageName>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#;

    #[test]
    fn an_outbound_message_reads_into_its_notifications() {
        let message = parse(MESSAGE).unwrap();
        assert_eq!(
            message.organization_id.as_deref(),
            Some("00D000000000001AAA")
        );
        let [notification] = message.notifications.as_slice() else {
            panic!("one notification: {message:?}");
        };
        assert_eq!(notification.id.as_deref(), Some("04l000000000001AAA"));
        assert_eq!(notification.object_type.as_deref(), Some("Opportunity"));
        assert_eq!(notification.field("Account_Name__c"), Some("Example & Co"));
        assert_eq!(notification.flag("IsWon").unwrap(), Some(true));
        assert_eq!(notification.field("Description"), None);
        let bundle = bundle_of(
            "006000000000AAAAA1",
            notification,
            "2026-03-06T21:00:01.000Z",
        );
        let bundle = ValidBundle::from_value(bundle).unwrap();
        assert_eq!(bundle.bundle.account.name.as_deref(), Some("Example & Co"));
        assert_eq!(bundle.bundle.deal.amount, Some(52000.0));
    }

    #[test]
    fn what_is_not_an_outbound_message_is_refused_with_a_reason() {
        let reason = |xml: &str| match parse(xml) {
            Err(Refusal::Malformed(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert!(reason("<a><b></a>").contains("not XML"));
        assert!(reason("<notifications><Notification>").contains("ends inside <Notification>"));
        assert!(reason("<Envelope><Body/></Envelope>").contains("no notifications"));
        assert!(reason("{\"json\": true}").contains("no notifications"));
    }
}
