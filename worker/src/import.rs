//! `handoff deal import`: one handoff per closed-won record of a CRM export.
//!
//! Each record becomes a bundle and goes through the same delivery as
//! `deal start`, so a second import of the same export starts nothing: the
//! deal registry and the workflow id reuse policy both stand in the way.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::{Value, json};

use handoff_workflows::bundle::ValidBundle;

use crate::cli::ImportFormat;
use crate::config::Settings;
use crate::deals::{Courier, target_of};
use crate::exit::Exit;
use crate::temporal::Delivered;

mod csv_export;

/// Counts printed at the end of an import.
#[derive(Debug, Default, Serialize)]
pub(crate) struct ImportReport {
    pub(crate) read: usize,
    pub(crate) started: usize,
    pub(crate) existing: usize,
    pub(crate) skipped: usize,
    pub(crate) invalid: usize,
    pub(crate) errors: Vec<RecordError>,
}

/// Why one record was not imported.
#[derive(Debug, Serialize)]
pub(crate) struct RecordError {
    pub(crate) record: String,
    pub(crate) message: String,
}

/// One record after reading: a bundle to send, not a won deal, or invalid.
enum Record {
    Won(Box<ValidBundle>),
    NotWon,
    Invalid(String),
}

/// What `deal import` was asked to do.
pub(crate) struct ImportRequest<'a> {
    pub(crate) format: ImportFormat,
    pub(crate) file: &'a Path,
    pub(crate) accounts: Option<&'a Path>,
    pub(crate) as_of: Option<&'a str>,
    /// HubSpot portal (account) id, required by `hubspot-csv`.
    pub(crate) portal_id: Option<u64>,
}

/// Runs an import; the caller turns `invalid > 0` into exit code 1.
pub(crate) async fn import(
    courier: &Courier,
    request: &ImportRequest<'_>,
) -> anyhow::Result<ImportReport> {
    if let Some(as_of) = request.as_of {
        chrono::DateTime::parse_from_rfc3339(as_of)
            .map_err(|_| Exit::config(format!("--as-of {as_of:?} is not an RFC 3339 instant")))?;
    }
    let settings = &courier.settings;
    let records = match request.format {
        ImportFormat::SalesforceJson => {
            read_salesforce_json(courier, request.file, request.accounts)?
        }
        ImportFormat::SalesforceCsv => {
            let accounts = read_accounts(request.file, request.accounts)?;
            let text = read_bytes(request.file)?;
            csv_export::salesforce_rows(settings, &text, &accounts)
                .map_err(|e| Exit::data(format!("{}: {e}", request.file.display())))?
        }
        ImportFormat::HubspotCsv => {
            let portal_id = request.portal_id.ok_or_else(|| {
                Exit::config(
                    "--format hubspot-csv needs --portal-id: the HubSpot account id \
                     (Settings > Account details), since deal ids are unique per portal only",
                )
            })?;
            let text = read_bytes(request.file)?;
            csv_export::hubspot_rows(settings, &text, portal_id)
                .map_err(|e| Exit::data(format!("{}: {e}", request.file.display())))?
        }
    };
    let progress = progress_bar(records.len() as u64);
    let mut report = ImportReport {
        read: records.len(),
        ..ImportReport::default()
    };
    for (reference, record) in records {
        progress.inc(1);
        match record {
            Record::NotWon => report.skipped += 1,
            Record::Invalid(message) => {
                report.invalid += 1;
                report.errors.push(RecordError {
                    record: reference,
                    message,
                });
            }
            Record::Won(bundle) => {
                let mut payload = json!({ "bundle": bundle.bundle });
                if let Some(as_of) = request.as_of {
                    payload["as_of"] = json!(as_of);
                }
                match courier
                    .deliver(
                        &target_of(&bundle),
                        "closed_won",
                        &payload,
                        Some(&bundle),
                        None,
                    )
                    .await?
                {
                    Delivered::Running { started: true, .. } => report.started += 1,
                    _ => report.existing += 1,
                }
            }
        }
    }
    progress.finish_and_clear();
    Ok(report)
}

fn progress_bar(len: u64) -> ProgressBar {
    // Hidden unless stderr is a terminal, so scripts and logs stay clean.
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} records {elapsed}")
            .expect("the template is valid"),
    );
    bar
}

/// Reads an sObject tree export (`{"records": [...]}`), resolving
/// `@AccountRefN` through the accounts file.
fn read_salesforce_json(
    courier: &Courier,
    file: &Path,
    accounts: Option<&Path>,
) -> anyhow::Result<Vec<(String, Record)>> {
    let export = read_json(file)?;
    let accounts = read_accounts(file, accounts)?;
    salesforce_records(&courier.settings, file, &export, &accounts)
}

/// The records of an sObject tree export, each read into a bundle.
fn salesforce_records(
    settings: &Settings,
    file: &Path,
    export: &Value,
    accounts: &HashMap<String, Value>,
) -> anyhow::Result<Vec<(String, Record)>> {
    let records = export
        .get("records")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            Exit::data(format!(
                "{}: expected an sObject tree, {{\"records\": [...]}}",
                file.display()
            ))
        })?;
    Ok(records
        .iter()
        .enumerate()
        .map(|(index, record)| {
            let reference = text(record, &["attributes", "referenceId"])
                .or_else(|| text(record, &["Id"]))
                .unwrap_or_else(|| format!("record {}", index + 1));
            let parsed = salesforce_record(settings, record, accounts);
            (reference, parsed)
        })
        .collect())
}

fn salesforce_record(
    settings: &Settings,
    record: &Value,
    accounts: &HashMap<String, Value>,
) -> Record {
    if !is_won(settings, record) {
        return Record::NotWon;
    }
    // A record id wins; sObject tree files written for import carry only a reference.
    let Some(id) = field(record, "Id").or_else(|| text(record, &["attributes", "referenceId"]))
    else {
        return Record::Invalid(
            "deal.id: the record has neither Id nor attributes.referenceId".to_owned(),
        );
    };
    let account = match field(record, "AccountId") {
        Some(reference) if reference.starts_with('@') => match accounts.get(&reference[1..]) {
            Some(account) => account.clone(),
            None => {
                return Record::Invalid(format!(
                    "account.name: {reference} is not in the accounts file"
                ));
            }
        },
        _ => record.get("Account").cloned().unwrap_or(Value::Null),
    };
    let bundle = json!({
        "deal": {
            "source": "salesforce",
            "id": id,
            "name": field(record, "Name"),
            "amount": number(record, "Amount"),
            "currency": field(record, "CurrencyIsoCode"),
            "closed_won_at": field(record, "CloseDate"),
        },
        "account": {
            "name": field(&account, "Name"),
            "industry": field(&account, "Industry").filter(|i| i != "n/a"),
            "domain": field(&account, "Website").map(|w| domain_of(&w)),
        },
        "use_case": field(record, "Description"),
    });
    match ValidBundle::from_value(strip_nulls(bundle)) {
        Ok(bundle) => Record::Won(Box::new(bundle)),
        Err(e) => Record::Invalid(e.to_string()),
    }
}

/// Won-ness from `IsWon` when the export has it, else the stage catalog.
fn is_won(settings: &Settings, record: &Value) -> bool {
    match record_field(record, "IsWon") {
        Some(Value::Bool(won)) => *won,
        Some(Value::String(won)) => won.eq_ignore_ascii_case("true"),
        _ => field(record, "StageName").is_some_and(|stage| settings.is_won_stage(&stage)),
    }
}

fn read_accounts(file: &Path, explicit: Option<&Path>) -> anyhow::Result<HashMap<String, Value>> {
    let path: PathBuf = match explicit {
        Some(path) => path.to_owned(),
        None => match file.parent().map(|dir| dir.join("Accounts.json")) {
            Some(sibling) if sibling.exists() => sibling,
            _ => return Ok(HashMap::new()),
        },
    };
    let accounts = read_json(&path)?;
    let records = accounts
        .get("records")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            Exit::data(format!(
                "{}: expected an sObject tree, {{\"records\": [...]}}",
                path.display()
            ))
        })?;
    Ok(records
        .iter()
        .filter_map(|account| {
            Some((
                text(account, &["attributes", "referenceId"])?,
                account.clone(),
            ))
        })
        .collect())
}

fn read_bytes(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Exit::data(format!("cannot read {}: {e}", path.display())))
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Exit::data(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| Exit::data(format!("{} is not JSON: {e}", path.display())))
}

/// A field by its Salesforce API name; sObject tree files written by hand
/// often lower-case names, and Salesforce itself treats them case-insensitively.
fn record_field<'a>(record: &'a Value, name: &str) -> Option<&'a Value> {
    record
        .as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

fn field(record: &Value, name: &str) -> Option<String> {
    match record_field(record, name)? {
        Value::String(text) if !text.trim().is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn number(record: &Value, name: &str) -> Option<f64> {
    match record_field(record, name)? {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

fn text(value: &Value, path: &[&str]) -> Option<String> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))?
        .as_str()
        .map(str::to_owned)
}

pub(crate) fn domain_of(website: &str) -> String {
    let without_scheme = website.split("://").last().unwrap_or(website);
    without_scheme
        .split('/')
        .next()
        .unwrap_or(without_scheme)
        .trim_start_matches("www.")
        .to_owned()
}

pub(crate) fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn fields_match_case_insensitively() {
        let record = json!({"StageName": "Closed/Won", "amount": "620440.88", "closedate": "2020-12-02T09:21:16Z"});
        assert_eq!(
            field(&record, "CloseDate").as_deref(),
            Some("2020-12-02T09:21:16Z")
        );
        assert_eq!(number(&record, "Amount"), Some(620440.88));
    }

    #[test]
    fn websites_become_domains() {
        assert_eq!(domain_of("http://www.1688.com/at/nunc"), "1688.com");
        assert_eq!(domain_of("example.com"), "example.com");
    }

    pub(crate) mod fuzz {
        use proptest::prelude::*;

        use super::*;
        use crate::cli::SettingsArgs;

        /// The fields a Salesforce opportunity export carries, plus noise.
        const KEYS: &[&str] = &[
            "Id",
            "Name",
            "Amount",
            "CurrencyIsoCode",
            "CloseDate",
            "StageName",
            "IsWon",
            "AccountId",
            "Account",
            "Description",
            "attributes",
            "amount",
            "isWON",
            "x",
        ];

        fn leaf() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(
                    |f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
                ),
                "\\PC{0,24}".prop_map(Value::from),
                prop_oneof![
                    Just("Closed Won"),
                    Just("closed/won"),
                    Just("true"),
                    Just("@AccountRef1"),
                    Just("@missing"),
                    Just("2026-02-30T10:00:00Z"),
                    Just("2026-03-02T15:00:00Z"),
                    Just("1e309"),
                    Just("-5"),
                    Just("USD"),
                    Just("http://www.example.com/x"),
                ]
                .prop_map(Value::from),
            ]
        }

        fn value() -> impl Strategy<Value = Value> {
            leaf().prop_recursive(3, 24, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                    prop::collection::btree_map(
                        prop::sample::select(KEYS).prop_map(str::to_owned),
                        inner,
                        0..6,
                    )
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        fn record() -> impl Strategy<Value = Value> {
            prop::collection::btree_map(prop::sample::select(KEYS), value(), 0..10).prop_map(|m| {
                Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            })
        }

        /// A rejection starts with the field it is about: `a.b: why`.
        pub(crate) fn names_a_field(message: &str) -> bool {
            message.split_once(": ").is_some_and(|(field, why)| {
                !why.is_empty()
                    && !field.is_empty()
                    && field
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'))
            })
        }

        fn settings() -> Settings {
            Settings::load(&SettingsArgs::default()).unwrap()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn any_export_reads_without_panic_and_every_rejection_names_its_field(
                records in prop::collection::vec(record(), 0..6),
                account in record(),
            ) {
                let accounts = HashMap::from([("AccountRef1".to_owned(), account)]);
                let export = json!({ "records": records });
                let read = salesforce_records(&settings(), Path::new("x.json"), &export, &accounts)
                    .unwrap();
                prop_assert_eq!(read.len(), records.len());
                for (_, record) in read {
                    match record {
                        Record::Invalid(message) => {
                            prop_assert!(names_a_field(&message), "{}", message);
                        }
                        Record::Won(bundle) => prop_assert_eq!(bundle.source.as_str(), "salesforce"),
                        Record::NotWon => {}
                    }
                }
            }

            #[test]
            fn any_top_level_shape_is_refused_with_the_file_name(export in value()) {
                let result = salesforce_records(&settings(), Path::new("deals.json"), &export, &HashMap::new());
                if export.get("records").and_then(Value::as_array).is_none() {
                    let error = result.err().map(|e| e.to_string()).unwrap_or_default();
                    prop_assert!(error.starts_with("deals.json: expected an sObject tree"), "{}", error);
                }
            }

            #[test]
            fn any_bytes_in_an_export_file_are_an_error_naming_the_file(
                bytes in prop::collection::vec(any::<u8>(), 0..256),
            ) {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("export.json");
                std::fs::write(&path, &bytes).unwrap();
                if let Err(error) = read_json(&path) {
                    prop_assert!(error.to_string().contains("export.json"), "{}", error);
                }
            }
        }
    }
}
