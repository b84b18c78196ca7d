//! Holiday sets as data: dated rules plus one-off and removed dates.
//!
//! A rule names a date in every year (a fixed month and day, the nth or last
//! weekday of a month, or Easter) shifted by a number of days, and says what
//! happens when that date falls on a weekend. One-off days (a jubilee, a
//! state funeral) go in `extra`; a rule date that was moved goes in `removed`
//! and its replacement in `extra`.
//!
//! The arithmetic is valid for every Gregorian year; the built-in sets are
//! maintained for 2000-2099.

use std::collections::BTreeSet;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

/// What a rule's holiday becomes when its date falls on a weekend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Observance {
    /// The holiday is its date only; on a weekend nobody gets a day off.
    #[default]
    Actual,
    /// US federal style: Saturday moves to the Friday before, Sunday to the
    /// Monday after (so New Year's Day on a Saturday is observed on
    /// 31 December of the year before).
    NearestWeekday,
    /// UK substitute day: the next weekday that is not already a holiday, so
    /// Christmas on Saturday and Boxing Day on Sunday give Monday 27 and
    /// Tuesday 28.
    Substitute,
}

/// Where a rule's date falls in a year, before its shift and observance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleDate {
    /// The same month and day every year.
    Fixed {
        /// Month, 1-12.
        month: u32,
        /// Day of the month, 1-31.
        day: u32,
    },
    /// The nth given weekday of a month (the 4th Thursday of November).
    NthWeekday {
        /// Month, 1-12.
        month: u32,
        /// The weekday counted.
        weekday: Weekday,
        /// Which one, 1-5; a month without a 5th one has no holiday.
        nth: u32,
    },
    /// The last given weekday of a month (the last Monday of May).
    LastWeekday {
        /// Month, 1-12.
        month: u32,
        /// The weekday counted.
        weekday: Weekday,
    },
    /// Easter Sunday of the Gregorian calendar; shift it for Good Friday (-2)
    /// or Easter Monday (+1).
    Easter,
}

impl RuleDate {
    /// The date in `year`, or `None` when the month has no such day.
    pub fn in_year(self, year: i32) -> Option<NaiveDate> {
        match self {
            Self::Fixed { month, day } => NaiveDate::from_ymd_opt(year, month, day),
            Self::NthWeekday {
                month,
                weekday,
                nth,
            } => {
                let first = NaiveDate::from_ymd_opt(year, month, 1)?;
                let to_first_match = weekday.days_since(first.weekday());
                let day = 1 + to_first_match + 7 * nth.checked_sub(1)?;
                NaiveDate::from_ymd_opt(year, month, day)
            }
            Self::LastWeekday { month, weekday } => {
                let last = last_day_of_month(year, month)?;
                let back = last.weekday().days_since(weekday);
                Some(last - Duration::days(i64::from(back)))
            }
            Self::Easter => easter_sunday(year),
        }
    }
}

/// One recurring holiday.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawRule", into = "RawRule")]
pub struct HolidayRule {
    /// The holiday's name, for people reading the calendar.
    pub name: String,
    /// Where the date falls in a year.
    pub date: RuleDate,
    /// Days added to `date` (negative for earlier): -2 after Easter is Good
    /// Friday, +1 after the 4th Thursday of November the day after
    /// Thanksgiving. 0 keeps the date.
    pub offset_days: i32,
    /// What happens when the shifted date falls on a weekend.
    pub observance: Observance,
    /// First year the rule applies, inclusive; `None` for no bound.
    pub first_year: Option<i32>,
    /// Last year the rule applies, inclusive; `None` for no bound.
    pub last_year: Option<i32>,
}

impl HolidayRule {
    /// A rule for every year with no shift, observed on its date only.
    pub fn new(name: &str, date: RuleDate) -> Self {
        Self {
            name: name.to_owned(),
            date,
            offset_days: 0,
            observance: Observance::Actual,
            first_year: None,
            last_year: None,
        }
    }

    /// The same rule shifted by `days`.
    pub fn offset(mut self, days: i32) -> Self {
        self.offset_days = days;
        self
    }

    /// The same rule with another weekend observance.
    pub fn observed(mut self, observance: Observance) -> Self {
        self.observance = observance;
        self
    }

    /// The same rule, applying from `year` on.
    pub fn since(mut self, year: i32) -> Self {
        self.first_year = Some(year);
        self
    }

    /// The rule's date in `year` before observance: `None` outside its years
    /// or when the month has no such day. A shift may carry it into another
    /// year.
    pub fn date_in(&self, year: i32) -> Option<NaiveDate> {
        let after_first = self.first_year.is_none_or(|first| year >= first);
        let before_last = self.last_year.is_none_or(|last| year <= last);
        if !(after_first && before_last) {
            return None;
        }
        let base = self.date.in_year(year)?;
        base.checked_add_signed(Duration::days(i64::from(self.offset_days)))
    }
}

/// A holiday set: recurring rules, one-off extra days and rule days removed.
///
/// A date is a holiday when it is in `extra`, or when a rule yields it (after
/// observance) and it is not in `removed`. Weekends are never business days
/// whatever this set says; [`BusinessCalendar`](super::BusinessCalendar)
/// checks them first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holidays {
    /// Recurring holidays.
    #[serde(default)]
    pub rules: Vec<HolidayRule>,
    /// One-off holidays, and the new dates of moved ones.
    #[serde(default, with = "date_list")]
    pub extra: Vec<NaiveDate>,
    /// Dates a rule yields that are not holidays (a moved bank holiday).
    #[serde(default, with = "date_list")]
    pub removed: Vec<NaiveDate>,
}

/// The names [`Holidays::builtin`] knows, as they are usually written.
pub const BUILTIN_CALENDARS: [&str; 3] = ["US", "GB-ENG", "none"];

impl Holidays {
    /// A built-in set by name, case-insensitively: `US` (federal holidays,
    /// observed dates), `GB-ENG` (England and Wales bank holidays by rule;
    /// one-off days and moves come from `playbooks/calendars/GB-ENG.toml`)
    /// or `none` (weekends only).
    pub fn builtin(name: &str) -> Option<Self> {
        match name.trim().to_ascii_uppercase().as_str() {
            "NONE" => Some(Self::default()),
            "US" => Some(Self::united_states()),
            "GB-ENG" => Some(Self::england_and_wales()),
            _ => None,
        }
    }

    /// Adds another set's rules, extra and removed days to this one.
    pub fn merge(&mut self, other: Holidays) {
        self.rules.extend(other.rules);
        self.extra.extend(other.extra);
        self.removed.extend(other.removed);
    }

    /// Whether `date` is a holiday (weekends aside). Computes the whole year;
    /// [`BusinessCalendar`](super::BusinessCalendar) caches it instead.
    pub fn is_holiday(&self, date: NaiveDate) -> bool {
        self.dates_in_year(date.year()).contains(&date)
    }

    /// Every holiday of `year`, in order, including those on weekends.
    pub fn dates_in_year(&self, year: i32) -> BTreeSet<NaiveDate> {
        let mut dates = self.observed_rule_dates(year);
        dates.retain(|date| date.year() == year && !self.removed.contains(date));
        dates.extend(self.extra.iter().filter(|date| date.year() == year));
        dates
    }

    /// What the rules yield around `year` after observance. Rule dates of the
    /// neighbouring years are included because observance crosses year ends
    /// (New Year's Day on a Saturday is observed on 31 December).
    fn observed_rule_dates(&self, year: i32) -> BTreeSet<NaiveDate> {
        let mut occurrences: Vec<(NaiveDate, Observance)> = Vec::new();
        for rule in &self.rules {
            for rule_year in [year - 1, year, year + 1] {
                if let Some(date) = rule.date_in(rule_year) {
                    occurrences.push((date, rule.observance));
                }
            }
        }
        occurrences.sort_by_key(|&(date, _)| date);

        // Substitute days skip every day that is already a holiday, so those
        // are collected first: weekday rule dates, observed dates and extras.
        let mut taken: BTreeSet<NaiveDate> = self.extra.iter().copied().collect();
        for &(date, observance) in &occurrences {
            match observance {
                Observance::Actual => {
                    taken.insert(date);
                }
                Observance::NearestWeekday => {
                    taken.insert(nearest_weekday(date));
                }
                Observance::Substitute if !is_weekend(date) => {
                    taken.insert(date);
                }
                Observance::Substitute => {}
            }
        }
        // In date order, so Christmas takes Monday before Boxing Day asks.
        for &(date, observance) in &occurrences {
            if observance == Observance::Substitute && is_weekend(date) {
                let mut day = date;
                while is_weekend(day) || taken.contains(&day) {
                    day = day
                        .succ_opt()
                        .expect("holiday dates stay inside chrono's range");
                }
                taken.insert(day);
            }
        }
        taken
    }

    /// US federal holidays (5 U.S.C. 6103) with the observed dates of
    /// Executive Order 11582: Saturday to Friday, Sunday to Monday.
    /// Inauguration Day is left out: it is a holiday only around Washington.
    fn united_states() -> Self {
        use Observance::NearestWeekday as Nearest;
        use RuleDate::{Fixed, LastWeekday, NthWeekday};
        use Weekday::{Mon, Thu};

        let nth = |month, weekday, nth| NthWeekday {
            month,
            weekday,
            nth,
        };
        let rules = vec![
            HolidayRule::new("New Year's Day", Fixed { month: 1, day: 1 }).observed(Nearest),
            HolidayRule::new("Birthday of Martin Luther King, Jr.", nth(1, Mon, 3)).since(1986),
            HolidayRule::new("Washington's Birthday", nth(2, Mon, 3)),
            HolidayRule::new(
                "Memorial Day",
                LastWeekday {
                    month: 5,
                    weekday: Mon,
                },
            ),
            HolidayRule::new(
                "Juneteenth National Independence Day",
                Fixed { month: 6, day: 19 },
            )
            .observed(Nearest)
            .since(2021),
            HolidayRule::new("Independence Day", Fixed { month: 7, day: 4 }).observed(Nearest),
            HolidayRule::new("Labor Day", nth(9, Mon, 1)),
            HolidayRule::new("Columbus Day", nth(10, Mon, 2)),
            HolidayRule::new("Veterans Day", Fixed { month: 11, day: 11 }).observed(Nearest),
            HolidayRule::new("Thanksgiving Day", nth(11, Thu, 4)),
            HolidayRule::new("Christmas Day", Fixed { month: 12, day: 25 }).observed(Nearest),
        ];
        Self {
            rules,
            ..Self::default()
        }
    }

    /// England and Wales bank holidays by rule. Royal occasions and the
    /// years a bank holiday moved are data, not rules.
    fn england_and_wales() -> Self {
        use Observance::Substitute;
        use RuleDate::{Easter, Fixed, LastWeekday, NthWeekday};
        use Weekday::Mon;

        let rules = vec![
            HolidayRule::new("New Year's Day", Fixed { month: 1, day: 1 }).observed(Substitute),
            HolidayRule::new("Good Friday", Easter).offset(-2),
            HolidayRule::new("Easter Monday", Easter).offset(1),
            HolidayRule::new(
                "Early May bank holiday",
                NthWeekday {
                    month: 5,
                    weekday: Mon,
                    nth: 1,
                },
            ),
            HolidayRule::new(
                "Spring bank holiday",
                LastWeekday {
                    month: 5,
                    weekday: Mon,
                },
            ),
            HolidayRule::new(
                "Summer bank holiday",
                LastWeekday {
                    month: 8,
                    weekday: Mon,
                },
            ),
            HolidayRule::new("Christmas Day", Fixed { month: 12, day: 25 }).observed(Substitute),
            HolidayRule::new("Boxing Day", Fixed { month: 12, day: 26 }).observed(Substitute),
        ];
        Self {
            rules,
            ..Self::default()
        }
    }
}

/// Easter Sunday of `year` in the Gregorian calendar (the anonymous
/// algorithm published in Nature in 1876).
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let golden = year.rem_euclid(19);
    let century = year.div_euclid(100);
    let year_of_century = year.rem_euclid(100);
    let leap_corrections = century / 4;
    let century_rest = century % 4;
    let moon_correction = (century + 8) / 25;
    let moon_gap = (century - moon_correction + 1) / 3;
    let epact = (19 * golden + century - leap_corrections - moon_gap + 15).rem_euclid(30);
    let quarter = year_of_century / 4;
    let quarter_rest = year_of_century % 4;
    let weekday_step = (32 + 2 * century_rest + 2 * quarter - epact - quarter_rest).rem_euclid(7);
    let late_correction = (golden + 11 * epact + 22 * weekday_step) / 451;
    let days_after_march_22 = epact + weekday_step - 7 * late_correction;
    let month = (days_after_march_22 + 114) / 31;
    let day = (days_after_march_22 + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

/// Saturday or Sunday.
pub(crate) fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

fn nearest_weekday(date: NaiveDate) -> NaiveDate {
    match date.weekday() {
        Weekday::Sat => date - Duration::days(1),
        Weekday::Sun => date + Duration::days(1),
        _ => date,
    }
}

fn last_day_of_month(year: i32, month: u32) -> Option<NaiveDate> {
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(next_year, next_month, 1)?.pred_opt()
}

/// The flat form of a rule in files and JSON: a `kind` and the fields that
/// kind needs, checked when read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    kind: RawKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    month: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    day: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weekday: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nth: Option<u32>,
    #[serde(default, skip_serializing_if = "is_zero")]
    offset_days: i32,
    #[serde(default)]
    observance: Observance,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    first_year: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_year: Option<i32>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawKind {
    Fixed,
    NthWeekday,
    LastWeekday,
    Easter,
}

fn is_zero(value: &i32) -> bool {
    *value == 0
}

impl TryFrom<RawRule> for HolidayRule {
    type Error = String;

    fn try_from(raw: RawRule) -> Result<Self, String> {
        let name = &raw.name;
        let month = || match raw.month {
            Some(month @ 1..=12) => Ok(month),
            Some(other) => Err(format!("rule `{name}`: month {other} is not 1-12")),
            None => Err(format!("rule `{name}`: this kind needs a month")),
        };
        let weekday = || match raw.weekday.as_deref() {
            Some(text) => text
                .parse::<Weekday>()
                .map_err(|_| format!("rule `{name}`: `{text}` is not a weekday")),
            None => Err(format!("rule `{name}`: this kind needs a weekday")),
        };
        let unused = |field: &str, present: bool| {
            if present {
                Err(format!(
                    "rule `{name}`: `{field}` does not apply to this kind"
                ))
            } else {
                Ok(())
            }
        };

        let date = match raw.kind {
            RawKind::Fixed => {
                let month = month()?;
                let day = raw
                    .day
                    .filter(|day| (1..=31).contains(day))
                    .ok_or_else(|| format!("rule `{name}`: a fixed date needs a day, 1-31"))?;
                // 29 February exists only in leap years; 2000 is one.
                if NaiveDate::from_ymd_opt(2000, month, day).is_none() {
                    return Err(format!("rule `{name}`: month {month} has no day {day}"));
                }
                unused("weekday", raw.weekday.is_some())?;
                unused("nth", raw.nth.is_some())?;
                RuleDate::Fixed { month, day }
            }
            RawKind::NthWeekday => {
                let nth = raw
                    .nth
                    .filter(|nth| (1..=5).contains(nth))
                    .ok_or_else(|| format!("rule `{name}`: nth_weekday needs nth, 1-5"))?;
                unused("day", raw.day.is_some())?;
                RuleDate::NthWeekday {
                    month: month()?,
                    weekday: weekday()?,
                    nth,
                }
            }
            RawKind::LastWeekday => {
                unused("day", raw.day.is_some())?;
                unused("nth", raw.nth.is_some())?;
                RuleDate::LastWeekday {
                    month: month()?,
                    weekday: weekday()?,
                }
            }
            RawKind::Easter => {
                unused("month", raw.month.is_some())?;
                unused("day", raw.day.is_some())?;
                unused("weekday", raw.weekday.is_some())?;
                unused("nth", raw.nth.is_some())?;
                RuleDate::Easter
            }
        };
        if let (Some(first), Some(last)) = (raw.first_year, raw.last_year)
            && first > last
        {
            return Err(format!(
                "rule `{name}`: first_year {first} is after last_year {last}"
            ));
        }
        Ok(Self {
            name: raw.name,
            date,
            offset_days: raw.offset_days,
            observance: raw.observance,
            first_year: raw.first_year,
            last_year: raw.last_year,
        })
    }
}

impl From<HolidayRule> for RawRule {
    fn from(rule: HolidayRule) -> Self {
        let mut raw = RawRule {
            name: rule.name,
            kind: RawKind::Easter,
            month: None,
            day: None,
            weekday: None,
            nth: None,
            offset_days: rule.offset_days,
            observance: rule.observance,
            first_year: rule.first_year,
            last_year: rule.last_year,
        };
        match rule.date {
            RuleDate::Fixed { month, day } => {
                raw.kind = RawKind::Fixed;
                raw.month = Some(month);
                raw.day = Some(day);
            }
            RuleDate::NthWeekday {
                month,
                weekday,
                nth,
            } => {
                raw.kind = RawKind::NthWeekday;
                raw.month = Some(month);
                raw.weekday = Some(weekday_name(weekday).to_owned());
                raw.nth = Some(nth);
            }
            RuleDate::LastWeekday { month, weekday } => {
                raw.kind = RawKind::LastWeekday;
                raw.month = Some(month);
                raw.weekday = Some(weekday_name(weekday).to_owned());
            }
            RuleDate::Easter => {}
        }
        raw
    }
}

fn weekday_name(weekday: Weekday) -> &'static str {
    match weekday {
        Weekday::Mon => "monday",
        Weekday::Tue => "tuesday",
        Weekday::Wed => "wednesday",
        Weekday::Thu => "thursday",
        Weekday::Fri => "friday",
        Weekday::Sat => "saturday",
        Weekday::Sun => "sunday",
    }
}

/// Lists of dates written as `"2022-06-03"` strings (JSON) or as bare TOML
/// local dates (`2022-06-03`), which the TOML reader hands over as a
/// one-entry map holding the date's text.
pub(crate) mod date_list {
    use std::fmt;

    use chrono::NaiveDate;
    use serde::de::{self, MapAccess, SeqAccess, Visitor};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        dates: &[NaiveDate],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        dates.serialize(serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<NaiveDate>, D::Error> {
        deserializer.deserialize_seq(ListVisitor)
    }

    struct ListVisitor;

    impl<'de> Visitor<'de> for ListVisitor {
        type Value = Vec<NaiveDate>;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a list of dates")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut dates = Vec::new();
            while let Some(LocalDate(date)) = seq.next_element()? {
                dates.push(date);
            }
            Ok(dates)
        }
    }

    struct LocalDate(NaiveDate);

    impl<'de> Deserialize<'de> for LocalDate {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(DateVisitor).map(LocalDate)
        }
    }

    struct DateVisitor;

    impl<'de> Visitor<'de> for DateVisitor {
        type Value = NaiveDate;

        fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("a date such as 2022-06-03")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<NaiveDate, E> {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| E::custom(format!("`{text}` is not a date such as 2022-06-03")))
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NaiveDate, A::Error> {
            let Some((_, text)) = map.next_entry::<String, String>()? else {
                return Err(de::Error::custom("expected a date such as 2022-06-03"));
            };
            self.visit_str(&text)
        }
    }
}
