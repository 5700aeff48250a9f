-- Listing models by tag in the database: one row per (model, tag), beside the JSON list the API returns.
CREATE TABLE model_tags (
    model_id TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (model_id, tag)
);
CREATE INDEX model_tags_tag ON model_tags (tag, model_id);
INSERT INTO model_tags (model_id, tag) SELECT models.id, json_each.value FROM models, json_each(models.tags);
-- "Has a deployable variant of kind X" looks variants up by name.
CREATE INDEX variants_name ON variants (name, status, version_id);
