//! Events the webhook receiver (`handoff ingress`) applied: the duplicate
//! check by the source's event id, and the order of a deal's stage changes.

use super::{Ledger, LedgerError, Pool, now_text};

/// One event the receiver handed to Temporal (or deliberately dropped).
#[derive(Debug, Clone, Copy)]
pub struct IngressEvent<'a> {
    /// `generic`, `hubspot` or `salesforce`.
    pub source: &'a str,
    /// The source's own id of the event.
    pub event_id: &'a str,
    /// The handoff it concerns.
    pub workflow_id: &'a str,
    /// `stage` for stage changes, deletions and merges; else the signal name.
    pub kind: &'a str,
    /// When the change happened in the source, epoch milliseconds.
    pub occurred_at: i64,
    /// `accepted`, `late` or `ignored`.
    pub outcome: &'a str,
}

impl Ledger {
    /// Whether the source's event was already recorded.
    pub async fn ingress_event_seen(
        &self,
        source: &str,
        event_id: &str,
    ) -> Result<bool, LedgerError> {
        let found = on_pool!(self, pool => {
            let query = sqlx::query(
                "SELECT 1 FROM ingress_events WHERE source = $1 AND event_id = $2",
            )
            .bind(source)
            .bind(event_id);
            query.fetch_optional(pool).await?.is_some()
        });
        Ok(found)
    }

    /// Records an event once; `false` when it was already there.
    pub async fn record_ingress_event(
        &self,
        event: &IngressEvent<'_>,
    ) -> Result<bool, LedgerError> {
        let inserted = on_pool!(self, pool => {
            let query = sqlx::query(
                "INSERT INTO ingress_events
                   (source, event_id, workflow_id, kind, occurred_at, received_at, outcome)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (source, event_id) DO NOTHING",
            )
            .bind(event.source)
            .bind(event.event_id)
            .bind(event.workflow_id)
            .bind(event.kind)
            .bind(event.occurred_at)
            .bind(now_text())
            .bind(event.outcome);
            query.execute(pool).await?.rows_affected()
        });
        Ok(inserted == 1)
    }

    /// The latest `occurred_at` of the handoff's recorded events of `kind`.
    pub async fn latest_ingress_event(
        &self,
        workflow_id: &str,
        kind: &str,
    ) -> Result<Option<i64>, LedgerError> {
        let latest: Option<i64> = on_pool!(self, pool => {
            let query = sqlx::query_scalar(
                "SELECT MAX(occurred_at) FROM ingress_events WHERE workflow_id = $1 AND kind = $2",
            )
            .bind(workflow_id)
            .bind(kind);
            query.fetch_one(pool).await?
        });
        Ok(latest)
    }
}

impl Ledger {
    /// Makes the handoff of `workflow_id` the one that events for
    /// `alias_workflow_id` reach; the first alias recorded stays.
    pub async fn record_alias(
        &self,
        alias_workflow_id: &str,
        workflow_id: &str,
    ) -> Result<bool, LedgerError> {
        let inserted = on_pool!(self, pool => {
            let query = sqlx::query(
                "INSERT INTO deal_aliases (alias_workflow_id, workflow_id, created_at)
                 VALUES ($1, $2, $3) ON CONFLICT (alias_workflow_id) DO NOTHING",
            )
            .bind(alias_workflow_id)
            .bind(workflow_id)
            .bind(now_text());
            query.execute(pool).await?.rows_affected()
        });
        Ok(inserted == 1)
    }

    /// The handoff that events for `workflow_id` reach: its alias target, or itself.
    pub async fn resolve_alias(&self, workflow_id: &str) -> Result<String, LedgerError> {
        let target: Option<String> = on_pool!(self, pool => {
            let query = sqlx::query_scalar(
                "SELECT workflow_id FROM deal_aliases WHERE alias_workflow_id = $1",
            )
            .bind(workflow_id);
            query.fetch_optional(pool).await?
        });
        Ok(target.unwrap_or_else(|| workflow_id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::tests::ledgers;

    #[tokio::test]
    async fn an_event_is_recorded_once_and_orders_its_deal() {
        for (ledger, _dir) in ledgers().await {
            let event = IngressEvent {
                source: "hubspot",
                event_id: "9100001",
                workflow_id: "handoff-hubspot-1-2",
                kind: "stage",
                occurred_at: 1_772_830_800_000,
                outcome: "accepted",
            };
            assert!(
                !ledger
                    .ingress_event_seen("hubspot", "9100001")
                    .await
                    .unwrap()
            );
            assert_eq!(
                ledger
                    .latest_ingress_event("handoff-hubspot-1-2", "stage")
                    .await
                    .unwrap(),
                None
            );
            assert!(ledger.record_ingress_event(&event).await.unwrap());
            assert!(!ledger.record_ingress_event(&event).await.unwrap());
            assert!(
                ledger
                    .ingress_event_seen("hubspot", "9100001")
                    .await
                    .unwrap()
            );
            assert!(
                !ledger
                    .ingress_event_seen("generic", "9100001")
                    .await
                    .unwrap()
            );
            let later = IngressEvent {
                event_id: "9100002",
                occurred_at: 1_772_830_900_000,
                ..event
            };
            ledger.record_ingress_event(&later).await.unwrap();
            assert_eq!(
                ledger
                    .latest_ingress_event("handoff-hubspot-1-2", "stage")
                    .await
                    .unwrap(),
                Some(1_772_830_900_000)
            );
        }
    }

    #[tokio::test]
    async fn an_alias_leads_to_the_first_handoff_it_was_given() {
        for (ledger, _dir) in ledgers().await {
            let merged = "handoff-hubspot-1-6";
            let surviving = "handoff-hubspot-1-7";
            assert_eq!(ledger.resolve_alias(surviving).await.unwrap(), surviving);
            assert!(ledger.record_alias(surviving, merged).await.unwrap());
            assert!(
                !ledger
                    .record_alias(surviving, "handoff-hubspot-1-8")
                    .await
                    .unwrap()
            );
            assert_eq!(ledger.resolve_alias(surviving).await.unwrap(), merged);
            assert_eq!(ledger.resolve_alias(merged).await.unwrap(), merged);
        }
    }
}
