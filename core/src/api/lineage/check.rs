//! The bounds and forms of a lineage, checked the same way by the server (before it looks anything up) and
//! by the CLI (before it uploads a byte). Every problem names its field's path in the request.

use super::{DatasetRequest, Hyperparameters, LineageProblem, LineageRequest};
use crate::{ModelName, ModelRef, NamespaceName, VersionName};

fn problem(field: impl Into<String>, message: impl Into<String>) -> LineageProblem {
    LineageProblem {
        field: field.into(),
        message: message.into(),
    }
}

impl LineageRequest {
    /// Every bound and form the server holds a lineage to, before it looks anything up; the CLI checks a
    /// lineage file with it before uploading a byte. Field paths start at `lineage`.
    pub fn check(&self) -> Result<(), LineageProblem> {
        if self.parents.len() > Self::MAX_PARENTS {
            return Err(problem(
                "lineage.parents",
                format!("at most {} parents", Self::MAX_PARENTS),
            ));
        }
        for (i, parent) in self.parents.iter().enumerate() {
            let field = format!("lineage.parents[{i}]");
            version_reference(&parent.reference)
                .map_err(|m| problem(format!("{field}.reference"), m))?;
            check_role(&parent.role).map_err(|m| problem(format!("{field}.role"), m))?;
            if self.parents[..i]
                .iter()
                .any(|p| p.reference == parent.reference && p.role == parent.role)
            {
                return Err(problem(
                    field,
                    format!("{} is listed twice as {}", parent.reference, parent.role),
                ));
            }
        }
        if self.datasets.len() > Self::MAX_DATASETS {
            return Err(problem(
                "lineage.datasets",
                format!("at most {} datasets", Self::MAX_DATASETS),
            ));
        }
        for (i, dataset) in self.datasets.iter().enumerate() {
            check_dataset(dataset, &format!("lineage.datasets[{i}]"))?;
            if self.datasets[..i].contains(dataset) {
                return Err(problem(
                    format!("lineage.datasets[{i}]"),
                    "this dataset is listed twice",
                ));
            }
        }
        if let Some(run) = &self.training_run {
            check_text(run, Self::MAX_RUN_CHARS).map_err(|m| problem("lineage.training_run", m))?;
        }
        if let Some(producer) = &self.producer {
            check_text(&producer.name, Self::MAX_PRODUCER_CHARS)
                .map_err(|m| problem("lineage.producer.name", m))?;
            check_text(&producer.version, Self::MAX_PRODUCER_CHARS)
                .map_err(|m| problem("lineage.producer.version", m))?;
        }
        if let Some(hyperparameters) = &self.hyperparameters {
            check_hyperparameters(hyperparameters)?;
        }
        Ok(())
    }
}

/// A reference that names one version: `namespace/model:version` (an alias moves; a lineage must not).
pub fn version_reference(text: &str) -> Result<(NamespaceName, ModelName, VersionName), String> {
    if text.chars().count() > LineageRequest::MAX_REFERENCE_CHARS {
        return Err(format!(
            "at most {} characters",
            LineageRequest::MAX_REFERENCE_CHARS
        ));
    }
    let parsed: ModelRef = text.parse().map_err(|e: crate::CoreError| e.to_string())?;
    if parsed.alias.is_some() {
        return Err(format!(
            "{text:?} names an alias, which moves; name the version (NAMESPACE/MODEL:VERSION)"
        ));
    }
    match parsed.require_version() {
        Some((ns, model, version)) => Ok((ns.clone(), model.clone(), version.clone())),
        None => Err(format!(
            "{text:?} does not name a version; write NAMESPACE/MODEL:VERSION"
        )),
    }
}

fn check_role(role: &str) -> Result<(), String> {
    let mut chars = role.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !well_formed || role.len() > LineageRequest::MAX_ROLE_CHARS {
        return Err(format!(
            "{role:?} is not a role: 1 to {} lowercase letters, digits, - and _, starting with a letter \
             (teacher, base, source, fine-tuned-from)",
            LineageRequest::MAX_ROLE_CHARS
        ));
    }
    Ok(())
}

/// 1 to `max` characters, none of them a control character.
fn check_text(text: &str, max: usize) -> Result<(), String> {
    let count = text.chars().count();
    if count == 0 || count > max || text.chars().any(char::is_control) {
        return Err(format!("1 to {max} characters without control characters"));
    }
    Ok(())
}

fn check_dataset(dataset: &DatasetRequest, field: &str) -> Result<(), LineageProblem> {
    match (&dataset.reference, &dataset.uri) {
        (Some(reference), None) => {
            version_reference(reference).map_err(|m| problem(format!("{field}.reference"), m))?;
            if dataset.sha256.is_some() {
                return Err(problem(
                    format!("{field}.sha256"),
                    "only an external dataset (uri) takes a digest; kiln records a kiln dataset's file digests itself",
                ));
            }
            Ok(())
        }
        (None, Some(uri)) => {
            check_text(uri, LineageRequest::MAX_URI_CHARS)
                .map_err(|m| problem(format!("{field}.uri"), m))?;
            let scheme = uri.split_once(':').map(|(scheme, _)| scheme);
            let schemed = scheme.is_some_and(|s| {
                s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            });
            // Unicode's White_Space and the BOM: what the schema's `\s` (ECMAScript's) refuses.
            let spaced = uri.contains(|c: char| c.is_whitespace() || c == '\u{feff}');
            if !schemed || spaced {
                return Err(problem(
                    format!("{field}.uri"),
                    format!(
                        "{uri:?} is not a URI: write it with its scheme and without spaces (s3://bucket/data, https://...)"
                    ),
                ));
            }
            Ok(())
        }
        _ => Err(problem(
            field,
            "give either reference (a kiln version) or uri (an external dataset)",
        )),
    }
}

fn check_hyperparameters(hyperparameters: &Hyperparameters) -> Result<(), LineageProblem> {
    type Request = LineageRequest;
    if hyperparameters.len() > Request::MAX_HYPERPARAMETERS {
        return Err(problem(
            "lineage.hyperparameters",
            format!(
                "at most {} hyperparameters (got {})",
                Request::MAX_HYPERPARAMETERS,
                hyperparameters.len()
            ),
        ));
    }
    for (name, value) in hyperparameters {
        check_text(name, Request::MAX_HYPERPARAMETER_NAME_CHARS)
            .map_err(|m| problem("lineage.hyperparameters", format!("the name {name:?}: {m}")))?;
        let field = format!("lineage.hyperparameters.{name}");
        match value {
            serde_json::Value::Bool(_) | serde_json::Value::Number(_) => {}
            serde_json::Value::String(text) => {
                if text.chars().count() > Request::MAX_HYPERPARAMETER_TEXT_CHARS {
                    return Err(problem(
                        field,
                        format!(
                            "at most {} characters",
                            Request::MAX_HYPERPARAMETER_TEXT_CHARS
                        ),
                    ));
                }
            }
            _ => {
                return Err(problem(
                    field,
                    "a string, a number or a boolean (not null, a list or an object)",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sha256Digest;
    use serde_json::json;

    fn field_of(value: serde_json::Value) -> String {
        serde_json::from_value::<LineageRequest>(value)
            .unwrap()
            .check()
            .unwrap_err()
            .field
    }

    #[test]
    fn each_bad_field_is_named() {
        let parent = |reference: &str, role: &str| json!({"parents": [{"reference": reference, "role": role}]});
        assert_eq!(
            field_of(parent("acme/t", "teacher")),
            "lineage.parents[0].reference"
        );
        assert_eq!(
            field_of(parent("acme/t@production", "teacher")),
            "lineage.parents[0].reference"
        );
        assert_eq!(
            field_of(parent("acme/t:1", "Teacher")),
            "lineage.parents[0].role"
        );
        assert_eq!(field_of(parent("acme/t:1", "")), "lineage.parents[0].role");
        assert_eq!(field_of(json!({"datasets": [{}]})), "lineage.datasets[0]");
        assert_eq!(
            field_of(json!({"datasets": [{"reference": "a/d:1", "uri": "s3://x"}]})),
            "lineage.datasets[0]"
        );
        assert_eq!(
            field_of(json!({"datasets": [{"uri": "no scheme here"}]})),
            "lineage.datasets[0].uri"
        );
        assert_eq!(
            field_of(
                json!({"datasets": [{"reference": "a/d:1", "sha256": Sha256Digest::of(b"")}]})
            ),
            "lineage.datasets[0].sha256"
        );
        assert_eq!(
            field_of(json!({"training_run": ""})),
            "lineage.training_run"
        );
        assert_eq!(
            field_of(json!({"producer": {"name": "x", "version": "v".repeat(65)}})),
            "lineage.producer.version"
        );
        assert_eq!(
            field_of(json!({"hyperparameters": {"layers": [1, 2]}})),
            "lineage.hyperparameters.layers"
        );
        assert_eq!(
            field_of(json!({"hyperparameters": {"note": "n".repeat(257)}})),
            "lineage.hyperparameters.note"
        );
    }

    #[test]
    fn sizes_are_bounded() {
        let many: serde_json::Map<String, serde_json::Value> =
            (0..65).map(|i| (format!("p{i}"), json!(i))).collect();
        assert_eq!(
            field_of(json!({ "hyperparameters": many })),
            "lineage.hyperparameters"
        );
        let long_name = json!({ "hyperparameters": { "k".repeat(65): 1 } });
        assert_eq!(field_of(long_name), "lineage.hyperparameters");
        let parents: Vec<_> = (0..17)
            .map(|i| json!({"reference": format!("acme/p:{i}"), "role": "base"}))
            .collect();
        assert_eq!(field_of(json!({ "parents": parents })), "lineage.parents");
        let twice = json!({"parents": [{"reference": "a/p:1", "role": "base"},
                                       {"reference": "a/p:1", "role": "base"}]});
        assert_eq!(field_of(twice), "lineage.parents[1]");
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_value::<LineageRequest>(json!({"run": "x"})).is_err());
        assert!(
            serde_json::from_value::<LineageRequest>(
                json!({"parents": [{"reference": "a/b:1", "role": "base", "why": "x"}]})
            )
            .is_err()
        );
    }
}
