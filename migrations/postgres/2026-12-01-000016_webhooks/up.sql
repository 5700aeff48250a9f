-- Webhooks: subscriptions, and the transactional outbox of their deliveries.

-- Who hears what: a namespace's events, or one model's, by name (model '' for the whole namespace; a model
-- deleted and pushed again under its name is still heard). The secret
-- signs deliveries (Standard Webhooks: `whsec_` + base64 of the key); it is shown once, when created.
CREATE TABLE webhook_subscriptions (
    id TEXT PRIMARY KEY,
    namespace_id TEXT NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    description TEXT NOT NULL,
    secret TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    disabled_reason TEXT,
    consecutive_failures INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX webhook_subscriptions_namespace ON webhook_subscriptions (namespace_id, model);

-- The outbox: one row per event and subscription, written in the transaction that made the event, so a
-- committed event is always delivered (at least once, under one webhook-id) and a rolled-back one never.
-- `pending` rows are sent in order per subscription and model (`subject`); `delivered` and `failed`
-- (retries for a day ran out) are the log.
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    subject TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    lease_owner TEXT,
    lease_expires_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    -- Allocation order, which orders a subject's events (their transactions hold the subject's row).
    seq BIGSERIAL NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (subscription_id, subject, state, seq);
CREATE INDEX webhook_deliveries_subscription ON webhook_deliveries (subscription_id, created_at);

-- Every attempt: its answer, how long it took, the start of the receiver's body.
CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL,
    at TIMESTAMP NOT NULL,
    status INTEGER,
    latency_ms BIGINT NOT NULL,
    response TEXT,
    error TEXT,
    PRIMARY KEY (delivery_id, attempt)
);
