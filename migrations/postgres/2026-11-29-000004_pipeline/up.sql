-- The pipeline: jobs run on every committed version, and the variants they produce (issue 4: `onnx`).
-- A job is claimed by setting its lease; a lease that runs out (a worker that died) makes it claimable again.
CREATE TABLE pipeline_jobs (
    id TEXT PRIMARY KEY NOT NULL,
    version_id TEXT NOT NULL REFERENCES versions (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    message TEXT,
    report TEXT,
    lease_owner TEXT,
    lease_expires_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    started_at TIMESTAMP,
    finished_at TIMESTAMP
);
CREATE INDEX pipeline_jobs_version ON pipeline_jobs (version_id);
CREATE INDEX pipeline_jobs_state ON pipeline_jobs (state, created_at);

CREATE TABLE variants (
    version_id TEXT NOT NULL REFERENCES versions (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    model_path TEXT NOT NULL,
    opset INTEGER NOT NULL,
    inputs TEXT NOT NULL,
    outputs TEXT NOT NULL,
    validation TEXT,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (version_id, name)
);

CREATE TABLE variant_files (
    version_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    path TEXT NOT NULL,
    digest TEXT NOT NULL REFERENCES blobs (digest),
    size BIGINT NOT NULL,
    PRIMARY KEY (version_id, variant, path),
    FOREIGN KEY (version_id, variant) REFERENCES variants (version_id, name) ON DELETE CASCADE
);
