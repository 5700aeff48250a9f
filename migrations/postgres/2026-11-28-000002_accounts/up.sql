-- Accounts, tokens, namespace membership, model visibility, JWT signing keys.
CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    is_admin BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL
);

ALTER TABLE namespaces ADD COLUMN kind TEXT NOT NULL DEFAULT 'org';
ALTER TABLE namespaces ADD COLUMN owner_id TEXT REFERENCES users (id);
ALTER TABLE models ADD COLUMN visibility TEXT NOT NULL DEFAULT 'private';

CREATE TABLE memberships (
    namespace_id TEXT NOT NULL REFERENCES namespaces (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    role TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (namespace_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    expires_at TIMESTAMP,
    revoked_at TIMESTAMP,
    last_used_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE jwt_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    private_key BYTEA NOT NULL,
    public_key BYTEA NOT NULL,
    created_at TIMESTAMP NOT NULL,
    retired_at TIMESTAMP
);
