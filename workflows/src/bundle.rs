//! The handoff bundle: the deal's data as the CRM and the account team know it.
//!
//! Four fields are hard-required (`deal.source`, `deal.id`, `account.name`,
//! `deal.closed_won_at`); a bundle without them is refused before anything
//! reaches Temporal. Every other field is soft: its absence lowers
//! [`ValidBundle::completeness`] and becomes a "complete the handoff bundle" task,
//! never an error. A field present with the wrong JSON type is refused with its
//! path, because a silently dropped `amount` or `segment` would change the plan.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::calendar::local_midnight;

/// Timezone a team works in when the bundle names none.
pub const DEFAULT_TEAM_TIMEZONE: Tz = chrono_tz::America::New_York;

/// Why a bundle was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The document is not JSON at all.
    #[error("bundle is not JSON: {0}")]
    NotJson(String),
    /// A field has a JSON type the schema does not allow.
    #[error("{field}: {message}")]
    WrongType {
        /// Dotted path of the field, e.g. `deal.amount`.
        field: String,
        /// What was wrong with it.
        message: String,
    },
    /// A hard-required field is absent or empty.
    #[error("{0}: required field is missing")]
    Missing(&'static str),
    /// `deal.closed_won_at` is neither an RFC 3339 instant nor a date.
    #[error("deal.closed_won_at: expected an RFC 3339 instant or a YYYY-MM-DD date, got {0:?}")]
    BadClosedWonAt(String),
}

impl BundleError {
    /// The dotted path of the field the error is about, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::NotJson(_) => None,
            Self::WrongType { field, .. } => Some(field),
            Self::Missing(field) => Some(field),
            Self::BadClosedWonAt(_) => Some("deal.closed_won_at"),
        }
    }
}

/// A deal's identity in a CRM plus the commercial facts of the deal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Deal {
    /// CRM the deal comes from (`salesforce`, `hubspot`, `manual`, ...).
    #[serde(default)]
    pub source: Option<String>,
    /// The deal's id inside its CRM.
    #[serde(default)]
    pub id: Option<DealIdValue>,
    /// Human name of the deal.
    #[serde(default)]
    pub name: Option<String>,
    /// Contract value in `currency` units.
    #[serde(default)]
    pub amount: Option<f64>,
    /// ISO 4217 currency code of `amount`.
    #[serde(default)]
    pub currency: Option<String>,
    /// `smb`, `mid_market` or `enterprise`; derived from the amount when absent.
    #[serde(default)]
    pub segment: Option<String>,
    /// When the CRM marked the deal closed won: an RFC 3339 instant or a date.
    #[serde(default)]
    pub closed_won_at: Option<String>,
}

/// A CRM id, which some exports write as a JSON number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DealIdValue {
    /// The usual form.
    Text(String),
    /// Numeric ids, as HubSpot exports them.
    Number(u64),
}

impl DealIdValue {
    /// The id as text.
    pub fn as_text(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Number(number) => number.to_string(),
        }
    }
}

/// The customer organisation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// Legal or trading name.
    #[serde(default)]
    pub name: Option<String>,
    /// Web domain.
    #[serde(default)]
    pub domain: Option<String>,
    /// Industry, free text.
    #[serde(default)]
    pub industry: Option<String>,
    /// Sales region, free text.
    #[serde(default)]
    pub region: Option<String>,
}

/// Where and when the internal team works.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Team {
    /// IANA timezone name; `America/New_York` when absent.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Holiday calendar name (`US`, `GB-ENG`, `none`, or a custom one).
    #[serde(default)]
    pub calendar: Option<String>,
}

/// Facts about the customer's side.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    /// IANA timezone name of the customer.
    #[serde(default)]
    pub timezone: Option<String>,
}

/// A person in the buying committee.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    /// Full name.
    #[serde(default)]
    pub name: Option<String>,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// `champion`, `economic_buyer`, `technical_lead`, `executive_sponsor` or `user`.
    #[serde(default)]
    pub role: Option<String>,
}

/// A measurable outcome the customer bought the product for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SuccessMetric {
    /// What is measured.
    #[serde(default)]
    pub name: Option<String>,
    /// The value that counts as success.
    #[serde(default)]
    pub target: Option<String>,
    /// Unit of `target`.
    #[serde(default)]
    pub unit: Option<String>,
}

/// What was sold and has to be implemented.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Scope {
    /// Products in the contract.
    #[serde(default)]
    pub products: Vec<String>,
    /// Systems to integrate with.
    #[serde(default)]
    pub integrations: Vec<String>,
    /// Data sets to migrate.
    #[serde(default)]
    pub data_migrations: Vec<String>,
}

/// Where the customer starts from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Systems in use today.
    #[serde(default)]
    pub current_systems: Vec<String>,
    /// Free text, e.g. `medium`.
    #[serde(default)]
    pub data_quality: Option<String>,
    /// Free text, e.g. `low`.
    #[serde(default)]
    pub process_maturity: Option<String>,
}

/// When the customer expects value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ValueTimeline {
    /// Expected days from signature to first value.
    #[serde(default)]
    pub expected_ttfv_days: Option<u32>,
    /// Renewal date, `YYYY-MM-DD`.
    #[serde(default)]
    pub renewal_date: Option<String>,
}

/// Contract terms that change onboarding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Terms {
    /// Whether the security gate is required whatever the segment.
    #[serde(default)]
    pub security_review_required: Option<bool>,
    /// Compliance regimes, e.g. `SOC2`.
    #[serde(default)]
    pub compliance: Vec<String>,
    /// Where data must stay, e.g. `EU`.
    #[serde(default)]
    pub data_residency: Option<String>,
}

/// The bundle as sent with `closed_won`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    /// The deal.
    #[serde(default)]
    pub deal: Deal,
    /// The customer organisation.
    #[serde(default)]
    pub account: Account,
    /// The internal team's timezone and calendar.
    #[serde(default)]
    pub team: Team,
    /// The customer's timezone.
    #[serde(default)]
    pub customer: Customer,
    /// The buying committee.
    #[serde(default)]
    pub contacts: Vec<Contact>,
    /// What the customer wants to achieve.
    #[serde(default)]
    pub use_case: Option<String>,
    /// How success is measured.
    #[serde(default)]
    pub success_metrics: Vec<SuccessMetric>,
    /// What was sold.
    #[serde(default)]
    pub scope: Option<Scope>,
    /// Where the customer starts from.
    #[serde(default)]
    pub baseline: Option<Baseline>,
    /// When value is expected.
    #[serde(default)]
    pub value_timeline: Option<ValueTimeline>,
    /// Terms that affect onboarding.
    #[serde(default)]
    pub terms: Option<Terms>,
    /// Internal owner handles by role.
    #[serde(default)]
    pub owners: BTreeMap<String, String>,
}

/// The owner roles a bundle is expected to fill.
pub const OWNER_ROLES: [&str; 5] = [
    "account_executive",
    "sales_engineer",
    "handoff_owner",
    "onboarding_manager",
    "customer_success_manager",
];

/// A bundle whose hard fields are present and well-formed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidBundle {
    /// The bundle as given.
    pub bundle: Bundle,
    /// `deal.source`, trimmed.
    pub source: String,
    /// `deal.id` as text, trimmed.
    pub deal_id: String,
    /// `deal.closed_won_at` resolved to an instant (a date means local midnight).
    pub closed_won_at: DateTime<Utc>,
}

impl ValidBundle {
    /// Parses and validates a bundle from JSON text.
    pub fn from_json(text: &str) -> Result<Self, BundleError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| BundleError::NotJson(e.to_string()))?;
        Self::from_value(value)
    }

    /// Validates a bundle already parsed as JSON.
    pub fn from_value(value: serde_json::Value) -> Result<Self, BundleError> {
        let bundle: Bundle =
            serde_path_to_error::deserialize(value).map_err(|e| BundleError::WrongType {
                field: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        Self::try_from_bundle(bundle)
    }

    /// Checks the hard fields of a typed bundle.
    pub fn try_from_bundle(bundle: Bundle) -> Result<Self, BundleError> {
        let source =
            non_empty(bundle.deal.source.as_deref()).ok_or(BundleError::Missing("deal.source"))?;
        let deal_id = bundle
            .deal
            .id
            .as_ref()
            .map(DealIdValue::as_text)
            .and_then(|id| non_empty(Some(&id)))
            .ok_or(BundleError::Missing("deal.id"))?;
        non_empty(bundle.account.name.as_deref()).ok_or(BundleError::Missing("account.name"))?;
        let raw_closed = non_empty(bundle.deal.closed_won_at.as_deref())
            .ok_or(BundleError::Missing("deal.closed_won_at"))?;
        let closed_won_at = parse_instant_or_date(&raw_closed, team_timezone(&bundle))
            .ok_or(BundleError::BadClosedWonAt(raw_closed))?;
        Ok(Self {
            bundle,
            source,
            deal_id,
            closed_won_at,
        })
    }

    /// The soft fields that are missing, as dotted paths.
    pub fn missing_fields(&self) -> Vec<String> {
        let b = &self.bundle;
        let mut missing = Vec::new();
        let mut check = |present: bool, name: &str| {
            if !present {
                missing.push(name.to_owned());
            }
        };
        check(b.deal.name.is_some(), "deal.name");
        check(b.deal.amount.is_some(), "deal.amount");
        check(b.deal.currency.is_some(), "deal.currency");
        check(b.account.domain.is_some(), "account.domain");
        check(b.account.industry.is_some(), "account.industry");
        check(
            b.team
                .timezone
                .as_deref()
                .and_then(parse_timezone)
                .is_some(),
            "team.timezone",
        );
        check(!b.contacts.is_empty(), "contacts");
        check(
            b.contacts
                .iter()
                .any(|c| c.role.as_deref() == Some("champion")),
            "contacts.champion",
        );
        check(b.use_case.is_some(), "use_case");
        check(!b.success_metrics.is_empty(), "success_metrics");
        check(b.scope.is_some(), "scope");
        check(b.baseline.is_some(), "baseline");
        check(b.value_timeline.is_some(), "value_timeline");
        check(b.terms.is_some(), "terms");
        for role in OWNER_ROLES {
            check(
                b.owners.get(role).is_some_and(|h| !h.trim().is_empty()),
                &format!("owners.{role}"),
            );
        }
        missing
    }

    /// Share of the soft checklist that is filled, from 0 to 1.
    pub fn completeness(&self) -> f64 {
        let total = SOFT_CHECKLIST_LEN as f64;
        let present = total - self.missing_fields().len() as f64;
        (present / total * 100.0).round() / 100.0
    }

    /// The team's timezone, or the default when absent or unknown.
    pub fn team_timezone(&self) -> Tz {
        team_timezone(&self.bundle)
    }
}

/// Number of items [`ValidBundle::missing_fields`] checks.
const SOFT_CHECKLIST_LEN: usize = 14 + OWNER_ROLES.len();

fn team_timezone(bundle: &Bundle) -> Tz {
    bundle
        .team
        .timezone
        .as_deref()
        .and_then(parse_timezone)
        .unwrap_or(DEFAULT_TEAM_TIMEZONE)
}

/// Parses an IANA timezone name.
pub fn parse_timezone(name: &str) -> Option<Tz> {
    name.trim().parse().ok()
}

/// Parses an RFC 3339 instant, or a `YYYY-MM-DD` date meaning local midnight.
pub fn parse_instant_or_date(text: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Some(instant.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(local_midnight(tz, date))
}

fn non_empty(text: Option<&str>) -> Option<String> {
    text.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> serde_json::Value {
        serde_json::json!({
            "deal": { "source": "manual", "id": "D-1", "closed_won_at": "2026-03-02T16:30:00Z" },
            "account": { "name": "Example Corp" }
        })
    }

    #[test]
    fn minimal_bundle_is_valid_but_incomplete() {
        let bundle = ValidBundle::from_value(minimal()).unwrap();
        assert_eq!(bundle.deal_id, "D-1");
        assert!(bundle.completeness() < 0.2, "{}", bundle.completeness());
        assert!(
            bundle
                .missing_fields()
                .contains(&"owners.handoff_owner".to_owned())
        );
    }

    #[test]
    fn each_missing_hard_field_is_named() {
        for (path, field) in [
            ("/deal/source", "deal.source"),
            ("/deal/id", "deal.id"),
            ("/account/name", "account.name"),
            ("/deal/closed_won_at", "deal.closed_won_at"),
        ] {
            let mut value = minimal();
            let (parent, key) = path.rsplit_once('/').unwrap();
            value
                .pointer_mut(parent)
                .unwrap()
                .as_object_mut()
                .unwrap()
                .remove(key);
            let err = ValidBundle::from_value(value).unwrap_err();
            assert_eq!(err.field(), Some(field), "{err}");
            assert!(err.to_string().contains(field));
        }
    }

    #[test]
    fn wrong_type_names_the_field() {
        let mut value = minimal();
        value["deal"]["amount"] = serde_json::json!("a lot");
        let err = ValidBundle::from_value(value).unwrap_err();
        assert_eq!(err.field(), Some("deal.amount"), "{err}");
    }

    #[test]
    fn not_json_is_refused() {
        assert!(matches!(
            ValidBundle::from_json("{deal:"),
            Err(BundleError::NotJson(_))
        ));
    }

    #[test]
    fn a_date_means_local_midnight_of_the_team() {
        let mut value = minimal();
        value["deal"]["closed_won_at"] = serde_json::json!("2026-03-02");
        value["team"] = serde_json::json!({ "timezone": "Europe/London" });
        let bundle = ValidBundle::from_value(value).unwrap();
        assert_eq!(
            bundle.closed_won_at.to_rfc3339(),
            "2026-03-02T00:00:00+00:00"
        );
    }

    #[test]
    fn numeric_deal_ids_are_accepted() {
        let mut value = minimal();
        value["deal"]["id"] = serde_json::json!(12345);
        assert_eq!(ValidBundle::from_value(value).unwrap().deal_id, "12345");
    }
}
