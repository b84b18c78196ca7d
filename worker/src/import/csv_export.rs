//! CSV exports of opportunities (Salesforce, and the tools that copy its
//! column names) and of HubSpot deals.
//!
//! Columns are found by name, not position: a header matches when its
//! letters and digits, lower-cased, equal one of a field's known spellings
//! (`CloseDate`, `Close Date` and `close_date` are one column). A
//! `property_` prefix, as warehouse copies of HubSpot write, is ignored.

use std::collections::HashMap;

use serde_json::{Value, json};

use handoff_workflows::bundle::ValidBundle;

use super::Record;
use crate::config::{Settings, StageKind};

/// Known spellings of each field, already normalised (see [`normalise`]).
const SALESFORCE_ID: &[&str] = &["id", "opportunityid", "recordid", "opportunityid18"];
const SALESFORCE_STAGE: &[&str] = &["stagename", "stage", "opportunitystage"];
const SALESFORCE_WON: &[&str] = &["iswon", "won"];
const SALESFORCE_CLOSE: &[&str] = &["closedate", "closeddate"];
const SALESFORCE_NAME: &[&str] = &["name", "opportunityname"];
const SALESFORCE_CURRENCY: &[&str] = &["currencyisocode", "currency", "opportunitycurrency"];
const SALESFORCE_ACCOUNT_ID: &[&str] = &["accountid"];
const HUBSPOT_ID: &[&str] = &["dealid", "recordid", "hsobjectid", "id"];
const HUBSPOT_STAGE: &[&str] = &["dealstage", "stage", "dealpipelinestageid"];
const HUBSPOT_NAME: &[&str] = &["dealname", "name"];
const HUBSPOT_CLOSE: &[&str] = &["closedate", "hsclosedwondate"];
const HUBSPOT_CURRENCY: &[&str] = &["dealcurrencycode", "currency", "hsdealcurrencycode"];
const HUBSPOT_ACCOUNT: &[&str] = &["associatedcompany", "companyname", "company", "accountname"];
const HUBSPOT_DELETED: &[&str] = &["isdeleted"];
const AMOUNT: &[&str] = &["amount", "amountincompanycurrency"];
const ACCOUNT_NAME: &[&str] = &["accountname", "account"];
const INDUSTRY: &[&str] = &["industry", "accountindustry"];
const WEBSITE: &[&str] = &["website", "accountwebsite", "domain", "companydomainname"];
const DESCRIPTION: &[&str] = &["description"];

/// One CSV row with its header, looked up by any spelling of a field.
struct Row<'a> {
    columns: &'a HashMap<String, usize>,
    cells: &'a csv::StringRecord,
}

impl Row<'_> {
    fn get(&self, names: &[&str]) -> Option<String> {
        names
            .iter()
            .filter_map(|name| self.columns.get(*name))
            .filter_map(|index| self.cells.get(*index))
            .map(str::trim)
            .find(|cell| !cell.is_empty())
            .map(str::to_owned)
    }
}

/// Lower-cased letters and digits of a header, without a `property_` prefix.
fn normalise(header: &str) -> String {
    let header = header.trim().trim_start_matches('\u{feff}');
    let header = header
        .strip_prefix("property_")
        .or_else(|| header.strip_prefix("properties."))
        .unwrap_or(header);
    header
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Reads every row of a CSV export; a row that cannot be read is invalid,
/// the others are read by `read_row`.
fn read_rows(
    text: &[u8],
    needs: &[(&str, &[&[&str]])],
    mut read_row: impl FnMut(&Row<'_>) -> Record,
) -> Result<Vec<(String, Record)>, String> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text);
    let headers = reader
        .headers()
        .map_err(|e| format!("cannot read the header row: {e}"))?
        .clone();
    let mut columns = HashMap::new();
    for (index, header) in headers.iter().enumerate() {
        // The first column of a spelling wins, as a reader scanning left would expect.
        columns.entry(normalise(header)).or_insert(index);
    }
    // A file of another kind (JSON, another CRM's export) has none of them.
    for (what, groups) in needs {
        if !groups
            .iter()
            .flat_map(|group| group.iter())
            .any(|name| columns.contains_key(*name))
        {
            return Err(format!(
                "the header row has no {what} column (looked for {}); is this the export \
                 --format names?",
                groups
                    .iter()
                    .flat_map(|group| group.iter())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    let mut records = Vec::new();
    for (index, cells) in reader.records().enumerate() {
        let line = format!("line {}", index + 2);
        match cells {
            Ok(cells) => {
                let row = Row {
                    columns: &columns,
                    cells: &cells,
                };
                records.push((line, read_row(&row)));
            }
            Err(e) => records.push((line, Record::Invalid(format!("row: {e}")))),
        }
    }
    Ok(records)
}

/// Rows of a Salesforce opportunity CSV, `@AccountRefN` resolved through
/// `accounts` as in the JSON export.
pub(super) fn salesforce_rows(
    settings: &Settings,
    text: &[u8],
    accounts: &HashMap<String, Value>,
) -> Result<Vec<(String, Record)>, String> {
    let needs: &[(&str, &[&[&str]])] = &[
        ("opportunity id", &[SALESFORCE_ID]),
        ("won or stage", &[SALESFORCE_WON, SALESFORCE_STAGE]),
    ];
    read_rows(text, needs, |row| salesforce_row(settings, row, accounts))
}

fn salesforce_row(settings: &Settings, row: &Row<'_>, accounts: &HashMap<String, Value>) -> Record {
    let won = match row.get(SALESFORCE_WON) {
        Some(flag) => matches!(flag.to_ascii_lowercase().as_str(), "true" | "1" | "yes"),
        None => row
            .get(SALESFORCE_STAGE)
            .is_some_and(|stage| settings.is_won_stage(&stage)),
    };
    if !won {
        return Record::NotWon;
    }
    let Some(id) = row.get(SALESFORCE_ID) else {
        return Record::Invalid("deal.id: the row has no Id or Opportunity ID".to_owned());
    };
    let mut account = json!({
        "name": row.get(ACCOUNT_NAME),
        "industry": row.get(INDUSTRY),
        "domain": row.get(WEBSITE).map(|w| super::domain_of(&w)),
    });
    if let Some(reference) = row.get(SALESFORCE_ACCOUNT_ID)
        && let Some(key) = reference.strip_prefix('@')
    {
        let Some(found) = accounts.get(key) else {
            return Record::Invalid(format!(
                "account.name: {reference} is not in the accounts file"
            ));
        };
        account = json!({
            "name": super::field(found, "Name"),
            "industry": super::field(found, "Industry").filter(|i| i != "n/a"),
            "domain": super::field(found, "Website").map(|w| super::domain_of(&w)),
        });
    }
    let bundle = json!({
        "deal": {
            "source": "salesforce",
            "id": id,
            "name": row.get(SALESFORCE_NAME),
            "amount": amount(row),
            "currency": row.get(SALESFORCE_CURRENCY),
            "closed_won_at": row.get(SALESFORCE_CLOSE).map(|d| instant_text(&d)),
        },
        "account": account,
        "use_case": row.get(DESCRIPTION),
    });
    into_record(bundle)
}

/// Rows of a HubSpot deal export; deal ids become `<portal id>-<deal id>`.
pub(super) fn hubspot_rows(
    settings: &Settings,
    text: &[u8],
    portal_id: u64,
) -> Result<Vec<(String, Record)>, String> {
    let needs: &[(&str, &[&[&str]])] =
        &[("deal id", &[HUBSPOT_ID]), ("deal stage", &[HUBSPOT_STAGE])];
    read_rows(text, needs, |row| hubspot_row(settings, row, portal_id))
}

fn hubspot_row(settings: &Settings, row: &Row<'_>, portal_id: u64) -> Record {
    let deleted = row
        .get(HUBSPOT_DELETED)
        .is_some_and(|d| d.eq_ignore_ascii_case("true"));
    let stage = row.get(HUBSPOT_STAGE);
    let won = stage
        .as_deref()
        .and_then(|stage| settings.hubspot_stage(stage))
        == Some(StageKind::Won);
    if deleted || !won {
        return Record::NotWon;
    }
    let Some(id) = row.get(HUBSPOT_ID) else {
        return Record::Invalid("deal.id: the row has no Record ID or deal_id".to_owned());
    };
    let bundle = json!({
        "deal": {
            "source": "hubspot",
            "id": hubspot_deal_id(portal_id, &id),
            "name": row.get(HUBSPOT_NAME),
            "amount": amount(row),
            "currency": row.get(HUBSPOT_CURRENCY),
            "closed_won_at": row.get(HUBSPOT_CLOSE).map(|d| instant_text(&d)),
        },
        "account": {
            "name": row.get(HUBSPOT_ACCOUNT),
            "industry": row.get(INDUSTRY),
            "domain": row.get(WEBSITE).map(|w| super::domain_of(&w)),
        },
        "use_case": row.get(DESCRIPTION),
    });
    into_record(bundle)
}

/// The deal id of a HubSpot deal: object ids are unique per portal only.
fn hubspot_deal_id(portal_id: u64, object_id: &str) -> String {
    format!("{portal_id}-{}", object_id.trim())
}

fn amount(row: &Row<'_>) -> Option<f64> {
    let text = row.get(AMOUNT)?;
    let digits: String = text
        .chars()
        .filter(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | 'e' | 'E'))
        .collect();
    digits.parse::<f64>().ok().filter(|a| a.is_finite())
}

/// Export tools write `2026-03-06 21:00:00` or epoch milliseconds; the
/// bundle reads RFC 3339 instants and dates.
fn instant_text(text: &str) -> String {
    let text = text.trim();
    if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f") {
        return naive
            .and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    }
    if text.len() >= 12
        && text.chars().all(|c| c.is_ascii_digit())
        && let Some(at) = text
            .parse::<i64>()
            .ok()
            .and_then(chrono::DateTime::from_timestamp_millis)
    {
        return at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    }
    text.to_owned()
}

fn into_record(bundle: Value) -> Record {
    match ValidBundle::from_value(super::strip_nulls(bundle)) {
        Ok(bundle) => Record::Won(Box::new(bundle)),
        Err(e) => Record::Invalid(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::SettingsArgs;

    fn settings() -> Settings {
        Settings::load(&SettingsArgs::default()).unwrap()
    }

    fn won(records: &[(String, Record)]) -> Vec<&ValidBundle> {
        records
            .iter()
            .filter_map(|(_, r)| match r {
                Record::Won(b) => Some(b.as_ref()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn salesforce_report_headers_and_short_ids_are_read() {
        let text = "Opportunity ID,Opportunity Name,Account Name,Stage,Close Date,Amount,Currency\n\
                    006A0000004Dv8k,Expansion,Acme,Closed Won,2026-03-06,\"52,000.00\",EUR\n\
                    006A0000004Dv8l,Other,Acme,Prospecting,2026-03-06,10,EUR\n";
        let records = salesforce_rows(&settings(), text.as_bytes(), &HashMap::new()).unwrap();
        let bundles = won(&records);
        assert_eq!(bundles.len(), 1);
        let deal = &bundles[0].bundle.deal;
        assert_eq!(deal.amount, Some(52000.0));
        assert_eq!(deal.currency.as_deref(), Some("EUR"));
        assert!(matches!(records[1].1, Record::NotWon));
        assert_eq!(
            crate::deals::target_of(bundles[0]).workflow_id,
            "handoff-salesforce-006A0000004Dv8kIAC"
        );
    }

    #[test]
    fn a_file_without_the_export_columns_is_refused_whole() {
        let json = br#"{"records": [{"attributes": {"type": "Opportunity"}, "Name": "x"}]}"#;
        let Err(error) = salesforce_rows(&settings(), json, &HashMap::new()) else {
            panic!("a JSON file is not a CSV export");
        };
        assert!(error.contains("no opportunity id column"), "{error}");
        let salesforce = b"Opportunity ID,Stage,Amount\n006A0000004Dv8k,Closed Won,10\n";
        let Err(error) = hubspot_rows(&settings(), salesforce, 1) else {
            panic!("a Salesforce export is not a HubSpot one");
        };
        assert!(error.contains("no deal id column"), "{error}");
        assert!(salesforce_rows(&settings(), salesforce, &HashMap::new()).is_ok());
    }

    #[test]
    fn is_won_beats_the_stage_name() {
        let text = "id,is_won,stage_name,close_date,name,account_name\n\
                    006q000000HddohAAB,true,Signed,2018-12-19 00:00:00,$1m deal,Acme\n\
                    006q000000HdPzpAAF,false,Closed Won,2018-12-18 00:00:00,x,Acme\n";
        let records = salesforce_rows(&settings(), text.as_bytes(), &HashMap::new()).unwrap();
        let bundles = won(&records);
        assert_eq!(bundles.len(), 1);
        assert_eq!(bundles[0].deal_id, "006q000000HddohAAB");
    }

    #[test]
    fn hubspot_exports_use_the_stage_catalog_and_the_portal_id() {
        let text = "Record ID,Deal Name,Deal Stage,Close Date,Amount,Associated Company\n\
                    880001,Renewal,closedwon,2026-03-06 21:00:00,48000,Globex\n\
                    880002,Lost one,closedlost,2026-03-06 21:00:00,1,Globex\n\
                    880003,Custom,31337001,2026-03-06,1,Globex\n";
        let records = hubspot_rows(&settings(), text.as_bytes(), 700001).unwrap();
        let bundles = won(&records);
        assert_eq!(bundles.len(), 1);
        assert_eq!(
            crate::deals::target_of(bundles[0]).workflow_id,
            "handoff-hubspot-700001-880001"
        );
        assert_eq!(
            bundles[0].closed_won_at.to_rfc3339(),
            "2026-03-06T21:00:00+00:00"
        );
        assert!(matches!(records[2].1, Record::NotWon));
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::*;
        use crate::import::tests::fuzz::names_a_field;

        const HEADERS: &[&str] = &[
            "Id",
            "ID",
            "Opportunity ID",
            "StageName",
            "Stage",
            "IsWon",
            "CloseDate",
            "Close Date",
            "Amount",
            "CurrencyIsoCode",
            "Name",
            "Account Name",
            "accountId",
            "deal_id",
            "Record ID",
            "dealstage",
            "Deal Stage",
            "closedate",
            "amount",
            "dealname",
            "is_deleted",
            "property_closedate",
            "x",
        ];

        fn cell() -> impl Strategy<Value = String> {
            prop_oneof![
                "\\PC{0,12}",
                prop::sample::select(vec![
                    "Closed Won",
                    "closedwon",
                    "true",
                    "TRUE",
                    "2026-03-06",
                    "2026-02-30",
                    "2026-03-06 21:00:00",
                    "1772830800000",
                    "1e309",
                    "-5",
                    "\"",
                    "a,b",
                    "@AccountRef1",
                    "@missing",
                    "006A0000004Dv8k",
                    "",
                ])
                .prop_map(str::to_owned),
            ]
        }

        fn csv_text() -> impl Strategy<Value = String> {
            (
                prop::collection::vec(prop::sample::select(HEADERS), 0..8),
                prop::collection::vec(prop::collection::vec(cell(), 0..9), 0..5),
            )
                .prop_map(|(headers, rows)| {
                    let mut text = headers.join(",");
                    for row in rows {
                        text.push('\n');
                        text.push_str(&row.join(","));
                    }
                    text
                })
        }

        fn check(records: &[(String, Record)]) -> Result<(), TestCaseError> {
            for (_, record) in records {
                if let Record::Invalid(message) = record {
                    prop_assert!(names_a_field(message), "{}", message);
                }
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1000))]

            #[test]
            fn any_csv_reads_without_panic_and_every_rejection_names_its_field(
                text in csv_text(),
                account in prop::option::of("\\PC{0,8}"),
            ) {
                let settings = settings();
                let accounts = HashMap::from([(
                    "AccountRef1".to_owned(),
                    json!({ "Name": account }),
                )]);
                if let Ok(records) = salesforce_rows(&settings, text.as_bytes(), &accounts) {
                    check(&records)?;
                }
                if let Ok(records) = hubspot_rows(&settings, text.as_bytes(), 1) {
                    check(&records)?;
                }
            }

            #[test]
            fn any_bytes_read_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
                let settings = settings();
                if let Ok(records) = salesforce_rows(&settings, &bytes, &HashMap::new()) {
                    check(&records)?;
                }
                if let Ok(records) = hubspot_rows(&settings, &bytes, 1) {
                    check(&records)?;
                }
            }
        }
    }
}
