ALTER TABLE upload_sessions DROP COLUMN writer_at;
ALTER TABLE upload_sessions DROP COLUMN writer;
DROP INDEX oci_tar_layers_file;
DROP TABLE oci_tar_layers;
DROP INDEX oci_version_manifests_digest;
DROP TABLE oci_version_manifests;
DROP TABLE oci_blob_links;
DROP INDEX oci_uploads_updated;
DROP TABLE oci_uploads;
