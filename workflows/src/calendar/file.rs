//! The text of a calendar file, `playbooks/calendars/<NAME>.toml`.
//!
//! A file either amends a built-in set of the same name (`GB-ENG.toml` adds
//! the royal occasions and moved bank holidays) or defines a calendar of its
//! own, optionally on top of a `base`:
//!
//! ```toml
//! description = "Example company: US federal holidays and the day after Thanksgiving"
//! base = "US"
//! extra = [2026-12-24]
//! removed = []
//!
//! [[rule]]
//! name = "Day after Thanksgiving"
//! kind = "nth_weekday"        # fixed | nth_weekday | last_weekday | easter
//! month = 11
//! weekday = "thursday"
//! nth = 4
//! offset_days = 1
//! observance = "actual"       # actual | nearest_weekday | substitute
//! first_year = 2020           # optional bounds, inclusive
//! ```
//!
//! Reading the file is the activities' business; this module only parses
//! text, so workflow code and tests can share it.

use chrono::NaiveDate;
use serde::Deserialize;

use super::holidays::{HolidayRule, Holidays, date_list};

/// A parsed calendar file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarFile {
    /// What the calendar is, for people reading the file.
    #[serde(default)]
    pub description: Option<String>,
    /// The calendar this one extends, by name; `None` starts from weekends
    /// only. A file that amends a built-in set of its own name has none.
    #[serde(default)]
    pub base: Option<String>,
    /// Recurring holidays, as `[[rule]]` tables.
    #[serde(default, rename = "rule")]
    pub rules: Vec<HolidayRule>,
    /// One-off holidays and the new dates of moved ones.
    #[serde(default, with = "date_list")]
    pub extra: Vec<NaiveDate>,
    /// Rule dates that are not holidays.
    #[serde(default, with = "date_list")]
    pub removed: Vec<NaiveDate>,
}

/// Why a calendar file's text is not a calendar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", line.map(|line| format!("line {line}: ")).unwrap_or_default())]
pub struct CalendarFileError {
    /// 1-based line of the offending text, when the parser knows it.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl CalendarFile {
    /// Parses the text of a calendar file.
    pub fn from_toml_str(text: &str) -> Result<Self, CalendarFileError> {
        toml::from_str(text).map_err(|error| CalendarFileError {
            line: error.span().map(|span| line_of(text, span.start)),
            message: one_line(error.message()),
        })
    }

    /// The holidays the file itself defines, without its base.
    pub fn holidays(&self) -> Holidays {
        Holidays {
            rules: self.rules.clone(),
            extra: self.extra.clone(),
            removed: self.removed.clone(),
        }
    }
}

/// The parser's message, whose details may sit on lines of their own, as one
/// line.
fn one_line(message: &str) -> String {
    let parts: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect();
    parts.join(": ")
}

/// The 1-based line holding byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
