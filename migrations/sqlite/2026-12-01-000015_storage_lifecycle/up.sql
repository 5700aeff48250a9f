-- Storage lifecycle: garbage collection, retention rules, quotas and the store/database check.

-- A blob's row is the database's word on its bytes. `live`: in the store, usable. `pending`: a writer
-- reserved the digest and is putting its bytes in the store (so a collection running meanwhile cannot
-- delete an object it is about to record). `condemned`: collection decided to delete it and is removing
-- its object; nothing may reference it, and the row goes once the object is gone (a collection killed in
-- between finishes the job on its next run). `missing`: the store check found its object absent or wrong;
-- not usable, and a push of the same bytes restores it.
ALTER TABLE blobs ADD COLUMN state TEXT NOT NULL DEFAULT 'live';
CREATE INDEX blobs_state ON blobs (state, digest);

-- Collection asks, for each batch of blobs, who still references them.
CREATE INDEX variant_files_digest ON variant_files (digest);
CREATE INDEX oci_blob_links_digest ON oci_blob_links (digest);

-- Why a version cannot be served (a blob the store check found missing), or NULL.
ALTER TABLE versions ADD COLUMN damage TEXT;

-- Work one replica does at a time (a collection run): whoever holds an unexpired lease.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);

-- Which versions a namespace or one model keeps; model_id '' is the rule for the whole namespace (a
-- model's own rule replaces it). A rule with no field set keeps everything.
CREATE TABLE retention_rules (
    namespace_id TEXT NOT NULL REFERENCES namespaces (id) ON DELETE CASCADE,
    model_id TEXT NOT NULL,
    keep_last BIGINT,
    keep_days BIGINT,
    keep_aliased_days BIGINT,
    updated_at TIMESTAMP NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (namespace_id, model_id)
);

-- The most a namespace may hold (NULL: no limit).
CREATE TABLE namespace_quotas (
    namespace_id TEXT PRIMARY KEY REFERENCES namespaces (id) ON DELETE CASCADE,
    max_bytes BIGINT,
    max_versions BIGINT,
    updated_at TIMESTAMP NOT NULL,
    updated_by TEXT NOT NULL
);
