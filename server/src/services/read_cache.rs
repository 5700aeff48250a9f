//! What hot reads keep for a moment: who a credential is, whether a namespace and model exist and how
//! visible the model is, a version's detail and a subject's newest manifest. Thousands of deployment nodes
//! polling one alias would otherwise each cost a token lookup, an access decision and several queries.
//!
//! The bound is the TTL (`KILN_CACHE_TTL_MS`, default 1 s): a change made on another replica (an alias
//! moved, a token revoked, a member removed, a version's pipeline advancing) is seen by every replica
//! within it. This replica forgets what its own changes touch at once, so a client that moves an alias and
//! reads it back through the same replica sees the move. With a TTL of 0 nothing is kept.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kiln_core::Sha256Digest;
use kiln_core::api::{ManifestResponse, VersionDetail};
use moka::sync::Cache;

use crate::auth::Principal;

/// Entries each cache keeps at most; a flood of distinct keys evicts, it never grows memory.
const CAPACITY: u64 = 100_000;

/// (namespace, model name or "") → (namespace exists, the model's visibility if it exists).
pub type ResourceKey = (String, String);
/// (namespace, model, version).
pub type VersionKey = (String, String, String);
/// (namespace, model, "v:VERSION" or "a:ALIAS").
pub type ManifestKey = (String, String, String);

/// When a read began, as the cache counts changes: what it read is kept only if nothing was forgotten
/// meanwhile (a read racing a revoke must not keep the credential it saw before the revoke).
#[derive(Clone, Copy)]
pub struct ReadStart(u64);

#[derive(Clone)]
pub struct ReadCache {
    ttl: Duration,
    /// Bumped by every forget.
    changes: Arc<AtomicU64>,
    /// A credential's digest → the principal, and when the credential itself expires.
    credentials: Cache<Sha256Digest, (Principal, Option<Instant>)>,
    resources: Cache<ResourceKey, (bool, Option<String>)>,
    versions: Cache<VersionKey, VersionDetail>,
    manifests: Cache<ManifestKey, ManifestResponse>,
}

fn cache<K, V>(ttl: Duration) -> Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    Cache::builder()
        .max_capacity(CAPACITY)
        .time_to_live(ttl.max(Duration::from_millis(1)))
        .build()
}

impl ReadCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            changes: Arc::new(AtomicU64::new(0)),
            credentials: cache(ttl),
            resources: cache(ttl),
            versions: cache(ttl),
            manifests: cache(ttl),
        }
    }

    /// Call before reading what will be kept.
    pub fn start(&self) -> ReadStart {
        ReadStart(self.changes.load(Ordering::SeqCst))
    }

    /// Whether what a read that began at `start` saw may be kept.
    fn keeps(&self, start: ReadStart) -> bool {
        !self.ttl.is_zero() && self.changes.load(Ordering::SeqCst) == start.0
    }

    fn changed(&self) {
        self.changes.fetch_add(1, Ordering::SeqCst);
    }

    pub fn principal(&self, credential: &Sha256Digest) -> Option<Principal> {
        let (principal, expires) = self.credentials.get(credential)?;
        if expires.is_some_and(|at| at <= Instant::now()) {
            self.credentials.invalidate(credential);
            return None;
        }
        Some(principal)
    }

    pub fn keep_principal(
        &self,
        start: ReadStart,
        credential: Sha256Digest,
        principal: &Principal,
        expires: Option<Instant>,
    ) {
        if self.keeps(start) {
            self.credentials
                .insert(credential, (principal.clone(), expires));
        }
    }

    /// Forgets every principal: memberships, scopes or tokens changed.
    pub fn forget_principals(&self) {
        self.changed();
        self.credentials.invalidate_all();
    }

    pub fn resource(&self, key: &ResourceKey) -> Option<(bool, Option<String>)> {
        self.resources.get(key)
    }

    pub fn keep_resource(&self, start: ReadStart, key: ResourceKey, found: (bool, Option<String>)) {
        if self.keeps(start) {
            self.resources.insert(key, found);
        }
    }

    pub fn version(&self, key: &VersionKey) -> Option<VersionDetail> {
        self.versions.get(key)
    }

    pub fn keep_version(&self, start: ReadStart, key: VersionKey, detail: &VersionDetail) {
        if self.keeps(start) {
            self.versions.insert(key, detail.clone());
        }
    }

    pub fn manifest(&self, key: &ManifestKey) -> Option<ManifestResponse> {
        self.manifests.get(key)
    }

    pub fn keep_manifest(&self, start: ReadStart, key: ManifestKey, manifest: &ManifestResponse) {
        if self.keeps(start) {
            self.manifests.insert(key, manifest.clone());
        }
    }

    /// Forgets what this replica keeps of models: their existence and visibility, versions, manifests.
    /// Everything, not one model's entries: changes are rare beside reads and entries live a second, and
    /// moka's `invalidate_all` only marks a time, where per-key predicates would pile up on every push.
    pub fn forget_models(&self) {
        self.changed();
        self.resources.invalidate_all();
        self.versions.invalidate_all();
        self.manifests.invalidate_all();
    }
}
