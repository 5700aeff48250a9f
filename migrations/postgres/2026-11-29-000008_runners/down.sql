DROP TABLE benchmark_results;
DROP INDEX pipeline_jobs_claim;
ALTER TABLE pipeline_jobs DROP COLUMN device;
ALTER TABLE pipeline_jobs DROP COLUMN variant;
DROP TABLE runners;
