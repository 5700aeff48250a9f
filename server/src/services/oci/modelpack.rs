//! A version as a CNCF ModelPack artifact (github.com/modelpack/model-spec): an OCI image manifest whose
//! layers are the version's files as they are (`.raw` layers: a layer's digest is the file's kiln digest,
//! so no byte is stored twice), and a config that says what kiln knows of the model. The JSON is written
//! from structs in a fixed order, so the same version always gives the same bytes, and the same digest.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const ARTIFACT_TYPE: &str = "application/vnd.cncf.model.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.model.config.v1+json";
const WEIGHT: &str = "application/vnd.cncf.model.weight.v1.raw";
const WEIGHT_CONFIG: &str = "application/vnd.cncf.model.weight.config.v1.raw";
const DOC: &str = "application/vnd.cncf.model.doc.v1.raw";
const CODE: &str = "application/vnd.cncf.model.code.v1.raw";
/// The annotation ModelPack tools read a layer's path from.
pub const FILEPATH_ANNOTATION: &str = "org.cncf.model.filepath";
/// The one oras (and most OCI tools) name a pulled file by.
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";

/// One file of the version.
pub struct LayerFile<'a> {
    pub path: &'a str,
    pub digest: &'a str,
    pub size: i64,
}

#[derive(Serialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Serialize)]
struct Manifest {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    #[serde(rename = "artifactType")]
    artifact_type: &'static str,
    config: Descriptor,
    layers: Vec<Descriptor>,
    annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Config {
    descriptor: ConfigDescriptor,
    config: ModelConfig,
    modelfs: ModelFs,
}

#[derive(Serialize)]
struct ConfigDescriptor {
    #[serde(rename = "createdAt")]
    created_at: String,
    name: String,
    version: String,
}

#[derive(Serialize)]
struct ModelConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    precision: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quantization: Option<&'static str>,
}

/// The numbers a variant kiln made computes in, and how it was quantized; nothing for the files as
/// pushed (kiln does not read their dtype) or a conversion (it keeps the checkpoint's).
fn numerics_of(variant: Option<&str>) -> (Option<&'static str>, Option<&'static str>) {
    match variant {
        Some("fp32" | "fused") => (Some("float32"), None),
        Some("fp16") => (Some("float16"), None),
        Some("int8") => (Some("int8"), Some("int8-static")),
        Some("int8-dynamic") => (Some("int8"), Some("int8-dynamic")),
        // Pruning zeroes weights of the fp32 graph.
        Some(v) if v.starts_with("pruned-") => (Some("float32"), None),
        _ => (None, None),
    }
}

#[derive(Serialize)]
struct ModelFs {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "diffIds")]
    diff_ids: Vec<String>,
}

/// The ModelPack layer type of a file, from its name.
pub fn layer_media_type(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    let extension = name.rsplit_once('.').map_or("", |(_, e)| e);
    if name.starts_with("readme") || name.starts_with("license") || extension == "md" {
        DOC
    } else if matches!(extension, "py" | "ipynb" | "sh") {
        CODE
    } else if matches!(
        extension,
        "json" | "yaml" | "yml" | "txt" | "model" | "tiktoken"
    ) || name.starts_with("vocab")
        || name.starts_with("merges")
    {
        WEIGHT_CONFIG
    } else {
        WEIGHT
    }
}

/// The model's format as ModelPack names it, from the files' extensions.
fn format_of(files: &[LayerFile]) -> Option<&'static str> {
    let has = |ext: &str| files.iter().any(|f| f.path.ends_with(ext));
    if has(".onnx") {
        Some("onnx")
    } else if has(".safetensors") {
        Some("safetensors")
    } else if has(".gguf") {
        Some("gguf")
    } else if has(".bin") || has(".pt") || has(".pth") {
        Some("pytorch")
    } else {
        None
    }
}

/// The config's bytes, for a version's files or one of its variants'.
pub fn config_json(
    name: &str,
    version: &str,
    created: DateTime<Utc>,
    files: &[LayerFile],
    variant: Option<&str>,
) -> String {
    let (precision, quantization) = numerics_of(variant);
    serde_json::to_string(&Config {
        descriptor: ConfigDescriptor {
            created_at: created.to_rfc3339_opts(SecondsFormat::Secs, true),
            name: name.to_owned(),
            version: version.to_owned(),
        },
        config: ModelConfig {
            format: format_of(files),
            precision,
            quantization,
        },
        modelfs: ModelFs {
            kind: "layers",
            diff_ids: files.iter().map(|f| f.digest.to_owned()).collect(),
        },
    })
    .expect("a config serializes")
}

/// The manifest's bytes, around a config of `config_digest` and `config_size`.
pub fn manifest_json(
    name: &str,
    version: &str,
    created: DateTime<Utc>,
    config_digest: &str,
    config_size: i64,
    files: &[LayerFile],
) -> String {
    let layers = files
        .iter()
        .map(|f| Descriptor {
            media_type: layer_media_type(f.path).to_owned(),
            digest: f.digest.to_owned(),
            size: f.size,
            annotations: Some(
                [
                    (FILEPATH_ANNOTATION.to_owned(), f.path.to_owned()),
                    (TITLE_ANNOTATION.to_owned(), f.path.to_owned()),
                ]
                .into(),
            ),
        })
        .collect();
    serde_json::to_string(&Manifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE,
        artifact_type: ARTIFACT_TYPE,
        config: Descriptor {
            media_type: CONFIG_MEDIA_TYPE.to_owned(),
            digest: config_digest.to_owned(),
            size: config_size,
            annotations: None,
        },
        layers,
        annotations: [
            (
                "org.opencontainers.image.created".to_owned(),
                created.to_rfc3339_opts(SecondsFormat::Secs, true),
            ),
            ("org.opencontainers.image.title".to_owned(), name.to_owned()),
            (
                "org.opencontainers.image.version".to_owned(),
                version.to_owned(),
            ),
        ]
        .into(),
    })
    .expect("a manifest serializes")
}

/// The media type of an image index (the referrers API answers one).
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The artifact type of kiln's signed deployment manifest attached to a version.
pub const SIGNATURE_ARTIFACT_TYPE: &str = "application/vnd.kiln.deployment-manifest.v1+jws";
/// The JWS layer's media type (RFC 7515 compact serialization).
pub const JWS_MEDIA_TYPE: &str = "application/jose";
/// The OCI empty descriptor's config: `{}`.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub const EMPTY_CONFIG: &str = "{}";

#[derive(Serialize)]
struct Referrer {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    #[serde(rename = "artifactType")]
    artifact_type: &'static str,
    config: Descriptor,
    layers: Vec<Descriptor>,
    subject: Descriptor,
    annotations: std::collections::BTreeMap<String, String>,
}

/// The referrer that attaches a signed deployment manifest (its JWS as the one layer) to the served
/// manifest `subject`.
pub fn signature_json(
    subject_digest: &str,
    subject_size: i64,
    jws_digest: &str,
    jws_size: i64,
    subject: &str,
    sequence: i64,
    kid: &str,
) -> String {
    let empty = sha256_hex(EMPTY_CONFIG.as_bytes());
    serde_json::to_string(&Referrer {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE,
        artifact_type: SIGNATURE_ARTIFACT_TYPE,
        config: Descriptor {
            media_type: EMPTY_MEDIA_TYPE.to_owned(),
            digest: empty,
            size: EMPTY_CONFIG.len() as i64,
            annotations: None,
        },
        layers: vec![Descriptor {
            media_type: JWS_MEDIA_TYPE.to_owned(),
            digest: jws_digest.to_owned(),
            size: jws_size,
            annotations: Some(
                [(
                    TITLE_ANNOTATION.to_owned(),
                    "deployment-manifest.jws".to_owned(),
                )]
                .into(),
            ),
        }],
        subject: Descriptor {
            media_type: MANIFEST_MEDIA_TYPE.to_owned(),
            digest: subject_digest.to_owned(),
            size: subject_size,
            annotations: None,
        },
        annotations: [
            ("dev.kiln.manifest.subject".to_owned(), subject.to_owned()),
            (
                "dev.kiln.manifest.sequence".to_owned(),
                sequence.to_string(),
            ),
            ("dev.kiln.manifest.kid".to_owned(), kid.to_owned()),
        ]
        .into(),
    })
    .expect("a referrer serializes")
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    kiln_core::Sha256Digest::of(bytes).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_get_their_modelpack_layer_types() {
        assert_eq!(layer_media_type("model.safetensors"), WEIGHT);
        assert_eq!(layer_media_type("onnx/model.onnx"), WEIGHT);
        assert_eq!(layer_media_type("config.json"), WEIGHT_CONFIG);
        assert_eq!(layer_media_type("tokenizer/merges.txt"), WEIGHT_CONFIG);
        assert_eq!(layer_media_type("README.md"), DOC);
        assert_eq!(layer_media_type("LICENSE"), DOC);
        assert_eq!(layer_media_type("handler.py"), CODE);
    }

    #[test]
    fn a_variant_says_its_precision_and_quantization() {
        let files = [LayerFile {
            path: "model.onnx",
            digest: "sha256:00",
            size: 3,
        }];
        let at = chrono::DateTime::from_timestamp(0, 0).unwrap();
        let config = |variant| {
            serde_json::from_str::<serde_json::Value>(&config_json("a/m", "1", at, &files, variant))
                .unwrap()["config"]
                .clone()
        };
        assert_eq!(config(Some("fp16"))["precision"], "float16");
        assert_eq!(config(Some("int8-dynamic"))["quantization"], "int8-dynamic");
        assert_eq!(config(Some("int8"))["precision"], "int8");
        assert!(
            config(None).get("precision").is_none(),
            "not read from the pushed files"
        );
        assert_eq!(config(None)["format"], "onnx");
    }

    #[test]
    fn the_same_version_always_gives_the_same_bytes() {
        let files = [LayerFile {
            path: "m.onnx",
            digest: "sha256:00",
            size: 3,
        }];
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let a = manifest_json("acme/m", "1", at, "sha256:11", 10, &files);
        assert_eq!(a, manifest_json("acme/m", "1", at, "sha256:11", 10, &files));
        let parsed: serde_json::Value = serde_json::from_str(&a).unwrap();
        assert_eq!(
            parsed["layers"][0]["annotations"][FILEPATH_ANNOTATION],
            "m.onnx"
        );
        assert_eq!(parsed["artifactType"], ARTIFACT_TYPE);
        assert!(config_json("acme/m", "1", at, &files, None).contains(r#""format":"onnx""#));
    }
}
