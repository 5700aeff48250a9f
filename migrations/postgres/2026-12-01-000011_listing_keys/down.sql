DROP INDEX runners_name;
DROP INDEX api_tokens_user_created;
DROP INDEX audit_log_target_created;
DROP INDEX versions_model_created;
