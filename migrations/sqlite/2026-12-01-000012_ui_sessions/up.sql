-- Web UI sign-ins: the browser holds a random session id in an HttpOnly cookie, the server only its
-- SHA-256, so a copy of the database signs nobody in. Deleting the row signs the session out.
CREATE TABLE ui_sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- What the session may do: all the user's roles (password) or the API token's scopes.
    scopes TEXT NOT NULL,
    -- The API token signed in with, if any: revoking it ends the session.
    token_id TEXT,
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX ui_sessions_expires ON ui_sessions (expires_at);
-- Listing models most recently updated first (the web UI's default sort is by name; this one is asked).
CREATE INDEX models_updated ON models (updated_at);
