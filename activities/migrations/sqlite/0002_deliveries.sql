-- One row per effect and channel: recorded before a send, marked after, so a
-- retry after a recorded success sends nothing.

CREATE TABLE deliveries (
    effect_key TEXT NOT NULL,
    channel    TEXT NOT NULL,
    status     TEXT NOT NULL,
    detail     TEXT,
    attempts   INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (effect_key, channel)
);

CREATE INDEX delivery_attempts_by_effect ON delivery_attempts (effect_key);
