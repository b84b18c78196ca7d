-- Erasures of personal data, by request or by retention: one row per erasure
-- that changed something. The row holds nothing personal: the workflow id,
-- when, why, and how many rows of each table were touched.
-- Instants are RFC 3339 text, as on SQLite, so both read back the same.

CREATE TABLE erasures (
    id                BIGSERIAL PRIMARY KEY,
    workflow_id       TEXT NOT NULL,
    erased_at         TEXT NOT NULL,
    reason            TEXT NOT NULL,
    tasks             BIGINT NOT NULL,
    notifications     BIGINT NOT NULL,
    deliveries        BIGINT NOT NULL,
    delivery_attempts BIGINT NOT NULL
);

CREATE INDEX erasures_by_deal ON erasures (workflow_id);

-- The retention sweep finds cancelled handoffs by their last notification.
CREATE INDEX notifications_by_kind ON notifications (kind);
