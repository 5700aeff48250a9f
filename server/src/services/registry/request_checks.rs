//! What a push or a model update may ask for: files, pipeline options, metadata. Refused with 400 and the
//! reason before anything is written.

use std::collections::HashSet;

use kiln_core::ErrorCode;
use kiln_core::api::{FileEntry, UpdateModelRequest};

use super::MAX_FILES_PER_VERSION;
use crate::error::Error;

const MAX_TAGS: usize = 64;

/// What a version's file list must be: 1 to 100,000 files, sizes not negative, no path twice, no path
/// both a file and a folder.
pub fn check_files(files: &[FileEntry]) -> Result<(), Error> {
    if files.is_empty() {
        return Err(Error::bad_request(
            ErrorCode::NoFiles,
            "a version needs at least one file",
        ));
    }
    if files.len() > MAX_FILES_PER_VERSION {
        return Err(Error::bad_request(
            ErrorCode::TooManyFiles,
            format!("a version may hold at most {MAX_FILES_PER_VERSION} files"),
        ));
    }
    let mut paths = HashSet::new();
    for file in files {
        if !(0..=crate::services::uploads::MAX_BLOB_SIZE).contains(&file.size) {
            return Err(Error::bad_request(
                ErrorCode::InvalidSize,
                format!(
                    "{}: size must be between 0 and {} bytes",
                    file.path,
                    crate::services::uploads::MAX_BLOB_SIZE
                ),
            ));
        }
        if !paths.insert(file.path.as_str()) {
            return Err(Error::bad_request(
                ErrorCode::DuplicatePath,
                format!("{} is listed twice", file.path),
            ));
        }
    }
    for file in files {
        if let Some(dir) = file.path.ancestors().find(|dir| paths.contains(dir)) {
            return Err(Error::bad_request(
                ErrorCode::PathConflict,
                format!("{dir} is both a file and the folder of {}", file.path),
            ));
        }
    }
    Ok(())
}

/// Variant names kiln knows, and tolerances only for variants the push asks for.
pub(super) fn check_pipeline_options(
    options: &kiln_core::api::PipelineOptions,
) -> Result<(), Error> {
    use kiln_onnx::variants::{DECODER_DEFAULT_VARIANTS, DEFAULT_VARIANTS, VariantKind};
    // Without a list, the step picks the model's defaults: a tolerance may name any of them.
    let requested: Vec<String> = options.variants.clone().unwrap_or_else(|| {
        DEFAULT_VARIANTS
            .iter()
            .chain(DECODER_DEFAULT_VARIANTS)
            .map(|s| (*s).to_owned())
            .collect()
    });
    for name in &requested {
        if VariantKind::parse(name).is_none() {
            return Err(Error::bad_request(
                ErrorCode::InvalidVariant,
                format!(
                    "{name:?} is not a variant kiln makes: fp32, fused, fp16, int8, int8-dynamic, pruned-N (N from 1 to 99), \
                     int4[-bN][-asym][-qdq] or int8-bN[-asym] (N 16, 32, 64, 128 or 256)"
                ),
            ));
        }
    }
    for (name, tolerance) in options.tolerances.iter().flatten() {
        if !requested.contains(name) {
            return Err(Error::bad_request(
                ErrorCode::InvalidTolerance,
                format!("a tolerance is given for {name:?}, which this push does not ask for"),
            ));
        }
        if !tolerance.is_finite() || *tolerance <= 0.0 {
            return Err(Error::bad_request(
                ErrorCode::InvalidTolerance,
                format!("the tolerance for {name} must be a positive number"),
            ));
        }
    }
    use kiln_core::api::PipelineOptions as Options;
    for (field, sizes, max) in [
        (
            "benchmark_batch_sizes",
            &options.benchmark_batch_sizes,
            Options::MAX_BENCHMARK_BATCH,
        ),
        (
            "benchmark_sequence_lengths",
            &options.benchmark_sequence_lengths,
            Options::MAX_BENCHMARK_SEQUENCE,
        ),
    ] {
        let Some(sizes) = sizes else { continue };
        let distinct: std::collections::BTreeSet<_> = sizes.iter().collect();
        if sizes.is_empty()
            || sizes.len() > Options::MAX_BENCHMARK_SIZES
            || distinct.len() != sizes.len()
            || sizes.iter().any(|s| !(1..=max).contains(s))
        {
            return Err(Error::bad_request(
                ErrorCode::InvalidBenchmarkOptions,
                format!(
                    "{field}: 1 to {} different sizes, each 1 to {max}",
                    Options::MAX_BENCHMARK_SIZES
                ),
            ));
        }
    }
    Ok(())
}

pub(super) fn check_metadata(update: &UpdateModelRequest) -> Result<(), Error> {
    if let Some(description) = &update.description
        && description.chars().count() > 10_000
    {
        return Err(Error::bad_request(
            ErrorCode::InvalidDescription,
            "the description may have at most 10000 characters",
        ));
    }
    if let Some(tags) = &update.tags {
        if tags.len() > MAX_TAGS {
            return Err(Error::bad_request(
                ErrorCode::InvalidTags,
                format!("a model may have at most {MAX_TAGS} tags"),
            ));
        }
        if let Some(bad) = tags
            .iter()
            .find(|t| t.is_empty() || t.chars().count() > 64 || t.chars().any(char::is_control))
        {
            return Err(Error::bad_request(
                ErrorCode::InvalidTags,
                format!("tag {bad:?} must be 1 to 64 characters without control characters"),
            ));
        }
    }
    Ok(())
}
