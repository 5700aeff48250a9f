DROP INDEX variants_name;
DROP TABLE model_tags;
