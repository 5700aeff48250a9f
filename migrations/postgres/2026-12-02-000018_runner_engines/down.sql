ALTER TABLE pipeline_jobs DROP COLUMN engine;
ALTER TABLE runners DROP COLUMN engines;
