//! Due instants computed by an independent reference
//! (`scripts/golden_due_instants.py`: zoneinfo and the PyPI `holidays`
//! package), checked case by case against `BusinessCalendar`.
//!
//! The files are compiled in, so the test does no I/O of its own; GB-ENG is
//! the built-in rules plus `playbooks/calendars/GB-ENG.toml`, parsed the way
//! the activities parse it.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use handoff_workflows::calendar::{BusinessCalendar, CalendarFile, Holidays};

const GOLDEN: &str = include_str!("golden/due_instants.json");
const GB_ENG_OVERRIDES: &str = include_str!("../../playbooks/calendars/GB-ENG.toml");

#[derive(Deserialize)]
struct Golden {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    timezone: String,
    calendar: String,
    from: DateTime<Utc>,
    rule: Rule,
    n: u32,
    expected: DateTime<Utc>,
    #[serde(default)]
    due_rule: Option<Rule>,
    #[serde(default)]
    due: Option<DateTime<Utc>>,
    #[serde(default)]
    pause_start: Option<DateTime<Utc>>,
    #[serde(default)]
    pause_end: Option<DateTime<Utc>>,
    #[serde(default)]
    touched: Option<u32>,
}

#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Rule {
    BusinessDays,
    CalendarDays,
    PauseShift,
}

fn holidays(name: &str) -> Holidays {
    let mut holidays = Holidays::builtin(name).expect("golden cases use built-in calendars");
    if name == "GB-ENG" {
        let file = CalendarFile::from_toml_str(GB_ENG_OVERRIDES).expect("GB-ENG.toml parses");
        holidays.merge(file.holidays());
    }
    holidays
}

fn due(calendar: &BusinessCalendar, rule: Rule, from: DateTime<Utc>, n: u32) -> DateTime<Utc> {
    match rule {
        Rule::BusinessDays => calendar.business_days_after(from, n),
        Rule::CalendarDays => calendar.calendar_days_after(from, n),
        Rule::PauseShift => panic!("a pause shifts a due; it is not a due rule"),
    }
}

/// Every mismatch of one case, as lines for the failure message.
fn check(case: &Case) -> Vec<String> {
    let timezone: Tz = case
        .timezone
        .parse()
        .expect("golden timezones are IANA names");
    let calendar = BusinessCalendar::new(timezone, holidays(&case.calendar));
    let mut mismatches = Vec::new();
    let mut compare = |what: &str, expected: String, actual: String| {
        if expected != actual {
            mismatches.push(format!(
                "{}: {what} expected {expected}, actual {actual}",
                case.name
            ));
        }
    };

    let Rule::PauseShift = case.rule else {
        let actual = due(&calendar, case.rule, case.from, case.n);
        compare("due", case.expected.to_string(), actual.to_string());
        return mismatches;
    };
    let missing = |field: &str| format!("{}: a pause_shift case needs {field}", case.name);
    let due_rule = case
        .due_rule
        .unwrap_or_else(|| panic!("{}", missing("due_rule")));
    let start = case
        .pause_start
        .unwrap_or_else(|| panic!("{}", missing("pause_start")));
    let end = case
        .pause_end
        .unwrap_or_else(|| panic!("{}", missing("pause_end")));
    let expected_due = case.due.unwrap_or_else(|| panic!("{}", missing("due")));
    let expected_touched = case
        .touched
        .unwrap_or_else(|| panic!("{}", missing("touched")));

    let due_at = due(&calendar, due_rule, case.from, case.n);
    compare("due", expected_due.to_string(), due_at.to_string());
    let (touched, shifted) = match due_rule {
        Rule::BusinessDays => {
            let touched = calendar.business_days_touched(start, end);
            (touched, calendar.shift_business_days(due_at, touched))
        }
        _ => {
            let touched = calendar.calendar_days_touched(start, end);
            (touched, calendar.shift_calendar_days(due_at, touched))
        }
    };
    compare(
        "days touched",
        expected_touched.to_string(),
        touched.to_string(),
    );
    compare(
        "shifted due",
        case.expected.to_string(),
        shifted.to_string(),
    );
    mismatches
}

#[test]
fn due_instants_match_the_independent_reference() {
    let golden: Golden = serde_json::from_str(GOLDEN).unwrap();
    assert!(
        golden.cases.len() >= 80,
        "only {} cases",
        golden.cases.len()
    );

    let mismatches: Vec<String> = golden.cases.iter().flat_map(check).collect();
    assert!(
        mismatches.is_empty(),
        "{} of {} golden cases differ:\n{}",
        mismatches.len(),
        golden.cases.len(),
        mismatches.join("\n")
    );
}

#[test]
fn the_anchor_case_is_in_the_golden_file() {
    let golden: Golden = serde_json::from_str(GOLDEN).unwrap();
    let anchor = golden
        .cases
        .iter()
        .find(|case| case.name == "anchor_friday_evening_plus_3")
        .unwrap();
    assert_eq!(anchor.from.to_rfc3339(), "2026-03-07T00:00:00+00:00");
    assert_eq!(anchor.expected.to_rfc3339(), "2026-03-12T03:59:59+00:00");
}
