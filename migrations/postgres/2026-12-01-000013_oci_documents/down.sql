DROP TABLE oci_documents;
