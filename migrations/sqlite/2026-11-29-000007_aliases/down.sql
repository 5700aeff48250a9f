DROP INDEX manifests_version_sequence;
DROP INDEX manifests_alias_sequence;
ALTER TABLE manifests DROP COLUMN alias_id;
DROP TABLE alias_events;
DROP TABLE aliases;
