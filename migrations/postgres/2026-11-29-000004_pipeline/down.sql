DROP TABLE variant_files;
DROP TABLE variants;
DROP TABLE pipeline_jobs;
