//! Segment playbooks, message templates and the owner directory, read from
//! the playbook directory (`playbooks/` by default).
//!
//! ```text
//! playbooks/
//!   smb.toml  mid_market.toml  enterprise.toml   one playbook per segment
//!   directory.toml                               the owner directory
//!   calendars/*.toml                             holiday calendars
//! ```
//!
//! A playbook file states every field of the typed
//! [`Playbook`] plus the message
//! templates of each channel (`schema` owns the format and its checks). A
//! segment without a file gets the built-in playbook; a missing directory
//! means built-in playbooks and no owner directory.
//!
//! Loading never stops at the first problem: [`PlaybookSet::load`] returns
//! every problem of every file, each with its file and line, so that
//! `handoff playbook check` and the worker's start-up list them all.

mod schema;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use handoff_workflows::playbook::{Playbook, SEGMENTS};

use crate::calendars;
use crate::directory::Directory;
use crate::render::Templates;

pub(crate) use schema::one_line;
pub use schema::parse_playbook;

/// Name of the owner directory file inside the playbook directory.
pub const DIRECTORY_FILE: &str = "directory.toml";

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", Location { path, line: *line })]
pub struct FileProblem {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl FileProblem {
    /// A problem at byte `offset` of `text`, read from `path`.
    pub fn at(path: &Path, text: &str, offset: usize, message: impl Into<String>) -> Self {
        Self {
            path: path.to_owned(),
            line: Some(line_of(text, offset)),
            message: message.into(),
        }
    }

    /// A problem with the whole file.
    pub fn file(path: &Path, message: impl Into<String>) -> Self {
        Self {
            path: path.to_owned(),
            line: None,
            message: message.into(),
        }
    }
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

/// The 1-based line holding byte `offset` of `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Every problem of a playbook directory, as one error.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} problem(s) in the playbook directory {}", problems.len(), dir.display())]
pub struct PlaybookDirError {
    /// The directory.
    pub dir: PathBuf,
    /// Each problem, by file then line.
    pub problems: Vec<FileProblem>,
}

/// What a playbook of one segment is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentPlaybook {
    /// The schedule.
    pub playbook: Playbook,
    /// Message templates per channel and kind.
    pub templates: Templates,
    /// The file it came from; `None` for the built-in playbook.
    pub source: Option<PathBuf>,
}

/// The playbooks of every segment and the owner directory, validated.
#[derive(Debug, Clone)]
pub struct PlaybookSet {
    /// The directory read; it may not exist.
    pub dir: PathBuf,
    /// Whether the directory exists.
    pub dir_exists: bool,
    segments: Vec<(String, SegmentPlaybook)>,
    /// The owner directory file given in place of `directory.toml`.
    pub directory_file: Option<PathBuf>,
    /// The owner directory, when its file exists.
    pub directory: Option<Directory>,
}

impl PlaybookSet {
    /// Built-in playbooks and no owner directory.
    pub fn builtin() -> Self {
        Self {
            dir: PathBuf::new(),
            dir_exists: false,
            segments: SEGMENTS
                .iter()
                .map(|segment| ((*segment).to_owned(), builtin_segment(segment)))
                .collect(),
            directory_file: None,
            directory: None,
        }
    }

    /// Reads and validates `dir`: every problem of every file, or the set.
    pub fn load(dir: &Path) -> Result<Self, PlaybookDirError> {
        Self::load_with(dir, None)
    }

    /// Like [`PlaybookSet::load`], with the owner directory read from
    /// `directory_file` instead of `dir/directory.toml` when given.
    pub fn load_with(dir: &Path, directory_file: Option<&Path>) -> Result<Self, PlaybookDirError> {
        let fail = |problems| PlaybookDirError {
            dir: dir.to_owned(),
            problems,
        };
        let directory_path = directory_file
            .map(Path::to_owned)
            .unwrap_or_else(|| dir.join(DIRECTORY_FILE));
        let mut problems = Vec::new();
        match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(fail(vec![FileProblem::file(dir, "not a directory")])),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                let directory = read_directory(&directory_path, &mut problems);
                if directory_file.is_some() && directory.is_none() && problems.is_empty() {
                    problems.push(FileProblem::file(&directory_path, "no such file"));
                }
                if !problems.is_empty() {
                    return Err(fail(problems));
                }
                return Ok(Self {
                    dir: dir.to_owned(),
                    directory_file: directory_file.map(Path::to_owned),
                    directory,
                    ..Self::builtin()
                });
            }
            Err(error) => return Err(fail(vec![FileProblem::file(dir, error.to_string())])),
        }

        let directory = read_directory(&directory_path, &mut problems);
        if directory_file.is_some() && directory.is_none() && problems.is_empty() {
            problems.push(FileProblem::file(&directory_path, "no such file"));
        }
        let mut segments = Vec::new();
        for segment in SEGMENTS {
            let path = dir.join(format!("{segment}.toml"));
            match read_text(&path) {
                Ok(None) => segments.push((segment.to_owned(), builtin_segment(segment))),
                Ok(Some(text)) => match parse_playbook(&path, &text, segment) {
                    Ok((playbook, templates)) => segments.push((
                        segment.to_owned(),
                        SegmentPlaybook {
                            playbook,
                            templates,
                            source: Some(path),
                        },
                    )),
                    Err(found) => problems.extend(found),
                },
                Err(problem) => problems.push(problem),
            }
        }
        problems.extend(unexpected_files(dir));
        for error in calendars::check_dir(&dir.join("calendars")) {
            problems.push(calendar_problem(error));
        }
        if problems.is_empty() {
            Ok(Self {
                dir: dir.to_owned(),
                dir_exists: true,
                segments,
                directory_file: directory_file.map(Path::to_owned),
                directory,
            })
        } else {
            Err(fail(problems))
        }
    }

    /// The playbook of a segment (an unknown segment gets `mid_market`'s).
    pub fn segment(&self, segment: &str) -> SegmentPlaybook {
        self.segments
            .iter()
            .find(|(name, _)| name == segment)
            .or_else(|| self.segments.iter().find(|(name, _)| name == "mid_market"))
            .map(|(_, playbook)| playbook.clone())
            .unwrap_or_else(|| builtin_segment(segment))
    }

    /// Segments whose playbook is built in because their file is missing.
    pub fn builtin_segments(&self) -> Vec<&str> {
        self.segments
            .iter()
            .filter(|(_, playbook)| playbook.source.is_none())
            .map(|(name, _)| name.as_str())
            .collect()
    }
}

fn builtin_segment(segment: &str) -> SegmentPlaybook {
    SegmentPlaybook {
        playbook: Playbook::builtin(segment),
        templates: Templates::builtin(),
        source: None,
    }
}

/// The text of a file, `None` when it does not exist.
fn read_text(path: &Path) -> Result<Option<String>, FileProblem> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(FileProblem::file(path, format!("cannot read: {error}"))),
    }
}

fn read_directory(path: &Path, problems: &mut Vec<FileProblem>) -> Option<Directory> {
    match read_text(path) {
        Ok(Some(text)) => match Directory::parse(path, &text) {
            Ok(directory) => Some(directory),
            Err(found) => {
                problems.extend(found);
                None
            }
        },
        Ok(None) => None,
        Err(problem) => {
            problems.push(problem);
            None
        }
    }
}

/// `*.toml` files at the top of the directory that are neither a segment
/// nor the directory: most likely a misspelt segment.
fn unexpected_files(dir: &Path) -> Vec<FileProblem> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file() && path.extension().is_some_and(|e| e == "toml"))
        .filter(|path| {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            !SEGMENTS.contains(&stem) && path.file_name() != Some(DIRECTORY_FILE.as_ref())
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|path| {
            FileProblem::file(
                &path,
                format!(
                    "not a playbook: segment files are {}; the owner directory is {DIRECTORY_FILE}",
                    SEGMENTS.map(|s| format!("{s}.toml")).join(", ")
                ),
            )
        })
        .collect()
}

fn calendar_problem(error: calendars::CalendarError) -> FileProblem {
    match error {
        calendars::CalendarError::Malformed {
            path,
            line,
            message,
        } => FileProblem {
            path,
            line,
            message,
        },
        other => {
            let text = other.to_string();
            let path = match &other {
                calendars::CalendarError::Read { path, .. }
                | calendars::CalendarError::UnknownBase { path, .. }
                | calendars::CalendarError::BaseOnBuiltin { path, .. } => path.clone(),
                calendars::CalendarError::Duplicate { second, .. } => second.clone(),
                calendars::CalendarError::ListDirectory { dir, .. }
                | calendars::CalendarError::Unknown { dir, .. } => dir.clone(),
                calendars::CalendarError::Malformed { path, .. } => path.clone(),
                calendars::CalendarError::Cycle { .. } => PathBuf::from("calendars"),
            };
            let prefix = format!("{}: ", path.display());
            let message = text.strip_prefix(&prefix).unwrap_or(&text).to_owned();
            FileProblem::file(&path, message)
        }
    }
}

/// The playbook set in force, shared by the activities.
///
/// `plan_handoff` re-reads the directory for every new handoff, so an edit
/// reaches new handoffs without a restart; a broken edit is refused and the
/// last valid set stays in force.
#[derive(Debug)]
pub struct LivePlaybooks {
    current: RwLock<Arc<PlaybookSet>>,
}

impl LivePlaybooks {
    /// Starts from a validated set.
    pub fn new(set: PlaybookSet) -> Self {
        Self {
            current: RwLock::new(Arc::new(set)),
        }
    }

    /// The set in force.
    pub fn current(&self) -> Arc<PlaybookSet> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the directory; on problems, keeps the set in force and
    /// returns them.
    pub fn refresh(&self) -> Result<Arc<PlaybookSet>, PlaybookDirError> {
        let current = self.current();
        if current.dir.as_os_str().is_empty() {
            return Ok(current);
        }
        let fresh = Arc::new(PlaybookSet::load_with(
            &current.dir,
            current.directory_file.as_deref(),
        )?);
        match self.current.write() {
            Ok(mut guard) => *guard = fresh.clone(),
            Err(poisoned) => *poisoned.into_inner() = fresh.clone(),
        }
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests;
