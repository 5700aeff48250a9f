DROP TABLE jwt_keys;
DROP TABLE api_tokens;
DROP TABLE memberships;
ALTER TABLE models DROP COLUMN visibility;
ALTER TABLE namespaces DROP COLUMN owner_id;
ALTER TABLE namespaces DROP COLUMN kind;
DROP TABLE users;
