//! The few HubSpot CRM API v3 reads the receiver needs: webhooks carry ids
//! only, so a deal that closed won is read with its company and contacts to
//! build the bundle, and pipelines are read to learn what a stage id means.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Mutex;
use tracing::warn;

use super::Refusal;
use crate::config::StageKind;

/// Per request; with the deal, its company and a few contacts read in turn
/// the answer to HubSpot stays within its 5 s timeout.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Pipelines are read again at most this often when a stage id is unknown.
const CATALOG_REFRESH: Duration = Duration::from_secs(60);
/// Contacts read for a bundle; more are left out.
const MAX_CONTACTS: usize = 10;
/// Deal properties the bundle is built from.
const DEAL_PROPERTIES: &str =
    "dealname,amount,deal_currency_code,closedate,dealstage,pipeline,description";

/// A client of the HubSpot CRM API.
pub(crate) struct HubSpotApi {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
    /// Stage ids of the portal's pipelines, and when they were read.
    catalog: Mutex<(BTreeMap<String, StageKind>, Option<Instant>)>,
}

/// A deal as the CRM API returns it.
#[derive(Debug, Clone)]
pub(crate) struct Deal {
    pub(crate) properties: Value,
    company: Option<String>,
    contacts: Vec<String>,
}

impl Deal {
    /// A property as text, `None` when absent or empty.
    pub(crate) fn property(&self, name: &str) -> Option<String> {
        text_of(&self.properties, name)
    }
}

impl HubSpotApi {
    pub(crate) fn new(base: &str, token: Option<String>) -> anyhow::Result<Self> {
        handoff_activities::sinks::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .user_agent(concat!("handoff/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            token,
            catalog: Mutex::new((BTreeMap::new(), None)),
        })
    }

    /// GETs a path; `None` for 404 (the object is gone).
    async fn get(&self, path: &str) -> Result<Option<Value>, Refusal> {
        let token = self.token.as_deref().ok_or_else(|| {
            warn!(
                setting = "HANDOFF_HUBSPOT_TOKEN",
                "HubSpot token not set: deals cannot be read"
            );
            Refusal::Unavailable(
                "HANDOFF_HUBSPOT_TOKEN is not set, so the deal cannot be read; retry later"
                    .to_owned(),
            )
        })?;
        let url = format!("{}{path}", self.base);
        let unavailable = |why: String| {
            warn!(path, why = %why, "HubSpot CRM API read failed");
            Refusal::Unavailable(format!("the HubSpot CRM API {why}; retry later"))
        };
        let response = self
            .client
            .get(&url)
            .bearer_auth(token)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| unavailable(format!("cannot be reached ({e})")))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(unavailable(format!("answered {status}")));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| unavailable(format!("broke off its answer ({e})")))?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| unavailable(format!("answered what is not JSON ({e})")))
    }

    /// The deal with the ids of its company and contacts; `None` when deleted.
    pub(crate) async fn deal(&self, object_id: &str) -> Result<Option<Deal>, Refusal> {
        let path = format!(
            "/crm/v3/objects/deals/{object_id}?properties={DEAL_PROPERTIES}&associations=companies,contacts"
        );
        let Some(found) = self.get(&path).await? else {
            return Ok(None);
        };
        let associated = |kind: &str| -> Vec<String> {
            found["associations"][kind]["results"]
                .as_array()
                .map(|results| {
                    results
                        .iter()
                        .filter_map(|r| id_text(&r["id"]))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        let mut contacts = associated("contacts");
        contacts.dedup();
        contacts.truncate(MAX_CONTACTS);
        Ok(Some(Deal {
            properties: found["properties"].clone(),
            company: associated("companies").into_iter().next(),
            contacts,
        }))
    }

    /// The bundle of a deal: company and contacts read as well.
    pub(crate) async fn bundle(
        &self,
        deal_id: &str,
        deal: &Deal,
        closed_won_at: &str,
    ) -> Result<Value, Refusal> {
        let company = match &deal.company {
            Some(id) => {
                self.get(&format!(
                    "/crm/v3/objects/companies/{id}?properties=name,domain,industry,country"
                ))
                .await?
            }
            None => None,
        };
        let company = company.map(|c| c["properties"].clone()).unwrap_or_default();
        let mut contacts = Vec::new();
        for id in &deal.contacts {
            let path = format!("/crm/v3/objects/contacts/{id}?properties=firstname,lastname,email");
            if let Some(contact) = self.get(&path).await? {
                let properties = &contact["properties"];
                let name = [
                    text_of(properties, "firstname"),
                    text_of(properties, "lastname"),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
                contacts.push(json!({
                    "name": Some(name).filter(|n| !n.is_empty()),
                    "email": text_of(properties, "email"),
                }));
            }
        }
        // A deal without a company keeps its own name as the account's, so
        // the handoff starts; the missing company shows in completeness.
        let account_name = text_of(&company, "name").or_else(|| deal.property("dealname"));
        let bundle = json!({
            "deal": {
                "source": "hubspot",
                "id": deal_id,
                "name": deal.property("dealname"),
                "amount": deal.property("amount").and_then(|a| a.trim().parse::<f64>().ok()),
                "currency": deal.property("deal_currency_code"),
                "closed_won_at": closed_won_at,
            },
            "account": {
                "name": account_name,
                "domain": text_of(&company, "domain").map(|d| crate::import::domain_of(&d)),
                "industry": text_of(&company, "industry"),
            },
            "contacts": contacts,
            "use_case": deal.property("description"),
        });
        Ok(crate::import::strip_nulls(bundle))
    }

    /// What a stage id means in the portal's pipelines, read anew (at most
    /// once a minute) when the id is not known yet.
    pub(crate) async fn stage(&self, stage_id: &str) -> Result<Option<StageKind>, Refusal> {
        let key = stage_id.trim().to_ascii_lowercase();
        let mut catalog = self.catalog.lock().await;
        if let Some(kind) = catalog.0.get(&key) {
            return Ok(Some(*kind));
        }
        if catalog
            .1
            .is_some_and(|read| read.elapsed() < CATALOG_REFRESH)
        {
            return Ok(None);
        }
        let pipelines = self.get("/crm/v3/pipelines/deals").await?;
        catalog.0 = pipelines.as_ref().map(stages_of).unwrap_or_default();
        catalog.1 = Some(Instant::now());
        Ok(catalog.0.get(&key).copied())
    }
}

/// Stage ids of `GET /crm/v3/pipelines/deals`: closed with probability 1 is
/// won, closed with probability 0 is lost, anything else still open.
pub(crate) fn stages_of(pipelines: &Value) -> BTreeMap<String, StageKind> {
    let mut stages = BTreeMap::new();
    for pipeline in pipelines["results"].as_array().into_iter().flatten() {
        for stage in pipeline["stages"].as_array().into_iter().flatten() {
            let Some(id) = id_text(&stage["id"]) else {
                continue;
            };
            let metadata = &stage["metadata"];
            let closed = text_of(metadata, "isClosed").is_some_and(|c| c == "true");
            let probability = text_of(metadata, "probability").and_then(|p| p.parse::<f64>().ok());
            let kind = match (closed, probability) {
                (true, Some(p)) if p >= 1.0 => StageKind::Won,
                (true, _) => StageKind::Lost,
                (false, _) => StageKind::Open,
            };
            stages.insert(id.to_ascii_lowercase(), kind);
        }
    }
    stages
}

/// An id given as a number or as text.
pub(crate) fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

fn text_of(value: &Value, name: &str) -> Option<String> {
    match value.get(name)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_stages_are_won_or_lost_by_their_probability() {
        let pipelines = json!({"results": [{"id": "777001", "stages": [
            {"id": "31337001", "label": "Contract signed", "metadata": {"isClosed": "true", "probability": "1.0"}},
            {"id": "31337002", "label": "Lost", "metadata": {"isClosed": "true", "probability": "0.0"}},
            {"id": "31337003", "label": "Demo", "metadata": {"isClosed": "false", "probability": "0.4"}},
            {"label": "no id", "metadata": {}}
        ]}]});
        let stages = stages_of(&pipelines);
        assert_eq!(stages.get("31337001"), Some(&StageKind::Won));
        assert_eq!(stages.get("31337002"), Some(&StageKind::Lost));
        assert_eq!(stages.get("31337003"), Some(&StageKind::Open));
        assert_eq!(stages.len(), 3);
        assert!(stages_of(&json!({"results": "nope"})).is_empty());
    }
}
