-- The OCI distribution endpoint serves each version as a ModelPack artifact: an image manifest and a small
-- config document that kiln writes from what it knows of the version, and the version's signed deployment
-- manifest as a referrer of it (a referrer manifest, an empty config, the JWS). This keeps their exact
-- bytes (their digests are what clients pin), so each is answered by digest as it was first served.
CREATE TABLE oci_documents (
    model_id TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    body TEXT NOT NULL,
    -- The version it was written for.
    version_id TEXT REFERENCES versions (id) ON DELETE CASCADE,
    -- For a referrer: the manifest it refers to, and its artifact type.
    subject TEXT,
    artifact_type TEXT,
    PRIMARY KEY (model_id, digest)
);
CREATE INDEX oci_documents_subject ON oci_documents (model_id, subject);
