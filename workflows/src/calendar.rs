//! Business-day arithmetic in a team's timezone.
//!
//! Every rule here works on local dates first and converts to an instant last,
//! so "3 business days after day 0" lands on 23:59:59 local time whatever DST
//! does in between, and "day 14" is a local date, never 14 × 24 hours.

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
    Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Which days besides weekends are not worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HolidayCalendar {
    /// Weekends only.
    None,
    /// US federal holidays.
    Us,
    /// England and Wales bank holidays.
    GbEng,
}

impl HolidayCalendar {
    /// Resolves a calendar name as a bundle writes it (`US`, `GB-ENG`, `none`).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_uppercase().as_str() {
            "NONE" => Some(Self::None),
            "US" => Some(Self::Us),
            "GB-ENG" => Some(Self::GbEng),
            _ => None,
        }
    }

    // TODO(#3): US and GB-ENG holiday rules; until then both count weekends only.
    fn is_holiday(self, _date: NaiveDate) -> bool {
        false
    }
}

/// The working calendar of one team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusinessCalendar {
    timezone: Tz,
    holidays: HolidayCalendar,
}

impl BusinessCalendar {
    /// A calendar for a timezone and a holiday set.
    pub fn new(timezone: Tz, holidays: HolidayCalendar) -> Self {
        Self { timezone, holidays }
    }

    /// The team's timezone.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// Whether people work on this local date.
    pub fn is_business_day(&self, date: NaiveDate) -> bool {
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.is_holiday(date)
    }

    /// The local date of an instant.
    pub fn local_date(&self, instant: DateTime<Utc>) -> NaiveDate {
        instant.with_timezone(&self.timezone).date_naive()
    }

    /// The `n`th business day after `date` (not counting `date` itself).
    pub fn nth_business_day_after(&self, date: NaiveDate, n: u32) -> NaiveDate {
        let mut day = date;
        let mut counted = 0;
        while counted < n {
            day = day
                .succ_opt()
                .expect("dates stay far inside chrono's range");
            if self.is_business_day(day) {
                counted += 1;
            }
        }
        day
    }

    /// 23:59:59 local time on the `n`th business day after the local date of `from`.
    pub fn business_days_after(&self, from: DateTime<Utc>, n: u32) -> DateTime<Utc> {
        self.end_of_day(self.nth_business_day_after(self.local_date(from), n))
    }

    /// 23:59:59 local time on the `n`th calendar day after the local date of `from`.
    pub fn calendar_days_after(&self, from: DateTime<Utc>, n: u32) -> DateTime<Utc> {
        let date = self.local_date(from) + Duration::days(i64::from(n));
        self.end_of_day(date)
    }

    /// 23:59:59 local time on `date`.
    pub fn end_of_day(&self, date: NaiveDate) -> DateTime<Utc> {
        let time = NaiveTime::from_hms_opt(23, 59, 59).expect("23:59:59 is a valid time");
        local_instant(self.timezone, date.and_time(time))
    }

    /// Seconds between `from` and `to` that fall on business days.
    pub fn business_seconds_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        let mut total = 0;
        let mut cursor = from;
        while cursor < to {
            let date = self.local_date(cursor);
            let next_midnight = local_midnight(self.timezone, date + Duration::days(1));
            let slice_end = next_midnight.min(to);
            if self.is_business_day(date) {
                total += (slice_end - cursor).num_seconds();
            }
            cursor = slice_end;
        }
        total
    }

    /// The instant `seconds` business seconds after `from`.
    pub fn add_business_seconds(&self, from: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
        let mut left = seconds;
        let mut cursor = from;
        loop {
            let date = self.local_date(cursor);
            let next_midnight = local_midnight(self.timezone, date + Duration::days(1));
            if self.is_business_day(date) {
                let available = (next_midnight - cursor).num_seconds();
                if left <= available {
                    return cursor + Duration::seconds(left);
                }
                left -= available;
            }
            cursor = next_midnight;
        }
    }

    /// Business days among the local dates from `from`'s to `to`'s, inclusive.
    pub fn business_days_touched(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> u32 {
        let (first, last) = (self.local_date(from), self.local_date(to));
        first
            .iter_days()
            .take_while(|d| *d <= last)
            .filter(|d| self.is_business_day(*d))
            .count() as u32
    }

    /// Local dates from `from`'s to `to`'s, inclusive.
    pub fn calendar_days_touched(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> u32 {
        let days = (self.local_date(to) - self.local_date(from)).num_days() + 1;
        days.max(0) as u32
    }

    /// The same local time of day on the `n`th business day after `due`'s local date.
    pub fn shift_business_days(&self, due: DateTime<Utc>, n: u32) -> DateTime<Utc> {
        if n == 0 {
            return due;
        }
        let local = due.with_timezone(&self.timezone).naive_local();
        let date = self.nth_business_day_after(local.date(), n);
        local_instant(self.timezone, date.and_time(local.time()))
    }

    /// The same local time of day `n` calendar days after `due`'s local date.
    pub fn shift_calendar_days(&self, due: DateTime<Utc>, n: u32) -> DateTime<Utc> {
        if n == 0 {
            return due;
        }
        let local = due.with_timezone(&self.timezone).naive_local();
        let date = local.date() + Duration::days(i64::from(n));
        local_instant(self.timezone, date.and_time(local.time()))
    }

    /// The first `hour`:00 local time in `timezone`, at or after `instant`, on a
    /// business day of this calendar.
    pub fn next_send_time(&self, instant: DateTime<Utc>, hour: u32, timezone: Tz) -> DateTime<Utc> {
        let send_time =
            NaiveTime::from_hms_opt(hour.min(23), 0, 0).expect("hour is clamped to 0..=23");
        let mut date = instant.with_timezone(&timezone).date_naive();
        loop {
            let candidate = local_instant(timezone, date.and_time(send_time));
            if candidate >= instant && self.is_business_day(date) {
                return candidate;
            }
            date = date
                .succ_opt()
                .expect("dates stay far inside chrono's range");
        }
    }
}

/// 00:00 local time on `date` (or the first instant of the day when a DST gap
/// swallows midnight).
pub fn local_midnight(timezone: Tz, date: NaiveDate) -> DateTime<Utc> {
    local_instant(timezone, date.and_time(NaiveTime::MIN))
}

/// Resolves a local wall-clock time: the earlier instant when a DST fold makes it
/// ambiguous, the first valid instant after a DST gap.
fn local_instant(timezone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = local;
    loop {
        match timezone.from_local_datetime(&probe) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(earlier, _) => return earlier.with_timezone(&Utc),
            // Gaps are at most a few hours; walk forward minute by minute.
            LocalResult::None => probe += Duration::minutes(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn new_york() -> BusinessCalendar {
        BusinessCalendar::new(chrono_tz::America::New_York, HolidayCalendar::None)
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
    fn names_resolve_case_insensitively() {
        assert_eq!(
            HolidayCalendar::from_name("gb-eng"),
            Some(HolidayCalendar::GbEng)
        );
        assert_eq!(HolidayCalendar::from_name("Mars"), None);
    }
}
