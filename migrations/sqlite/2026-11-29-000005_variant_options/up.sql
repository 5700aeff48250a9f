-- Optimized variants: the passes that made them, and the options a push gave its pipeline.
ALTER TABLE variants ADD COLUMN passes TEXT;
ALTER TABLE pipeline_jobs ADD COLUMN options TEXT;
