-- Final outcomes of finished handoffs, written from their post-close reviews;
-- `handoff report` reads them. One row per handoff and per gate or milestone.

CREATE TABLE handoff_reviews (
    workflow_id              TEXT PRIMARY KEY,
    segment                  TEXT NOT NULL,
    outcome                  TEXT NOT NULL,
    ended_at                 TEXT NOT NULL,
    time_to_first_value_days REAL,
    expected_ttfv_days       INTEGER,
    recorded_at              TEXT NOT NULL
);

CREATE TABLE milestone_outcomes (
    workflow_id      TEXT NOT NULL,
    kind             TEXT NOT NULL,
    name             TEXT NOT NULL,
    status           TEXT NOT NULL,
    due_at           TEXT NOT NULL,
    actual_at        TEXT,
    escalation_level INTEGER NOT NULL,
    PRIMARY KEY (workflow_id, name)
);
