//! The bounds of a distillation request, checked before anything is queued: 400 `invalid_distillation`
//! naming the field.

use kiln_core::api::DistillationRequest;
use kiln_core::{ErrorCode, ModelName, NamespaceName, VersionName};
use kiln_onnx::distill::architecture::StudentShape;

use crate::error::Error;

fn invalid(field: &str, message: impl std::fmt::Display) -> Error {
    Error::BadRequest {
        code: ErrorCode::InvalidDistillation,
        message: format!("{field}: {message}"),
        details: Some(serde_json::json!({ "field": field })),
    }
}

/// The student's `namespace/model:version`, when every field is within its bounds.
pub fn check(
    request: &DistillationRequest,
) -> Result<(NamespaceName, ModelName, VersionName), Error> {
    let target =
        kiln_core::api::version_reference(&request.into).map_err(|m| invalid("into", m))?;
    if let Some(student) = &request.student {
        if student.len() > 256 {
            return Err(invalid("student", "at most 256 characters"));
        }
        let shape = StudentShape::parse(student).map_err(|m| invalid("student", m))?;
        // Exactly the documented form (the schema's pattern), so what is recorded reads back the same.
        let canonical = match &shape {
            StudentShape::Layers(n) if (1..=999_999).contains(n) => format!("layers={n}"),
            StudentShape::Keep(kept)
                if (1..=42).contains(&kept.len()) && kept.iter().all(|i| *i <= 99_999) =>
            {
                let list: Vec<String> = kept.iter().map(usize::to_string).collect();
                format!("keep={}", list.join(","))
            }
            _ => String::new(),
        };
        if canonical != *student {
            return Err(invalid(
                "student",
                "write layers=N (N from 1) or keep=I,J,... (at most 42 layer indexes), without spaces or leading zeros",
            ));
        }
    }
    if let Some(data) = &request.data {
        kiln_core::api::version_reference(data).map_err(|m| invalid("data", m))?;
    }
    let ranges: [(&str, Option<u64>, u64, u64); 4] = [
        ("steps", request.steps.map(u64::from), 1, 1_000_000),
        ("batch_size", request.batch_size.map(u64::from), 1, 4096),
        (
            "sequence_length",
            request.sequence_length.map(u64::from),
            2,
            65536,
        ),
        (
            "checkpoint_every_seconds",
            request.checkpoint_every_seconds.map(u64::from),
            1,
            3600,
        ),
    ];
    for (field, value, low, high) in ranges {
        if value.is_some_and(|v| !(low..=high).contains(&v)) {
            return Err(invalid(field, format!("must be {low} to {high}")));
        }
    }
    if request
        .learning_rate
        .is_some_and(|r| !(r.is_finite() && r > 0.0 && r <= 1.0))
    {
        return Err(invalid("learning_rate", "must be above 0 and at most 1"));
    }
    if request
        .temperature
        .is_some_and(|t| !(t.is_finite() && (0.1..=100.0).contains(&t)))
    {
        return Err(invalid("temperature", "must be 0.1 to 100"));
    }
    if let Some(device) = &request.device {
        let ok = device == "cpu"
            || device == "cuda"
            || device
                .strip_prefix("cuda:")
                .is_some_and(|n| !n.is_empty() && n.len() <= 5 && n.parse::<u32>().is_ok());
        if !ok {
            return Err(invalid(
                "device",
                format!("{device:?} is not cpu, cuda or cuda:N"),
            ));
        }
    }
    Ok(target)
}

/// The device class whose runners take the job.
pub fn device_kind(device: Option<&str>) -> &'static str {
    match device {
        Some(d) if d.starts_with("cuda") => "cuda",
        _ => "cpu",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(into: &str) -> DistillationRequest {
        DistillationRequest {
            into: into.to_owned(),
            ..DistillationRequest::default()
        }
    }

    #[test]
    fn each_bound_is_named_when_broken() {
        assert!(check(&request("acme/small:1")).is_ok());
        for good in ["layers=6", "keep=0,5,11"] {
            let shaped = DistillationRequest {
                student: Some(good.into()),
                ..request("acme/small:1")
            };
            assert!(check(&shaped).is_ok(), "{good}");
        }
        let cases: Vec<(DistillationRequest, &str)> = vec![
            (request("not a reference"), "into"),
            (
                DistillationRequest {
                    student: Some("layers=06".into()),
                    ..request("a/b:1")
                },
                "student",
            ),
            (
                DistillationRequest {
                    student: Some("keep= 1,2".into()),
                    ..request("a/b:1")
                },
                "student",
            ),
            (
                DistillationRequest {
                    student: Some("layers=0".into()),
                    ..request("a/b:1")
                },
                "student",
            ),
            (
                DistillationRequest {
                    steps: Some(0),
                    ..request("a/b:1")
                },
                "steps",
            ),
            (
                DistillationRequest {
                    batch_size: Some(5000),
                    ..request("a/b:1")
                },
                "batch_size",
            ),
            (
                DistillationRequest {
                    sequence_length: Some(1),
                    ..request("a/b:1")
                },
                "sequence_length",
            ),
            (
                DistillationRequest {
                    learning_rate: Some(f64::NAN),
                    ..request("a/b:1")
                },
                "learning_rate",
            ),
            (
                DistillationRequest {
                    temperature: Some(0.0),
                    ..request("a/b:1")
                },
                "temperature",
            ),
            (
                DistillationRequest {
                    device: Some("tpu".into()),
                    ..request("a/b:1")
                },
                "device",
            ),
            (
                DistillationRequest {
                    checkpoint_every_seconds: Some(0),
                    ..request("a/b:1")
                },
                "checkpoint_every_seconds",
            ),
        ];
        for (bad, field) in cases {
            let message = check(&bad).unwrap_err().to_string();
            assert!(
                message.starts_with(&format!("{field}:")),
                "{field}: {message}"
            );
        }
    }
}
