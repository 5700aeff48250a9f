DROP INDEX models_updated;
DROP TABLE ui_sessions;
