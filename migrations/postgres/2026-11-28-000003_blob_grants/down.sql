ALTER TABLE upload_sessions DROP COLUMN user_id;
DROP TABLE blob_grants;
