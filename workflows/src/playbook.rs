//! The typed playbook: what a handoff of one segment must do, and by when.
//!
//! A [`Playbook`] states every number of the schedule — gate SLAs, milestone
//! due rules, reminder offsets, the escalation ladder, `gate_timeout`,
//! `lost_grace`, `close_after`, the send hour — and the task templates of each
//! trigger. [`Playbook::builtin`] gives the defaults the product publishes.
//! A [`Plan`] is a playbook frozen for one deal when its bundle arrives:
//! segment, gate set, owners and the content hash, so that editing a playbook
//! later never changes a handoff already in flight.

use std::collections::{BTreeMap, BTreeSet};

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::bundle::{OWNER_ROLES, ValidBundle};
use crate::calendar::Holidays;

/// The segments a playbook can target.
pub const SEGMENTS: [&str; 3] = ["smb", "mid_market", "enterprise"];

/// The milestones of the schedule, in the order of their default due dates.
pub const MILESTONES: [&str; 5] = [
    "kickoff",
    "data_mapping",
    "first_integration_test",
    "adoption",
    "first_value",
];

/// A gate that must pass before onboarding starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// The contract is signed.
    Signature,
    /// The customer's security review cleared.
    Security,
    /// Financing is secured.
    Financing,
}

impl Gate {
    /// Every gate, in display order.
    pub const ALL: [Gate; 3] = [Gate::Signature, Gate::Security, Gate::Financing];

    /// The gate's name in status and search attributes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Signature => "signature",
            Self::Security => "security",
            Self::Financing => "financing",
        }
    }

    /// The gate of a name, as `status` spells it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|gate| gate.name() == name)
    }
}

/// When something is due, counted from an anchor instant (day 0 for
/// milestones and day-0 tasks, `closed_won_at` for gates, the trigger for
/// other tasks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DueRule {
    /// 23:59:59 local on the Nth business day after the anchor's local date.
    BusinessDays(u32),
    /// 23:59:59 local on the Nth calendar day after the anchor's local date.
    CalendarDays(u32),
}

/// When a reminder goes out, before its send-hour snap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReminderOffset {
    /// This fraction (0..1) of the window, in business seconds from its start.
    Fraction(f64),
    /// This many business days before the due instant.
    BusinessDaysBefore(u32),
}

impl ReminderOffset {
    /// The step name in idempotency keys: `50pct`, `2bd`.
    pub fn label(self) -> String {
        match self {
            Self::Fraction(fraction) => format!("{}pct", (fraction * 100.0).round() as i64),
            Self::BusinessDaysBefore(days) => format!("{days}bd"),
        }
    }
}

/// The SLA of one gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatePolicy {
    /// Which gate.
    pub gate: Gate,
    /// Whether day 0 waits for it. The security gate is also required when
    /// the bundle's terms ask for a security review.
    pub required: bool,
    /// Due, counted from the local date of `closed_won_at` (or `--as-of`).
    pub sla: DueRule,
    /// Role that chases it.
    pub owner_role: String,
    /// Reminders before the due instant.
    pub reminders: Vec<ReminderOffset>,
}

/// What meets a milestone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetBy {
    /// The `kickoff_held` signal.
    KickoffHeld,
    /// `milestone_reached` naming the milestone; `evidence` required or not.
    MilestoneReached {
        /// Whether the signal must carry `evidence`.
        evidence_required: bool,
    },
    /// `adoption_reported` with a rate at or above the playbook threshold.
    AdoptionReported,
}

/// One milestone of the schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MilestonePolicy {
    /// `kickoff`, `data_mapping`, `first_integration_test`, `adoption`, `first_value`.
    pub name: String,
    /// Due, counted from day 0.
    pub due: DueRule,
    /// Role that owns it.
    pub owner_role: String,
    /// The event that meets it.
    pub met_by: MetBy,
    /// Reminders before the due instant.
    pub reminders: Vec<ReminderOffset>,
}

/// Who an escalation level reaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// The owner of the breached gate or milestone.
    Owner,
    /// The deal's handoff owner.
    HandoffOwner,
    /// The managers (owner directory) of the owner and the handoff owner.
    Managers,
    /// The configured executive (owner directory).
    Executive,
    /// Whoever holds this role on the deal.
    Role(String),
}

/// One level of the escalation ladder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LadderLevel {
    /// 1, 2 or 3.
    pub level: u8,
    /// Business days after the previous level (after the breach for level 1,
    /// where 0 means at once).
    pub after_business_days: u32,
    /// Who it reaches.
    pub notify: Vec<Audience>,
}

/// A task the playbook creates when its trigger happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskTemplate {
    /// `closed_won`, `day0`, `kickoff_held`, `breach:<name>` or
    /// `milestone_met:<name>`.
    pub trigger: String,
    /// Key, unique within the deal.
    pub key: String,
    /// What to do, as the owner reads it.
    pub title: String,
    /// Owner role; resolved to a handle through the bundle's owners.
    pub owner_role: String,
    /// When it is due, counted from the trigger (day 0 for `day0`).
    pub due: DueRule,
    /// Keys of tasks that must be done first.
    pub depends_on: Vec<String>,
    /// The milestone its completion meets, if any.
    pub meets: Option<String>,
}

/// Everything one segment's handoff must do, and by when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Playbook {
    /// Segment the playbook is for.
    pub segment: String,
    /// Gate SLAs.
    pub gates: Vec<GatePolicy>,
    /// Milestones.
    pub milestones: Vec<MilestonePolicy>,
    /// Escalation ladder after a breach, level 1 first.
    pub ladder: Vec<LadderLevel>,
    /// Business days after `closed_won_at` by which every required gate must
    /// have passed, else the handoff ends `cancelled` (`gate_timeout`).
    pub gate_timeout_business_days: u32,
    /// Business days a lost deal may still be won back.
    pub lost_grace_business_days: u32,
    /// Business days after day 90 at which the handoff closes whatever is open.
    pub close_after_business_days: u32,
    /// Local hour (0-23) reminders are snapped forward to.
    pub send_hour: u32,
    /// Adoption rate (0..1) that meets `adoption`.
    pub adoption_threshold: f64,
    /// Business days a remediation task gets after its breach.
    pub remediation_business_days: u32,
    /// Task templates of every trigger.
    pub tasks: Vec<TaskTemplate>,
}

impl Playbook {
    /// The built-in playbook of a segment (an unknown segment gets `mid_market`'s numbers).
    pub fn builtin(segment: &str) -> Self {
        let (reminders, long_reminders, ladder_delays) = match segment {
            "smb" => (vec![half()], vec![half()], (3, 5)),
            "enterprise" => (
                vec![half()],
                vec![half(), ReminderOffset::BusinessDaysBefore(2)],
                (1, 2),
            ),
            _ => (
                vec![half()],
                vec![half(), ReminderOffset::BusinessDaysBefore(1)],
                (2, 3),
            ),
        };
        Self {
            segment: segment.to_owned(),
            gates: builtin_gates(segment == "enterprise", &long_reminders),
            milestones: builtin_milestones(&reminders, &long_reminders),
            ladder: builtin_ladder(ladder_delays),
            gate_timeout_business_days: 30,
            lost_grace_business_days: 2,
            close_after_business_days: 10,
            send_hour: 9,
            adoption_threshold: 0.60,
            remediation_business_days: 2,
            tasks: builtin_tasks(segment == "enterprise"),
        }
    }

    /// `sha256:<hex>` of the playbook's canonical JSON.
    pub fn content_hash(&self) -> String {
        let canonical = serde_json::to_vec(self).expect("a playbook always serialises");
        format!("sha256:{}", hex::encode(Sha256::digest(canonical)))
    }

    /// The policy of a gate.
    pub fn gate(&self, gate: Gate) -> Option<&GatePolicy> {
        self.gates.iter().find(|g| g.gate == gate)
    }

    /// The policy of a milestone.
    pub fn milestone(&self, name: &str) -> Option<&MilestonePolicy> {
        self.milestones.iter().find(|m| m.name == name)
    }

    /// The task templates of a trigger, in playbook order.
    pub fn tasks_for<'a>(&'a self, trigger: &'a str) -> impl Iterator<Item = &'a TaskTemplate> {
        self.tasks.iter().filter(move |t| t.trigger == trigger)
    }

    /// The ladder level after `level`, if any.
    pub fn level_after(&self, level: u8) -> Option<&LadderLevel> {
        self.ladder
            .iter()
            .filter(|l| l.level > level)
            .min_by_key(|l| l.level)
    }
}

fn half() -> ReminderOffset {
    ReminderOffset::Fraction(0.5)
}

fn builtin_gates(enterprise: bool, reminders: &[ReminderOffset]) -> Vec<GatePolicy> {
    let gate = |gate, required, days, role: &str| GatePolicy {
        gate,
        required,
        sla: DueRule::BusinessDays(days),
        owner_role: role.to_owned(),
        reminders: reminders.to_vec(),
    };
    vec![
        gate(Gate::Signature, true, 5, "account_executive"),
        gate(Gate::Security, enterprise, 10, "sales_engineer"),
        gate(Gate::Financing, false, 10, "account_executive"),
    ]
}

fn builtin_milestones(short: &[ReminderOffset], long: &[ReminderOffset]) -> Vec<MilestonePolicy> {
    let milestone =
        |name: &str, due, role: &str, met_by, reminders: &[ReminderOffset]| MilestonePolicy {
            name: name.to_owned(),
            due,
            owner_role: role.to_owned(),
            met_by,
            reminders: reminders.to_vec(),
        };
    let reached = |evidence_required| MetBy::MilestoneReached { evidence_required };
    vec![
        milestone(
            "kickoff",
            DueRule::BusinessDays(3),
            "onboarding_manager",
            MetBy::KickoffHeld,
            short,
        ),
        milestone(
            "data_mapping",
            DueRule::BusinessDays(10),
            "onboarding_manager",
            reached(false),
            long,
        ),
        milestone(
            "first_integration_test",
            DueRule::CalendarDays(14),
            "sales_engineer",
            reached(false),
            long,
        ),
        milestone(
            "adoption",
            DueRule::CalendarDays(30),
            "customer_success_manager",
            MetBy::AdoptionReported,
            long,
        ),
        milestone(
            "first_value",
            DueRule::CalendarDays(90),
            "customer_success_manager",
            reached(true),
            long,
        ),
    ]
}

fn builtin_ladder((level2, level3): (u32, u32)) -> Vec<LadderLevel> {
    vec![
        LadderLevel {
            level: 1,
            after_business_days: 0,
            notify: vec![Audience::Owner, Audience::HandoffOwner],
        },
        LadderLevel {
            level: 2,
            after_business_days: level2,
            notify: vec![Audience::Managers],
        },
        LadderLevel {
            level: 3,
            after_business_days: level3,
            notify: vec![Audience::Executive],
        },
    ]
}

fn builtin_tasks(enterprise: bool) -> Vec<TaskTemplate> {
    let task =
        |trigger: &str, key: &str, title: &str, role: &str, due, deps: &[&str]| TaskTemplate {
            trigger: trigger.to_owned(),
            key: key.to_owned(),
            title: title.to_owned(),
            owner_role: role.to_owned(),
            due,
            depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
            meets: None,
        };
    let mut kickoff = task(
        "day0",
        "kickoff",
        "Hold the kickoff with the customer",
        "onboarding_manager",
        DueRule::BusinessDays(3),
        &[],
    );
    kickoff.meets = Some("kickoff".to_owned());
    let mut tasks = vec![
        kickoff,
        task(
            "day0",
            "data_migration",
            "Plan and schedule the data migrations",
            "onboarding_manager",
            DueRule::BusinessDays(10),
            &["kickoff"],
        ),
        task(
            "day0",
            "integration_setup",
            "Set up the integrations",
            "sales_engineer",
            DueRule::CalendarDays(14),
            &["kickoff"],
        ),
        task(
            "day0",
            "user_enablement",
            "Enable the customer's users",
            "customer_success_manager",
            DueRule::CalendarDays(30),
            &["kickoff"],
        ),
        task(
            "kickoff_held",
            "success_plan",
            "Send the kickoff summary and the success plan",
            "onboarding_manager",
            DueRule::BusinessDays(2),
            &[],
        ),
    ];
    if enterprise {
        tasks.push(task(
            "day0",
            "governance_plan",
            "Agree governance and change management with the customer",
            "handoff_owner",
            DueRule::BusinessDays(10),
            &["kickoff"],
        ));
    }
    let gates = Gate::ALL.map(Gate::name);
    for milestone in gates.into_iter().chain(MILESTONES) {
        let title = format!(
            "{} missed: find the root cause and plan the remediation",
            sentence_case(milestone)
        );
        tasks.push(task(
            &format!("breach:{milestone}"),
            &format!("remediate_{milestone}"),
            &title,
            "handoff_owner",
            DueRule::BusinessDays(2),
            &[],
        ));
    }
    tasks
}

fn sentence_case(name: &str) -> String {
    let text = name.replace('_', " ");
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => text,
    }
}

/// A playbook frozen for one deal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The deal's segment, given or derived from the amount.
    pub segment: String,
    /// The gates that must pass before day 0.
    pub required_gates: Vec<Gate>,
    /// The playbook in force.
    pub playbook: Playbook,
    /// Its content hash.
    pub playbook_hash: String,
    /// Owner handle per role, with the fallback owner where the bundle names none.
    pub owners: BTreeMap<String, String>,
    /// Soft fields the bundle lacks.
    pub missing_fields: Vec<String>,
    /// Share of the soft checklist that is filled, 0..1.
    pub bundle_completeness: f64,
    /// The team's holiday calendar, resolved from `team.calendar` by the
    /// activity that freezes the plan (built-in rules plus calendar files).
    pub holidays: Holidays,
    /// What the owner directory said when the plan was frozen; empty when
    /// the worker runs without a directory.
    #[serde(default)]
    pub directory: DirectoryFacts,
}

/// The part of the owner directory the workflow needs, frozen into the plan
/// so that replay never reads the file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryFacts {
    /// Every handle in the directory. Empty means no directory: any
    /// well-formed handle is accepted.
    #[serde(default)]
    pub handles: BTreeSet<String>,
    /// IANA timezone of each handle that has one.
    #[serde(default)]
    pub timezones: BTreeMap<String, String>,
}

impl DirectoryFacts {
    /// Whether `handle` may own a role: it is in the directory, or there is
    /// no directory.
    pub fn knows(&self, handle: &str) -> bool {
        self.handles.is_empty() || self.handles.contains(handle)
    }

    /// The timezone of `handle`, when the directory gives a valid one.
    pub fn timezone_of(&self, handle: &str) -> Option<Tz> {
        self.timezones
            .get(handle)
            .and_then(|name| name.parse().ok())
    }
}

impl Plan {
    /// Freezes `playbook` for a bundle: the gate set, and an owner for every
    /// role (`fallback_owner` where the bundle names none).
    pub fn freeze(bundle: &ValidBundle, playbook: Playbook, fallback_owner: &str) -> Self {
        let security_asked = bundle
            .bundle
            .terms
            .as_ref()
            .and_then(|t| t.security_review_required)
            .unwrap_or(false);
        let required_gates = Gate::ALL
            .into_iter()
            .filter(|gate| {
                let policy = playbook.gate(*gate);
                policy.is_some_and(|p| p.required)
                    || (*gate == Gate::Signature)
                    || (*gate == Gate::Security && security_asked)
            })
            .collect();
        Self {
            segment: playbook.segment.clone(),
            required_gates,
            playbook_hash: playbook.content_hash(),
            playbook,
            owners: owners_of(bundle, fallback_owner),
            missing_fields: bundle.missing_fields(),
            bundle_completeness: bundle.completeness(),
            holidays: bundle_holidays(bundle),
            directory: DirectoryFacts::default(),
        }
    }

    /// The handle that owns a role.
    pub fn owner(&self, role: &str) -> String {
        self.owners
            .get(role)
            .cloned()
            .unwrap_or_else(|| "unassigned".to_owned())
    }

    /// Whether a gate must pass before day 0.
    pub fn requires(&self, gate: Gate) -> bool {
        self.required_gates.contains(&gate)
    }
}

/// The built-in holiday set the bundle names (`US` when it names none or an
/// unknown one); calendar files replace it when the plan is frozen.
pub fn bundle_holidays(bundle: &ValidBundle) -> Holidays {
    bundle
        .bundle
        .team
        .calendar
        .as_deref()
        .and_then(Holidays::builtin)
        .or_else(|| Holidays::builtin("US"))
        .unwrap_or_default()
}

/// Owner handle per role: the bundle's, else `fallback_owner`.
pub fn owners_of(bundle: &ValidBundle, fallback_owner: &str) -> BTreeMap<String, String> {
    OWNER_ROLES
        .iter()
        .map(|role| {
            let given = bundle
                .bundle
                .owners
                .get(*role)
                .map(|h| h.trim())
                .filter(|h| !h.is_empty());
            (
                (*role).to_owned(),
                given.unwrap_or(fallback_owner).to_owned(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_enterprise_requires_security_by_default() {
        assert!(Playbook::builtin("enterprise").gates[1].required);
        assert!(!Playbook::builtin("smb").gates[1].required);
    }

    #[test]
    fn builtin_numbers_are_the_published_schedule() {
        let playbook = Playbook::builtin("mid_market");
        let dues: Vec<(String, DueRule)> = playbook
            .milestones
            .iter()
            .map(|m| (m.name.clone(), m.due))
            .collect();
        assert_eq!(
            dues,
            vec![
                ("kickoff".to_owned(), DueRule::BusinessDays(3)),
                ("data_mapping".to_owned(), DueRule::BusinessDays(10)),
                (
                    "first_integration_test".to_owned(),
                    DueRule::CalendarDays(14)
                ),
                ("adoption".to_owned(), DueRule::CalendarDays(30)),
                ("first_value".to_owned(), DueRule::CalendarDays(90)),
            ]
        );
        assert_eq!(
            playbook.gate(Gate::Signature).unwrap().sla,
            DueRule::BusinessDays(5)
        );
        assert_eq!(
            playbook.gate(Gate::Security).unwrap().sla,
            DueRule::BusinessDays(10)
        );
        assert_eq!(playbook.gate_timeout_business_days, 30);
        assert_eq!(playbook.lost_grace_business_days, 2);
        assert_eq!(playbook.close_after_business_days, 10);
        assert_eq!(playbook.send_hour, 9);
        assert_eq!(playbook.adoption_threshold, 0.60);
        assert_eq!(playbook.ladder.len(), 3);
    }

    #[test]
    fn every_milestone_has_a_remediation_template() {
        let playbook = Playbook::builtin("smb");
        for milestone in MILESTONES {
            let trigger = format!("breach:{milestone}");
            assert_eq!(playbook.tasks_for(&trigger).count(), 1, "{trigger}");
        }
    }

    #[test]
    fn reminder_labels_name_the_offset() {
        assert_eq!(ReminderOffset::Fraction(0.5).label(), "50pct");
        assert_eq!(ReminderOffset::BusinessDaysBefore(2).label(), "2bd");
    }

    fn bundle(extra: serde_json::Value) -> ValidBundle {
        let mut value = serde_json::json!({
            "deal": { "source": "manual", "id": "D-1", "closed_won_at": "2026-03-02T16:30:00Z" },
            "account": { "name": "Example Corp" }
        });
        for (key, field) in extra.as_object().unwrap() {
            value["deal"][key] = field.clone();
        }
        ValidBundle::from_value(value).unwrap()
    }

    #[test]
    fn segment_comes_from_the_bundle_or_the_amount_band() {
        let bands = SegmentBands::default();
        let segment = |extra| bands.segment_of(&bundle(extra));
        assert_eq!(
            segment(serde_json::json!({"segment": "smb", "amount": 1e9})),
            "smb"
        );
        assert_eq!(
            segment(serde_json::json!({"amount": 120000, "currency": "USD"})),
            "enterprise"
        );
        assert_eq!(
            segment(serde_json::json!({"amount": 30000, "currency": "usd"})),
            "mid_market"
        );
        assert_eq!(
            segment(serde_json::json!({"amount": 10, "currency": "USD"})),
            "smb"
        );
        assert_eq!(
            segment(serde_json::json!({"amount": 10, "currency": "JPY"})),
            "mid_market"
        );
    }

    #[test]
    fn security_review_in_the_terms_adds_the_gate() {
        let mut b = bundle(serde_json::json!({}));
        b.bundle.terms = Some(crate::bundle::Terms {
            security_review_required: Some(true),
            ..Default::default()
        });
        let plan = Plan::freeze(&b, Playbook::builtin("smb"), "revops");
        assert_eq!(plan.required_gates, vec![Gate::Signature, Gate::Security]);
        assert_eq!(plan.owner("handoff_owner"), "revops");
    }

    #[test]
    fn content_hash_changes_with_content() {
        let a = Playbook::builtin("smb");
        let mut b = a.clone();
        b.send_hour = 10;
        assert_ne!(a.content_hash(), b.content_hash());
        assert!(a.content_hash().starts_with("sha256:"));
    }
}

/// Amount thresholds, per currency, at which a deal becomes mid-market and
/// enterprise when its bundle names no segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentBands {
    /// Currency code → thresholds.
    pub bands: BTreeMap<String, Band>,
    /// Segment for deals without an amount or in a currency without a band.
    pub default_segment: String,
}

/// Lower bounds of the larger segments in one currency.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Band {
    /// Amounts at or above this are at least `mid_market`.
    pub mid_market: f64,
    /// Amounts at or above this are `enterprise`.
    pub enterprise: f64,
}

impl Default for SegmentBands {
    fn default() -> Self {
        let band = |mid_market, enterprise| Band {
            mid_market,
            enterprise,
        };
        let bands = [
            ("USD", band(25_000.0, 100_000.0)),
            ("EUR", band(23_000.0, 92_000.0)),
            ("GBP", band(20_000.0, 80_000.0)),
        ]
        .into_iter()
        .map(|(currency, band)| (currency.to_owned(), band))
        .collect();
        Self {
            bands,
            default_segment: "mid_market".to_owned(),
        }
    }
}

impl SegmentBands {
    /// The segment of a bundle: the one it names, else the one its amount falls in.
    pub fn segment_of(&self, bundle: &ValidBundle) -> String {
        let deal = &bundle.bundle.deal;
        if let Some(given) = deal.segment.as_deref().map(str::trim)
            && SEGMENTS.contains(&given)
        {
            return given.to_owned();
        }
        let currency = deal
            .currency
            .as_deref()
            .unwrap_or("USD")
            .trim()
            .to_ascii_uppercase();
        match (deal.amount, self.bands.get(&currency)) {
            (Some(amount), Some(band)) if amount >= band.enterprise => "enterprise".to_owned(),
            (Some(amount), Some(band)) if amount >= band.mid_market => "mid_market".to_owned(),
            (Some(_), Some(_)) => "smb".to_owned(),
            _ => self.default_segment.clone(),
        }
    }
}
