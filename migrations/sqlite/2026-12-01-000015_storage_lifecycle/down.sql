DROP TABLE namespace_quotas;
DROP TABLE retention_rules;
DROP TABLE leases;
ALTER TABLE versions DROP COLUMN damage;
DROP INDEX oci_blob_links_digest;
DROP INDEX variant_files_digest;
DROP INDEX blobs_state;
ALTER TABLE blobs DROP COLUMN state;
