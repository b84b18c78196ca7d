use chrono::Weekday;
use chrono_tz::{America, Europe};

use super::*;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn dates(texts: &[&str]) -> Vec<NaiveDate> {
    texts.iter().map(|text| date(text)).collect()
}

fn builtin(name: &str) -> Holidays {
    Holidays::builtin(name).unwrap()
}

/// Weekday holidays of a year, the days that cost a business day.
fn weekday_holidays(holidays: &Holidays, year: i32) -> Vec<NaiveDate> {
    let calendar = BusinessCalendar::new(chrono_tz::UTC, holidays.clone());
    let mut day = NaiveDate::from_ymd_opt(year, 1, 1).unwrap();
    let mut found = Vec::new();
    while day.year() == year {
        if !is_weekend(day) && calendar.is_holiday(day) {
            found.push(day);
        }
        day = day.succ_opt().unwrap();
    }
    found
}

fn new_york() -> BusinessCalendar {
    BusinessCalendar::new(America::New_York, builtin("none"))
}

fn gb_eng_with_overrides() -> Holidays {
    let mut holidays = builtin("GB-ENG");
    let text = include_str!("../../../playbooks/calendars/GB-ENG.toml");
    holidays.merge(CalendarFile::from_toml_str(text).unwrap().holidays());
    holidays
}

#[test]
fn friday_evening_plus_three_business_days_is_wednesday_end_of_day() {
    // Friday 2026-03-06 19:00 in New York.
    let due = new_york().business_days_after(utc("2026-03-07T00:00:00Z"), 3);
    assert_eq!(due, utc("2026-03-12T03:59:59Z"));
}

#[test]
fn saturday_day0_counts_from_that_date() {
    let due = new_york().business_days_after(utc("2026-03-07T15:00:00Z"), 3);
    assert_eq!(due, utc("2026-03-12T03:59:59Z"), "Saturday + 3 = Wednesday");
}

#[test]
fn business_days_across_spring_forward_keep_local_end_of_day() {
    // Friday 2026-03-06 10:00 EST; DST starts Sunday 2026-03-08.
    let due = new_york().business_days_after(utc("2026-03-06T15:00:00Z"), 3);
    // Wednesday 2026-03-11 23:59:59 EDT is 03:59:59Z, not 04:59:59Z.
    assert_eq!(due, utc("2026-03-12T03:59:59Z"));
}

#[test]
fn business_days_across_fall_back_keep_local_end_of_day() {
    // Friday 2026-10-30 10:00 EDT; DST ends Sunday 2026-11-01.
    let due = new_york().business_days_after(utc("2026-10-30T14:00:00Z"), 3);
    assert_eq!(due, utc("2026-11-05T04:59:59Z"), "Wednesday 23:59:59 EST");
}

#[test]
fn day_n_is_a_local_date_not_n_times_24_hours() {
    // 2026-03-01 12:00 EST + 14 days crosses spring forward.
    let due = new_york().calendar_days_after(utc("2026-03-01T17:00:00Z"), 14);
    assert_eq!(due, utc("2026-03-16T03:59:59Z"));
}

#[test]
fn weekend_seconds_do_not_count() {
    let cal = new_york();
    let friday_noon = utc("2026-03-06T17:00:00Z");
    let monday_noon = utc("2026-03-09T16:00:00Z");
    assert_eq!(
        cal.business_seconds_between(friday_noon, monday_noon),
        24 * 3600
    );
    assert_eq!(
        cal.add_business_seconds(friday_noon, 24 * 3600),
        monday_noon
    );
}

#[test]
fn send_time_snaps_forward_to_a_business_morning() {
    let cal = new_york();
    // Saturday afternoon → Monday 09:00 local.
    let at = cal.next_send_time(utc("2026-03-07T20:00:00Z"), 9, cal.timezone());
    assert_eq!(at, utc("2026-03-09T13:00:00Z"));
    // Tuesday 08:00 local → the same day 09:00.
    let at = cal.next_send_time(utc("2026-03-10T12:00:00Z"), 9, cal.timezone());
    assert_eq!(at, utc("2026-03-10T13:00:00Z"));
}

#[test]
fn builtin_names_resolve_case_insensitively() {
    assert_eq!(Holidays::builtin("gb-eng"), Holidays::builtin("GB-ENG"));
    assert_eq!(Holidays::builtin(" us "), Holidays::builtin("US"));
    assert_eq!(Holidays::builtin("None"), Some(Holidays::default()));
    assert_eq!(Holidays::builtin("Mars"), None);
    for name in BUILTIN_CALENDARS {
        assert!(Holidays::builtin(name).is_some(), "{name}");
    }
}

#[test]
fn us_federal_holidays_of_2026_fall_on_their_observed_dates() {
    // Independence Day is a Saturday: observed Friday 3 July.
    let expected = dates(&[
        "2026-01-01",
        "2026-01-19",
        "2026-02-16",
        "2026-05-25",
        "2026-06-19",
        "2026-07-03",
        "2026-09-07",
        "2026-10-12",
        "2026-11-11",
        "2026-11-26",
        "2026-12-25",
    ]);
    assert_eq!(weekday_holidays(&builtin("US"), 2026), expected);
}

#[test]
fn us_federal_holidays_of_2027_fall_on_their_observed_dates() {
    // Juneteenth and Christmas on Saturdays, Independence Day on a Sunday,
    // and New Year's Day 2028 on a Saturday observed on 31 December 2027.
    let expected = dates(&[
        "2027-01-01",
        "2027-01-18",
        "2027-02-15",
        "2027-05-31",
        "2027-06-18",
        "2027-07-05",
        "2027-09-06",
        "2027-10-11",
        "2027-11-11",
        "2027-11-25",
        "2027-12-24",
        "2027-12-31",
    ]);
    assert_eq!(weekday_holidays(&builtin("US"), 2027), expected);
}

#[test]
fn juneteenth_is_a_holiday_from_2021_only() {
    let us = builtin("US");
    assert!(
        !us.is_holiday(date("2020-06-19")),
        "a Friday before the law"
    );
    assert!(
        us.is_holiday(date("2021-06-18")),
        "first one, observed Friday"
    );
    assert!(us.is_holiday(date("2023-06-19")));
}

#[test]
fn gb_eng_rule_days_of_2026() {
    // Boxing Day is a Saturday: substitute Monday 28 December.
    let expected = dates(&[
        "2026-01-01",
        "2026-04-03",
        "2026-04-06",
        "2026-05-04",
        "2026-05-25",
        "2026-08-31",
        "2026-12-25",
        "2026-12-28",
    ]);
    assert_eq!(weekday_holidays(&builtin("GB-ENG"), 2026), expected);
}

#[test]
fn gb_christmas_and_boxing_day_on_a_weekend_give_monday_and_tuesday() {
    let gb = builtin("GB-ENG");
    // 2021: Christmas Saturday, Boxing Day Sunday.
    let end_of_2021 = &weekday_holidays(&gb, 2021)[6..];
    assert_eq!(end_of_2021, dates(&["2021-12-27", "2021-12-28"]));
    // 2022: Christmas Sunday, Boxing Day Monday, substitute Tuesday.
    let end_of_2022 = &weekday_holidays(&gb, 2022)[6..];
    assert_eq!(end_of_2022, dates(&["2022-12-26", "2022-12-27"]));
    // 2032: New Year's Day on a Thursday, nothing moves.
    assert!(gb.is_holiday(date("2032-01-01")));
    // 2033: New Year's Day on a Saturday, substitute Monday 3 January.
    assert!(gb.is_holiday(date("2033-01-03")));
}

#[test]
fn gb_overrides_add_royal_occasions_and_move_bank_holidays() {
    let gb = gb_eng_with_overrides();
    for one_off in ["2002-06-03", "2011-04-29", "2012-06-05", "2022-06-03"] {
        assert!(gb.is_holiday(date(one_off)), "{one_off}");
    }
    assert!(gb.is_holiday(date("2022-09-19")), "state funeral");
    assert!(gb.is_holiday(date("2023-05-08")), "coronation");
    // Moves: the rule day is a working day, the new day is not.
    for (rule_day, moved_to) in [
        ("2002-05-27", "2002-06-04"),
        ("2012-05-28", "2012-06-04"),
        ("2020-05-04", "2020-05-08"),
        ("2022-05-30", "2022-06-02"),
    ] {
        assert!(!gb.is_holiday(date(rule_day)), "{rule_day}");
        assert!(gb.is_holiday(date(moved_to)), "{moved_to}");
    }
}

#[test]
fn holidays_of_2099_follow_the_rules() {
    let us = weekday_holidays(&builtin("US"), 2099);
    assert_eq!(us.len(), 11, "{us:?}");
    assert!(us.contains(&date("2099-11-26")), "Thanksgiving");
    assert!(
        us.contains(&date("2099-07-03")),
        "Independence Day, Saturday"
    );
    let gb = weekday_holidays(&builtin("GB-ENG"), 2099);
    assert!(gb.contains(&date("2099-04-10")), "Good Friday");
    assert!(gb.contains(&date("2099-04-13")), "Easter Monday");
    assert!(gb.contains(&date("2099-08-31")), "summer bank holiday");
    // Christmas on a Friday, Boxing Day on Saturday → Monday 28.
    assert!(gb.contains(&date("2099-12-28")));
}

#[test]
fn easter_falls_on_known_dates() {
    for (year, expected) in [
        (2000, "2000-04-23"),
        (2008, "2008-03-23"),
        (2011, "2011-04-24"),
        (2024, "2024-03-31"),
        (2038, "2038-04-25"),
        (2099, "2099-04-12"),
    ] {
        assert_eq!(easter_sunday(year), Some(date(expected)), "{year}");
    }
}

#[test]
fn rule_dates_count_weekdays_of_the_month() {
    let thanksgiving = RuleDate::NthWeekday {
        month: 11,
        weekday: Weekday::Thu,
        nth: 4,
    };
    assert_eq!(thanksgiving.in_year(2035), Some(date("2035-11-22")));
    let fifth_monday_of_june = RuleDate::NthWeekday {
        month: 6,
        weekday: Weekday::Mon,
        nth: 5,
    };
    assert_eq!(fifth_monday_of_june.in_year(2026), Some(date("2026-06-29")));
    assert_eq!(fifth_monday_of_june.in_year(2025), Some(date("2025-06-30")));
    let fifth_monday_of_february = RuleDate::NthWeekday {
        month: 2,
        weekday: Weekday::Mon,
        nth: 5,
    };
    assert_eq!(fifth_monday_of_february.in_year(2026), None);
    let memorial = RuleDate::LastWeekday {
        month: 5,
        weekday: Weekday::Mon,
    };
    assert_eq!(memorial.in_year(2061), Some(date("2061-05-30")));
}

#[test]
fn business_seconds_round_trip_to_any_business_instant() {
    let calendars = [
        BusinessCalendar::new(America::New_York, builtin("US")),
        BusinessCalendar::new(Europe::London, gb_eng_with_overrides()),
    ];
    // A fixed linear congruential sequence: many instants, same every run.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |bound: i64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        i64::try_from(state >> 33).unwrap() % bound
    };
    let origin = utc("2025-10-01T00:00:00Z");
    for calendar in &calendars {
        for _ in 0..300 {
            let from = origin + Duration::seconds(next(400 * 86_400));
            let to = from + Duration::seconds(1 + next(120 * 86_400));
            let local = to.with_timezone(&calendar.timezone());
            if !calendar.is_business_day(local.date_naive()) || local.time() == NaiveTime::MIN {
                continue;
            }
            let seconds = calendar.business_seconds_between(from, to);
            assert_eq!(
                calendar.add_business_seconds(from, seconds),
                to,
                "from {from} to {to}"
            );
        }
    }
}

#[test]
fn days_touched_count_local_dates_inclusively() {
    let cal = new_york();
    // Friday 2026-03-06 16:00 to Monday 2026-03-09 10:00 local.
    let friday = utc("2026-03-06T21:00:00Z");
    let monday = utc("2026-03-09T14:00:00Z");
    assert_eq!(cal.business_days_touched(friday, monday), 2);
    assert_eq!(cal.calendar_days_touched(friday, monday), 4);
    // One instant touches its own date.
    assert_eq!(cal.business_days_touched(friday, friday), 1);
    assert_eq!(cal.calendar_days_touched(friday, friday), 1);
    // Backwards touches nothing.
    assert_eq!(cal.business_days_touched(monday, friday), 0);
    assert_eq!(cal.calendar_days_touched(monday, friday), 0);
}

#[test]
fn a_holiday_inside_a_pause_is_not_a_business_day_touched() {
    let cal = BusinessCalendar::new(America::New_York, builtin("US"));
    // Wednesday 2026-11-25 to Friday 2026-11-27: Thanksgiving in between.
    let touched =
        cal.business_days_touched(utc("2026-11-25T15:00:00Z"), utc("2026-11-27T15:00:00Z"));
    assert_eq!(touched, 2);
}

#[test]
fn shifts_keep_the_local_time_of_day_across_dst() {
    let cal = new_york();
    // Wednesday 2026-03-04 23:59:59 EST, 3 business days → Monday 9 March EDT.
    let due = utc("2026-03-05T04:59:59Z");
    assert_eq!(cal.shift_business_days(due, 3), utc("2026-03-10T03:59:59Z"));
    assert_eq!(cal.shift_calendar_days(due, 4), utc("2026-03-09T03:59:59Z"));
    assert_eq!(cal.shift_business_days(due, 0), due);
    assert_eq!(cal.shift_calendar_days(due, 0), due);
}

#[test]
fn a_shift_into_a_dst_gap_lands_on_the_first_instant_after_it() {
    let cal = new_york();
    // Saturday 2026-03-07 02:30 EST; 02:30 does not exist on Sunday 8 March.
    let due = utc("2026-03-07T07:30:00Z");
    assert_eq!(
        cal.shift_calendar_days(due, 1),
        utc("2026-03-08T07:00:00Z"),
        "03:00 EDT"
    );
}

#[test]
fn a_cached_year_does_not_answer_for_another() {
    let cal = BusinessCalendar::new(America::New_York, builtin("US"));
    // 2026 and 2030 share a cache slot.
    assert!(!cal.is_business_day(date("2026-07-03")));
    assert!(cal.is_business_day(date("2030-07-03")));
    assert!(!cal.is_business_day(date("2030-07-04")));
    assert!(!cal.is_business_day(date("2026-07-03")));
}

#[test]
fn calendar_files_parse_rules_and_bare_or_quoted_dates() {
    let text = r#"
        description = "test"
        base = "US"
        extra = [2026-12-24, "2026-12-31"]

        [[rule]]
        name = "Day after Thanksgiving"
        kind = "nth_weekday"
        month = 11
        weekday = "thursday"
        nth = 4
        offset_days = 1
    "#;
    let file = CalendarFile::from_toml_str(text).unwrap();
    assert_eq!(file.base.as_deref(), Some("US"));
    assert_eq!(file.extra, dates(&["2026-12-24", "2026-12-31"]));
    let mut holidays = builtin("US");
    holidays.merge(file.holidays());
    assert!(holidays.is_holiday(date("2026-11-27")));
    assert!(holidays.is_holiday(date("2026-12-24")));
}

#[test]
fn calendar_file_errors_name_the_line() {
    let text =
        "extra = [2026-12-24]\n\n[[rule]]\nname = \"Bad\"\nkind = \"fixed\"\nmonth = 13\nday = 1\n";
    let error = CalendarFile::from_toml_str(text).unwrap_err();
    assert!(error.message.contains("month 13"), "{error}");
    assert!(matches!(error.line, Some(3..=7)), "{error:?}");

    let error = CalendarFile::from_toml_str("extra = [\"2026-02-30\"]\n").unwrap_err();
    assert_eq!(error.line, Some(1), "{error}");

    let error = CalendarFile::from_toml_str("\nholidays = []\n").unwrap_err();
    assert_eq!(error.line, Some(2), "{error}");
    assert!(error.to_string().starts_with("line 2: "), "{error}");
}

#[test]
fn rules_reject_fields_of_another_kind() {
    let text = "[[rule]]\nname = \"Odd\"\nkind = \"easter\"\nmonth = 4\n";
    let error = CalendarFile::from_toml_str(text).unwrap_err();
    assert!(error.message.contains("`month` does not apply"), "{error}");
    let text = "[[rule]]\nname = \"Feb\"\nkind = \"fixed\"\nmonth = 2\nday = 30\n";
    let error = CalendarFile::from_toml_str(text).unwrap_err();
    assert!(error.message.contains("no day 30"), "{error}");
}

#[test]
fn holidays_round_trip_through_json() {
    let holidays = gb_eng_with_overrides();
    let json = serde_json::to_string(&holidays).unwrap();
    let back: Holidays = serde_json::from_str(&json).unwrap();
    assert_eq!(back, holidays);
}
