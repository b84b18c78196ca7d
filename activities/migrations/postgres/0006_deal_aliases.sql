-- CRM ids that lead to another deal's handoff: when a CRM merges a deal into
-- another, the surviving deal's id becomes an alias of the handoff already
-- running, so its later events reach that handoff instead of starting one.

CREATE TABLE deal_aliases (
    alias_workflow_id TEXT PRIMARY KEY,
    workflow_id       TEXT NOT NULL,
    created_at        TEXT NOT NULL
);
