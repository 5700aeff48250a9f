-- Every listing pages by its sort key (a cursor); these keep each page an index range scan.
CREATE INDEX versions_model_created ON versions (model_id, created_at, version);
CREATE INDEX audit_log_target_created ON audit_log (target, created_at, id);
CREATE INDEX api_tokens_user_created ON api_tokens (user_id, created_at, id);
CREATE INDEX runners_name ON runners (name, id);
