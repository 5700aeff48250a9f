ALTER TABLE pipeline_jobs DROP COLUMN options;
ALTER TABLE variants DROP COLUMN passes;
