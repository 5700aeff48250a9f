-- Benchmark runners: what each registered as, the credential it registered with (only that credential may
-- act for it), and its last heartbeat (a runner without one for a lease period is lost).
CREATE TABLE runners (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    token_id TEXT NOT NULL,
    device TEXT NOT NULL,
    device_kind TEXT NOT NULL,
    device_name TEXT NOT NULL,
    memory_bytes BIGINT,
    driver TEXT,
    engine TEXT NOT NULL,
    kiln_version TEXT NOT NULL,
    capabilities TEXT NOT NULL,
    threads INTEGER,
    registered_at TIMESTAMP NOT NULL,
    last_heartbeat_at TIMESTAMP NOT NULL
);
-- Benchmark jobs are pipeline jobs for one variant on one device class (cpu, cuda), claimed by runners.
ALTER TABLE pipeline_jobs ADD COLUMN variant TEXT;
ALTER TABLE pipeline_jobs ADD COLUMN device TEXT;
CREATE INDEX pipeline_jobs_claim ON pipeline_jobs (state, kind, device, created_at);
-- One row per variant, device and batch size measured; the JSON is the published BenchmarkResult.
CREATE TABLE benchmark_results (
    id TEXT PRIMARY KEY NOT NULL,
    version_id TEXT NOT NULL REFERENCES versions (id) ON DELETE CASCADE,
    variant TEXT NOT NULL,
    job_id TEXT NOT NULL,
    runner_id TEXT NOT NULL,
    device TEXT NOT NULL,
    batch_size BIGINT NOT NULL,
    result TEXT NOT NULL,
    measured_at TIMESTAMP NOT NULL
);
CREATE INDEX benchmark_results_version ON benchmark_results (version_id, variant);
