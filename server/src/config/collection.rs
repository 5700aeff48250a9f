//! Garbage collection's settings: KILN_GC_GRACE_MINUTES, KILN_GC_INTERVAL_MINUTES, KILN_GC_LEASE_SECS.

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
}

pub(super) fn settings(
    grace_minutes: Option<u64>,
    interval_minutes: Option<u64>,
    lease_secs: Option<u64>,
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
    Ok(CollectionSettings {
        grace: Duration::from_secs(grace_minutes * 60),
        every: (interval_minutes > 0).then(|| Duration::from_secs(interval_minutes * 60)),
        lease: Duration::from_secs(lease_secs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        let defaults = settings(None, None, None).unwrap();
        assert_eq!(defaults.grace, Duration::from_secs(86_400));
        assert_eq!(defaults.every, Some(Duration::from_secs(6 * 3600)));
        assert_eq!(defaults.lease, Duration::from_secs(120));
        assert_eq!(settings(Some(0), Some(0), Some(2)).unwrap().every, None);
        assert!(settings(Some(u64::MAX), None, None).is_err());
        assert!(settings(None, Some(u64::MAX), None).is_err());
        assert!(settings(None, None, Some(1)).is_err());
    }
}
