-- Where models are being served (docs/serving.md): each `kiln-runner serve` process reports, with a
-- runner-scoped token, what it serves and refreshes its row while it serves; rows silent for a while are
-- processes gone (not listed, and removed at the next report).
CREATE TABLE servings (
    id TEXT PRIMARY KEY,
    model_id TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    token_id TEXT NOT NULL,
    reported_by TEXT NOT NULL,
    name TEXT NOT NULL,
    alias TEXT,
    version TEXT NOT NULL,
    variant TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    engine TEXT NOT NULL,
    device TEXT NOT NULL,
    endpoints TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL
);
CREATE INDEX servings_by_model ON servings (model_id, last_seen_at);
