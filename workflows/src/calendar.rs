//! Business-day arithmetic in a team's timezone.
//!
//! Every rule here works on local dates first and converts to an instant last,
//! so "3 business days after day 0" lands on 23:59:59 local time whatever DST
//! does in between, and "day 14" is a local date, never 14 × 24 hours.
//!
//! - [`Holidays`]: a holiday set as data (rules, one-off and removed dates),
//!   with the built-in `US`, `GB-ENG` and `none` sets.
//! - [`CalendarFile`]: the text of `playbooks/calendars/<NAME>.toml`, which
//!   amends a built-in set or defines a calendar of its own.
//! - [`BusinessCalendar`]: a timezone and a holiday set, and the due-date
//!   rules of the SLA engine.
//!
//! Local times that DST makes ambiguous resolve to the earlier instant; local
//! times that a DST gap skips resolve to the first instant after the gap.

use std::cell::Cell;
use std::fmt;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};
use chrono_tz::Tz;

mod file;
mod holidays;

pub use file::{CalendarFile, CalendarFileError};
pub use holidays::{BUILTIN_CALENDARS, HolidayRule, Holidays, Observance, RuleDate, easter_sunday};

use holidays::is_weekend;

/// How many years of holidays a calendar keeps computed. Consecutive years
/// never share a slot, so a schedule crossing New Year does not thrash.
const CACHED_YEARS: usize = 4;

/// The holidays of one year, one bit per day of the year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct YearTable {
    year: i32,
    days: [u64; 6],
}

impl YearTable {
    fn new(holidays: &Holidays, year: i32) -> Self {
        let mut days = [0; 6];
        for date in holidays.dates_in_year(year) {
            let index = date.ordinal0() as usize;
            days[index / 64] |= 1 << (index % 64);
        }
        Self { year, days }
    }

    fn contains(&self, date: NaiveDate) -> bool {
        let index = date.ordinal0() as usize;
        self.days[index / 64] & (1 << (index % 64)) != 0
    }
}

/// The working calendar of one team.
///
/// Holidays are computed a year at a time on first use and kept in a small
/// cache inside the calendar, so asking about a date is a bit test. The cache
/// is a pure function of the holiday set, which keeps the calendar
/// deterministic; it makes the calendar `Send` but not `Sync`.
#[derive(Clone)]
pub struct BusinessCalendar {
    timezone: Tz,
    holidays: Holidays,
    years: [Cell<Option<YearTable>>; CACHED_YEARS],
}

impl fmt::Debug for BusinessCalendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusinessCalendar")
            .field("timezone", &self.timezone)
            .field("holidays", &self.holidays)
            .finish_non_exhaustive()
    }
}

impl PartialEq for BusinessCalendar {
    fn eq(&self, other: &Self) -> bool {
        self.timezone == other.timezone && self.holidays == other.holidays
    }
}

impl Eq for BusinessCalendar {}

impl BusinessCalendar {
    /// A calendar for a timezone and a holiday set.
    pub fn new(timezone: Tz, holidays: Holidays) -> Self {
        Self {
            timezone,
            holidays,
            years: Default::default(),
        }
    }

    /// The team's timezone.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The team's holiday set.
    pub fn holidays(&self) -> &Holidays {
        &self.holidays
    }

    /// Whether people work on this local date: not a weekend, not a holiday.
    pub fn is_business_day(&self, date: NaiveDate) -> bool {
        !is_weekend(date) && !self.is_holiday(date)
    }

    /// Whether `date` is a holiday of this calendar (weekends aside).
    pub fn is_holiday(&self, date: NaiveDate) -> bool {
        let year = date.year();
        let slot = &self.years[year.rem_euclid(CACHED_YEARS as i32) as usize];
        let table = match slot.get() {
            Some(table) if table.year == year => table,
            _ => {
                let table = YearTable::new(&self.holidays, year);
                slot.set(Some(table));
                table
            }
        };
        table.contains(date)
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
            day = next_day(day);
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

    /// How many business days lie among the local dates from `from`'s to
    /// `to`'s, both included; 0 when `to` is on an earlier date.
    pub fn business_days_touched(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> u32 {
        let last = self.local_date(to);
        let mut count = 0;
        let mut day = self.local_date(from);
        while day <= last {
            if self.is_business_day(day) {
                count += 1;
            }
            day = next_day(day);
        }
        count
    }

    /// How many local dates lie from `from`'s to `to`'s, both included; 0 when
    /// `to` is on an earlier date.
    pub fn calendar_days_touched(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> u32 {
        let days = (self.local_date(to) - self.local_date(from)).num_days() + 1;
        u32::try_from(days.max(0)).unwrap_or(u32::MAX)
    }

    /// The same local time of day as `due`, on the `n`th business day after
    /// `due`'s local date; `due` itself when `n` is 0.
    pub fn shift_business_days(&self, due: DateTime<Utc>, n: u32) -> DateTime<Utc> {
        if n == 0 {
            return due;
        }
        let local = due.with_timezone(&self.timezone).naive_local();
        let date = self.nth_business_day_after(local.date(), n);
        local_instant(self.timezone, date.and_time(local.time()))
    }

    /// The same local time of day as `due`, `n` calendar days later; `due`
    /// itself when `n` is 0.
    pub fn shift_calendar_days(&self, due: DateTime<Utc>, n: u32) -> DateTime<Utc> {
        if n == 0 {
            return due;
        }
        let local = due.with_timezone(&self.timezone).naive_local();
        let date = local.date() + Duration::days(i64::from(n));
        local_instant(self.timezone, date.and_time(local.time()))
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
            date = next_day(date);
        }
    }
}

/// 00:00 local time on `date` (or the first instant of the day when a DST gap
/// swallows midnight).
pub fn local_midnight(timezone: Tz, date: NaiveDate) -> DateTime<Utc> {
    local_instant(timezone, date.and_time(NaiveTime::MIN))
}

/// The day after `date`.
fn next_day(date: NaiveDate) -> NaiveDate {
    date.succ_opt()
        .expect("dates stay far inside chrono's range")
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
mod tests;
