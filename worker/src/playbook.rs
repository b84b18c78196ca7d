//! `handoff playbook check` and `handoff playbook show`.

use std::path::Path;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use handoff_activities::calendars;
use handoff_activities::playbooks::{PlaybookSet, SegmentPlaybook};
use handoff_workflows::bundle::ValidBundle;
use handoff_workflows::engine::sla::{Sla, due_instant};
use handoff_workflows::engine::{Event, Handoff};
use handoff_workflows::playbook::{Gate, Plan, SEGMENTS};

use crate::config::Settings;
use crate::exit::Exit;
use crate::terminal::print_table;

/// The sample deal `show` plans.
pub(crate) struct Sample {
    pub(crate) segment: String,
    pub(crate) closed_won_at: String,
    pub(crate) timezone: String,
    pub(crate) calendar: String,
}

/// Validates `dir`: prints every problem as `file:line: message` and fails
/// with the configuration exit code when there is one.
pub(crate) fn check(dir: &Path, directory_file: Option<&Path>) -> anyhow::Result<()> {
    if !dir.is_dir() {
        return Err(Exit::config(format!(
            "{}: no such directory",
            dir.display()
        )));
    }
    match PlaybookSet::load_with(dir, directory_file) {
        Ok(set) => {
            let builtin = set.builtin_segments();
            let files: Vec<String> = SEGMENTS
                .iter()
                .filter(|s| !builtin.contains(s))
                .map(|s| format!("{s}.toml"))
                .collect();
            println!("ok: {}", files.join(", "));
            if !builtin.is_empty() {
                println!("built in (no file): {}", builtin.join(", "));
            }
            match &set.directory {
                Some(directory) => println!(
                    "owner directory: {} people, executive {}, fallback owner {}",
                    directory.people.len(),
                    directory.executive,
                    directory.fallback_owner
                ),
                None => println!("owner directory: none"),
            }
            Ok(())
        }
        Err(error) => {
            for problem in &error.problems {
                println!("{problem}");
            }
            Err(Exit::config(error.to_string()))
        }
    }
}

/// Prints the plan `segment`'s playbook gives a sample deal whose gates pass
/// at closed won: every gate, milestone and task with its due instant.
pub(crate) fn show(settings: &Settings, dir: Option<&Path>, sample: &Sample) -> anyhow::Result<()> {
    if !SEGMENTS.contains(&sample.segment.as_str()) {
        return Err(Exit::config(format!(
            "unknown segment {:?}; segments are {}",
            sample.segment,
            SEGMENTS.join(", ")
        )));
    }
    if let Some(given) = dir
        && !given.is_dir()
    {
        return Err(Exit::config(format!(
            "--dir: {} is not a directory",
            given.display()
        )));
    }
    let dir = dir.unwrap_or(&settings.playbook_dir);
    let set = PlaybookSet::load_with(dir, settings.directory_file.as_deref()).map_err(|error| {
        let problems: Vec<String> = error.problems.iter().map(ToString::to_string).collect();
        Exit::config(format!("{error}:\n{}", problems.join("\n")))
    })?;
    let playbook = set.segment(&sample.segment);
    let handoff = simulate(&set, &playbook, dir, sample)?;
    let plan = handoff
        .plan
        .as_ref()
        .expect("the simulated handoff has a plan");
    let timezone: Tz = handoff.calendar().timezone();

    let source = playbook
        .source
        .as_ref()
        .map_or_else(|| "built in".to_owned(), |p| p.display().to_string());
    println!(
        "playbook {} ({source}), {}",
        plan.segment, plan.playbook_hash
    );
    println!(
        "sample deal: closed won {}, team {}, calendar {}; required gates pass at closed won",
        sample.closed_won_at, sample.timezone, sample.calendar
    );
    println!();
    let mut rows = Vec::new();
    for gate in Gate::ALL {
        if let Some(sla) = handoff.gates.get(&gate).and_then(|g| g.sla.as_ref()) {
            rows.push(clock_row("gate", sla, timezone));
        }
    }
    for sla in &handoff.milestones {
        rows.push(clock_row("milestone", sla, timezone));
    }
    print_table(
        &[
            "kind",
            "name",
            "owner",
            "due (local)",
            "due (UTC)",
            "reminders",
        ],
        &rows,
    );
    println!();
    print_tasks(&handoff, timezone);
    Ok(())
}

fn clock_row(kind: &str, sla: &Sla, timezone: Tz) -> Vec<String> {
    let reminders: Vec<String> = sla
        .reminders
        .iter()
        .map(|r| format!("{} {}", r.label, local(r.at, timezone)))
        .collect();
    vec![
        kind.to_owned(),
        sla.name.clone(),
        sla.owner_role.clone(),
        local(sla.due_at, timezone),
        sla.due_at.to_rfc3339(),
        reminders.join(", "),
    ]
}

/// Every task template with its due instant: `closed_won` and `day0` tasks
/// as the engine creates them, the others from the latest instant their
/// trigger can happen (the due instant of its gate or milestone).
fn print_tasks(handoff: &Handoff, timezone: Tz) {
    let plan = handoff
        .plan
        .as_ref()
        .expect("the simulated handoff has a plan");
    let calendar = handoff.calendar();
    let day0 = handoff.day0.unwrap_or_default();
    let due_of = |name: &str| handoff.sla(name).map(|s| s.due_at);
    let mut rows = Vec::new();
    for template in &plan.playbook.tasks {
        let anchor = match template.trigger.split_once(':') {
            None if template.trigger == "closed_won" => handoff.gate_anchor,
            None if template.trigger == "day0" => Some(day0),
            None => due_of("kickoff"),
            Some((_, name)) => due_of(name),
        };
        let Some(anchor) = anchor else { continue };
        let due = due_instant(&calendar, anchor, template.due);
        rows.push(vec![
            template.trigger.clone(),
            template.key.clone(),
            template.owner_role.clone(),
            local(due, timezone),
            template.depends_on.join(","),
            template.meets.clone().unwrap_or_default(),
            template.title.clone(),
        ]);
    }
    print_table(
        &[
            "trigger",
            "key",
            "owner",
            "due (local)",
            "depends on",
            "meets",
            "title",
        ],
        &rows,
    );
    println!();
    println!(
        "closed_won and day0 tasks are due from closed won and day 0; kickoff_held tasks from the \
         kickoff's due date, breach:<name> and milestone_met:<name> tasks from that due date \
         (the latest their trigger can happen)."
    );
}

/// Drives the engine through closed won, the plan and the gates.
fn simulate(
    set: &PlaybookSet,
    playbook: &SegmentPlaybook,
    dir: &Path,
    sample: &Sample,
) -> anyhow::Result<Handoff> {
    if sample.timezone.trim().parse::<Tz>().is_err() {
        return Err(Exit::config(format!(
            "--timezone: {:?} is not an IANA timezone, e.g. America/New_York or Europe/London",
            sample.timezone
        )));
    }
    let bundle = ValidBundle::from_value(serde_json::json!({
        "deal": { "source": "manual", "id": "SAMPLE-1", "segment": sample.segment,
                  "closed_won_at": sample.closed_won_at },
        "account": { "name": "Sample account" },
        "team": { "timezone": sample.timezone, "calendar": sample.calendar },
    }))
    .map_err(|e| {
        Exit::config(format!(
            "--closed-won-at: {:?} is neither an RFC 3339 instant nor a date ({e})",
            sample.closed_won_at
        ))
    })?;
    // A date means local midnight in the team's timezone, as in a bundle.
    let closed_won_at: DateTime<Utc> = bundle.closed_won_at;
    let fallback = set
        .directory
        .as_ref()
        .map_or("revops-queue", |d| d.fallback_owner.as_str());
    let mut plan = Plan::freeze(&bundle, playbook.playbook.clone(), fallback);
    plan.holidays = calendars::load_holidays(&dir.join("calendars"), &sample.calendar)
        .map_err(|e| Exit::config(format!("--calendar: {e}")))?;
    if let Some(directory) = &set.directory {
        plan.directory = directory.facts();
    }
    let required = plan.required_gates.clone();

    let mut handoff = Handoff::new(
        "handoff-manual-SAMPLE-1".to_owned(),
        "manual".to_owned(),
        "SAMPLE-1".to_owned(),
    );
    // The commands (plan request, tasks) are what a worker would carry out;
    // the schedule is in the state.
    handoff.apply(
        Event::ClosedWon {
            bundle: Box::new(bundle),
            as_of: None,
            at: closed_won_at,
        },
        closed_won_at,
    );
    handoff.apply(Event::PlanResolved(Box::new(plan)), closed_won_at);
    for gate in required {
        let passed = Event::GatePassed {
            gate,
            at: closed_won_at,
            by: None,
        };
        handoff.apply(passed, closed_won_at);
    }
    Ok(handoff)
}

/// An instant as local wall time with its zone abbreviation.
fn local(instant: DateTime<Utc>, timezone: Tz) -> String {
    instant
        .with_timezone(&timezone)
        .format("%a %Y-%m-%d %H:%M %Z")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::SettingsArgs;

    fn refusal(sample: Sample, dir: Option<&Path>) -> String {
        let settings = Settings::load(&SettingsArgs::default()).unwrap();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../playbooks");
        let dir = dir.unwrap_or(&shipped);
        format!("{:#}", show(&settings, Some(dir), &sample).unwrap_err())
    }

    fn sample() -> Sample {
        Sample {
            segment: "smb".to_owned(),
            closed_won_at: "2026-03-02T15:00:00Z".to_owned(),
            timezone: "America/New_York".to_owned(),
            calendar: "US".to_owned(),
        }
    }

    #[test]
    fn sample_options_are_checked_and_a_date_is_a_closing_day() {
        let settings = Settings::load(&SettingsArgs::default()).unwrap();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../playbooks");
        let dated = Sample {
            closed_won_at: "2026-03-02".to_owned(),
            ..sample()
        };
        assert!(show(&settings, Some(&shipped), &dated).is_ok());
        let mars = Sample {
            timezone: "Mars/Base".to_owned(),
            ..sample()
        };
        assert!(refusal(mars, None).contains("--timezone"));
        let vague = Sample {
            closed_won_at: "yesterday".to_owned(),
            ..sample()
        };
        assert!(refusal(vague, None).contains("--closed-won-at"));
        let nowhere = Path::new("/nonexistent/playbooks");
        assert!(refusal(sample(), Some(nowhere)).contains("is not a directory"));
    }
}
