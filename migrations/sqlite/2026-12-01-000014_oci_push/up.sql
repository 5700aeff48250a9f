-- Pushing through the OCI distribution endpoint. A client uploads blobs without naming their digest until
-- the last request, in chunks of any length, into a repository that may not exist yet: an upload keeps
-- the repository by name, the staged parts' ETags (every whole part; a shorter tail waits beside them) and
-- the hash state, so it resumes on any replica after any restart.
CREATE TABLE oci_uploads (
    id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    model TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    upload_offset BIGINT NOT NULL,
    part_size BIGINT NOT NULL,
    backend_upload_id TEXT NOT NULL,
    -- The ETags of the staged whole parts, in order, as a JSON array.
    part_etags TEXT NOT NULL,
    hash_state BLOB NOT NULL,
    -- The request writing to it now, if any, and when it last said so: one writer at a time, so the
    -- staged bytes are always the ones hashed.
    writer TEXT,
    writer_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX oci_uploads_updated ON oci_uploads (updated_at);

-- Blobs a repository holds that no version names (yet): pushed or mounted before their manifest, and a
-- pushed manifest's config. By name, as a push may come before the model does.
CREATE TABLE oci_blob_links (
    namespace TEXT NOT NULL,
    model TEXT NOT NULL,
    digest TEXT NOT NULL REFERENCES blobs (digest),
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (namespace, model, digest)
);

-- The manifest a client pushed under a version's tag (kept byte for byte in oci_documents: its digest is
-- what the client holds); a version without one is served the ModelPack manifest kiln writes for it.
-- Several tags may name the same bytes, so this is per version, not per document.
CREATE TABLE oci_version_manifests (
    version_id TEXT PRIMARY KEY REFERENCES versions (id) ON DELETE CASCADE,
    model_id TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    digest TEXT NOT NULL
);
CREATE INDEX oci_version_manifests_digest ON oci_version_manifests (model_id, digest);

-- A file as a layer of a container image (under models/): an uncompressed tar of its folders' and its
-- own headers, its bytes, and zeros. Only the headers are kept: the layer is read through from the file's
-- blob, so no weight is stored twice, and its digest, hashed once, is what clients pin.
CREATE TABLE oci_tar_layers (
    digest TEXT PRIMARY KEY,
    file_digest TEXT NOT NULL,
    path TEXT NOT NULL,
    header BLOB NOT NULL,
    file_size BIGINT NOT NULL,
    size BIGINT NOT NULL
);
CREATE UNIQUE INDEX oci_tar_layers_file ON oci_tar_layers (file_digest, path);

-- The same one-writer rule for `kiln push` upload sessions: two requests writing the same chunk at once
-- could leave one's parts staged under the other's hash state.
ALTER TABLE upload_sessions ADD COLUMN writer TEXT;
ALTER TABLE upload_sessions ADD COLUMN writer_at TIMESTAMP;
