DROP INDEX oci_documents_subject;
DROP TABLE oci_documents;
