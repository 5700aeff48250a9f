DROP TABLE version_links;
ALTER TABLE versions DROP COLUMN lineage;
