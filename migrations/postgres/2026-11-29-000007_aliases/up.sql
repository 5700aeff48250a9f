-- Aliases name one version of a model (acme/sentiment@production). The row is never deleted while its
-- model exists, so an alias's manifest sequence keeps increasing even across moves back and forth.
CREATE TABLE aliases (
    id TEXT PRIMARY KEY NOT NULL,
    model_id TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    version_id TEXT NOT NULL REFERENCES versions (id),
    sequence BIGINT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    updated_by TEXT NOT NULL,
    UNIQUE (model_id, name)
);
-- Every move, with version names as text so the history outlives a deleted version.
CREATE TABLE alias_events (
    id TEXT PRIMARY KEY NOT NULL,
    alias_id TEXT NOT NULL REFERENCES aliases (id) ON DELETE CASCADE,
    from_version TEXT,
    to_version TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    actor TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX alias_events_alias ON alias_events (alias_id, sequence);
ALTER TABLE manifests ADD COLUMN alias_id TEXT REFERENCES aliases (id) ON DELETE CASCADE;
-- One manifest per sequence: per alias, and per version for a version's own manifests.
CREATE UNIQUE INDEX manifests_alias_sequence ON manifests (alias_id, sequence);
CREATE UNIQUE INDEX manifests_version_sequence ON manifests (version_id, sequence) WHERE alias_id IS NULL;
