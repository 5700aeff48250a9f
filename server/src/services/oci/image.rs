//! A version as a container image whose filesystem holds its files under `/models/`, for runtimes that
//! mount images (KServe's `oci+native://`, containerd and CRI-O image volumes) or copy from them
//! (modelcars). Its tag is any manifest tag with `-image` after it (`1.0.0-image`, `production-image`,
//! `1.0.0-int8-image`); image tags resolve but are not listed, so a tag list stays one entry per version,
//! alias and variant.
//!
//! Each file is one uncompressed tar layer: headers for `models/`, the file's folders and the file
//! (fixed owner, modes and times, so the same file at the same path is always the same layer), the
//! file's bytes, and zeros. Only the headers are stored; the bytes are read through from the file's
//! blob, so no weight is stored twice. A layer's digest needs its bytes hashed once, the first time an
//! image holding it is asked for.

use std::ops::Range;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::stream::{self, BoxStream};
use futures_util::{StreamExt, TryStreamExt};
use kiln_core::{Sha256Digest, Sha256Hasher};
use serde::Serialize;

use super::OciService;
use super::modelpack::{Descriptor, MANIFEST_MEDIA_TYPE, TITLE_ANNOTATION, sha256_hex};
use crate::db::repos::oci_tar_layers::{self, TarLayerRow};
use crate::error::Error;

/// What makes a tag name a manifest's image form.
pub const IMAGE_SUFFIX: &str = "-image";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const BLOCK: u64 = 512;
/// Where the files are in the image.
const ROOT: &str = "models";

/// The tar headers that put a file of `size` bytes at `models/PATH`, its folders first.
pub fn tar_header(path: &str, size: u64) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut folder = ROOT.to_owned();
    let mut folders = vec![folder.clone()];
    let parts: Vec<&str> = path.split('/').collect();
    for part in &parts[..parts.len() - 1] {
        folder = format!("{folder}/{part}");
        folders.push(folder.clone());
    }
    for folder in folders {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        header.set_mode(0o755);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        builder.append_data(&mut header, format!("{folder}/"), std::io::empty())?;
    }
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    // The file's bytes are not written here: the header says how many follow it.
    builder.append_data(&mut header, format!("{ROOT}/{path}"), std::io::empty())?;
    let bytes = builder.get_ref().clone();
    // Dropping the builder writes the end-of-archive blocks into its own buffer, not into `bytes`.
    drop(builder);
    Ok(bytes)
}

/// The zeros after a file's bytes: padding to a whole block, then the two blocks that end an archive.
pub fn trailer_len(size: u64) -> u64 {
    (BLOCK - size % BLOCK) % BLOCK + 2 * BLOCK
}

#[derive(Serialize)]
struct ImageConfig {
    created: String,
    architecture: &'static str,
    os: &'static str,
    config: ContainerConfig,
    rootfs: RootFs,
}

#[derive(Serialize)]
struct ContainerConfig {
    #[serde(rename = "Labels")]
    labels: std::collections::BTreeMap<String, String>,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

#[derive(Serialize)]
struct ImageManifest {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    config: Descriptor,
    layers: Vec<Descriptor>,
    annotations: std::collections::BTreeMap<String, String>,
}

/// The image's config: linux/amd64 (data layers run anywhere; runtimes ask for a platform), the
/// layers' digests as diff ids (they are uncompressed).
pub fn config_json(
    name: &str,
    label: &str,
    created: DateTime<Utc>,
    layers: &[TarLayerRow],
) -> String {
    serde_json::to_string(&ImageConfig {
        created: created.to_rfc3339_opts(SecondsFormat::Secs, true),
        architecture: "amd64",
        os: "linux",
        config: ContainerConfig {
            labels: [
                ("org.opencontainers.image.title".to_owned(), name.to_owned()),
                (
                    "org.opencontainers.image.version".to_owned(),
                    label.to_owned(),
                ),
            ]
            .into(),
        },
        rootfs: RootFs {
            kind: "layers",
            diff_ids: layers.iter().map(|l| l.digest.clone()).collect(),
        },
    })
    .expect("a config serializes")
}

pub fn manifest_json(
    name: &str,
    label: &str,
    created: DateTime<Utc>,
    config: &str,
    layers: &[TarLayerRow],
) -> String {
    serde_json::to_string(&ImageManifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE,
        config: Descriptor {
            media_type: CONFIG_MEDIA_TYPE.to_owned(),
            digest: sha256_hex(config.as_bytes()),
            size: config.len() as i64,
            annotations: None,
        },
        layers: layers
            .iter()
            .map(|l| Descriptor {
                media_type: LAYER_MEDIA_TYPE.to_owned(),
                digest: l.digest.clone(),
                size: l.size,
                annotations: Some(
                    [(TITLE_ANNOTATION.to_owned(), format!("{ROOT}/{}", l.path))].into(),
                ),
            })
            .collect(),
        annotations: [
            (
                "org.opencontainers.image.created".to_owned(),
                created.to_rfc3339_opts(SecondsFormat::Secs, true),
            ),
            ("org.opencontainers.image.title".to_owned(), name.to_owned()),
            (
                "org.opencontainers.image.version".to_owned(),
                label.to_owned(),
            ),
        ]
        .into(),
    })
    .expect("a manifest serializes")
}

impl OciService {
    /// The layer of a file at a path: kept, or hashed now (its bytes read once) and kept.
    pub(super) async fn tar_layer(
        &self,
        path: &str,
        digest: Sha256Digest,
        size: i64,
    ) -> Result<TarLayerRow, Error> {
        let (file, at) = (digest.to_string(), path.to_owned());
        if let Some(found) = self
            .db
            .run(move |conn| Ok(oci_tar_layers::of_file(conn, &file, &at)?))
            .await?
        {
            return Ok(found);
        }
        let header = tar_header(path, size as u64)?;
        let trailer = trailer_len(size as u64);
        let mut hasher = Sha256Hasher::new();
        hasher.update(&header);
        if size > 0 {
            let mut bytes = self.store.read(&digest, None).await?;
            while let Some(chunk) = bytes.next().await {
                hasher.update(&chunk?);
            }
        }
        hasher.update(&vec![0u8; trailer as usize]);
        let row = TarLayerRow {
            digest: hasher.finalize().to_string(),
            file_digest: digest.to_string(),
            path: path.to_owned(),
            size: header.len() as i64 + size + trailer as i64,
            file_size: size,
            header,
        };
        let kept = row.clone();
        self.db
            .run(move |conn| Ok(oci_tar_layers::insert(conn, &kept)?))
            .await?;
        Ok(row)
    }

    /// A tar layer's bytes, or the `range` of them: its headers, then the file's blob, then zeros.
    pub async fn read_tar_layer(
        &self,
        layer: &TarLayerRow,
        range: Option<Range<u64>>,
    ) -> Result<BoxStream<'static, Result<Bytes, Error>>, Error> {
        let header_len = layer.header.len() as u64;
        let file_size = layer.file_size as u64;
        let range = range.unwrap_or(0..layer.size as u64);
        let mut pieces: Vec<BoxStream<'static, Result<Bytes, Error>>> = Vec::new();
        let header = Bytes::from(layer.header.clone());
        let within = |start: u64, end: u64| range.start.max(start)..range.end.min(end);
        let head = within(0, header_len);
        if head.start < head.end {
            let piece = header.slice(head.start as usize..head.end as usize);
            pieces.push(stream::once(async move { Ok(piece) }).boxed());
        }
        let body = within(header_len, header_len + file_size);
        if body.start < body.end {
            let digest: Sha256Digest = layer.file_digest.parse()?;
            let part = body.start - header_len..body.end - header_len;
            pieces.push(
                self.store
                    .read(&digest, Some(part))
                    .await?
                    .map_err(Error::from)
                    .boxed(),
            );
        }
        let tail = within(header_len + file_size, layer.size as u64);
        if tail.start < tail.end {
            let zeros = Bytes::from(vec![0u8; (tail.end - tail.start) as usize]);
            pieces.push(stream::once(async move { Ok(zeros) }).boxed());
        }
        Ok(stream::iter(pieces).flatten().boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A layer made of the headers, the bytes and the trailer is a tar that puts the file under
    /// models/, whatever the path's length.
    #[test]
    fn a_layer_unpacks_to_the_file_under_models() {
        for (path, data) in [
            ("model.onnx", b"weights".to_vec()),
            ("tokenizer/vocab.txt", vec![7u8; 512]),
            (
                &*format!("{}/deep.bin", "long-folder-name".repeat(12)),
                vec![1u8; 1000],
            ),
        ] {
            let mut layer = tar_header(path, data.len() as u64).unwrap();
            layer.extend_from_slice(&data);
            layer.extend(std::iter::repeat_n(
                0u8,
                trailer_len(data.len() as u64) as usize,
            ));
            assert_eq!(layer.len() % 512, 0);
            let mut archive = tar::Archive::new(layer.as_slice());
            let mut found = None;
            for entry in archive.entries().unwrap() {
                let mut entry = entry.unwrap();
                let name = entry.path().unwrap().to_string_lossy().into_owned();
                if entry.header().entry_type().is_file() {
                    let mut bytes = Vec::new();
                    std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
                    found = Some((name, bytes));
                } else {
                    assert!(name.starts_with("models/") && name.ends_with('/'), "{name}");
                }
            }
            assert_eq!(found, Some((format!("models/{path}"), data)));
        }
    }
}
