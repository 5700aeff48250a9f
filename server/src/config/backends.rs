//! Where the data lives: the database and the blob store, from their URLs, and the store's encryption.

use std::path::PathBuf;

use super::{ConfigError, RawSettings, config_error};

/// Server-side encryption the S3 store applies to every object kiln writes.
#[derive(Clone, PartialEq, Eq)]
pub enum ServerSideEncryption {
    /// SSE-S3 (`AES256`): keys managed by the store.
    S3Managed,
    /// SSE-KMS with an optional key id.
    Kms { key_id: Option<String> },
    /// SSE-C: the store encrypts with this customer key (base64, 256 bits); kiln sends it on every request.
    CustomerKey { key_base64: String },
}

impl std::fmt::Debug for ServerSideEncryption {
    // The customer key must never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerSideEncryption::S3Managed => f.write_str("AES256"),
            ServerSideEncryption::Kms { key_id } => write!(f, "aws:kms ({key_id:?})"),
            ServerSideEncryption::CustomerKey { .. } => f.write_str("sse-c (key hidden)"),
        }
    }
}

#[derive(Debug, Clone)]
pub enum DatabaseSettings {
    Sqlite { path: PathBuf },
    Postgres { url: String },
}

#[derive(Clone)]
pub enum StorageSettings {
    Local {
        root: PathBuf,
    },
    S3 {
        bucket: String,
        prefix: String,
        endpoint: Option<String>,
        region: Option<String>,
        access_key_id: Option<String>,
        secret_access_key: Option<String>,
        encryption: Option<ServerSideEncryption>,
        /// The most the store copies in one request (S3: 5 GiB); larger promotions stream instead.
        max_copy_bytes: u64,
    },
}

impl std::fmt::Debug for StorageSettings {
    // The secret key must never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageSettings::Local { root } => f.debug_struct("Local").field("root", root).finish(),
            StorageSettings::S3 {
                bucket,
                prefix,
                endpoint,
                region,
                ..
            } => f
                .debug_struct("S3")
                .field("bucket", bucket)
                .field("prefix", prefix)
                .field("endpoint", endpoint)
                .field("region", region)
                .finish_non_exhaustive(),
        }
    }
}

pub(super) fn parse_database_url(url: &str) -> Result<DatabaseSettings, ConfigError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(DatabaseSettings::Postgres {
            url: url.to_owned(),
        });
    }
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        if path.is_empty() {
            return Err(config_error(
                "KILN_DATABASE_URL",
                "sqlite: needs a file path, e.g. sqlite://kiln-data/kiln.db",
            ));
        }
        return Ok(DatabaseSettings::Sqlite {
            path: PathBuf::from(path),
        });
    }
    let scheme = url.split("://").next().unwrap_or(url);
    Err(config_error(
        "KILN_DATABASE_URL",
        format!("unsupported database {scheme:?}: use postgres://USER@HOST/DB or sqlite://PATH"),
    ))
}

pub(super) fn parse_storage_url(
    url: &str,
    raw: &RawSettings,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<StorageSettings, ConfigError> {
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(config_error(
                "KILN_STORAGE_URL",
                "s3:// needs a bucket name, e.g. s3://models",
            ));
        }
        let endpoint = raw.s3_endpoint.clone().or_else(|| env("AWS_ENDPOINT_URL"));
        if let Some(endpoint) = &endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(config_error(
                "KILN_S3_ENDPOINT",
                format!("{endpoint:?} must start with http:// or https://"),
            ));
        }
        let encryption = match raw.s3_sse.as_deref() {
            None => None,
            Some("AES256") => Some(ServerSideEncryption::S3Managed),
            Some("aws:kms") => Some(ServerSideEncryption::Kms {
                key_id: raw.s3_sse_kms_key_id.clone(),
            }),
            Some("sse-c") => {
                let key = raw.s3_sse_c_key.clone().ok_or_else(|| {
                    config_error(
                        "KILN_S3_SSE_C_KEY",
                        "is needed with KILN_S3_SSE=sse-c (a base64 256-bit key)",
                    )
                })?;
                if key.len() != 44 || !key.ends_with('=') {
                    return Err(config_error(
                        "KILN_S3_SSE_C_KEY",
                        "must be 32 bytes in base64 (44 characters)",
                    ));
                }
                Some(ServerSideEncryption::CustomerKey { key_base64: key })
            }
            Some(other) => {
                return Err(config_error(
                    "KILN_S3_SSE",
                    format!("unknown encryption {other:?}: use AES256, aws:kms or sse-c"),
                ));
            }
        };
        let max_copy_bytes = raw.s3_max_copy_bytes.unwrap_or(5 * 1024 * 1024 * 1024);
        if max_copy_bytes == 0 {
            return Err(config_error(
                "KILN_S3_MAX_COPY_BYTES",
                "must be at least 1 (S3 copies up to 5368709120 bytes in one request)",
            ));
        }
        return Ok(StorageSettings::S3 {
            encryption,
            max_copy_bytes,
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            endpoint,
            region: raw
                .s3_region
                .clone()
                .or_else(|| env("AWS_REGION"))
                .or_else(|| env("AWS_DEFAULT_REGION")),
            access_key_id: raw
                .s3_access_key_id
                .clone()
                .or_else(|| env("AWS_ACCESS_KEY_ID")),
            secret_access_key: raw
                .s3_secret_access_key
                .clone()
                .or_else(|| env("AWS_SECRET_ACCESS_KEY")),
        });
    }
    if let Some(path) = url.strip_prefix("file://") {
        return Ok(StorageSettings::Local {
            root: PathBuf::from(path),
        });
    }
    if url.contains("://") {
        let scheme = url.split("://").next().unwrap_or(url);
        return Err(config_error(
            "KILN_STORAGE_URL",
            format!(
                "unsupported storage {scheme:?}: use s3://BUCKET[/PREFIX], file:///PATH or a folder path"
            ),
        ));
    }
    Ok(StorageSettings::Local {
        root: PathBuf::from(url),
    })
}
