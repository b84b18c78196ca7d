//! Whatever a sender writes, the bundle parser and the signal and update
//! decoders never panic, and every rejection names the field at fault.

// Test support code panics on setup failures by design.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use handoff_workflows::bundle::ValidBundle;
use handoff_workflows::message::{SIGNAL_NAMES, UPDATE_NAMES, decode, decode_update};

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-05T13:00:00Z")
        .unwrap()
        .to_utc()
}

/// Any JSON value, nested a few levels, with the field names senders use.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
        Just(json!("2026-03-04T15:00:00Z")),
        Just(json!("2027-01-01T00:00:00Z")),
        Just(json!("2026-03-01")),
    ];
    let names = prop_oneof![
        Just("deal"),
        Just("account"),
        Just("source"),
        Just("id"),
        Just("name"),
        Just("amount"),
        Just("closed_won_at"),
        Just("at"),
        Just("by"),
        Just("bundle"),
        Just("milestone"),
        Just("evidence"),
        Just("rate"),
        Just("active_users"),
        Just("licensed_users"),
        Just("key"),
        Just("reason"),
        Just("new_due"),
        Just("role"),
        Just("handle"),
        Just("team"),
        Just("timezone"),
        Just("owners"),
        Just("contacts"),
        Just("as_of"),
        Just("segment"),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((names.clone(), inner), 0..6).prop_map(|fields| {
                Value::Object(
                    fields
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<String, Value>>(),
                )
            }),
        ]
    })
}

/// A rejection names a field (`name: …` or `a.b.c: …`) or the payload.
fn names_a_field(reason: &str) -> bool {
    let Some((field, rest)) = reason.split_once(": ") else {
        return false;
    };
    !rest.is_empty()
        && !field.is_empty()
        && field
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn the_bundle_parser_never_panics_and_names_the_field(value in json_value()) {
        if let Err(error) = ValidBundle::from_value(value) {
            let text = error.to_string();
            prop_assert!(error.field().is_some(), "{text}");
            prop_assert!(names_a_field(&text), "{text}");
        }
    }

    #[test]
    fn the_bundle_parser_survives_any_text(text in "\\PC{0,64}") {
        // Not JSON, or JSON of the wrong shape: an error, never a panic.
        let _ = ValidBundle::from_json(&text);
    }

    #[test]
    fn signal_decoding_never_panics_and_names_the_field(
        signal in prop::sample::select(SIGNAL_NAMES.to_vec()),
        payload in prop::option::of(json_value()),
    ) {
        if let Err(reason) = decode(signal, payload, now(), "handoff-manual-D-1") {
            prop_assert!(names_a_field(&reason), "{signal}: {reason}");
        }
    }

    #[test]
    fn update_decoding_never_panics_and_names_the_field(
        name in prop::sample::select(UPDATE_NAMES.to_vec()),
        payload in prop::option::of(json_value()),
    ) {
        if let Err(reason) = decode_update(name, payload) {
            prop_assert!(names_a_field(&reason), "{name}: {reason}");
        }
    }
}

#[test]
fn a_bundle_of_the_wrong_type_names_the_nested_field() {
    let bundle = json!({"deal": {"source": "manual", "id": "D-1", "amount": "lots",
                                 "closed_won_at": "2026-03-01"},
                        "account": {"name": "Example Corp"}});
    let error = ValidBundle::from_value(bundle).unwrap_err();
    assert_eq!(error.field(), Some("deal.amount"));
}
