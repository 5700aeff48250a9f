-- Lineage (docs/api.md, "Lineage"): what a push declared its version came from, as recorded (JSON: kiln
-- references as given, each kiln dataset's file digests as they were then), and one row per kiln version it
-- names, for the status of each and for listing what was derived from a version. Deleting either version
-- deletes the link, as everything else of a deleted version goes: a child keeps its parent's reference text
-- in its lineage, so deleting a parent never breaks its children.
ALTER TABLE versions ADD COLUMN lineage TEXT;

CREATE TABLE version_links (
    version_id TEXT NOT NULL REFERENCES versions (id) ON DELETE CASCADE,
    -- 'parent' or 'dataset', and the entry's index in the lineage's list of that kind.
    kind TEXT NOT NULL,
    position INTEGER NOT NULL,
    linked_version_id TEXT NOT NULL REFERENCES versions (id) ON DELETE CASCADE,
    -- The parent's role (teacher, base, ...); 'dataset' for a dataset.
    role TEXT NOT NULL,
    PRIMARY KEY (version_id, kind, position)
);
-- What was derived from a version (the other way round is the primary key).
CREATE INDEX version_links_linked ON version_links (linked_version_id, version_id);
