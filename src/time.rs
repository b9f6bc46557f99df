//! Instants for deadlines: the far future a deadline falls back to when
//! its duration is too large to add to now (a stall timeout, a ban).

use std::time::Duration;

use tokio::time::Instant;

/// An instant no timer reaches (30 years on): a duration too large to add.
pub(crate) fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(30 * 365 * 24 * 3600)
}
