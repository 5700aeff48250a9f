//! Where models are being served: `kiln-runner serve` processes report, with a runner-scoped token, what
//! they serve; a model's readers list the reports refreshed in the last [`FRESH_FOR`]. Reports are
//! checked (bounded fields, a model that exists) and one process's report can be refreshed or withdrawn
//! only with the token that made it.

use chrono::{Duration, NaiveDateTime};
use kiln_core::api::{ServingReport, ServingView};
use kiln_core::{ErrorCode, ModelName, NamespaceName};

use crate::db::Database;
use crate::db::records::ServingRow;
use crate::db::repos::servings;
use crate::error::Error;
use crate::services::aliases::model_id;

/// A serving process reports every 30 s; one silent for three periods is gone.
pub const FRESH_FOR: Duration = Duration::seconds(90);
/// Live reports one model may hold: a bound on what a runner token can make the model's page list.
const MAX_PER_MODEL: i64 = 256;
const MAX_ENDPOINTS: usize = 8;
const MAX_TEXT: usize = 200;

#[derive(Clone)]
pub struct ServingService {
    db: Database,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::bad_request(ErrorCode::InvalidServing, message)
}

/// The serving process's own id: plain, so it reads well in a URL and a log.
fn check_id(id: &str) -> Result<(), Error> {
    let plain = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plain {
        Ok(())
    } else {
        Err(invalid(
            "the serving id must be 1 to 64 letters, digits, '-' or '_'",
        ))
    }
}

fn check_report(report: &ServingReport) -> Result<(), Error> {
    let fields = [
        ("variant", &report.variant),
        ("engine", &report.engine),
        ("device", &report.device),
        ("name", &report.name),
    ];
    for (field, value) in fields {
        if value.is_empty() || value.len() > MAX_TEXT || value.chars().any(char::is_control) {
            return Err(invalid(format!(
                "{field} must be 1 to {MAX_TEXT} printable characters"
            )));
        }
    }
    if report.endpoints.is_empty() || report.endpoints.len() > MAX_ENDPOINTS {
        return Err(invalid(format!(
            "endpoints must list 1 to {MAX_ENDPOINTS} addresses"
        )));
    }
    for endpoint in &report.endpoints {
        if endpoint.is_empty()
            || endpoint.len() > MAX_TEXT
            || endpoint
                .chars()
                .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(invalid(format!(
                "each endpoint must be 1 to {MAX_TEXT} characters without spaces: {endpoint:?}"
            )));
        }
    }
    if report.sequence < 0 {
        return Err(invalid("sequence must not be negative"));
    }
    Ok(())
}

fn view(row: ServingRow, ns: &NamespaceName, model: &ModelName) -> Result<ServingView, Error> {
    Ok(ServingView {
        id: row.id,
        report: ServingReport {
            namespace: ns.clone(),
            model: model.clone(),
            alias: row.alias.map(|a| a.parse()).transpose()?,
            version: row.version.parse()?,
            variant: row.variant,
            sha256: row.sha256.parse()?,
            sequence: row.sequence,
            engine: row.engine,
            device: row.device,
            name: row.name,
            endpoints: serde_json::from_str(&row.endpoints)?,
        },
        reported_by: row.reported_by,
        started_at: row.started_at.and_utc(),
        last_seen_at: row.last_seen_at.and_utc(),
    })
}

impl ServingService {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Records (or refreshes) serving process `id`'s report.
    pub async fn report(
        &self,
        id: String,
        (token_id, owner): (String, String),
        report: ServingReport,
    ) -> Result<ServingView, Error> {
        check_id(&id)?;
        check_report(&report)?;
        self.db
            .run(move |conn| {
                let now = crate::db::now();
                let model_id = model_id(conn, &report.namespace, &report.model)?;
                let earlier = servings::find(conn, &id)?;
                if earlier.as_ref().is_some_and(|e| e.token_id != token_id) {
                    return Err(Error::forbidden(format!(
                        "serving {id} was reported with another runner token"
                    )));
                }
                let fresh_since = now - FRESH_FOR;
                let refreshing = earlier
                    .as_ref()
                    .is_some_and(|e| e.last_seen_at >= fresh_since);
                if !refreshing
                    && servings::count_live(conn, &model_id, fresh_since)? >= MAX_PER_MODEL
                {
                    return Err(Error::conflict(
                        ErrorCode::InvalidServing,
                        format!(
                            "{}/{} already has {MAX_PER_MODEL} serving reports",
                            report.namespace, report.model
                        ),
                    ));
                }
                let row = ServingRow {
                    id: id.clone(),
                    model_id,
                    token_id,
                    reported_by: owner,
                    name: report.name.clone(),
                    alias: report.alias.as_ref().map(|a| a.to_string()),
                    version: report.version.to_string(),
                    variant: report.variant.clone(),
                    sha256: report.sha256.to_string(),
                    sequence: report.sequence,
                    engine: report.engine.clone(),
                    device: report.device.clone(),
                    endpoints: serde_json::to_string(&report.endpoints)?,
                    started_at: earlier.filter(|_| refreshing).map_or(now, |e| e.started_at),
                    last_seen_at: now,
                };
                servings::upsert(conn, &row, fresh_since)?;
                view(row, &report.namespace, &report.model)
            })
            .await
    }

    /// Withdraws serving process `id`'s report (it stopped).
    pub async fn withdraw(&self, id: String, token_id: String) -> Result<(), Error> {
        check_id(&id)?;
        self.db
            .run(move |conn| match servings::find(conn, &id)? {
                Some(row) if row.token_id == token_id => {
                    servings::delete(conn, &id)?;
                    Ok(())
                }
                Some(_) => Err(Error::forbidden(format!(
                    "serving {id} was reported with another runner token"
                ))),
                None => Err(Error::not_found(format!("serving {id}"))),
            })
            .await
    }

    /// The model's live serving processes, by name.
    pub async fn list(
        &self,
        ns: NamespaceName,
        model: ModelName,
    ) -> Result<Vec<ServingView>, Error> {
        self.db
            .run(move |conn| {
                let model_id = model_id(conn, &ns, &model)?;
                let fresh_since: NaiveDateTime = crate::db::now() - FRESH_FOR;
                servings::live(conn, &model_id, fresh_since)?
                    .into_iter()
                    .map(|row| view(row, &ns, &model))
                    .collect()
            })
            .await
    }
}
