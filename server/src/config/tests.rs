//! The settings' validation: defaults, and a wrong setting named in its error.

use super::*;

fn validate(raw: RawSettings) -> Result<Settings, String> {
    Settings::validate(raw, |_| None).map_err(|e| e.to_string())
}

#[test]
fn defaults_are_the_embedded_registry_under_kiln_data() {
    let s = validate(RawSettings::default()).unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
    assert!(
        matches!(s.database, DatabaseSettings::Sqlite { ref path } if path == Path::new("kiln-data/kiln.db"))
    );
    assert!(
        matches!(s.storage, StorageSettings::Local { ref root } if root == Path::new("kiln-data/store"))
    );
}

#[test]
fn wrong_settings_name_the_setting() {
    let err = validate(RawSettings {
        listen: Some("8080".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.starts_with("KILN_LISTEN: \"8080\""), "{err}");
    let err = validate(RawSettings {
        database_url: Some("mysql://x".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        err.starts_with("KILN_DATABASE_URL: unsupported database \"mysql\""),
        "{err}"
    );
    let err = validate(RawSettings {
        tls_cert: Some("/nonexistent/cert.pem".into()),
        tls_key: Some("/nonexistent/key.pem".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        err.starts_with("KILN_TLS_CERT: /nonexistent/cert.pem is not a readable file"),
        "{err}"
    );
    let err = validate(RawSettings {
        tls_cert: Some("/etc/hostname".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.starts_with("KILN_TLS_KEY: is needed"), "{err}");
    let err = validate(RawSettings {
        storage_url: Some("s3://b".into()),
        s3_sse: Some("sse-c".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.starts_with("KILN_S3_SSE_C_KEY"), "{err}");
    let err = validate(RawSettings {
        storage_url: Some("s3://b".into()),
        s3_sse: Some("rot13".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.starts_with("KILN_S3_SSE: unknown encryption"), "{err}");
    let err = validate(RawSettings {
        bootstrap_token: Some("short".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.starts_with("KILN_BOOTSTRAP_TOKEN"), "{err}");
    let chosen = validate(RawSettings {
        bootstrap_token: Some("any-operator-chosen-secret-of-32-characters".into()),
        ..Default::default()
    })
    .unwrap();
    assert!(
        chosen.bootstrap_token.is_some(),
        "any 32+ character string is accepted"
    );
    let err = validate(RawSettings {
        storage_url: Some("gs://bucket".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.starts_with("KILN_STORAGE_URL"), "{err}");
    let err = validate(RawSettings {
        storage_url: Some("s3://b".into()),
        s3_endpoint: Some("localhost:3900".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.starts_with("KILN_S3_ENDPOINT"), "{err}");
}

#[test]
#[expect(
    clippy::result_large_err,
    reason = "figment's Jail closure must return figment::Error"
)]
fn a_config_file_is_read_and_the_environment_wins() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "kiln.toml",
            "listen = \"0.0.0.0:9000\"\ndata_dir = \"/srv/kiln\"\nstorage_url = \"s3://models\"",
        )?;
        let from_file = Settings::load(None).map_err(|e| e.to_string())?;
        assert_eq!(from_file.listen.to_string(), "0.0.0.0:9000");
        assert!(
            matches!(from_file.storage, StorageSettings::S3 { ref bucket, .. } if bucket == "models")
        );
        jail.set_env("KILN_LISTEN", "127.0.0.1:9001");
        let overridden = Settings::load(None).map_err(|e| e.to_string())?;
        assert_eq!(overridden.listen.to_string(), "127.0.0.1:9001");
        assert_eq!(overridden.data_dir, Path::new("/srv/kiln"));
        jail.set_env("KILN_MAX_JSON_BYTES", "lots");
        let err = Settings::load(None).unwrap_err().to_string();
        assert!(
            err.starts_with("KILN_MAX_JSON_BYTES: must be a whole number"),
            "{err}"
        );
        Ok(())
    });
}

#[test]
#[expect(
    clippy::result_large_err,
    reason = "figment's Jail closure must return figment::Error"
)]
fn unknown_settings_are_refused_by_name_with_the_nearest_known_one() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("kiln.toml", "lisen = \"0.0.0.0:9000\"")?;
        let err = Settings::load(None).unwrap_err().to_string();
        assert_eq!(
            err,
            "kiln.toml: lisen: is not a kiln-server setting (did you mean listen?); \
             docs/operations.md lists them"
        );
        jail.create_file("kiln.toml", "log_format = \"json\"")?;
        assert!(Settings::load(None).map_err(|e| e.to_string())?.log_json);
        jail.set_env("KILN_PIPELINE_WROKERS", "2");
        let err = Settings::load(None).unwrap_err().to_string();
        assert!(
            err.starts_with("KILN_PIPELINE_WROKERS: is not a kiln-server setting (did you mean KILN_PIPELINE_WORKERS?)"),
            "{err}"
        );
        jail.clear_env();
        // The CLI's variables and the tests' share the prefix and are left alone.
        jail.set_env("KILN_TOKEN", "kiln_x");
        jail.set_env("KILN_TEST_DATABASE_URL", "postgres://x");
        jail.set_env("KILN_LISTEN", "8080");
        let err = Settings::load(None).unwrap_err().to_string();
        assert!(
            err.starts_with("KILN_LISTEN: \"8080\" is not an address and port"),
            "{err}"
        );
        jail.set_env("KILN_LISTEN", "127.0.0.1:8080");
        jail.set_env(
            "KILN_CORS_ALLOWED_ORIGINS",
            "https://ui.example.com, http://localhost:3000",
        );
        let origins = Settings::load(None)
            .map_err(|e| e.to_string())?
            .cors_allowed_origins;
        assert_eq!(origins, ["https://ui.example.com", "http://localhost:3000"]);
        jail.set_env("KILN_CORS_ALLOWED_ORIGINS", "https://ui.example.com/app");
        let err = Settings::load(None).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "KILN_CORS_ALLOWED_ORIGINS: \"https://ui.example.com/app\" is not an origin"
            ),
            "{err}"
        );
        jail.set_env("KILN_CORS_ALLOWED_ORIGINS", "");
        jail.set_env("KILN_LOG_FORMAT", "xml");
        let err = Settings::load(None).unwrap_err().to_string();
        assert!(
            err.starts_with("KILN_LOG_FORMAT: \"xml\" is not a log format"),
            "{err}"
        );
        Ok(())
    });
}

#[test]
fn s3_settings_fall_back_to_the_standard_aws_variables() {
    let raw = RawSettings {
        storage_url: Some("s3://models/kiln/".into()),
        ..Default::default()
    };
    let s = Settings::validate(raw, |name| match name {
        "AWS_ACCESS_KEY_ID" => Some("AKID".into()),
        "AWS_SECRET_ACCESS_KEY" => Some("SECRET".into()),
        "AWS_REGION" => Some("eu-west-1".into()),
        _ => None,
    })
    .unwrap();
    match s.storage {
        StorageSettings::S3 {
            bucket,
            prefix,
            access_key_id,
            region,
            ..
        } => {
            assert_eq!((bucket.as_str(), prefix.as_str()), ("models", "kiln"));
            assert_eq!(access_key_id.as_deref(), Some("AKID"));
            assert_eq!(region.as_deref(), Some("eu-west-1"));
        }
        other => panic!("expected S3, got {other:?}"),
    }
}

#[test]
fn trace_export_is_off_unless_an_otlp_endpoint_is_set() {
    assert_eq!(validate(RawSettings::default()).unwrap().traces, None);
    let s = validate(RawSettings {
        otlp_endpoint: Some("http://otel-collector:4318/".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        s.traces.unwrap().traces_url,
        "http://otel-collector:4318/v1/traces"
    );
    for bad in ["otel-collector:4318", "grpc://collector:4317", "http://"] {
        let err = validate(RawSettings {
            otlp_endpoint: Some(bad.into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.starts_with("KILN_OTLP_ENDPOINT: "), "{bad}: {err}");
    }
}
