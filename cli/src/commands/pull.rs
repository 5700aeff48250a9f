//! `kiln pull NS/MODEL:VERSION|NS/MODEL@ALIAS -o DIR [--file PATH] [--variant NAME]`: download, check
//! every byte against its digest (for an alias, the digests of its verified, signed manifest). A variant
//! comes with the version's `config.json` beside its model, as an exported ONNX folder has it: serving
//! runtimes read the classes' names and the architecture there (kiln-runner's labels, Optimum's ORTModel).

use std::path::{Path, PathBuf};

use futures_util::{StreamExt, TryStreamExt};
use indicatif::ProgressBar;
use kiln_core::api::{FileEntry, VersionDetail, VersionStatus};
use kiln_core::variant_layout;
use kiln_core::{FilePath, ModelName, ModelRef, NamespaceName, Sha256Hasher, VersionName};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::browse::print_json;
use crate::client::ApiClient;
use crate::error::CliError;
use crate::progress::{bytes_bar, human_bytes};

const WRITE_BUFFER: usize = 4 * 1024 * 1024;

pub struct PullOptions {
    pub reference: ModelRef,
    pub output: PathBuf,
    pub files: Vec<String>,
    /// A variant the pipeline produced (`onnx`) instead of the files pushed.
    pub variant: Option<String>,
    /// Print what was pulled as a JSON object instead of a sentence.
    pub json: bool,
    /// Files downloaded at once (each over its own connection).
    pub jobs: usize,
}

struct Target<'a> {
    ns: &'a NamespaceName,
    model: &'a ModelName,
    version: &'a VersionName,
    variant: Option<&'a str>,
    /// Who vouches for the digests: "the version" or "the signed manifest".
    listed_by: &'static str,
}

/// What a pull fetches: the version and the files with the digests they must hash to.
struct Plan {
    version: VersionName,
    /// For messages: `acme/m:1.0.0` or `acme/m@production`.
    label: String,
    files: Vec<FileEntry>,
    /// For a variant: the version's `config.json` and where it goes (beside the variant's model).
    config: Option<(FileEntry, FilePath)>,
    listed_by: &'static str,
}

pub async fn run(
    client: &ApiClient,
    options: PullOptions,
    trust: super::manifest::Trust<'_>,
) -> Result<(), CliError> {
    let reference = &options.reference;
    let (ns, model) = match (&reference.model, &reference.version, &reference.alias) {
        (Some(model), Some(_), None) | (Some(model), None, Some(_)) => {
            (&reference.namespace, model)
        }
        _ => {
            return Err(CliError::Usage(format!(
                "pull needs NAMESPACE/MODEL:VERSION or NAMESPACE/MODEL@ALIAS, e.g. acme/sentiment:1.0.0 (got {reference})"
            )));
        }
    };
    let plan = match &reference.version {
        Some(version) => plan_version(client, ns, model, version, &options).await?,
        None => plan_alias(client, &options, &trust).await?,
    };
    let selected = select(&plan.label, &plan.files, &options.files)?;
    let target = Target {
        ns,
        model,
        version: &plan.version,
        variant: options.variant.as_deref(),
        listed_by: plan.listed_by,
    };
    // The config.json is one of the files pushed, not of the variant; files picked by name are all a
    // pull writes.
    let pushed = Target {
        variant: None,
        ..target
    };
    let config = plan.config.as_ref().filter(|_| options.files.is_empty());
    let jobs: Vec<(&Target, &FileEntry, &FilePath)> = selected
        .into_iter()
        .map(|file| (&target, file, &file.path))
        .chain(config.map(|(file, at)| (&pushed, file, at)))
        .collect();
    let total: i64 = jobs.iter().map(|(_, file, _)| file.size).sum();
    let bar = bytes_bar(total as u64, "pulling");
    let mut destinations = Vec::with_capacity(jobs.len());
    for (_, _, at) in &jobs {
        destinations.push(at.under(&options.output).map_err(|e| {
            CliError::Integrity(format!(
                "the server listed a file kiln will not write: {e}; nothing outside {} is touched",
                options.output.display()
            ))
        })?);
    }
    bar.set_message(format!("{} file(s)", jobs.len()));
    // Files go in parallel, each resuming on its own; the bar counts the whole set.
    let fetched = futures_util::stream::iter(jobs.iter().zip(&destinations))
        .map(|((target, file, _), destination)| pull_file(client, target, file, destination, &bar))
        .buffer_unordered(options.jobs.max(1))
        .try_fold(0usize, |n, got| async move { Ok(n + usize::from(got)) })
        .await?;
    bar.finish_and_clear();
    if options.json {
        print_json(&serde_json::json!({
            "pulled": reference.to_string(),
            "version": plan.version,
            "variant": options.variant,
            "output": options.output,
            "files": jobs.len(),
            "bytes": total,
            "downloaded": fetched,
            "up_to_date": jobs.len() - fetched,
            "verified_manifest": plan.listed_by == MANIFEST,
        }));
        return Ok(());
    }
    let verified = if plan.listed_by == MANIFEST {
        format!(", version {} per its verified manifest", plan.version)
    } else {
        String::new()
    };
    println!(
        "pulled {reference} into {} ({} files, {}; {} downloaded, {} already up to date{verified})",
        options.output.display(),
        jobs.len(),
        human_bytes(total),
        fetched,
        jobs.len() - fetched
    );
    Ok(())
}

const MANIFEST: &str = "the signed manifest";

async fn plan_version(
    client: &ApiClient,
    ns: &NamespaceName,
    model: &ModelName,
    version: &VersionName,
    options: &PullOptions,
) -> Result<Plan, CliError> {
    let detail = client.version(ns, model, version).await?;
    let (files, config) = match &options.variant {
        None => (detail.files.clone(), None),
        Some(name) => {
            let files = variant_files(&detail, name)?.to_vec();
            let config = config_beside(&detail.files, &files);
            (files, config)
        }
    };
    Ok(Plan {
        version: version.clone(),
        label: format!("{ns}/{model}:{version}"),
        files,
        config,
        listed_by: "the version",
    })
}

/// Verifies the alias's manifest (signature, expiry, subject, sequence state), then takes the files and
/// digests from it and nothing from the unsigned API.
async fn plan_alias(
    client: &ApiClient,
    options: &PullOptions,
    trust: &super::manifest::Trust<'_>,
) -> Result<Plan, CliError> {
    let verified = super::manifest::fetch_verified(client, &options.reference, trust).await?;
    let manifest = verified.manifest;
    let label = manifest.subject();
    let listed = match &options.variant {
        None => manifest.sources.clone(),
        Some(name) => match manifest.variants.iter().find(|v| &v.name == name) {
            Some(variant) => variant.files.clone(),
            None => {
                let have: Vec<&str> = manifest.variants.iter().map(|v| v.name.as_str()).collect();
                return Err(CliError::Usage(format!(
                    "the manifest of {label} (version {}) lists no deployable variant {name:?}; it lists: {}",
                    manifest.version,
                    have.join(", ")
                )));
            }
        },
    };
    let entries = |files: Vec<kiln_core::deployment::ManifestFile>| -> Vec<FileEntry> {
        files
            .into_iter()
            .map(|f| FileEntry {
                path: f.path,
                digest: f.sha256,
                size: f.size,
            })
            .collect()
    };
    let files = entries(listed);
    let config = options
        .variant
        .as_ref()
        .and_then(|_| config_beside(&entries(manifest.sources.clone()), &files));
    Ok(Plan {
        version: manifest.version.clone(),
        label,
        files,
        config,
        listed_by: MANIFEST,
    })
}

/// The version's `config.json` and where it goes for a variant (`kiln_core::variant_layout`).
fn config_beside(pushed: &[FileEntry], variant: &[FileEntry]) -> Option<(FileEntry, FilePath)> {
    let (n, at) = variant_layout::config_beside(
        pushed.iter().map(|f| f.path.as_str()),
        variant.iter().map(|f| f.path.as_str()),
    )?;
    Some((pushed[n].clone(), at))
}

/// The files of one variant, or an error that says which variants exist and whether more may come.
fn variant_files<'a>(detail: &'a VersionDetail, name: &str) -> Result<&'a [FileEntry], CliError> {
    if let Some(variant) = detail.variants.iter().find(|v| v.name == name) {
        return Ok(&variant.files);
    }
    let reference = format!("{}/{}:{}", detail.namespace, detail.model, detail.version);
    let have: Vec<&str> = detail.variants.iter().map(|v| v.name.as_str()).collect();
    let have = if have.is_empty() {
        "none".to_owned()
    } else {
        have.join(", ")
    };
    let hint = match detail.status {
        VersionStatus::Pending | VersionStatus::Processing => {
            format!(
                "its pipeline is still running; check `kiln show {reference}` and pull when it is ready"
            )
        }
        VersionStatus::Failed => {
            format!("its pipeline failed; `kiln show {reference}` says why")
        }
        VersionStatus::Ready => "pull without --variant for the files that were pushed".to_owned(),
    };
    Err(CliError::Usage(format!(
        "{reference} has no variant {name:?} (variants: {have}); {hint}"
    )))
}

fn select<'a>(
    label: &str,
    files: &'a [FileEntry],
    wanted: &[String],
) -> Result<Vec<&'a FileEntry>, CliError> {
    if wanted.is_empty() {
        return Ok(files.iter().collect());
    }
    wanted
        .iter()
        .map(|path| {
            files
                .iter()
                .find(|f| f.path.as_str() == path)
                .ok_or_else(|| {
                    let available: Vec<&str> =
                        files.iter().take(10).map(|f| f.path.as_str()).collect();
                    CliError::Usage(format!(
                        "{label} has no file {path:?}; it has: {}{}",
                        available.join(", "),
                        if files.len() > 10 { ", ..." } else { "" }
                    ))
                })
        })
        .collect()
}

fn partial_path(destination: &Path) -> PathBuf {
    let mut name = destination.file_name().unwrap_or_default().to_os_string();
    name.push(".kiln-partial");
    destination.with_file_name(name)
}

/// Hashes the first bytes of an existing file (a finished or partial earlier pull).
async fn hash_prefix(path: &Path, hasher: &mut Sha256Hasher) -> Result<u64, CliError> {
    let mut file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(CliError::io(path)(e)),
    };
    let mut buffer = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buffer).await.map_err(CliError::io(path))?;
        if n == 0 {
            return Ok(total);
        }
        hasher.update(&buffer[..n]);
        total += n as u64;
    }
}

/// Downloads one file into place; false when an identical file was already there.
async fn pull_file(
    client: &ApiClient,
    target: &Target<'_>,
    file: &FileEntry,
    destination: &Path,
    bar: &ProgressBar,
) -> Result<bool, CliError> {
    // The server's paths were validated when parsed into FilePath; check again that the join stays inside.
    let checked: FilePath = file
        .path
        .as_str()
        .parse()
        .map_err(|e| CliError::Integrity(format!("server sent {e}")))?;
    debug_assert_eq!(checked, file.path);
    if let Some(parent) = destination.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(CliError::io(parent))?;
    }
    let size = file.size as u64;
    if tokio::fs::metadata(destination)
        .await
        .is_ok_and(|m| m.len() == size)
    {
        let mut hasher = Sha256Hasher::new();
        hash_prefix(destination, &mut hasher).await?;
        if hasher.finalize() == file.digest {
            bar.inc(size);
            return Ok(false);
        }
    }
    let partial = partial_path(destination);
    let mut hasher = Sha256Hasher::new();
    let mut have = hash_prefix(&partial, &mut hasher).await?;
    if have > size {
        hasher = Sha256Hasher::new();
        have = 0;
    }
    let response = client
        .download(
            target.ns,
            target.model,
            target.version,
            target.variant,
            &file.path,
            have,
        )
        .await?;
    if have > 0 && response.status() != StatusCode::PARTIAL_CONTENT {
        // The server sent the whole file after all: start over.
        hasher = Sha256Hasher::new();
        have = 0;
    }
    let partial_file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(have > 0)
        .truncate(have == 0)
        .open(&partial)
        .await
        .map_err(CliError::io(&partial))?;
    // Network chunks are small; batching them spares one blocking-pool hop per chunk.
    let mut out = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, partial_file);
    bar.inc(have);
    let mut received = have;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| client.transfer_error(e))?;
        received += chunk.len() as u64;
        if received > size {
            return Err(CliError::Integrity(format!(
                "{}: the server sent more than the {size} bytes listed",
                file.path
            )));
        }
        hasher.update(&chunk);
        out.write_all(&chunk)
            .await
            .map_err(CliError::io(&partial))?;
        bar.inc(chunk.len() as u64);
    }
    out.flush().await.map_err(CliError::io(&partial))?;
    drop(out);
    if received != size {
        return Err(CliError::Transfer(format!(
            "{}: got {received} of {size} bytes",
            file.path
        )));
    }
    let actual = hasher.finalize();
    if actual != file.digest {
        tokio::fs::remove_file(&partial).await.ok();
        return Err(CliError::Integrity(format!(
            "{}: downloaded bytes hash to {actual}, but {} lists {}; the file was discarded",
            file.path, target.listed_by, file.digest
        )));
    }
    tokio::fs::rename(&partial, destination)
        .await
        .map_err(CliError::io(destination))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_core::Sha256Digest;
    use kiln_core::api::VersionStatus;

    fn version(paths: &[&str]) -> VersionDetail {
        VersionDetail {
            flagged: Vec::new(),
            damage: None,
            namespace: "acme".parse().unwrap(),
            model: "m".parse().unwrap(),
            version: "1".parse().unwrap(),
            status: VersionStatus::Ready,
            files: paths
                .iter()
                .map(|p| FileEntry {
                    path: p.parse().unwrap(),
                    digest: Sha256Digest::of(p.as_bytes()),
                    size: 1,
                })
                .collect(),
            created_at: chrono::Utc::now(),
            pipeline: Vec::new(),
            variants: Vec::new(),
            lineage: None,
            derived: Vec::new(),
            derived_count: 0,
        }
    }

    #[test]
    fn selecting_files_names_what_exists_when_a_path_is_wrong() {
        let detail = version(&["a.bin", "dir/b.bin"]);
        assert_eq!(select("acme/m:1", &detail.files, &[]).unwrap().len(), 2);
        let one = select("acme/m:1", &detail.files, &["dir/b.bin".to_owned()]).unwrap();
        assert_eq!(one[0].path.as_str(), "dir/b.bin");
        let err = select("acme/m:1", &detail.files, &["c.bin".to_owned()])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "acme/m:1 has no file \"c.bin\"; it has: a.bin, dir/b.bin"
        );
    }

    #[test]
    fn partial_downloads_sit_beside_their_destination() {
        assert_eq!(
            partial_path(Path::new("out/dir/w.bin")),
            Path::new("out/dir/w.bin.kiln-partial")
        );
    }
}
