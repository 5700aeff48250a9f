-- Signed deployment manifests: one per version when its pipeline is ready (alias manifests follow), kept
-- forever by sequence so old ones stay retrievable and re-signing never changes a published one.
CREATE TABLE manifests (
    id TEXT PRIMARY KEY NOT NULL,
    version_id TEXT NOT NULL REFERENCES versions (id) ON DELETE CASCADE,
    alias TEXT,
    sequence BIGINT NOT NULL,
    payload TEXT NOT NULL,
    jws TEXT NOT NULL,
    kid TEXT NOT NULL,
    issued_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX manifests_version ON manifests (version_id, sequence);
