DROP TABLE audit_log;
DROP TABLE upload_parts;
DROP TABLE upload_sessions;
DROP TABLE version_files;
DROP TABLE versions;
DROP TABLE blobs;
DROP TABLE models;
DROP TABLE namespaces;
