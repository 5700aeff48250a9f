-- Who may use a blob in a version: whoever uploaded its bytes (a grant), besides anyone who can read a
-- version that already holds it. Upload sessions belong to the user who started them.
CREATE TABLE blob_grants (
    digest TEXT NOT NULL REFERENCES blobs (digest),
    user_id TEXT NOT NULL REFERENCES users (id),
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (digest, user_id)
);
ALTER TABLE upload_sessions ADD COLUMN user_id TEXT REFERENCES users (id);
