-- Erasures of personal data, by request or by retention: one row per erasure
-- that changed something. The row holds nothing personal: the workflow id,
-- when, why, and how many rows of each table were touched.

CREATE TABLE erasures (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    workflow_id       TEXT NOT NULL,
    erased_at         TEXT NOT NULL,
    reason            TEXT NOT NULL,
    tasks             INTEGER NOT NULL,
    notifications     INTEGER NOT NULL,
    deliveries        INTEGER NOT NULL,
    delivery_attempts INTEGER NOT NULL
);

CREATE INDEX erasures_by_deal ON erasures (workflow_id);

-- The retention sweep finds cancelled handoffs by their last notification.
CREATE INDEX notifications_by_kind ON notifications (kind);
