//! Usage: what a namespace and its models hold, and what deleting them would free.

use kiln_core::NamespaceName;
use kiln_core::api::{ModelUsage, NamespaceUsage, Quota};

use super::LifecycleService;
use crate::db::DbConnection;
use crate::db::repos::{namespaces, quotas};
use crate::db::views::usage;
use crate::error::Error;

impl LifecycleService {
    pub async fn usage(&self, ns: NamespaceName) -> Result<NamespaceUsage, Error> {
        self.db
            .read(move |conn| {
                let namespace = namespaces::find(conn, ns.as_str())?
                    .ok_or_else(|| Error::not_found(format!("namespace {ns}")))?;
                namespace_usage(conn, &namespace.id, ns)
            })
            .await
    }
}

pub(super) fn namespace_usage(
    conn: &mut DbConnection,
    namespace_id: &str,
    ns: NamespaceName,
) -> Result<NamespaceUsage, Error> {
    let whole = usage::namespace(conn, namespace_id)?;
    let (max_bytes, max_versions) = quotas::find(conn, namespace_id)?;
    let models = usage::models(conn, namespace_id)?
        .into_iter()
        .map(|row| {
            Ok(ModelUsage {
                model: row.model.parse()?,
                versions: row.versions,
                bytes: row.bytes,
                unique_bytes: row.unique_bytes,
                shared_bytes: row.bytes - row.unique_bytes,
            })
        })
        .collect::<Result<_, Error>>()?;
    Ok(NamespaceUsage {
        namespace: ns,
        versions: whole.versions,
        bytes: whole.bytes,
        unique_bytes: whole.unique_bytes,
        shared_bytes: whole.bytes - whole.unique_bytes,
        quota: Quota {
            max_bytes,
            max_versions,
        },
        models,
    })
}
