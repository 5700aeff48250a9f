-- The kiln-server processes sharing this database, each refreshing its row every few seconds: how many
-- are alive divides the per-caller rate limit between them (docs/operations.md, "Replicas").
CREATE TABLE replicas (
    id TEXT PRIMARY KEY,
    started_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL
);
