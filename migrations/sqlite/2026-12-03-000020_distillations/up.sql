-- Distillation jobs (docs/distillation.md). The lease, attempts and state are the job's row in
-- pipeline_jobs (kind 'distill', version_id the teacher, device the device class runners claim it for);
-- this row holds what only a distillation has. Deleting the teacher deletes its job and this row.
CREATE TABLE distillations (
    job_id TEXT PRIMARY KEY NOT NULL REFERENCES pipeline_jobs (id) ON DELETE CASCADE,
    -- Where the student goes: namespace/model:version.
    target TEXT NOT NULL,
    -- The request as given (JSON DistillationRequest).
    request TEXT NOT NULL,
    -- The dataset version, resolved when the job was asked for.
    data_version_id TEXT REFERENCES versions (id) ON DELETE SET NULL,
    -- Who asked, and what they could read then (JSON: null for everything, else namespace ids): the
    -- student is committed as theirs, and its lineage may name only what they could read.
    requested_by TEXT NOT NULL,
    requester_name TEXT NOT NULL,
    requester_visible TEXT,
    -- The runner's last progress report (JSON DistillationProgress).
    progress TEXT,
    -- The step of the training state kept in the store at jobs/<job_id>/state.safetensors.
    checkpoint_step BIGINT,
    -- The committed student.
    student_version_id TEXT REFERENCES versions (id) ON DELETE SET NULL
);
