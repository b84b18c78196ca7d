-- The ledger: every deal seen, every task and notification, every delivery
-- attempt. Idempotency keys are unique, so a retried activity writes nothing new.
-- Instants are RFC 3339 text, as on SQLite, so both read back the same.

CREATE TABLE deals (
    workflow_id   TEXT PRIMARY KEY,
    source        TEXT NOT NULL,
    deal_id       TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    first_run_id  TEXT
);

CREATE TABLE tasks (
    idempotency_key TEXT PRIMARY KEY,
    workflow_id     TEXT NOT NULL,
    task_key        TEXT NOT NULL,
    trigger_name    TEXT NOT NULL,
    title           TEXT NOT NULL,
    owner_role      TEXT NOT NULL,
    owner           TEXT NOT NULL,
    due_at          TEXT NOT NULL,
    status          TEXT NOT NULL,
    depends_on      TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (workflow_id, task_key)
);

CREATE INDEX tasks_by_deal ON tasks (workflow_id);

CREATE TABLE notifications (
    idempotency_key TEXT PRIMARY KEY,
    workflow_id     TEXT NOT NULL,
    kind            TEXT NOT NULL,
    milestone       TEXT,
    level           BIGINT,
    recipients      TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL,
    created_at      TEXT NOT NULL
);

CREATE INDEX notifications_by_deal ON notifications (workflow_id);

CREATE TABLE delivery_attempts (
    id         BIGSERIAL PRIMARY KEY,
    effect_key TEXT NOT NULL,
    channel    TEXT NOT NULL,
    attempt    BIGINT NOT NULL,
    outcome    TEXT NOT NULL,
    detail     TEXT,
    at         TEXT NOT NULL
);
