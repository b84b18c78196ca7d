use chrono::NaiveDate;
use tempfile::TempDir;

use super::*;

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

/// A calendar directory holding the given files.
fn dir_with(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn shipped_calendars() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../playbooks/calendars")
}

#[test]
fn a_builtin_without_a_file_is_the_builtin_set() {
    let dir = dir_with(&[]);
    let holidays = load_holidays(dir.path(), "us").unwrap();
    assert_eq!(Some(holidays), Holidays::builtin("US"));
}

#[test]
fn a_missing_directory_still_serves_builtins() {
    let dir = dir_with(&[]);
    let missing = dir.path().join("nowhere");
    assert_eq!(
        load_holidays(&missing, "none").unwrap(),
        Holidays::default()
    );
    assert!(check_dir(&missing).is_empty());
}

#[test]
fn a_builtin_is_merged_with_its_override_file() {
    let dir = dir_with(&[(
        "GB-ENG.toml",
        "extra = [2031-06-02]\nremoved = [2031-05-26]\n",
    )]);
    let holidays = load_holidays(dir.path(), "gb-eng").unwrap();
    assert!(holidays.is_holiday(date("2031-06-02")));
    assert!(!holidays.is_holiday(date("2031-05-26")));
    assert!(holidays.is_holiday(date("2031-12-25")), "rules stay");
}

#[test]
fn the_shipped_gb_eng_file_adds_the_royal_occasions() {
    let holidays = load_holidays(&shipped_calendars(), "GB-ENG").unwrap();
    assert!(holidays.is_holiday(date("2022-09-19")));
    assert!(holidays.is_holiday(date("2023-05-08")));
    assert!(!holidays.is_holiday(date("2022-05-30")));
}

#[test]
fn the_shipped_example_company_calendar_extends_us() {
    let holidays = load_holidays(&shipped_calendars(), "acme-us").unwrap();
    assert!(
        holidays.is_holiday(date("2026-11-27")),
        "day after Thanksgiving"
    );
    assert!(holidays.is_holiday(date("2026-12-24")), "Christmas Eve");
    assert!(holidays.is_holiday(date("2026-12-25")), "from the base");
    assert!(
        !holidays.is_holiday(date("2026-10-12")),
        "Columbus Day worked"
    );
}

#[test]
fn shipped_calendar_files_have_no_problems() {
    let problems = check_dir(&shipped_calendars());
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn a_custom_calendar_without_base_starts_from_weekends() {
    let text = "[[rule]]\nname = \"Founders Day\"\nkind = \"fixed\"\nmonth = 3\nday = 9\n";
    let dir = dir_with(&[("founders.toml", text)]);
    let holidays = load_holidays(dir.path(), "FOUNDERS").unwrap();
    assert_eq!(holidays.rules.len(), 1);
    assert!(holidays.is_holiday(date("2027-03-09")));
    assert!(!holidays.is_holiday(date("2027-12-25")));
}

#[test]
fn a_custom_calendar_inherits_its_base_files() {
    let dir = dir_with(&[
        ("GB-ENG.toml", "extra = [2031-06-02]\n"),
        (
            "LONDON-OFFICE.toml",
            "base = \"GB-ENG\"\nextra = [2031-07-01]\n",
        ),
    ]);
    let holidays = load_holidays(dir.path(), "london-office").unwrap();
    assert!(
        holidays.is_holiday(date("2031-06-02")),
        "from the base's file"
    );
    assert!(holidays.is_holiday(date("2031-07-01")));
    assert!(
        holidays.is_holiday(date("2031-12-25")),
        "from the base's rules"
    );
}

#[test]
fn an_unknown_name_names_itself_and_the_directory() {
    let dir = dir_with(&[]);
    let error = load_holidays(dir.path(), "Mars").unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, CalendarError::Unknown { .. }), "{error:?}");
    assert!(message.contains("`Mars`"), "{message}");
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
}

#[test]
fn a_malformed_file_is_reported_with_path_and_line() {
    let text =
        "description = \"x\"\n\n[[rule]]\nname = \"Bad\"\nkind = \"fixed\"\nmonth = 13\nday = 1\n";
    let dir = dir_with(&[("BROKEN.toml", text)]);
    let error = load_holidays(dir.path(), "broken").unwrap_err();
    let CalendarError::Malformed { path, line, .. } = &error else {
        panic!("{error:?}");
    };
    assert!(path.ends_with("BROKEN.toml"));
    assert!(matches!(line, Some(3..=7)), "{error}");
    let message = error.to_string();
    assert!(message.contains("BROKEN.toml:"), "{message}");
    assert!(message.contains("month 13 is not 1-12"), "{message}");
}

#[test]
fn a_toml_syntax_error_is_reported_at_its_line() {
    let dir = dir_with(&[("X.toml", "base = \"US\"\nextra = [2026-12-24\n")]);
    let error = load_holidays(dir.path(), "X").unwrap_err();
    assert!(
        matches!(
            error,
            CalendarError::Malformed {
                line: Some(2..=3),
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn an_unknown_base_names_the_file() {
    let dir = dir_with(&[("TEAM.toml", "base = \"US-TX\"\n")]);
    let error = load_holidays(dir.path(), "TEAM").unwrap_err();
    assert!(
        matches!(&error, CalendarError::UnknownBase { base, .. } if base == "US-TX"),
        "{error:?}"
    );
    assert!(error.to_string().contains("TEAM.toml"), "{error}");
}

#[test]
fn bases_that_loop_are_a_cycle_not_a_stack_overflow() {
    let dir = dir_with(&[("A.toml", "base = \"b\"\n"), ("B.toml", "base = \"A\"\n")]);
    let error = load_holidays(dir.path(), "A").unwrap_err();
    assert!(matches!(error, CalendarError::Cycle { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "calendar `A` is its own base through A -> b -> A"
    );
}

#[test]
fn an_override_of_a_builtin_cannot_set_a_base() {
    let dir = dir_with(&[("US.toml", "base = \"GB-ENG\"\n")]);
    let error = load_holidays(dir.path(), "US").unwrap_err();
    assert!(
        matches!(error, CalendarError::BaseOnBuiltin { .. }),
        "{error:?}"
    );
}

#[test]
fn check_dir_reports_every_broken_file_once() {
    let dir = dir_with(&[
        ("GOOD.toml", "base = \"US\"\n"),
        ("BAD.toml", "kind = 3\n"),
        ("ON-BAD.toml", "base = \"BAD\"\n"),
        ("LOST.toml", "base = \"nowhere\"\n"),
        ("good.toml", "extra = [2026-01-02]\n"),
        ("notes.txt", "not a calendar"),
    ]);
    let problems = check_dir(dir.path());
    let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 3, "{messages:#?}");
    assert!(
        matches!(problems[0], CalendarError::Malformed { .. }),
        "{messages:#?}"
    );
    assert!(
        matches!(problems[1], CalendarError::UnknownBase { .. }),
        "{messages:#?}"
    );
    assert!(
        matches!(problems[2], CalendarError::Duplicate { .. }),
        "{messages:#?}"
    );
}
