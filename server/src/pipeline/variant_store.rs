//! Storing what a job produced: variant rows built from the checker's reading of a model, files uploaded
//! as blobs, and the rows written only while the job's worker still holds it.

use std::path::PathBuf;

use kiln_core::api::VariantStatus;
use kiln_onnx::model_check::{CheckedModel, ValueSignature};

use super::{HeldJob, JobContext, JobError};
use crate::db::blob_writes;
use crate::db::now;
use crate::db::records::{VariantFileRow, VariantRow};
use crate::db::repos::blobs::Reservation;
use crate::db::repos::variants;
use crate::db::views::signature_of;
use crate::storage::BlobStore;

fn signatures(values: &[ValueSignature]) -> String {
    serde_json::to_string(&values.iter().map(signature_of).collect::<Vec<_>>())
        .expect("signatures serialize")
}

/// The row of a variant whose model file is `model_path`.
pub fn variant_row(
    version_id: &str,
    name: &str,
    status: VariantStatus,
    model_path: &str,
    checked: &CheckedModel,
    validation: Option<&serde_json::Value>,
    passes: Option<&serde_json::Value>,
) -> VariantRow {
    VariantRow {
        version_id: version_id.to_owned(),
        name: name.to_owned(),
        status: status.as_str().to_owned(),
        model_path: model_path.to_owned(),
        opset: checked.opset as i32,
        inputs: signatures(&checked.inputs),
        outputs: signatures(&checked.outputs),
        validation: validation.map(|v| v.to_string()),
        created_at: now(),
        passes: passes.map(|p| p.to_string()),
    }
}

/// Uploads a variant's local files (name, path) as blobs.
pub async fn upload_files(
    context: &JobContext,
    version_id: &str,
    variant: &str,
    files: &[(String, PathBuf)],
) -> Result<Vec<VariantFileRow>, JobError> {
    let mut rows = Vec::with_capacity(files.len());
    for (name, path) in files {
        let (digest, size) = BlobStore::hash_file(path).await?;
        if blob_writes::reserve(&context.db, &digest, size as i64).await? == Reservation::Write {
            context.store.put_file(path, &digest).await?;
            // Live but unreferenced until `store` names it: the grace period keeps it meanwhile (and
            // `store` fails, for the job to retry, if a collection with none took it).
            blob_writes::written(&context.db, &digest).await?;
        }
        rows.push(VariantFileRow {
            version_id: version_id.to_owned(),
            variant: variant.to_owned(),
            path: name.clone(),
            digest: digest.to_string(),
            size: size as i64,
        });
    }
    Ok(rows)
}

/// Writes the variants (replacing earlier ones of the same names) while the worker still holds the job.
pub async fn store(
    context: &JobContext,
    held: &HeldJob,
    made: Vec<(VariantRow, Vec<VariantFileRow>)>,
) -> Result<(), JobError> {
    let held = held.clone();
    context
        .db
        .run(move |conn| {
            use diesel::Connection;
            let digests: Vec<String> = made
                .iter()
                .flat_map(|(_, files)| files.iter().map(|f| f.digest.clone()))
                .collect();
            conn.transaction(|conn| {
                held.keep_holding(conn)?;
                blob_writes::hold_live(conn, &digests, &[])?;
                for (row, files) in &made {
                    variants::replace(conn, row, files)?;
                }
                Ok(())
            })
        })
        .await?;
    Ok(())
}
