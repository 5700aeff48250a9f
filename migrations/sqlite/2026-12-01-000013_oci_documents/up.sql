-- The OCI distribution endpoint serves each version as a ModelPack artifact: an image manifest and a small
-- config document that kiln writes from what it knows of the version. This keeps their exact bytes (their
-- digests are what clients pin), so a manifest or config is answered by digest as it was by tag.
CREATE TABLE oci_documents (
    model_id TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (model_id, digest)
);
