-- Runners measure with engines (kiln's evaluator, ONNX Runtime); benchmarks are queued per device class and
-- engine (docs/runners.md, "Engines"). Jobs from before were all kiln's.
ALTER TABLE runners ADD COLUMN engines TEXT NOT NULL DEFAULT '[]';
ALTER TABLE pipeline_jobs ADD COLUMN engine TEXT;
UPDATE pipeline_jobs SET engine = 'kiln' WHERE kind = 'benchmark';
