//! When a request's client stops waiting for its answer, as the client says: the protocol's `timeout`
//! parameter (microseconds; tritonclient's `timeout=` sends it over REST and gRPC, and Triton takes it
//! as the request's timeout in its queue) and, over gRPC, the call's `grpc-timeout` (the client's
//! deadline, at which the call is ended: `call_deadline`). The batcher does not run a request past it,
//! and stops a run once every request in it is past its own (`batcher::deadline`).

use std::time::{Duration, Instant};

use super::ServeError;

/// The request's `timeout` parameter, given as `micros` (`None`: not an integer); 0 is no timeout, as
/// Triton reads it.
pub fn timeout_parameter(micros: Option<i128>) -> Result<Option<Duration>, ServeError> {
    let micros = micros.and_then(|n| u64::try_from(n).ok()).ok_or_else(|| {
        ServeError::BadRequest(
            "the timeout parameter must be a whole number of microseconds, 0 or more".to_owned(),
        )
    })?;
    Ok((micros > 0).then(|| Duration::from_micros(micros)))
}

/// A gRPC call's `grpc-timeout` header, as gRPC's HTTP/2 protocol writes it: up to 8 digits and a unit
/// (`H`, `M`, `S`, `m`, `u`, `n`). Read exactly as tonic's server reads it, a `+` before the digits
/// included (Rust's integer parsing takes one), so that a call tonic would time out has its deadline
/// here too (`call_deadline`); `None` where tonic ignores the header.
pub fn grpc_timeout(header: &str) -> Option<Duration> {
    let (digits, unit) = header.split_at_checked(header.len().checked_sub(1)?)?;
    if digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The deadline of a request that arrived at `arrived`: at the soonest of `timeouts`, if any.
pub fn deadline(
    arrived: Instant,
    timeouts: impl IntoIterator<Item = Option<Duration>>,
) -> Option<Instant> {
    let soonest = timeouts.into_iter().flatten().min()?;
    // A timeout past what the clock holds is no deadline.
    arrived.checked_add(soonest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_read_as_grpc_writes_them() {
        assert_eq!(grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(
            grpc_timeout("99999999u"),
            Some(Duration::from_micros(99_999_999))
        );
        assert_eq!(grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(grpc_timeout("7n"), Some(Duration::from_nanos(7)));
        assert_eq!(
            grpc_timeout("+5S"),
            Some(Duration::from_secs(5)),
            "as tonic"
        );
        for bad in [
            "+S",
            "+12345678S",
            "",
            "S",
            "123456789S",
            "5s",
            "-5S",
            "5",
            "1.5S",
            "5SS",
            "٣S",
            "é",
        ] {
            assert_eq!(grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_timeout_parameter_is_microseconds_and_zero_is_none() {
        assert_eq!(
            timeout_parameter(Some(1_500)).unwrap(),
            Some(Duration::from_micros(1_500))
        );
        assert_eq!(timeout_parameter(Some(0)).unwrap(), None);
        for bad in [None, Some(-1), Some(i128::from(u64::MAX) + 1)] {
            let refused = timeout_parameter(bad).unwrap_err();
            assert!(refused.to_string().contains("microseconds"), "{refused}");
        }
    }

    #[test]
    fn the_soonest_timeout_sets_the_deadline() {
        let now = Instant::now();
        let (one, two) = (Duration::from_secs(1), Duration::from_secs(2));
        assert_eq!(deadline(now, [Some(two), None, Some(one)]), Some(now + one));
        assert_eq!(deadline(now, [None, None]), None);
        assert_eq!(deadline(now, [Some(Duration::MAX)]), None);
    }
}
