//! Read models: rows of several tables put together in the shapes the API, the manifests and the pipeline
//! show. They sit below the services so that every floor above the database reads a version the same way.

mod lineage;
pub mod operations;
pub mod usage;
mod version_detail;

pub use lineage::{derived_versions, resolved_lineage};
pub use version_detail::{
    SCAN_KIND, file_entry, flagged_files, signature_of, variant_file_entries, version_detail,
};
