-- A namespace's admins may let the scan store pickles whose globals fall outside the allowlist, flagged and
-- never loaded, instead of refusing the version (off by default: the scan stays fail-closed).
ALTER TABLE namespaces ADD COLUMN store_unsafe_pickles BOOLEAN NOT NULL DEFAULT 0;
