use std::path::PathBuf;

use handoff_workflows::playbook::DueRule;

use super::*;

fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../playbooks")
}

#[test]
fn shipped_playbooks_are_the_builtin_defaults() {
    let set = PlaybookSet::load(&shipped()).unwrap();
    for segment in SEGMENTS {
        let loaded = set.segment(segment);
        assert!(loaded.source.is_some(), "{segment} has a file");
        assert_eq!(loaded.playbook, Playbook::builtin(segment), "{segment}");
        assert_eq!(loaded.templates, Templates::builtin(), "{segment}");
        assert_eq!(
            loaded.playbook.content_hash(),
            Playbook::builtin(segment).content_hash()
        );
    }
    let directory = set.directory.expect("the shipped directory");
    assert!(directory.knows(&directory.executive));
}

#[test]
fn a_missing_directory_means_builtin_playbooks_and_no_owner_directory() {
    let dir = tempfile::tempdir().unwrap();
    let set = PlaybookSet::load(&dir.path().join("absent")).unwrap();
    assert!(!set.dir_exists);
    assert!(set.directory.is_none());
    assert_eq!(set.segment("smb").playbook, Playbook::builtin("smb"));
}

/// A copy of the shipped directory with `segment`'s file edited by `edit`.
fn broken(segment: &str, edit: impl Fn(String) -> String) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for name in SEGMENTS
        .iter()
        .map(|s| format!("{s}.toml"))
        .chain([DIRECTORY_FILE.into()])
    {
        let text = std::fs::read_to_string(shipped().join(&name)).unwrap();
        std::fs::write(dir.path().join(&name), text).unwrap();
    }
    let path = dir.path().join(format!("{segment}.toml"));
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, edit(text)).unwrap();
    (dir, path)
}

fn problems_of(dir: &Path) -> Vec<String> {
    PlaybookSet::load(dir)
        .unwrap_err()
        .problems
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_with(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

fn assert_reported(problems: &[String], expected: &str) {
    assert!(
        problems.iter().any(|p| p.contains(expected)),
        "expected {expected:?} in {problems:#?}"
    );
}

#[test]
fn a_syntax_error_names_file_and_line() {
    let (dir, path) = broken("smb", |t| t.replace("send_hour = 9", "send_hour = = 9"));
    let problems = problems_of(dir.path());
    let text = std::fs::read_to_string(&path).unwrap();
    let line = line_with(&text, "send_hour = = 9");
    assert_reported(&problems, &format!("{}:{line}: ", path.display()));
}

#[test]
fn every_semantic_error_of_a_file_is_reported_with_its_line() {
    let (dir, path) = broken("mid_market", |t| {
        t.replace("send_hour = 9", "send_hour = 24")
            .replace("adoption_threshold = 0.6", "adoption_threshold = 1.5")
            .replace(
                "owner_role = \"sales_engineer\"\nreminders",
                "owner_role = \"sales_wizard\"\nreminders",
            )
            .replacen("{ fraction = 0.5 }", "{ fraction = 1.5 }", 1)
            .replace("name = \"data_mapping\"", "name = \"data_mopping\"")
            .replace("trigger = \"kickoff_held\"", "trigger = \"kickof_held\"")
            .replace("depends_on = [\"kickoff\"]\n\n[[tasks]]\ntrigger = \"day0\"\nkey = \"user_enablement\"",
                     "depends_on = [\"kickof\"]\n\n[[tasks]]\ntrigger = \"day0\"\nkey = \"user_enablement\"")
            .replace("meets = \"kickoff\"", "meets = \"kick_off\"")
            .replace("level = 3", "level = 4")
            .replace("notify = [\"managers\"]", "notify = [\"bosses\"]")
    });
    let text = std::fs::read_to_string(&path).unwrap();
    let at = |needle: &str| format!("{}:{}: ", path.display(), line_with(&text, needle));
    let problems = problems_of(dir.path());
    for (needle, message) in [
        ("send_hour = 24", "send_hour 24 is not an hour"),
        (
            "adoption_threshold = 1.5",
            "adoption_threshold 1.5 is outside 0..1",
        ),
        ("sales_wizard", "unknown role `sales_wizard`"),
        ("fraction = 1.5", "reminder fraction 1.5 is outside 0..1"),
        ("data_mopping", "unknown milestone `data_mopping`"),
        ("kickof_held", "unknown trigger `kickof_held`"),
        ("\"kickof\"", "depends on unknown task `kickof`"),
        ("kick_off", "task meets unknown milestone `kick_off`"),
        ("level = 4", "ladder level 4 out of order"),
        ("bosses", "unknown audience `bosses`"),
    ] {
        assert_reported(&problems, &format!("{}{message}", at(needle)));
    }
    // The trigger naming the renamed milestone is unknown too.
    assert_reported(&problems, "unknown trigger `breach:data_mapping`");
}

#[test]
fn dependency_cycles_and_impossible_due_rules_are_errors() {
    let (dir, path) = broken("smb", |t| {
        t.replace(
            "key = \"kickoff\"\ntitle = \"Hold the kickoff with the customer\"\nowner_role = \"onboarding_manager\"\ndue = { business_days = 3 }",
            "key = \"kickoff\"\ntitle = \"Hold the kickoff with the customer\"\nowner_role = \"onboarding_manager\"\ndue = { business_days = 3 }\ndepends_on = [\"user_enablement\"]",
        )
        .replace(
            "key = \"data_migration\"\ntitle = \"Plan and schedule the data migrations\"\nowner_role = \"onboarding_manager\"\ndue = { business_days = 10 }",
            "key = \"data_migration\"\ntitle = \"Plan and schedule the data migrations\"\nowner_role = \"onboarding_manager\"\ndue = { business_days = 1 }",
        )
    });
    let text = std::fs::read_to_string(&path).unwrap();
    let problems = problems_of(dir.path());
    assert_reported(
        &problems,
        &format!(
            "{}:{}: dependency cycle: kickoff -> user_enablement -> kickoff",
            path.display(),
            line_with(&text, "key = \"kickoff\"")
        ),
    );
    assert_reported(
        &problems,
        &format!(
            "{}:{}: task `data_migration` (1 business days) can fall due before `kickoff` (3 business days)",
            path.display(),
            line_with(&text, "due = { business_days = 1 }")
        ),
    );
}

#[test]
fn a_mixed_rule_successor_that_can_precede_its_predecessor_is_an_error() {
    assert!(schema_tests::falls_before(
        DueRule::BusinessDays(10),
        DueRule::CalendarDays(14)
    ));
    assert!(!schema_tests::falls_before(
        DueRule::CalendarDays(14),
        DueRule::BusinessDays(3)
    ));
    assert!(!schema_tests::falls_before(
        DueRule::BusinessDays(10),
        DueRule::BusinessDays(10)
    ));
}

#[test]
fn template_and_directory_problems_are_reported_with_their_files() {
    let (dir, path) = broken("enterprise", |t| {
        t.replace("({reason})", "({reasn})")
            .replace("[templates.slack.reminder]", "[templates.pager.reminder]")
    });
    let directory = dir.path().join(DIRECTORY_FILE);
    let text = std::fs::read_to_string(&directory).unwrap();
    std::fs::write(
        &directory,
        text.replace("manager = \"sales-director\"", "manager = \"nobody\""),
    )
    .unwrap();
    let problems = problems_of(dir.path());
    let playbook = std::fs::read_to_string(&path).unwrap();
    assert_reported(
        &problems,
        &format!(
            "{}:{}: templates.email.handoff_cancelled.subject: unknown placeholder `{{reasn}}`",
            path.display(),
            line_with(&playbook, "({reasn})")
        ),
    );
    assert_reported(&problems, "unknown template channel `pager`");
    assert_reported(&problems, &format!("{}:", directory.display()));
    assert_reported(&problems, "manager `nobody` is not in [people]");
}

#[test]
fn a_misspelt_segment_file_is_reported() {
    let (dir, _) = broken("smb", |t| t);
    std::fs::write(dir.path().join("enterprize.toml"), "").unwrap();
    assert_reported(&problems_of(dir.path()), "enterprize.toml: not a playbook");
}

mod schema_tests {
    use handoff_workflows::playbook::DueRule;

    pub(super) fn falls_before(rule: DueRule, predecessor: DueRule) -> bool {
        super::schema::can_fall_due_before(rule, predecessor)
    }
}
