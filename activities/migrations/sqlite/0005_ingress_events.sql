-- Events the webhook receiver accepted, one row per source event id, written
-- only after Temporal took the signal: a retried delivery finds its row and
-- is acknowledged as a duplicate. occurred_at (epoch milliseconds, as the
-- CRMs send it) orders a deal's stage changes, so a late one is not applied.

CREATE TABLE ingress_events (
    source      TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    kind        TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    PRIMARY KEY (source, event_id)
);

CREATE INDEX ingress_events_by_deal ON ingress_events (workflow_id, kind);
