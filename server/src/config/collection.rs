//! Garbage collection's settings: KILN_GC_GRACE_MINUTES, KILN_GC_INTERVAL_MINUTES, KILN_GC_LEASE_SECS,
//! KILN_GC_BATCH_ROWS.

use std::time::Duration;

use super::{ConfigError, config_error};

/// The longest grace period (and schedule) collection takes: ten years.
const MAX_MINUTES: u64 = 10 * 365 * 24 * 60;

#[derive(Debug, Clone)]
pub struct CollectionSettings {
    /// A blob recorded, or granted to a pusher, within this long is kept even when nothing references it:
    /// a push that uploaded it may not have committed its version yet. Default 24 h.
    pub grace: Duration,
    /// How often a replica collects (one at a time, under a lease); None: only on demand. Default 6 h.
    pub every: Option<Duration>,
    /// A collection's lease, renewed while it runs: a replica that dies mid-run holds off other
    /// collections this long. Default 2 minutes.
    pub lease: Duration,
    /// Blob rows a collection marks, condemns and sweeps at a time. Larger batches finish a big store in
    /// fewer transactions; smaller ones lock fewer rows at once and lose less work to a crash. Default 1000.
    pub batch_rows: i64,
}

pub(super) fn settings(
    grace_minutes: Option<u64>,
    interval_minutes: Option<u64>,
    lease_secs: Option<u64>,
    batch_rows: Option<u64>,
) -> Result<CollectionSettings, ConfigError> {
    let grace_minutes = grace_minutes.unwrap_or(24 * 60);
    if grace_minutes > MAX_MINUTES {
        return Err(config_error(
            "KILN_GC_GRACE_MINUTES",
            format!("must be at most {MAX_MINUTES} (ten years)"),
        ));
    }
    let interval_minutes = interval_minutes.unwrap_or(6 * 60);
    if interval_minutes > MAX_MINUTES {
        return Err(config_error(
            "KILN_GC_INTERVAL_MINUTES",
            format!("must be at most {MAX_MINUTES} (ten years; 0 turns the schedule off)"),
        ));
    }
    let lease_secs = lease_secs.unwrap_or(120);
    if !(2..=86_400).contains(&lease_secs) {
        return Err(config_error(
            "KILN_GC_LEASE_SECS",
            "must be between 2 and 86400",
        ));
    }
    let batch_rows = batch_rows.unwrap_or(1000);
    if !(10..=100_000).contains(&batch_rows) {
        return Err(config_error(
            "KILN_GC_BATCH_ROWS",
            "must be between 10 and 100000",
        ));
    }
    Ok(CollectionSettings {
        grace: Duration::from_secs(grace_minutes * 60),
        every: (interval_minutes > 0).then(|| Duration::from_secs(interval_minutes * 60)),
        lease: Duration::from_secs(lease_secs),
        batch_rows: batch_rows as i64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        let defaults = settings(None, None, None, None).unwrap();
        assert_eq!(defaults.grace, Duration::from_secs(86_400));
        assert_eq!(defaults.every, Some(Duration::from_secs(6 * 3600)));
        assert_eq!(defaults.lease, Duration::from_secs(120));
        assert_eq!(defaults.batch_rows, 1000);
        assert_eq!(
            settings(Some(0), Some(0), Some(2), None).unwrap().every,
            None
        );
        assert!(settings(Some(u64::MAX), None, None, None).is_err());
        assert!(settings(None, Some(u64::MAX), None, None).is_err());
        assert!(settings(None, None, Some(1), None).is_err());
        assert_eq!(settings(None, None, None, Some(10)).unwrap().batch_rows, 10);
        assert!(settings(None, None, None, Some(9)).is_err());
        assert!(settings(None, None, None, Some(100_001)).is_err());
    }
}
