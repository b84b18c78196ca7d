//! `handoff ingress` for the CRMs against the shared dev server: HubSpot
//! webhooks with the CRM API answered by a loopback fake, and Salesforce
//! Outbound Messages. The shared webhook sequences each end in the outcome
//! the README states for them.

use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::harness::{Stack, stack, unique};
use crate::hubspot_fake::{HubSpotFake, TOKEN};
use crate::ingress::{QUICK, Receiver, Worker, metric, request, request_typed, spawn_ingress_with};

const PUBLIC_URL: &str = "https://hooks.example.test/crm";
const CLIENT_SECRET: &str = "hubspot-client-secret";
const HUBSPOT_PATH: &str = "/webhooks/hubspot";
/// A Salesforce organisation, configured in its 15-character form.
const ORG_15: &str = "00D000000000001";
const SF_TOKEN: &str = "outbound-token";

fn sequences() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/synthetic/webhook_event_sequences.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// The deliveries of sequence `id`: its ids kept, the portal made this
/// run's, and every `occurredAt` moved so the last is 30 s ago, with the
/// gaps between them kept.
fn deliveries(all: &Value, id: &str, portal: &str) -> Vec<Value> {
    let sequence = all["sequences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no sequence {id}"));
    let bodies: Vec<Value> = sequence["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["body"].clone())
        .collect();
    let last = bodies
        .iter()
        .flat_map(|b| b.as_array().unwrap())
        .map(|e| e["occurredAt"].as_i64().unwrap())
        .max()
        .unwrap();
    let shift = chrono::Utc::now().timestamp_millis() - 30_000 - last;
    bodies
        .into_iter()
        .map(|mut body| {
            for event in body.as_array_mut().unwrap() {
                event["portalId"] = json!(portal.parse::<u64>().unwrap());
                event["occurredAt"] = json!(event["occurredAt"].as_i64().unwrap() + shift);
            }
            body
        })
        .collect()
}

fn hubspot_headers(
    secret: &str,
    url: &str,
    body: &[u8],
    timestamp: i64,
) -> Vec<(&'static str, String)> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(b"POST");
    mac.update(url.as_bytes());
    mac.update(body);
    mac.update(timestamp.to_string().as_bytes());
    vec![
        (
            "X-HubSpot-Signature-v3",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()),
        ),
        ("X-HubSpot-Request-Timestamp", timestamp.to_string()),
    ]
}

/// Posts a batch signed as HubSpot signs it, now.
fn post_hubspot(receiver: &Receiver, body: &Value) -> (u16, String) {
    let body = serde_json::to_vec(body).unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let headers = hubspot_headers(
        CLIENT_SECRET,
        &format!("{PUBLIC_URL}{HUBSPOT_PATH}"),
        &body,
        now,
    );
    request(&receiver.address, "POST", HUBSPOT_PATH, &headers, &body).unwrap()
}

/// The outcomes of an accepted request.
fn outcomes(answer: &(u16, String)) -> Vec<String> {
    assert_eq!(answer.0, 200, "{answer:?}");
    let body: Value = serde_json::from_str(&answer.1).unwrap();
    body["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap().to_owned())
        .collect()
}

fn no_handoff(stack: &Stack, deal: &str) -> bool {
    !stack
        .handoff(&["deal", "status", deal, "--json"])
        .status
        .success()
}

fn instant(status: &Value, pointer: &str) -> chrono::DateTime<chrono::Utc> {
    let text = status.pointer(pointer).and_then(Value::as_str);
    chrono::DateTime::parse_from_rfc3339(text.unwrap_or_else(|| panic!("{pointer}: {status}")))
        .unwrap()
        .to_utc()
}

#[test]
fn hubspot_sequences_end_in_their_stated_outcomes() {
    let stack = stack();
    let queue = unique("ingress-hubspot");
    let _worker = Worker(stack.spawn_worker(&queue));
    let fake = HubSpotFake::start();
    let hubspot = vec![
        ("HANDOFF_INGRESS_PUBLIC_URL", PUBLIC_URL.to_owned()),
        ("HANDOFF_HUBSPOT_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
        ("HANDOFF_HUBSPOT_TOKEN", TOKEN.to_owned()),
        ("HANDOFF_HUBSPOT_API_URL", fake.url.clone()),
    ];
    let receiver = spawn_ingress_with(stack, &queue, None, &hubspot);
    let all = sequences();
    let portal = format!("7{}", std::process::id());
    let deal = |object: &str| format!("hubspot:{portal}-{object}");
    let read_count = |object: &str| fake.reads(&format!("/crm/v3/objects/deals/{object}"));

    // Signatures missing, wrong, expired or made for another address change nothing.
    let first = deliveries(&all, "hs-duplicate-delivery", &portal);
    fake.put_deal("880001", "closedwon", 30000.0);
    let body = serde_json::to_vec(&first[0]).unwrap();
    let url = format!("{PUBLIC_URL}{HUBSPOT_PATH}");
    let now = chrono::Utc::now().timestamp_millis();
    for headers in [
        vec![],
        hubspot_headers("not-the-secret", &url, &body, now),
        hubspot_headers(CLIENT_SECRET, &url, &body, now - 6 * 60 * 1000),
        hubspot_headers(
            CLIENT_SECRET,
            "https://elsewhere.test/webhooks/hubspot",
            &body,
            now,
        ),
    ] {
        let answer = request(&receiver.address, "POST", HUBSPOT_PATH, &headers, &body).unwrap();
        assert_eq!(answer.0, 401, "{answer:?}");
    }
    assert_eq!(
        read_count("880001"),
        0,
        "nothing was read for a refused call"
    );
    assert!(no_handoff(stack, &deal("880001")));

    // One event of a batch that cannot be used costs the others nothing
    // (HubSpot does not send a refused batch again): it is `invalid`, the
    // rest are applied.
    let now = chrono::Utc::now().timestamp_millis();
    let mixed = json!([
        { "eventId": 9_199_001, "portalId": portal.parse::<u64>().unwrap(), "occurredAt": now,
          "subscriptionType": "deal.deletion" },
        { "eventId": 9_199_002, "portalId": portal.parse::<u64>().unwrap(), "occurredAt": now,
          "subscriptionType": "deal.deletion", "objectId": 889_999 },
    ]);
    assert_eq!(
        outcomes(&post_hubspot(&receiver, &mixed)),
        ["invalid", "ignored"]
    );
    // A receiver pinned to another portal reads nothing for this one's events.
    let mut elsewhere = hubspot.clone();
    elsewhere.push(("HANDOFF_HUBSPOT_PORTAL_ID", "1".to_owned()));
    let pinned = spawn_ingress_with(stack, &queue, None, &elsewhere);
    assert_eq!(outcomes(&post_hubspot(&pinned, &first[0])), ["ignored"]);
    assert_eq!(read_count("880001"), 0, "nothing read for another portal");
    drop(pinned);

    // hs-duplicate-delivery: both attempts at once; one handoff, one duplicate.
    let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
        let posts: Vec<_> = first
            .iter()
            .map(|body| scope.spawn(|| post_hubspot(&receiver, body)))
            .collect();
        posts.into_iter().map(|p| p.join().unwrap()).collect()
    });
    let mut seen: Vec<String> = answers.iter().flat_map(outcomes).collect();
    seen.sort();
    assert_eq!(seen, ["accepted", "duplicate"], "{answers:?}");
    let status = stack.wait_status(&deal("880001"), "the handoff", QUICK, |s| {
        s["stage"] == "awaiting_gates"
    });
    assert_eq!(status["deal_id"], format!("{portal}-880001"));
    assert_eq!(outcomes(&post_hubspot(&receiver, &first[1])), ["duplicate"]);

    // hs-non-stage-change-while-won: the amount refreshes the bundle, nothing starts.
    fake.set_property("880001", "amount", "48000");
    let amount = deliveries(&all, "hs-non-stage-change-while-won", &portal);
    assert_eq!(outcomes(&post_hubspot(&receiver, &amount[0])), ["accepted"]);
    let mut elsewhere = amount[0].clone();
    elsewhere[0]["eventId"] = json!(9_100_031);
    elsewhere[0]["objectId"] = json!(889_999);
    assert_eq!(outcomes(&post_hubspot(&receiver, &elsewhere)), ["ignored"]);
    assert!(no_handoff(stack, &deal("889999")));
    assert_eq!(
        read_count("889999"),
        0,
        "a deal without a handoff is not read"
    );

    // hs-won-lost-won-flip: lost pauses, won again resumes; one handoff, its
    // gate clocks anchored on the first won instant (moved by the pause only).
    let flip = deliveries(&all, "hs-won-lost-won-flip", &portal);
    fake.put_deal("880002", "closedwon", 30000.0);
    assert_eq!(outcomes(&post_hubspot(&receiver, &flip[0])), ["accepted"]);
    let before = stack.wait_status(&deal("880002"), "the gate clocks", QUICK, |s| {
        s["gates"]["signature"]["due_at"].is_string()
    });
    fake.set_property("880002", "dealstage", "closedlost");
    assert_eq!(outcomes(&post_hubspot(&receiver, &flip[1])), ["accepted"]);
    stack.wait_status(&deal("880002"), "the lost pause", QUICK, |s| {
        s["paused"]["kind"] == "lost"
    });
    fake.set_property("880002", "dealstage", "closedwon");
    assert_eq!(outcomes(&post_hubspot(&receiver, &flip[2])), ["accepted"]);
    let after = stack.wait_status(&deal("880002"), "the resumed handoff", QUICK, |s| {
        s["paused"].is_null()
            && s["stage"] == "awaiting_gates"
            && s["gates"]["signature"]["due_at"].is_string()
    });
    let due = "/gates/signature/due_at";
    let moved = instant(&after, due) - instant(&before, due);
    assert!(
        moved >= chrono::Duration::zero() && moved <= chrono::Duration::days(4),
        "the due instant moves by the pause only: {moved}"
    );
    assert_eq!(after["rejected_events"]["total"], 0, "{after}");

    // hs-out-of-order: the later lost arrives first; the earlier won is late.
    let disorder = deliveries(&all, "hs-out-of-order", &portal);
    fake.put_deal("880003", "closedlost", 30000.0);
    assert_eq!(
        outcomes(&post_hubspot(&receiver, &disorder[0])),
        ["ignored"]
    );
    assert_eq!(outcomes(&post_hubspot(&receiver, &disorder[1])), ["late"]);
    assert!(no_handoff(stack, &deal("880003")));

    // hs-custom-pipeline-stage-id: the portal's pipeline says 31337001 is won.
    fake.add_pipeline(
        "777001",
        &[
            ("31337001", "Contract signed", true, "1.0"),
            ("31337002", "Lost", true, "0.0"),
        ],
    );
    fake.put_deal("880004", "31337001", 30000.0);
    let custom = deliveries(&all, "hs-custom-pipeline-stage-id", &portal);
    assert_eq!(outcomes(&post_hubspot(&receiver, &custom[0])), ["accepted"]);
    stack.wait_status(&deal("880004"), "the handoff", QUICK, |s| {
        s["stage"] == "awaiting_gates"
    });
    let mut unknown = custom[0].clone();
    unknown[0]["eventId"] = json!(9_100_041);
    unknown[0]["objectId"] = json!(880_014);
    unknown[0]["propertyValue"] = json!("31337999");
    assert_eq!(outcomes(&post_hubspot(&receiver, &unknown)), ["ignored"]);
    assert!(no_handoff(stack, &deal("880014")));

    // hs-generic-webhook-format: the object.* spelling starts it; the same
    // change from a deal.* subscription (another event id) is a duplicate.
    let generic = deliveries(&all, "hs-generic-webhook-format", &portal);
    fake.put_deal("880005", "closedwon", 30000.0);
    assert_eq!(
        outcomes(&post_hubspot(&receiver, &generic[0])),
        ["accepted"]
    );
    let mut legacy = generic[0].clone();
    legacy[0]["eventId"] = json!(9_100_051);
    legacy[0]["subscriptionType"] = json!("deal.propertyChange");
    legacy[0].as_object_mut().unwrap().remove("objectTypeId");
    assert_eq!(outcomes(&post_hubspot(&receiver, &legacy)), ["duplicate"]);
    stack.wait_status(&deal("880005"), "the handoff", QUICK, |s| {
        s["stage"] == "awaiting_gates"
    });

    // hs-merge-after-start: 880006 runs; merged into 880007, whose events
    // then reach 880006's handoff and start nothing.
    fake.put_deal("880006", "closedwon", 30000.0);
    fake.put_deal("880007", "closedwon", 30000.0);
    let mut won_880006 = generic[0].clone();
    won_880006[0]["eventId"] = json!(9_100_059);
    won_880006[0]["objectId"] = json!(880_006);
    assert_eq!(
        outcomes(&post_hubspot(&receiver, &won_880006)),
        ["accepted"]
    );
    stack.wait_status(&deal("880006"), "the handoff", QUICK, |s| {
        s["stage"] == "awaiting_gates"
    });
    let merge = deliveries(&all, "hs-merge-after-start", &portal);
    assert_eq!(outcomes(&post_hubspot(&receiver, &merge[0])), ["accepted"]);
    fake.set_property("880007", "amount", "64000");
    let mut after_merge = amount[0].clone();
    after_merge[0]["eventId"] = json!(9_100_061);
    after_merge[0]["objectId"] = json!(880_007);
    assert_eq!(
        outcomes(&post_hubspot(&receiver, &after_merge)),
        ["accepted"]
    );
    assert!(no_handoff(stack, &deal("880007")));
    let merged = stack.wait_status(&deal("880006"), "the handoff", QUICK, |s| {
        s["stage"] == "awaiting_gates"
    });
    assert_eq!(merged["rejected_events"]["total"], 0, "{merged}");

    // hs-deletion-after-start: 880001 ends cancelled (deleted), without grace.
    let deletion = deliveries(&all, "hs-deletion-after-start", &portal);
    assert_eq!(
        outcomes(&post_hubspot(&receiver, &deletion[0])),
        ["accepted"]
    );
    stack.wait_status(&deal("880001"), "the cancelled handoff", QUICK, |s| {
        s["stage"] == "cancelled" && s["cancel_reason"] == "deleted"
    });

    let series = |name: &str| metric(&receiver, name);
    assert_eq!(
        series("handoff_ingress_signature_failures_total{source=\"hubspot\"}"),
        4.0
    );
    assert_eq!(
        series("handoff_ingress_duplicates_total{source=\"hubspot\"}"),
        3.0
    );
    assert_eq!(
        series("handoff_ingress_late_events_total{source=\"hubspot\"}"),
        1.0
    );
    assert_eq!(
        series("handoff_ingress_unknown_stages_total{source=\"hubspot\"}"),
        1.0
    );
}

/// An Outbound Message of one opportunity notification.
fn outbound_message(org: &str, notification: &str, fields: &[(&str, &str)]) -> String {
    let fields: String = fields
        .iter()
        .map(|(name, value)| format!("<sf:{name}>{value}</sf:{name}>"))
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{org}</OrganizationId>
   <ActionId>04k000000000001AAA</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://example.my.salesforce.com/services/Soap/c/60.0/{org}</EnterpriseUrl>
   <PartnerUrl>https://example.my.salesforce.com/services/Soap/u/60.0/{org}</PartnerUrl>
   <Notification>
    <Id>{notification}</Id>
    <sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">{fields}</sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#
    )
}

fn post_salesforce(receiver: &Receiver, path: &str, xml: &str) -> (u16, String) {
    request_typed(
        &receiver.address,
        "POST",
        path,
        "text/xml; charset=utf-8",
        &[("SOAPAction", "\"\"".to_owned())],
        xml.as_bytes(),
    )
    .unwrap()
}

#[test]
fn salesforce_outbound_messages_are_acknowledged_and_is_won_decides() {
    let stack = stack();
    let queue = unique("ingress-salesforce");
    let _worker = Worker(stack.spawn_worker(&queue));
    let receiver = spawn_ingress_with(
        stack,
        &queue,
        None,
        &[
            ("HANDOFF_SALESFORCE_ORG_ID", ORG_15.to_owned()),
            ("HANDOFF_SALESFORCE_TOKEN", SF_TOKEN.to_owned()),
        ],
    );
    let path = format!("/webhooks/salesforce?token={SF_TOKEN}");
    let opportunity = format!("006{:012}", std::process::id());
    let deal = format!("salesforce:{opportunity}");
    let modified = (chrono::Utc::now() - chrono::Duration::seconds(30))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    // sf-cdc-opportunity-closed-won, as the Outbound Messages of its two
    // changes: IsWon true (the stage label is the org's own), then the amount.
    let won = [
        ("Id", opportunity.as_str()),
        ("Account_Name__c", "Example &amp; Co"),
        ("Amount", "50000.0"),
        ("IsClosed", "true"),
        ("IsWon", "true"),
        ("LastModifiedDate", modified.as_str()),
        ("Name", "Platform rollout"),
        ("StageName", "Closed/Won"),
    ];
    let first = outbound_message("00D000000000001AAA", "04l000000000001AAA", &won);

    // Wrong organisation, missing token, not XML: refused, nothing started.
    let other_org = outbound_message("00D000000000002AAA", "04l000000000009AAA", &won);
    let refused = post_salesforce(&receiver, &path, &other_org);
    assert_eq!(refused.0, 401, "{refused:?}");
    assert!(refused.1.contains("<faultstring>"), "{refused:?}");
    assert_eq!(
        post_salesforce(&receiver, "/webhooks/salesforce", &first).0,
        401
    );
    let garbled = post_salesforce(&receiver, &path, "<notifications><Notification>");
    assert_eq!(garbled.0, 400, "{garbled:?}");
    // A checkbox that is neither true nor false, and a negative amount:
    // refused with the field named, as the other endpoints refuse them.
    for (index, field, notification, named) in [
        (4, ("IsWon", "yes"), "04l000000000007AAA", "IsWon"),
        (2, ("Amount", "-5"), "04l000000000008AAA", "amount"),
        (2, ("Amount", "lots"), "04l000000000006AAA", "Amount"),
    ] {
        let mut odd = won;
        odd[index] = field;
        let odd = outbound_message("00D000000000001AAA", notification, &odd);
        let refused = post_salesforce(&receiver, &path, &odd);
        assert_eq!(refused.0, 400, "{refused:?}");
        assert!(refused.1.contains(named), "{refused:?}");
    }
    assert!(no_handoff(stack, &deal));

    let acknowledged = post_salesforce(&receiver, &path, &first);
    assert_eq!(acknowledged.0, 200, "{acknowledged:?}");
    assert!(
        acknowledged.1.contains("<Ack>true</Ack>"),
        "{acknowledged:?}"
    );
    stack.wait_status(&deal, "the handoff", QUICK, |s| {
        s["stage"] == "awaiting_gates"
    });

    // The amount change, same instant, another notification: applied, nothing started.
    let mut amended = won;
    amended[2] = ("Amount", "52000.0");
    let second = outbound_message("00D000000000001AAA", "04l000000000002AAA", &amended);
    assert!(
        post_salesforce(&receiver, &path, &second)
            .1
            .contains("<Ack>true</Ack>")
    );
    // Salesforce retrying the first message gets the acknowledgement again.
    assert!(
        post_salesforce(&receiver, &path, &first)
            .1
            .contains("<Ack>true</Ack>")
    );

    // Moved back to an open stage: the handoff pauses as reopened.
    let reopened_at = (chrono::Utc::now() - chrono::Duration::seconds(5))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let open = [
        ("Id", opportunity.as_str()),
        ("Account_Name__c", "Example Co"),
        ("IsClosed", "false"),
        ("IsWon", "false"),
        ("LastModifiedDate", reopened_at.as_str()),
        ("StageName", "Negotiation/Review"),
    ];
    let third = outbound_message("00D000000000001AAA", "04l000000000003AAA", &open);
    assert!(
        post_salesforce(&receiver, &path, &third)
            .1
            .contains("<Ack>true</Ack>")
    );
    let status = stack.wait_status(&deal, "the reopened pause", QUICK, |s| {
        s["paused"]["kind"] == "reopened"
    });
    assert_eq!(status["rejected_events"]["total"], 0, "{status}");

    let series = |name: &str| metric(&receiver, name);
    assert_eq!(
        series("handoff_ingress_duplicates_total{source=\"salesforce\"}"),
        1.0
    );
    assert_eq!(
        series("handoff_ingress_signature_failures_total{source=\"salesforce\"}"),
        2.0
    );
    assert_eq!(
        series("handoff_ingress_requests_total{outcome=\"accepted\",source=\"salesforce\"}"),
        3.0
    );
}
