//! The typed playbook: what a handoff of one segment must do, and by when.
//!
//! This module holds the built-in default, equal to the product's published
//! schedule. A [`Plan`] is a playbook frozen for one deal when its bundle
//! arrives: segment, gate set, owners and the content hash, so that editing the
//! defaults later never changes a handoff already in flight.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::bundle::{OWNER_ROLES, ValidBundle};

/// The segments a playbook can target.
pub const SEGMENTS: [&str; 3] = ["smb", "mid_market", "enterprise"];

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
}

/// When a task or milestone is due, counted from day 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DueRule {
    /// 23:59:59 local on the Nth business day after day 0's local date.
    BusinessDays(u32),
    /// 23:59:59 local on the Nth calendar day after day 0's local date.
    CalendarDays(u32),
}

/// A task the playbook creates at a trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskTemplate {
    /// Key, unique within the deal.
    pub key: String,
    /// What to do, as the owner reads it.
    pub title: String,
    /// Owner role; resolved to a handle through the bundle's owners.
    pub owner_role: String,
    /// When it is due.
    pub due: DueRule,
    /// Keys of tasks that must be done first.
    pub depends_on: Vec<String>,
}

/// The parts of a segment's playbook this build enforces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Playbook {
    /// Segment the playbook is for.
    pub segment: String,
    /// Whether the security gate is required even without `terms.security_review_required`.
    pub security_gate: bool,
    /// Kickoff due, in business days after day 0.
    pub kickoff_business_days: u32,
    /// Owner role of the kickoff milestone.
    pub kickoff_owner_role: String,
    /// Reminder offset as a fraction of the kickoff window in business seconds.
    pub kickoff_reminder_fraction: f64,
    /// Local hour (0-23) reminders are snapped forward to.
    pub send_hour: u32,
    /// Tasks created at day 0.
    pub day0_tasks: Vec<TaskTemplate>,
}

impl Playbook {
    /// The built-in playbook of a segment.
    pub fn builtin(segment: &str) -> Self {
        Self {
            segment: segment.to_owned(),
            security_gate: segment == "enterprise",
            kickoff_business_days: 3,
            kickoff_owner_role: "onboarding_manager".to_owned(),
            kickoff_reminder_fraction: 0.5,
            send_hour: 9,
            day0_tasks: default_day0_tasks(),
        }
    }

    /// `sha256:<hex>` of the playbook's canonical JSON.
    pub fn content_hash(&self) -> String {
        let canonical = serde_json::to_vec(self).expect("a playbook always serialises");
        format!("sha256:{}", hex::encode(Sha256::digest(canonical)))
    }
}

fn default_day0_tasks() -> Vec<TaskTemplate> {
    let task = |key: &str, title: &str, role: &str, due, deps: &[&str]| TaskTemplate {
        key: key.to_owned(),
        title: title.to_owned(),
        owner_role: role.to_owned(),
        due,
        depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
    };
    vec![
        task(
            "kickoff",
            "Hold the kickoff with the customer",
            "onboarding_manager",
            DueRule::BusinessDays(3),
            &[],
        ),
        task(
            "data_migration",
            "Plan and schedule the data migrations",
            "onboarding_manager",
            DueRule::BusinessDays(10),
            &["kickoff"],
        ),
        task(
            "integration_setup",
            "Set up the integrations",
            "sales_engineer",
            DueRule::CalendarDays(14),
            &["kickoff"],
        ),
        task(
            "user_enablement",
            "Enable the customer's users",
            "customer_success_manager",
            DueRule::CalendarDays(30),
            &["kickoff"],
        ),
    ]
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
        let mut required_gates = vec![Gate::Signature];
        if playbook.security_gate || security_asked {
            required_gates.push(Gate::Security);
        }
        let owners = OWNER_ROLES
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
            .collect();
        Self {
            segment: playbook.segment.clone(),
            required_gates,
            playbook_hash: playbook.content_hash(),
            playbook,
            owners,
            missing_fields: bundle.missing_fields(),
            bundle_completeness: bundle.completeness(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_enterprise_requires_security_by_default() {
        assert!(Playbook::builtin("enterprise").security_gate);
        assert!(!Playbook::builtin("smb").security_gate);
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
        assert_eq!(
            bands.segment_of(&bundle(
                serde_json::json!({"segment": "smb", "amount": 1e9})
            )),
            "smb"
        );
        assert_eq!(
            bands.segment_of(&bundle(
                serde_json::json!({"amount": 120000, "currency": "USD"})
            )),
            "enterprise"
        );
        assert_eq!(
            bands.segment_of(&bundle(
                serde_json::json!({"amount": 30000, "currency": "usd"})
            )),
            "mid_market"
        );
        assert_eq!(
            bands.segment_of(&bundle(
                serde_json::json!({"amount": 10, "currency": "USD"})
            )),
            "smb"
        );
        assert_eq!(
            bands.segment_of(&bundle(
                serde_json::json!({"amount": 10, "currency": "JPY"})
            )),
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
        b.kickoff_business_days = 4;
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
