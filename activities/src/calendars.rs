//! Holiday calendars read from the playbook directory's `calendars/`.
//!
//! A calendar name (as a bundle's `team.calendar` writes it) resolves, case
//! insensitively, to a built-in set amended by `<dir>/<NAME>.toml` when that
//! file exists (`GB-ENG.toml` adds royal occasions and moved bank holidays),
//! or to a calendar the file defines, on top of its `base` if it names one.
//! The file format is documented in `handoff_workflows::calendar`, which owns
//! the parsing so that workflow tests read the same files the same way.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use handoff_workflows::calendar::{BUILTIN_CALENDARS, CalendarFile, Holidays};

/// Why a calendar could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// Neither built in nor a file in the directory.
    #[error(
        "unknown calendar `{name}`: not built in ({}) and no {name}.toml in {}",
        BUILTIN_CALENDARS.join(", "),
        dir.display()
    )]
    Unknown {
        /// The name asked for.
        name: String,
        /// The directory searched.
        dir: PathBuf,
    },
    /// The directory exists but could not be listed.
    #[error("cannot list calendar directory {}", dir.display())]
    ListDirectory {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A calendar file could not be read.
    #[error("cannot read calendar file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A calendar file is not valid TOML or not a calendar.
    #[error("{}: {message}", Location { path, line: *line })]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A file's `base` names no calendar.
    #[error("{}: base calendar `{base}` is unknown", path.display())]
    UnknownBase {
        /// The file that names the base.
        path: PathBuf,
        /// The base it names.
        base: String,
    },
    /// A file amending a built-in calendar also names a base.
    #[error("{}: amends the built-in calendar `{name}`, so it cannot set a base", path.display())]
    BaseOnBuiltin {
        /// The file.
        path: PathBuf,
        /// The built-in calendar's name.
        name: String,
    },
    /// Files whose bases lead back to themselves.
    #[error("calendar `{name}` is its own base through {}", chain.join(" -> "))]
    Cycle {
        /// The calendar met twice.
        name: String,
        /// The names followed, in order.
        chain: Vec<String>,
    },
    /// Two files whose names differ only in case.
    #[error("{} and {} define the same calendar", first.display(), second.display())]
    Duplicate {
        /// One file.
        first: PathBuf,
        /// The other.
        second: PathBuf,
    },
}

/// `path:line`, or `path` alone when the line is unknown.
struct Location<'a> {
    path: &'a Path,
    line: Option<usize>,
}

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.path.display()),
            None => write!(f, "{}", self.path.display()),
        }
    }
}

/// The holidays of calendar `name`: a built-in set with `<dir>/<NAME>.toml`
/// merged in when that file exists, or the calendar that file defines.
/// A missing directory holds no files.
pub fn load_holidays(dir: &Path, name: &str) -> Result<Holidays, CalendarError> {
    resolve(dir, name.trim(), &mut Vec::new())
}

/// Every problem of every calendar file in `dir`: unreadable or malformed
/// files, unknown bases, cycles and names defined twice. Empty when all is
/// well or when the directory does not exist.
pub fn check_dir(dir: &Path) -> Vec<CalendarError> {
    let files = match calendar_files(dir) {
        Ok(files) => files,
        Err(error) => return vec![error],
    };

    let mut problems = Vec::new();
    for (index, (name, path)) in files.iter().enumerate() {
        if let Some((_, first)) = files[..index]
            .iter()
            .find(|(other, _)| other.eq_ignore_ascii_case(name))
        {
            problems.push(CalendarError::Duplicate {
                first: first.clone(),
                second: path.clone(),
            });
            continue;
        }
        if let Err(error) = read_file(path) {
            problems.push(error);
            continue;
        }
        match load_holidays(dir, name) {
            // Files read on the way to a base are checked on their own turn.
            Err(
                CalendarError::Malformed { .. }
                | CalendarError::Read { .. }
                | CalendarError::Duplicate { .. },
            )
            | Ok(_) => {}
            Err(error) => problems.push(error),
        }
    }
    problems
}

/// Resolves `name`, following bases; `chain` holds the names on the way.
fn resolve(dir: &Path, name: &str, chain: &mut Vec<String>) -> Result<Holidays, CalendarError> {
    if chain.iter().any(|seen| seen.eq_ignore_ascii_case(name)) {
        chain.push(name.to_owned());
        return Err(CalendarError::Cycle {
            name: name.to_owned(),
            chain: chain.clone(),
        });
    }
    chain.push(name.to_owned());

    let file = match find_file(dir, name)? {
        Some(path) => Some((read_file(&path)?, path)),
        None => None,
    };
    match (Holidays::builtin(name), file) {
        (Some(builtin), None) => Ok(builtin),
        (Some(mut builtin), Some((file, path))) => {
            if file.base.is_some() {
                return Err(CalendarError::BaseOnBuiltin {
                    path,
                    name: name.to_owned(),
                });
            }
            builtin.merge(file.holidays());
            Ok(builtin)
        }
        (None, Some((file, path))) => {
            let mut holidays = match &file.base {
                Some(base) => resolve(dir, base, chain).map_err(|error| match error {
                    CalendarError::Unknown { .. } => CalendarError::UnknownBase {
                        path,
                        base: base.clone(),
                    },
                    other => other,
                })?,
                None => Holidays::default(),
            };
            holidays.merge(file.holidays());
            Ok(holidays)
        }
        (None, None) => Err(CalendarError::Unknown {
            name: name.to_owned(),
            dir: dir.to_owned(),
        }),
    }
}

/// The file of calendar `name`, matched case-insensitively.
fn find_file(dir: &Path, name: &str) -> Result<Option<PathBuf>, CalendarError> {
    let matches: Vec<PathBuf> = calendar_files(dir)?
        .into_iter()
        .filter(|(stem, _)| stem.eq_ignore_ascii_case(name))
        .map(|(_, path)| path)
        .collect();
    match matches.as_slice() {
        [] => Ok(None),
        [only] => Ok(Some(only.clone())),
        [first, second, ..] => Err(CalendarError::Duplicate {
            first: first.clone(),
            second: second.clone(),
        }),
    }
}

/// `(name, path)` of every `*.toml` file in `dir`, sorted by path.
fn calendar_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, CalendarError> {
    let list_error = |source| CalendarError::ListDirectory {
        dir: dir.to_owned(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(list_error(error)),
    };

    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(list_error)?.path();
        let is_toml = path
            .extension()
            .is_some_and(|extension| extension == "toml");
        let stem = path.file_stem().and_then(|stem| stem.to_str());
        if let (true, Some(stem)) = (is_toml, stem) {
            files.push((stem.to_owned(), path.clone()));
        }
    }
    files.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(files)
}

fn read_file(path: &Path) -> Result<CalendarFile, CalendarError> {
    let text = std::fs::read_to_string(path).map_err(|source| CalendarError::Read {
        path: path.to_owned(),
        source,
    })?;
    CalendarFile::from_toml_str(&text).map_err(|error| CalendarError::Malformed {
        path: path.to_owned(),
        line: error.line,
        message: error.message,
    })
}

#[cfg(test)]
mod tests;
