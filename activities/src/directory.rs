//! The owner directory, `playbooks/directory.toml`: who a handle is, and how
//! to reach them, their manager and the executive.
//!
//! ```toml
//! executive = "vp-customer"        # level-3 escalations
//! fallback_owner = "revops-queue"  # owns every role a bundle leaves empty
//!
//! [people.ae-01]
//! name = "Avery Example"
//! email = "avery@example.com"
//! chat_id = "U01AE"                # Slack member id, for mentions
//! timezone = "America/New_York"    # reminders go out at the send hour here
//! manager = "sales-director"       # level-2 escalations
//! ```
//!
//! Checked when read: every handle well formed, every manager, the executive
//! and the fallback owner in the directory, every timezone an IANA name, and
//! no chain of managers that leads back to where it started.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono_tz::Tz;
use serde::Deserialize;
use toml::Spanned;

use handoff_workflows::activity::{Reach, Recipient};
use handoff_workflows::engine::validate_handle;
use handoff_workflows::playbook::DirectoryFacts;

use crate::playbooks::{FileProblem, line_of};

/// One person in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Their handle.
    pub handle: String,
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Chat (Slack member) id, when known.
    pub chat_id: Option<String>,
    /// IANA timezone, when known.
    pub timezone: Option<String>,
    /// Handle of their manager, when they have one.
    pub manager: Option<String>,
}

/// The owner directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    /// Handle → person.
    pub people: BTreeMap<String, Person>,
    /// Handle of the executive level-3 escalations reach.
    pub executive: String,
    /// Handle that owns every role a bundle leaves empty.
    pub fallback_owner: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectoryFile {
    executive: Spanned<String>,
    fallback_owner: Spanned<String>,
    #[serde(default)]
    people: BTreeMap<Spanned<String>, Spanned<PersonFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonFile {
    name: String,
    email: Spanned<String>,
    #[serde(default)]
    chat_id: Option<Spanned<String>>,
    #[serde(default)]
    timezone: Option<Spanned<String>>,
    #[serde(default)]
    manager: Option<Spanned<String>>,
}

/// Someone a notification reaches, resolved through the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressee {
    /// The handle reached.
    pub handle: String,
    /// Display name.
    pub name: String,
    /// E-mail address, when known.
    pub email: Option<String>,
    /// Chat id, when known.
    pub chat_id: Option<String>,
}

impl Directory {
    /// Parses and checks the text of `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, Vec<FileProblem>> {
        let file: DirectoryFile = toml::from_str(text).map_err(|error| {
            let line = error.span().map(|span| line_of(text, span.start));
            vec![FileProblem {
                line,
                ..FileProblem::file(path, crate::playbooks::one_line(error.message()))
            }]
        })?;
        let mut problems = Vec::new();
        let mut at = |offset: usize, message: String| {
            problems.push(FileProblem::at(path, text, offset, message));
        };
        let handles: BTreeSet<&str> = file.people.keys().map(|h| h.get_ref().as_str()).collect();
        for (handle, person) in &file.people {
            check_person(handle, person.get_ref(), &handles, &mut at);
        }
        for (field, handle) in [
            ("executive", &file.executive),
            ("fallback_owner", &file.fallback_owner),
        ] {
            if !handles.contains(handle.get_ref().as_str()) {
                at(
                    handle.span().start,
                    format!("{field} `{}` is not in [people]", handle.get_ref()),
                );
            }
        }
        check_manager_cycles(&file, &mut at);
        if !problems.is_empty() {
            problems.sort_by_key(|p| p.line);
            return Err(problems);
        }
        Ok(Self::from_file(file))
    }

    fn from_file(file: DirectoryFile) -> Self {
        let people = file
            .people
            .into_iter()
            .map(|(handle, person)| {
                let handle = handle.into_inner();
                let person = person.into_inner();
                let person = Person {
                    handle: handle.clone(),
                    name: person.name,
                    email: person.email.into_inner(),
                    chat_id: person.chat_id.map(Spanned::into_inner),
                    timezone: person.timezone.map(Spanned::into_inner),
                    manager: person.manager.map(Spanned::into_inner),
                };
                (handle, person)
            })
            .collect();
        Self {
            people,
            executive: file.executive.into_inner(),
            fallback_owner: file.fallback_owner.into_inner(),
        }
    }

    /// What the workflow needs to know, for the frozen plan.
    pub fn facts(&self) -> DirectoryFacts {
        DirectoryFacts {
            handles: self.people.keys().cloned().collect(),
            timezones: self
                .people
                .values()
                .filter_map(|p| p.timezone.clone().map(|tz| (p.handle.clone(), tz)))
                .collect(),
        }
    }

    /// Whether `handle` is in the directory.
    pub fn knows(&self, handle: &str) -> bool {
        self.people.contains_key(handle)
    }

    /// The person a recipient means: the handle, its manager (the executive
    /// for a handle without one) or the executive. A handle the directory
    /// does not know reaches the fallback owner.
    pub fn resolve(&self, recipient: &Recipient) -> Option<Addressee> {
        let known = |handle: &str| {
            self.people
                .get(handle)
                .or_else(|| self.people.get(&self.fallback_owner))
        };
        let person = match recipient.reach {
            Reach::Direct => known(&recipient.handle),
            Reach::ManagerOf => {
                let manager = known(&recipient.handle)
                    .and_then(|p| p.manager.as_deref())
                    .unwrap_or(&self.executive);
                self.people.get(manager)
            }
            Reach::Executive => self.people.get(&self.executive),
        }?;
        Some(Addressee {
            handle: person.handle.clone(),
            name: person.name.clone(),
            email: Some(person.email.clone()),
            chat_id: person.chat_id.clone(),
        })
    }
}

fn check_person(
    handle: &Spanned<String>,
    person: &PersonFile,
    handles: &BTreeSet<&str>,
    at: &mut impl FnMut(usize, String),
) {
    if let Err(message) = validate_handle(handle.get_ref()) {
        at(handle.span().start, message);
    }
    let email = person.email.get_ref();
    let valid_email = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !valid_email {
        at(
            person.email.span().start,
            format!("email `{email}` is not an e-mail address"),
        );
    }
    if let Some(timezone) = &person.timezone
        && timezone.get_ref().parse::<Tz>().is_err()
    {
        at(
            timezone.span().start,
            format!("timezone `{}` is not an IANA timezone", timezone.get_ref()),
        );
    }
    if let Some(chat_id) = &person.chat_id
        && !chat_id
            .get_ref()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        at(
            chat_id.span().start,
            format!("chat_id `{}` must be letters and digits", chat_id.get_ref()),
        );
    }
    if let Some(manager) = &person.manager
        && !handles.contains(manager.get_ref().as_str())
    {
        at(
            manager.span().start,
            format!("manager `{}` is not in [people]", manager.get_ref()),
        );
    }
}

/// Chains of managers that lead back to where they started, each reported
/// once, at the first person of the cycle in handle order.
fn check_manager_cycles(file: &DirectoryFile, at: &mut impl FnMut(usize, String)) {
    let managers: BTreeMap<&str, (&str, usize)> = file
        .people
        .iter()
        .filter_map(|(handle, person)| {
            let manager = person.get_ref().manager.as_ref()?;
            Some((
                handle.get_ref().as_str(),
                (manager.get_ref().as_str(), manager.span().start),
            ))
        })
        .collect();
    let mut reported: BTreeSet<&str> = BTreeSet::new();
    for start in managers.keys() {
        let mut chain = vec![*start];
        let mut current = *start;
        while let Some((manager, offset)) = managers.get(current) {
            if *manager == *start {
                if chain.iter().all(|h| !reported.contains(h)) {
                    reported.extend(chain.iter().copied());
                    chain.push(start);
                    at(*offset, format!("manager cycle: {}", chain.join(" -> ")));
                }
                break;
            }
            if chain.contains(manager) {
                break;
            }
            chain.push(manager);
            current = manager;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"executive = "vp"
fallback_owner = "queue"

[people.vp]
name = "V. P."
email = "vp@example.com"

[people.queue]
name = "RevOps queue"
email = "revops@example.com"

[people.om-1]
name = "O. M."
email = "om@example.com"
chat_id = "U01OM"
timezone = "Europe/Berlin"
manager = "vp"
"#;

    #[test]
    fn managers_and_the_executive_resolve_through_the_directory() {
        let directory = Directory::parse(Path::new("directory.toml"), GOOD).unwrap();
        let recipient = |handle: &str, reach| Recipient {
            role: "onboarding_manager".into(),
            handle: handle.into(),
            reach,
        };
        let manager = directory
            .resolve(&recipient("om-1", Reach::ManagerOf))
            .unwrap();
        assert_eq!(manager.handle, "vp");
        let executive = directory.resolve(&recipient("", Reach::Executive)).unwrap();
        assert_eq!(executive.email.as_deref(), Some("vp@example.com"));
        let unknown = directory
            .resolve(&recipient("om-9", Reach::Direct))
            .unwrap();
        assert_eq!(unknown.handle, "queue");
        assert_eq!(
            directory.facts().timezones["om-1"],
            "Europe/Berlin".to_owned()
        );
    }

    #[test]
    fn every_directory_problem_is_reported_with_its_line() {
        let text = r#"executive = "nobody"
fallback_owner = "a"

[people.a]
name = "A"
email = "not-an-address"
timezone = "Mars/Olympus"
manager = "b"

[people.b]
name = "B"
email = "b@example.com"
manager = "a"

[people.c]
name = "C"
email = "c@example.com"
manager = "ghost"
"#;
        let problems = Directory::parse(Path::new("d.toml"), text).unwrap_err();
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let expect = [
            "d.toml:1: executive `nobody` is not in [people]",
            "d.toml:6: email `not-an-address` is not an e-mail address",
            "d.toml:7: timezone `Mars/Olympus` is not an IANA timezone",
            "manager cycle: a -> b -> a",
            "d.toml:18: manager `ghost` is not in [people]",
        ];
        for expected in expect {
            assert!(
                lines.iter().any(|l| l.contains(expected)),
                "{expected}: {lines:#?}"
            );
        }
    }
}
