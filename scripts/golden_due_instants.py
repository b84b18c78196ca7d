#!/usr/bin/env python3
"""Golden due instants for the business calendar, from an independent reference.

Writes workflows/tests/golden/due_instants.json, which workflows/tests/golden.rs
checks against `BusinessCalendar` case by case. The Rust side and this script
share no code: timezones come from Python's zoneinfo, holiday dates from the
PyPI `holidays` package (the version is pinned in the Makefile, `make golden`),
and the due-date rules of SPEC section 5 are implemented here from their text:

- "N business days after day 0" is 23:59:59 local time on the Nth business day
  after day 0's local date, counting from that date even when it is a weekend
  or a holiday;
- "day N" is 23:59:59 local time on the Nth calendar day after day 0's local
  date;
- a pause moves a due instant later by the days it touched, from its first to
  its last local date inclusive: business days for business-day rules,
  calendar days for day-N rules, keeping the due's local time of day.

A local time that a DST fold repeats resolves to the earlier instant; one that
a DST gap skips resolves to the first valid instant after the gap.

Usage: golden_due_instants.py            regenerate the file
       golden_due_instants.py --check    fail if the file is not what this
                                         script generates
"""

import argparse
import datetime as dt
import json
import os
import pathlib
import sys
from zoneinfo import ZoneInfo

ROOT = pathlib.Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"

try:
    import holidays
except ModuleNotFoundError:
    # `make golden` installs the pinned package into the project's .venv;
    # run under that interpreter when started with another one.
    if (VENV / "bin" / "python").exists() and pathlib.Path(sys.prefix) != VENV:
        os.execv(VENV / "bin" / "python", [str(VENV / "bin" / "python"), *sys.argv])
    sys.exit("the PyPI package `holidays` is missing: run `make golden`")

OUTPUT = ROOT / "workflows" / "tests" / "golden" / "due_instants.json"
UTC = dt.timezone.utc
ONE_DAY = dt.timedelta(days=1)
YEARS = range(1999, 2101)

# US federal holidays as the package names them (observed=True adds the
# "(observed)" entries). With the version pinned in the Makefile the package
# agrees with the rules of the built-in US set on every weekday of 2000-2099:
# it leaves out Inauguration Day (a holiday only around Washington, in the
# package's DC subdivision) and the one-day closures ordered by executive
# order (national days of mourning 2018-12-05 and 2025-01-09, Christmas Eve
# 2019, 2020 and 2024), which are not federal holidays either. Filtering by
# name keeps it that way if a later version adds such days to the default set.
US_FEDERAL = {
    "New Year's Day",
    "Martin Luther King Jr. Day",
    "Washington's Birthday",
    "Memorial Day",
    "Juneteenth National Independence Day",
    "Independence Day",
    "Labor Day",
    "Columbus Day",
    "Veterans Day",
    "Thanksgiving Day",
    "Christmas Day",
}

# England and Wales bank holidays as the package names them, one-off days
# included. "Millennium Celebrations" (1999-12-31) is before 2000 and dropped:
# the calendars are maintained for 2000-2099 only. The package's "May Day" is
# the early May bank holiday, its "Late Summer Bank Holiday" the summer one.
GB_ENG_BANK = {
    "New Year's Day",
    "Good Friday",
    "Easter Monday",
    "May Day",
    "Spring Bank Holiday",
    "Late Summer Bank Holiday",
    "Christmas Day",
    "Boxing Day",
    "Golden Jubilee of Elizabeth II",
    "Wedding of William and Catherine",
    "Diamond Jubilee of Elizabeth II",
    "Platinum Jubilee of Elizabeth II",
    "State Funeral of Queen Elizabeth II",
    "Coronation of Charles III",
}


def federal_names(name):
    """The holiday names of one entry, without the observed marker."""
    return {part.strip().removesuffix(" (observed)") for part in name.split(";")}


def holiday_sets():
    """Calendar name -> set of holiday dates (weekend entries included)."""
    us = holidays.US(observed=True, years=YEARS)
    gb = holidays.GB(subdiv="ENG", observed=True, years=YEARS)
    us_dates = {d for d, name in us.items() if federal_names(name) & US_FEDERAL}
    gb_dates = {
        d
        for d, name in gb.items()
        if federal_names(name) & GB_ENG_BANK and d.year >= 2000
    }
    check_package(us_dates, gb_dates)
    return {"US": us_dates, "GB-ENG": gb_dates, "none": set()}


def check_package(us_dates, gb_dates):
    """Facts the golden cases rely on, so a package upgrade cannot shift them."""
    date = dt.date.fromisoformat
    # Observed US dates: New Year's Day 2022 (Saturday) on Friday 2021-12-31,
    # Independence Day 2026 (Saturday) on Friday 3 July, 2027 (Sunday) on
    # Monday 5 July, and Juneteenth only from 2021.
    for day in ["2021-12-31", "2026-07-03", "2027-07-05", "2021-06-18", "2026-11-26"]:
        assert date(day) in us_dates, day
    assert date("2020-06-19") not in us_dates, "Juneteenth before 2021"
    assert date("2025-01-09") not in us_dates, "a day of mourning is no holiday"
    # England: one-off days, moved days and Christmas substitutes.
    for day in [
        "2002-06-03", "2002-06-04", "2011-04-29", "2012-06-04", "2012-06-05",
        "2020-05-08", "2022-06-02", "2022-06-03", "2022-09-19", "2023-05-08",
        "2021-12-27", "2021-12-28", "2022-12-26", "2022-12-27", "2026-12-28",
    ]:
        assert date(day) in gb_dates, day
    for day in ["2002-05-27", "2012-05-28", "2020-05-04", "2022-05-30"]:
        assert date(day) not in gb_dates, f"{day} moved"


def local_to_utc(zone, wall):
    """The instant of a local wall time: the earlier one in a fold, the first
    valid one after a gap (probed minute by minute)."""
    probe = wall
    while True:
        instant = probe.replace(tzinfo=zone, fold=0).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == probe:
            return instant
        probe += dt.timedelta(minutes=1)


class Calendar:
    def __init__(self, zone_name, holiday_dates):
        self.zone = ZoneInfo(zone_name)
        self.holidays = holiday_dates

    def local_date(self, instant):
        return instant.astimezone(self.zone).date()

    def is_business_day(self, day):
        return day.weekday() < 5 and day not in self.holidays

    def nth_business_day_after(self, day, n):
        counted = 0
        while counted < n:
            day += ONE_DAY
            if self.is_business_day(day):
                counted += 1
        return day

    def end_of_day(self, day):
        return local_to_utc(self.zone, dt.datetime.combine(day, dt.time(23, 59, 59)))

    def business_days_after(self, start, n):
        return self.end_of_day(self.nth_business_day_after(self.local_date(start), n))

    def calendar_days_after(self, start, n):
        return self.end_of_day(self.local_date(start) + n * ONE_DAY)

    def touched(self, first, last, rule):
        day, end, count = self.local_date(first), self.local_date(last), 0
        while day <= end:
            if rule == "calendar_days" or self.is_business_day(day):
                count += 1
            day += ONE_DAY
        return count

    def shift(self, due, n, rule):
        if n == 0:
            return due
        wall = due.astimezone(self.zone).replace(tzinfo=None)
        if rule == "business_days":
            day = self.nth_business_day_after(wall.date(), n)
        else:
            day = wall.date() + n * ONE_DAY
        return local_to_utc(self.zone, dt.datetime.combine(day, wall.time()))


def rfc3339(instant):
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Cases:
    """Builds cases from local wall times, which read better than UTC."""

    def __init__(self):
        self.sets = holiday_sets()
        self.cases = []

    def calendar(self, zone, name):
        return Calendar(zone, self.sets[name])

    def instant(self, zone, wall):
        return local_to_utc(ZoneInfo(zone), dt.datetime.fromisoformat(wall))

    def due(self, name, zone, calendar, wall, rule, n):
        cal = self.calendar(zone, calendar)
        start = self.instant(zone, wall)
        if rule == "business_days":
            expected = cal.business_days_after(start, n)
        else:
            expected = cal.calendar_days_after(start, n)
        self.cases.append({
            "name": name,
            "timezone": zone,
            "calendar": calendar,
            "from": rfc3339(start),
            "rule": rule,
            "n": n,
            "expected": rfc3339(expected),
        })
        return expected

    def business(self, name, zone, calendar, wall, n):
        return self.due(name, zone, calendar, wall, "business_days", n)

    def days(self, name, zone, calendar, wall, n):
        return self.due(name, zone, calendar, wall, "calendar_days", n)

    def pause(self, name, zone, calendar, wall, due_rule, n, pause_start, pause_end):
        cal = self.calendar(zone, calendar)
        start = self.instant(zone, wall)
        if due_rule == "business_days":
            due = cal.business_days_after(start, n)
        else:
            due = cal.calendar_days_after(start, n)
        first = self.instant(zone, pause_start)
        last = self.instant(zone, pause_end)
        touched = cal.touched(first, last, due_rule)
        self.cases.append({
            "name": name,
            "timezone": zone,
            "calendar": calendar,
            "from": rfc3339(start),
            "rule": "pause_shift",
            "n": n,
            "due_rule": due_rule,
            "due": rfc3339(due),
            "pause_start": rfc3339(first),
            "pause_end": rfc3339(last),
            "touched": touched,
            "expected": rfc3339(cal.shift(due, touched, due_rule)),
        })


NY, LONDON, SYDNEY = "America/New_York", "Europe/London", "Australia/Sydney"


def anchor(c):
    # SPEC section 5: day 0 on Friday 2026-03-06 evening in New York, 3
    # business days: Wednesday 23:59:59 EDT, after the spring-forward Sunday.
    due = c.business("anchor_friday_evening_plus_3", NY, "US", "2026-03-06T19:00:00", 3)
    assert rfc3339(due) == "2026-03-12T03:59:59Z", rfc3339(due)


def dst_new_york(c):
    c.business("ny_2026_spring_forward_friday_morning_plus_3", NY, "US", "2026-03-06T10:00:00", 3)
    c.business("ny_2026_spring_forward_plus_10", NY, "US", "2026-03-02T09:00:00", 10)
    c.days("ny_2026_day_14_across_spring_forward", NY, "US", "2026-03-01T12:00:00", 14)
    c.days("ny_2026_day_7_lands_on_spring_forward_sunday", NY, "US", "2026-03-01T08:00:00", 7)
    c.business("ny_2026_fall_back_plus_3", NY, "US", "2026-10-30T10:00:00", 3)
    c.days("ny_2026_day_14_across_fall_back", NY, "US", "2026-10-20T16:00:00", 14)
    c.days("ny_2026_day_0_lands_on_fall_back_sunday", NY, "US", "2026-11-01T01:30:00", 0)
    c.business("ny_2027_spring_forward_plus_3", NY, "US", "2027-03-12T17:00:00", 3)
    c.business("ny_2027_fall_back_plus_10", NY, "US", "2027-11-01T09:00:00", 10)
    c.days("ny_2027_day_30_across_fall_back", NY, "US", "2027-10-20T11:00:00", 30)
    c.business("ny_2026_late_evening_is_next_utc_date", NY, "US", "2026-05-01T22:30:00", 3)


def dst_london(c):
    c.business("london_2026_bst_starts_plus_3", LONDON, "GB-ENG", "2026-03-27T18:00:00", 3)
    c.days("london_2026_day_14_across_bst_start", LONDON, "GB-ENG", "2026-03-20T10:00:00", 14)
    c.business("london_2026_bst_ends_plus_3", LONDON, "GB-ENG", "2026-10-23T15:00:00", 3)
    c.days("london_2026_day_30_across_bst_end", LONDON, "GB-ENG", "2026-10-10T09:00:00", 30)
    c.business("london_2027_bst_starts_plus_10", LONDON, "GB-ENG", "2027-03-22T09:00:00", 10)
    c.business("london_2027_bst_ends_plus_3", LONDON, "GB-ENG", "2027-10-29T23:30:00", 3)


def dst_sydney(c):
    # Southern hemisphere: daylight saving ends in April, starts in October.
    c.business("sydney_2026_dst_ends_plus_3", SYDNEY, "none", "2026-04-03T16:00:00", 3)
    c.days("sydney_2026_day_14_across_dst_end", SYDNEY, "none", "2026-03-28T10:00:00", 14)
    c.business("sydney_2026_dst_starts_plus_3", SYDNEY, "none", "2026-10-02T12:00:00", 3)
    c.days("sydney_2026_day_30_across_dst_start", SYDNEY, "none", "2026-09-20T08:00:00", 30)
    c.business("sydney_2027_dst_ends_plus_10", SYDNEY, "none", "2027-03-29T09:00:00", 10)
    c.days("sydney_2027_day_90_across_both_changes", SYDNEY, "none", "2027-08-15T09:00:00", 90)
    c.business("sydney_monday_morning_is_sunday_in_utc", SYDNEY, "none", "2026-06-08T07:00:00", 3)


def us_holidays(c):
    def us(name, wall, n):
        c.business("us_" + name, NY, "US", wall, n)

    us("2026_july_4_saturday_observed_friday", "2026-07-02T10:00:00", 1)
    us("2026_july_4_week_plus_3", "2026-07-01T10:00:00", 3)
    us("2027_july_4_sunday_observed_monday", "2027-07-02T10:00:00", 1)
    us("2021_new_year_saturday_observed_dec_31", "2021-12-30T10:00:00", 1)
    us("2027_new_year_2028_observed_dec_31", "2027-12-30T10:00:00", 1)
    us("2026_thanksgiving_wednesday_plus_1", "2026-11-25T10:00:00", 1)
    us("2026_thanksgiving_week_plus_3", "2026-11-23T10:00:00", 3)
    us("2026_mlk_monday_skipped", "2026-01-16T10:00:00", 1)
    us("2026_presidents_day_skipped", "2026-02-13T10:00:00", 3)
    us("2026_memorial_day_skipped", "2026-05-22T10:00:00", 1)
    us("2026_juneteenth_friday", "2026-06-18T10:00:00", 1)
    us("2020_no_juneteenth_before_2021", "2020-06-18T10:00:00", 1)
    us("2027_juneteenth_saturday_observed_friday", "2027-06-17T10:00:00", 1)
    us("2026_labor_day_skipped", "2026-09-04T10:00:00", 1)
    us("2026_columbus_day_skipped", "2026-10-09T10:00:00", 1)
    us("2023_veterans_day_saturday_observed_friday", "2023-11-09T10:00:00", 1)
    us("2026_veterans_day_wednesday", "2026-11-10T10:00:00", 1)
    us("2022_christmas_sunday_observed_monday", "2022-12-23T10:00:00", 1)
    us("2025_mlk_and_inauguration_day_same_monday", "2025-01-17T10:00:00", 1)
    us("2025_day_of_mourning_is_a_business_day", "2025-01-08T10:00:00", 1)
    us("2024_christmas_eve_is_a_business_day", "2024-12-23T10:00:00", 1)
    c.business("us_2026_los_angeles_thanksgiving", "America/Los_Angeles", "US",
               "2026-11-24T20:00:00", 2)


def gb_holidays(c):
    def gb(name, wall, n):
        c.business("gb_" + name, LONDON, "GB-ENG", wall, n)

    gb("2026_easter_thursday_plus_1", "2026-04-02T10:00:00", 1)
    gb("2026_easter_plus_10", "2026-03-30T10:00:00", 10)
    gb("2026_early_may_skipped", "2026-05-01T10:00:00", 1)
    gb("2026_summer_bank_holiday_skipped", "2026-08-28T10:00:00", 1)
    gb("2002_golden_jubilee_and_moved_spring", "2002-05-31T10:00:00", 1)
    gb("2002_may_27_is_a_business_day", "2002-05-24T10:00:00", 1)
    gb("2011_royal_wedding_after_easter", "2011-04-21T10:00:00", 4)
    gb("2012_diamond_jubilee", "2012-06-01T10:00:00", 1)
    gb("2012_may_28_is_a_business_day", "2012-05-25T10:00:00", 1)
    gb("2020_may_4_is_a_business_day", "2020-05-01T10:00:00", 1)
    gb("2020_ve_day_friday_skipped", "2020-05-07T10:00:00", 1)
    gb("2022_platinum_jubilee", "2022-06-01T10:00:00", 1)
    gb("2022_may_30_is_a_business_day", "2022-05-27T10:00:00", 1)
    gb("2022_state_funeral", "2022-09-16T10:00:00", 1)
    gb("2023_coronation", "2023-05-05T10:00:00", 1)
    gb("2023_coronation_and_early_may_plus_3", "2023-04-28T10:00:00", 3)
    gb("2021_christmas_weekend_substitutes", "2021-12-24T10:00:00", 1)
    gb("2022_christmas_sunday_substitute_tuesday", "2022-12-23T10:00:00", 1)
    gb("2026_boxing_day_saturday_substitute_monday", "2026-12-24T10:00:00", 1)
    gb("2022_new_year_saturday_substitute_monday", "2021-12-31T10:00:00", 1)


def year_end(c):
    for year in (2026, 2027):
        for day in (23, 24):
            for n in (3, 10):
                wall = f"{year}-12-{day}T15:00:00"
                c.business(f"us_{year}_dec_{day}_plus_{n}", NY, "US", wall, n)
                c.business(f"gb_{year}_dec_{day}_plus_{n}", LONDON, "GB-ENG", wall, n)


def odd_day_zero(c):
    c.business("us_saturday_day_0_plus_3", NY, "US", "2026-03-07T10:00:00", 3)
    c.business("us_sunday_day_0_plus_1", NY, "US", "2026-03-08T10:00:00", 1)
    c.business("us_day_0_on_mlk_plus_3", NY, "US", "2026-01-19T10:00:00", 3)
    c.business("us_day_0_on_christmas_plus_3", NY, "US", "2026-12-25T10:00:00", 3)
    c.business("gb_day_0_on_good_friday_plus_1", LONDON, "GB-ENG", "2026-04-03T10:00:00", 1)
    c.business("gb_saturday_day_0_plus_3", LONDON, "GB-ENG", "2026-06-06T10:00:00", 3)
    c.days("us_saturday_day_0_day_14", NY, "US", "2026-03-07T10:00:00", 14)
    c.business("us_day_0_plus_0_is_its_own_end_of_day", NY, "US", "2026-03-07T10:00:00", 0)


def far_years(c):
    c.business("us_2035_thanksgiving_week_plus_3", NY, "US", "2035-11-20T10:00:00", 3)
    c.business("us_2035_spring_forward_plus_3", NY, "US", "2035-03-09T17:00:00", 3)
    c.business("gb_2035_easter_in_march_plus_3", LONDON, "GB-ENG", "2035-03-22T10:00:00", 3)
    c.business("us_2061_july_4_plus_3", NY, "US", "2061-07-01T10:00:00", 3)
    c.business("gb_2061_easter_plus_3", LONDON, "GB-ENG", "2061-04-07T10:00:00", 3)
    c.business("us_2099_christmas_friday_plus_3", NY, "US", "2099-12-23T10:00:00", 3)
    c.business("gb_2099_christmas_boxing_saturday_plus_3", LONDON, "GB-ENG",
               "2099-12-23T10:00:00", 3)
    c.days("us_2099_day_90", NY, "US", "2099-10-01T10:00:00", 90)
    c.business("gb_2099_easter_plus_10", LONDON, "GB-ENG", "2099-04-08T10:00:00", 10)


def weekends_only(c):
    c.business("none_july_4_2026_friday_counts", NY, "none", "2026-07-02T10:00:00", 1)
    c.business("none_christmas_2026_plus_10", NY, "none", "2026-12-23T10:00:00", 10)
    c.days("none_day_90", NY, "none", "2026-03-06T19:00:00", 90)
    c.business("none_london_bank_holiday_counts", LONDON, "none", "2026-08-28T10:00:00", 1)


def milestone_windows(c):
    # The shipped playbook's numbers from one day 0, per calendar.
    teams = [(NY, "US", "us"), (LONDON, "GB-ENG", "gb"), (SYDNEY, "none", "sydney")]
    for zone, calendar, tag in teams:
        wall = "2026-09-28T14:00:00"
        c.business(f"{tag}_playbook_kickoff_3", zone, calendar, wall, 3)
        c.business(f"{tag}_playbook_data_mapping_10", zone, calendar, wall, 10)
        c.days(f"{tag}_playbook_day_14", zone, calendar, wall, 14)
        c.days(f"{tag}_playbook_day_30", zone, calendar, wall, 30)
        c.days(f"{tag}_playbook_day_90", zone, calendar, wall, 90)


def pauses(c):
    # Day 0 Wednesday 2026-03-04; paused Friday to Monday: a business-day due
    # moves 2 business days, a day-N due 4 calendar days.
    c.pause("pause_friday_to_monday_business", NY, "US", "2026-03-04T10:00:00",
            "business_days", 3, "2026-03-06T11:00:00", "2026-03-09T09:00:00")
    c.pause("pause_friday_to_monday_day_n", NY, "US", "2026-03-04T10:00:00",
            "calendar_days", 14, "2026-03-06T11:00:00", "2026-03-09T09:00:00")
    c.pause("pause_weekend_only_touches_no_business_day", NY, "US", "2026-03-04T10:00:00",
            "business_days", 10, "2026-03-07T11:00:00", "2026-03-08T18:00:00")
    c.pause("pause_within_one_day", NY, "US", "2026-03-04T10:00:00",
            "business_days", 10, "2026-03-05T11:00:00", "2026-03-05T15:00:00")
    c.pause("pause_over_thanksgiving", NY, "US", "2026-11-20T10:00:00",
            "business_days", 10, "2026-11-25T09:00:00", "2026-11-30T17:00:00")
    c.pause("pause_over_gb_christmas_substitutes", LONDON, "GB-ENG", "2021-12-20T10:00:00",
            "business_days", 10, "2021-12-23T09:00:00", "2021-12-29T17:00:00")
    c.pause("pause_gb_day_n_over_christmas", LONDON, "GB-ENG", "2021-12-20T10:00:00",
            "calendar_days", 30, "2021-12-23T09:00:00", "2021-12-29T17:00:00")
    c.pause("pause_shift_across_spring_forward", NY, "US", "2026-03-02T10:00:00",
            "business_days", 3, "2026-03-04T12:00:00", "2026-03-05T12:00:00")
    c.pause("pause_sydney_across_dst_start", SYDNEY, "none", "2026-09-28T10:00:00",
            "calendar_days", 14, "2026-10-02T12:00:00", "2026-10-05T12:00:00")
    c.pause("pause_london_day_n_across_bst_end", LONDON, "GB-ENG", "2026-10-01T10:00:00",
            "calendar_days", 30, "2026-10-23T12:00:00", "2026-10-26T12:00:00")


def generate():
    c = Cases()
    for group in [anchor, dst_new_york, dst_london, dst_sydney, us_holidays, gb_holidays,
                  year_end, odd_day_zero, far_years, weekends_only, milestone_windows, pauses]:
        group(c)
    names = [case["name"] for case in c.cases]
    assert len(names) == len(set(names)), "case names are unique"
    document = {
        "generator": "scripts/golden_due_instants.py",
        "holidays_package": holidays.__version__,
        "cases": c.cases,
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the checked-in file instead of writing it")
    args = parser.parse_args()

    text = generate()
    count = text.count('"name":')
    if args.check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run `make golden`", file=sys.stderr)
            return 1
        print(f"{OUTPUT.relative_to(ROOT)}: {count} cases up to date")
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {count} cases to {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
