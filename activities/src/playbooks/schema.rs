//! The text of a playbook file and every check it must pass.
//!
//! The file mirrors the typed playbook field by field; names that the
//! engine matches (gates, milestones, roles, triggers, task keys) are read
//! as text with their position, so that each wrong one is reported with its
//! line, and all of them are reported, not just the first.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use handoff_workflows::bundle::OWNER_ROLES;
use handoff_workflows::playbook::{
    Audience, DueRule, Gate, GatePolicy, LadderLevel, MILESTONES, MetBy, MilestonePolicy, Playbook,
    ReminderOffset, TaskTemplate,
};

use super::FileProblem;
use crate::render::{TemplateTable, Templates, parse_templates};

/// Task key the engine uses for the "complete the handoff bundle" task.
const RESERVED_TASK_KEY: &str = "complete_bundle";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaybookFile {
    segment: Spanned<String>,
    gate_timeout_business_days: u32,
    lost_grace_business_days: u32,
    close_after_business_days: u32,
    send_hour: Spanned<u32>,
    adoption_threshold: Spanned<f64>,
    remediation_business_days: u32,
    #[serde(default)]
    gates: Vec<Spanned<GateFile>>,
    #[serde(default)]
    milestones: Vec<Spanned<MilestoneFile>>,
    #[serde(default)]
    ladder: Vec<Spanned<LadderFile>>,
    #[serde(default)]
    tasks: Vec<Spanned<TaskFile>>,
    #[serde(default)]
    templates: TemplateTable,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GateFile {
    gate: Spanned<String>,
    required: bool,
    sla: DueRule,
    owner_role: Spanned<String>,
    #[serde(default)]
    reminders: Vec<Spanned<ReminderOffset>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MilestoneFile {
    name: Spanned<String>,
    due: DueRule,
    owner_role: Spanned<String>,
    met_by: Spanned<String>,
    #[serde(default)]
    evidence_required: bool,
    #[serde(default)]
    reminders: Vec<Spanned<ReminderOffset>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LadderFile {
    level: Spanned<u8>,
    after_business_days: u32,
    notify: Vec<Spanned<AudienceFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum AudienceFile {
    Named(String),
    Role { role: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskFile {
    trigger: Spanned<String>,
    key: Spanned<String>,
    title: String,
    owner_role: Spanned<String>,
    due: Spanned<DueRule>,
    #[serde(default)]
    depends_on: Vec<Spanned<String>>,
    #[serde(default)]
    meets: Option<Spanned<String>>,
}

/// Collects the problems of one file.
struct Checker<'a> {
    path: &'a Path,
    text: &'a str,
    problems: Vec<FileProblem>,
}

impl Checker<'_> {
    fn at<T>(&mut self, spanned: &Spanned<T>, message: impl Into<String>) {
        self.problems.push(FileProblem::at(
            self.path,
            self.text,
            spanned.span().start,
            message,
        ));
    }

    fn role(&mut self, role: &Spanned<String>) {
        if !OWNER_ROLES.contains(&role.get_ref().as_str()) {
            let message = format!(
                "unknown role `{}`; roles are {}",
                role.get_ref(),
                OWNER_ROLES.join(", ")
            );
            self.at(role, message);
        }
    }

    fn reminders(&mut self, reminders: &[Spanned<ReminderOffset>]) {
        for reminder in reminders {
            if let ReminderOffset::Fraction(fraction) = *reminder.get_ref()
                && !(fraction > 0.0 && fraction < 1.0)
            {
                self.at(
                    reminder,
                    format!("reminder fraction {fraction} is outside 0..1"),
                );
            }
        }
    }
}

/// Parses and checks the text of `path`, the playbook of `segment`.
pub fn parse_playbook(
    path: &Path,
    text: &str,
    segment: &str,
) -> Result<(Playbook, Templates), Vec<FileProblem>> {
    let file: PlaybookFile = toml::from_str(text).map_err(|error| {
        let offset = error.span().map_or(0, |span| span.start);
        vec![FileProblem {
            line: error.span().map(|_| super::line_of(text, offset)),
            ..FileProblem::file(path, one_line(error.message()))
        }]
    })?;
    let mut checker = Checker {
        path,
        text,
        problems: Vec::new(),
    };
    check_numbers(&mut checker, &file, segment);
    let gates = check_gates(&mut checker, &file.gates);
    let milestones = check_milestones(&mut checker, &file.milestones);
    let ladder = check_ladder(&mut checker, &file.ladder);
    let tasks = check_tasks(&mut checker, &file.tasks, &gates, &milestones);
    let templates = parse_templates(&file.templates, &mut |offset, message| {
        checker
            .problems
            .push(FileProblem::at(path, text, offset, message));
    });
    if !checker.problems.is_empty() {
        checker.problems.sort_by_key(|p| p.line);
        return Err(checker.problems);
    }
    let playbook = Playbook {
        segment: file.segment.into_inner(),
        gates,
        milestones,
        ladder,
        gate_timeout_business_days: file.gate_timeout_business_days,
        lost_grace_business_days: file.lost_grace_business_days,
        close_after_business_days: file.close_after_business_days,
        send_hour: file.send_hour.into_inner(),
        adoption_threshold: file.adoption_threshold.into_inner(),
        remediation_business_days: file.remediation_business_days,
        tasks,
    };
    Ok((playbook, templates))
}

fn check_numbers(checker: &mut Checker<'_>, file: &PlaybookFile, segment: &str) {
    if file.segment.get_ref() != segment {
        let message = format!(
            "segment `{}` does not match the file name ({segment})",
            file.segment.get_ref()
        );
        checker.at(&file.segment, message);
    }
    if *file.send_hour.get_ref() > 23 {
        let message = format!(
            "send_hour {} is not an hour (0..23)",
            file.send_hour.get_ref()
        );
        checker.at(&file.send_hour, message);
    }
    let threshold = *file.adoption_threshold.get_ref();
    if !(0.0..=1.0).contains(&threshold) {
        let message = format!("adoption_threshold {threshold} is outside 0..1");
        checker.at(&file.adoption_threshold, message);
    }
}

fn check_gates(checker: &mut Checker<'_>, gates: &[Spanned<GateFile>]) -> Vec<GatePolicy> {
    let mut seen = BTreeSet::new();
    let mut policies = Vec::new();
    for entry in gates {
        let gate = entry.get_ref();
        checker.role(&gate.owner_role);
        checker.reminders(&gate.reminders);
        let Some(kind) = Gate::from_name(gate.gate.get_ref()) else {
            let message = format!(
                "unknown gate `{}`; gates are {}",
                gate.gate.get_ref(),
                Gate::ALL.map(Gate::name).join(", ")
            );
            checker.at(&gate.gate, message);
            continue;
        };
        if !seen.insert(kind) {
            checker.at(
                &gate.gate,
                format!("gate `{}` is listed twice", kind.name()),
            );
        }
        if kind == Gate::Signature && !gate.required {
            checker.at(entry, "the signature gate is always required");
        }
        policies.push(GatePolicy {
            gate: kind,
            required: gate.required,
            sla: gate.sla,
            owner_role: gate.owner_role.get_ref().clone(),
            reminders: gate.reminders.iter().map(|r| *r.get_ref()).collect(),
        });
    }
    policies
}

fn check_milestones(
    checker: &mut Checker<'_>,
    milestones: &[Spanned<MilestoneFile>],
) -> Vec<MilestonePolicy> {
    let mut seen = BTreeSet::new();
    let mut adoption = 0;
    let mut policies = Vec::new();
    for entry in milestones {
        let milestone = entry.get_ref();
        let name = milestone.name.get_ref();
        checker.role(&milestone.owner_role);
        checker.reminders(&milestone.reminders);
        if !MILESTONES.contains(&name.as_str()) {
            let message = format!(
                "unknown milestone `{name}`; milestones are {}",
                MILESTONES.join(", ")
            );
            checker.at(&milestone.name, message);
        } else if !seen.insert(name.clone()) {
            checker.at(
                &milestone.name,
                format!("milestone `{name}` is listed twice"),
            );
        }
        let met_by = match milestone.met_by.get_ref().as_str() {
            "kickoff_held" => MetBy::KickoffHeld,
            "milestone_reached" => MetBy::MilestoneReached {
                evidence_required: milestone.evidence_required,
            },
            "adoption_reported" => {
                adoption += 1;
                MetBy::AdoptionReported
            }
            other => {
                let message = format!(
                    "unknown met_by `{other}`; use kickoff_held, milestone_reached or adoption_reported"
                );
                checker.at(&milestone.met_by, message);
                continue;
            }
        };
        if (met_by == MetBy::KickoffHeld) != (name == "kickoff") {
            checker.at(
                &milestone.met_by,
                "only the kickoff milestone is met by kickoff_held, and it always is",
            );
        }
        if adoption > 1 && met_by == MetBy::AdoptionReported {
            checker.at(
                &milestone.met_by,
                "only one milestone can be met by adoption_reported",
            );
        }
        policies.push(MilestonePolicy {
            name: name.clone(),
            due: milestone.due,
            owner_role: milestone.owner_role.get_ref().clone(),
            met_by,
            reminders: milestone.reminders.iter().map(|r| *r.get_ref()).collect(),
        });
    }
    policies
}

fn check_ladder(checker: &mut Checker<'_>, ladder: &[Spanned<LadderFile>]) -> Vec<LadderLevel> {
    let mut levels = Vec::new();
    for (index, entry) in ladder.iter().enumerate() {
        let level = entry.get_ref();
        let expected = index + 1;
        if usize::from(*level.level.get_ref()) != expected || expected > 3 {
            let message = format!(
                "ladder level {} out of order: levels are 1, 2, 3, each once, in order",
                level.level.get_ref()
            );
            checker.at(&level.level, message);
        }
        if level.notify.is_empty() {
            checker.at(entry, "a ladder level must notify someone");
        }
        let mut audience = Vec::new();
        for who in &level.notify {
            match who.get_ref() {
                AudienceFile::Named(name) => match name.as_str() {
                    "owner" => audience.push(Audience::Owner),
                    "handoff_owner" => audience.push(Audience::HandoffOwner),
                    "managers" => audience.push(Audience::Managers),
                    "executive" => audience.push(Audience::Executive),
                    other => checker.at(
                        who,
                        format!(
                            "unknown audience `{other}`; use owner, handoff_owner, managers, executive or {{ role = \"...\" }}"
                        ),
                    ),
                },
                AudienceFile::Role { role } => {
                    if OWNER_ROLES.contains(&role.as_str()) {
                        audience.push(Audience::Role(role.clone()));
                    } else {
                        let message = format!(
                            "unknown role `{role}`; roles are {}",
                            OWNER_ROLES.join(", ")
                        );
                        checker.at(who, message);
                    }
                }
            }
        }
        levels.push(LadderLevel {
            level: *level.level.get_ref(),
            after_business_days: level.after_business_days,
            notify: audience,
        });
    }
    levels
}

fn check_tasks(
    checker: &mut Checker<'_>,
    tasks: &[Spanned<TaskFile>],
    gates: &[GatePolicy],
    milestones: &[MilestonePolicy],
) -> Vec<TaskTemplate> {
    let milestone_names: BTreeSet<&str> = milestones.iter().map(|m| m.name.as_str()).collect();
    let gate_names: BTreeSet<&str> = gates.iter().map(|g| g.gate.name()).collect();
    let mut keys: BTreeMap<&str, &TaskFile> = BTreeMap::new();
    for entry in tasks {
        let task = entry.get_ref();
        let key = task.key.get_ref().as_str();
        checker.role(&task.owner_role);
        check_trigger(checker, &task.trigger, &gate_names, &milestone_names);
        if key == RESERVED_TASK_KEY {
            checker.at(
                &task.key,
                format!("task key `{key}` is reserved for the bundle task"),
            );
        } else if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            checker.at(
                &task.key,
                format!("task key `{key}` must be 1 or more of A-Z a-z 0-9 . _ -"),
            );
        } else if keys.insert(key, task).is_some() {
            checker.at(&task.key, format!("task key `{key}` is used twice"));
        }
        if let Some(meets) = &task.meets
            && !milestone_names.contains(meets.get_ref().as_str())
        {
            let message = format!("task meets unknown milestone `{}`", meets.get_ref());
            checker.at(meets, message);
        }
    }
    for entry in tasks {
        check_dependencies(checker, entry.get_ref(), &keys);
    }
    check_cycles(checker, tasks, &keys);
    tasks
        .iter()
        .map(|entry| {
            let task = entry.get_ref();
            TaskTemplate {
                trigger: task.trigger.get_ref().clone(),
                key: task.key.get_ref().clone(),
                title: task.title.clone(),
                owner_role: task.owner_role.get_ref().clone(),
                due: *task.due.get_ref(),
                depends_on: task
                    .depends_on
                    .iter()
                    .map(|d| d.get_ref().clone())
                    .collect(),
                meets: task.meets.as_ref().map(|m| m.get_ref().clone()),
            }
        })
        .collect()
}

fn check_trigger(
    checker: &mut Checker<'_>,
    trigger: &Spanned<String>,
    gates: &BTreeSet<&str>,
    milestones: &BTreeSet<&str>,
) {
    let text = trigger.get_ref().as_str();
    let known = match text.split_once(':') {
        None => matches!(text, "closed_won" | "day0" | "kickoff_held"),
        Some(("breach", name)) => gates.contains(name) || milestones.contains(name),
        Some(("milestone_met", name)) => milestones.contains(name),
        Some(_) => false,
    };
    if !known {
        let message = format!(
            "unknown trigger `{text}`; triggers are closed_won, day0, kickoff_held, \
             breach:<gate or milestone>, milestone_met:<milestone> of this playbook"
        );
        checker.at(trigger, message);
    }
}

fn check_dependencies(
    checker: &mut Checker<'_>,
    task: &TaskFile,
    keys: &BTreeMap<&str, &TaskFile>,
) {
    for dependency in &task.depends_on {
        let name = dependency.get_ref().as_str();
        let Some(predecessor) = keys.get(name) else {
            checker.at(dependency, format!("depends on unknown task `{name}`"));
            continue;
        };
        // Tasks of one trigger share their anchor, so their due rules compare.
        if predecessor.trigger.get_ref() == task.trigger.get_ref()
            && can_fall_due_before(*task.due.get_ref(), *predecessor.due.get_ref())
        {
            let message = format!(
                "task `{}` ({}) can fall due before `{name}` ({}), which it depends on",
                task.key.get_ref(),
                describe(*task.due.get_ref()),
                describe(*predecessor.due.get_ref())
            );
            checker.at(&task.due, message);
        }
    }
}

/// Whether a task due at `rule` can fall due strictly before one due at
/// `predecessor`, both counted from the same anchor: tried from every
/// weekday on a calendar without holidays.
pub(super) fn can_fall_due_before(rule: DueRule, predecessor: DueRule) -> bool {
    (0..7).any(|weekday| calendar_days(rule, weekday) < calendar_days(predecessor, weekday))
}

/// Calendar days from an anchor on `weekday` (0 = Monday) to a rule's due
/// date, weekends skipped for business days.
fn calendar_days(rule: DueRule, weekday: u32) -> u32 {
    match rule {
        DueRule::CalendarDays(days) => days,
        DueRule::BusinessDays(days) => {
            let (mut left, mut elapsed, mut day) = (days, 0, weekday);
            while left > 0 {
                elapsed += 1;
                day = (day + 1) % 7;
                if day < 5 {
                    left -= 1;
                }
            }
            elapsed
        }
    }
}

fn describe(rule: DueRule) -> String {
    match rule {
        DueRule::BusinessDays(days) => format!("{days} business days"),
        DueRule::CalendarDays(days) => format!("day {days}"),
    }
}

/// Dependency cycles, each reported once at the task that closes it.
fn check_cycles(
    checker: &mut Checker<'_>,
    tasks: &[Spanned<TaskFile>],
    keys: &BTreeMap<&str, &TaskFile>,
) {
    let mut reported: BTreeSet<BTreeSet<String>> = BTreeSet::new();
    for entry in tasks {
        let start = entry.get_ref().key.get_ref().as_str();
        let mut path = vec![start.to_owned()];
        if let Some(cycle) = find_cycle(start, start, keys, &mut path, &mut BTreeSet::new()) {
            let members: BTreeSet<String> = cycle.iter().cloned().collect();
            if reported.insert(members) {
                checker.at(
                    &entry.get_ref().key,
                    format!("dependency cycle: {}", cycle.join(" -> ")),
                );
            }
        }
    }
}

fn find_cycle(
    start: &str,
    at: &str,
    keys: &BTreeMap<&str, &TaskFile>,
    path: &mut Vec<String>,
    visited: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    let task = keys.get(at)?;
    for dependency in &task.depends_on {
        let next = dependency.get_ref().as_str();
        if next == start {
            let mut cycle = path.clone();
            cycle.push(start.to_owned());
            return Some(cycle);
        }
        if visited.insert(next.to_owned()) {
            path.push(next.to_owned());
            if let Some(cycle) = find_cycle(start, next, keys, path, visited) {
                return Some(cycle);
            }
            path.pop();
        }
    }
    None
}

/// The parser's message, whose details may sit on lines of their own, as one
/// line.
pub(crate) fn one_line(message: &str) -> String {
    let parts: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect();
    parts.join(": ")
}
