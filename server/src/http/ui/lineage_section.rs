//! The version page's Lineage section: what the version came from (parents and kiln datasets as links to
//! their pages, external datasets, the run, the producer, hyperparameters) and what was derived from it.

use kiln_core::api::{LineageDataset, LineageLink, VersionDetail};

/// A kiln version named in a lineage: its page while it exists.
pub struct LinkedVersion {
    pub reference: String,
    /// `/models/NS/MODEL/versions/V`, or None for a version deleted since.
    pub href: Option<String>,
    /// The role (`teacher`, `base`), `dataset`, or the linked version's state.
    pub note: String,
}

pub struct DatasetRow {
    /// A kiln dataset: its reference and page.
    pub version: Option<LinkedVersion>,
    /// An external dataset's URI.
    pub uri: String,
    /// `N files` with the first digests shortened, or the external digest.
    pub digests: String,
}

pub struct LineageSection {
    pub parents: Vec<LinkedVersion>,
    pub datasets: Vec<DatasetRow>,
    pub run: String,
    /// The run as a link, when it is an http(s) URL.
    pub run_href: Option<String>,
    pub producer: String,
    pub hyperparameters: Vec<(String, String)>,
    pub derived: Vec<LinkedVersion>,
    /// "and N more", when the version lists fewer than were derived.
    pub more_derived: i64,
}

fn version_href(reference: &str) -> Option<String> {
    let (ns, model, version) = kiln_core::api::version_reference(reference).ok()?;
    Some(format!("/models/{ns}/{model}/versions/{version}"))
}

fn short(digest: &kiln_core::Sha256Digest) -> String {
    digest.to_string().chars().take(19).collect()
}

/// A kiln version named in a lineage: linked while it exists (it has a status), noted otherwise.
fn linked(reference: &str, role: &str, exists: bool) -> LinkedVersion {
    LinkedVersion {
        reference: reference.to_owned(),
        href: exists.then(|| version_href(reference)).flatten(),
        note: if exists {
            role.to_owned()
        } else {
            format!("{role}, deleted since")
        },
    }
}

/// Each dataset: a kiln one linked, with its first files' short digests; an external one's URI and digest.
fn dataset_rows(datasets: &[LineageDataset]) -> Vec<DatasetRow> {
    datasets
        .iter()
        .map(|d| DatasetRow {
            version: d
                .reference
                .as_deref()
                .map(|r| linked(r, "dataset", d.status.is_some())),
            uri: d.uri.clone().unwrap_or_default(),
            digests: match (&d.sha256, d.files.as_slice()) {
                (Some(digest), _) => short(digest),
                (None, []) => String::new(),
                (None, files) => {
                    let first: Vec<String> = files
                        .iter()
                        .take(3)
                        .map(|f| format!("{} {}", f.path, short(&f.digest)))
                        .collect();
                    let more = if files.len() > 3 { ", …" } else { "" };
                    format!("{} file(s): {}{more}", files.len(), first.join(", "))
                }
            },
        })
        .collect()
}

fn derived_rows(detail: &VersionDetail) -> Vec<LinkedVersion> {
    detail
        .derived
        .iter()
        .map(|d| LinkedVersion {
            reference: d.reference.clone(),
            href: version_href(&d.reference),
            note: match d.link {
                LineageLink::Parent => format!("as its {}", d.role),
                LineageLink::Dataset => "as a dataset".to_owned(),
            },
        })
        .collect()
}

/// The section, or None when the version has no lineage and nothing was derived from it.
pub fn build(detail: &VersionDetail) -> Option<LineageSection> {
    if detail.lineage.is_none() && detail.derived.is_empty() {
        return None;
    }
    let lineage = detail.lineage.clone().unwrap_or_default();
    let run = lineage.training_run.clone().unwrap_or_default();
    // Only http(s) becomes a link: a run id, or any other scheme, stays text.
    let run_href = (run.starts_with("https://") || run.starts_with("http://")).then(|| run.clone());
    Some(LineageSection {
        parents: lineage
            .parents
            .iter()
            .map(|p| linked(&p.reference, &p.role, p.status.is_some()))
            .collect(),
        datasets: dataset_rows(&lineage.datasets),
        run,
        run_href,
        producer: lineage
            .producer
            .as_ref()
            .map(|p| format!("{} {}", p.name, p.version))
            .unwrap_or_default(),
        hyperparameters: lineage
            .hyperparameters
            .iter()
            .flatten()
            .map(|(name, value)| match value {
                serde_json::Value::String(text) => (name.clone(), text.clone()),
                other => (name.clone(), other.to_string()),
            })
            .collect(),
        derived: derived_rows(detail),
        more_derived: detail.derived_count - detail.derived.len() as i64,
    })
}
