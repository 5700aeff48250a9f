ALTER TABLE namespaces DROP COLUMN store_unsafe_pickles;
