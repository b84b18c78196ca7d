//! Business time: wall time sped up by the handoff's time scale.
//!
//! `business_now = start + (wall − start) × scale`, where `start` is the first
//! workflow-task time of the handoff. With scale 1 business time is wall time;
//! tests and demos run whole quarters in minutes without changing any rule.

use chrono::{DateTime, Duration, SubsecRound as _, Utc};
use serde::{Deserialize, Serialize};

/// Maps between wall instants and business instants of one handoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessClock {
    /// Wall instant where both timelines meet.
    pub start: DateTime<Utc>,
    /// Business seconds per wall second, at least 1.
    pub scale: u32,
}

impl BusinessClock {
    /// A clock anchored at `start` (to the millisecond); a scale of 0 is treated as 1.
    ///
    /// Both directions work in whole milliseconds from a millisecond-aligned
    /// start, so a timer armed for `to_wall(b)` always reads back as `>= b`.
    pub fn new(start: DateTime<Utc>, scale: u32) -> Self {
        let start = start.trunc_subsecs(3);
        Self {
            start,
            scale: scale.max(1),
        }
    }

    /// The business instant at a wall instant.
    pub fn to_business(&self, wall: DateTime<Utc>) -> DateTime<Utc> {
        let elapsed = (wall - self.start).num_milliseconds();
        self.start + Duration::milliseconds(elapsed.saturating_mul(i64::from(self.scale)))
    }

    /// The first wall instant whose business instant is at or after `business`.
    pub fn to_wall(&self, business: DateTime<Utc>) -> DateTime<Utc> {
        let elapsed = (business - self.start).num_milliseconds();
        let scale = i64::from(self.scale);
        // Round up so a timer never fires before its business deadline.
        let wall_ms = elapsed.div_euclid(scale) + i64::from(elapsed.rem_euclid(scale) != 0);
        self.start + Duration::milliseconds(wall_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_one_is_wall_time_to_the_millisecond() {
        let start = DateTime::parse_from_rfc3339("2026-03-02T10:00:00.250Z")
            .unwrap()
            .to_utc();
        let clock = BusinessClock::new(start, 1);
        let later = start + Duration::seconds(90);
        assert_eq!(clock.to_business(later), later);
        assert_eq!(clock.to_wall(later), later);
    }

    #[test]
    fn a_business_day_at_scale_3600_takes_24_wall_seconds() {
        let start = DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")
            .unwrap()
            .to_utc();
        let clock = BusinessClock::new(start, 3600);
        assert_eq!(
            clock.to_wall(start + Duration::days(1)),
            start + Duration::seconds(24)
        );
        assert_eq!(
            clock.to_business(start + Duration::seconds(24)),
            start + Duration::days(1)
        );
    }

    #[test]
    fn a_timer_armed_from_a_nanosecond_start_never_reads_back_early() {
        let start = DateTime::parse_from_rfc3339("2026-12-04T04:41:33.102297922Z")
            .unwrap()
            .to_utc();
        let clock = BusinessClock::new(start, 1);
        let deadline = DateTime::parse_from_rfc3339("2026-12-08T09:00:00Z")
            .unwrap()
            .to_utc();
        let wall = clock.to_wall(deadline);
        // The timer fires at `wall` or later; business time then is at the deadline.
        assert!(clock.to_business(wall) >= deadline);
        assert!(clock.to_business(wall + Duration::nanoseconds(999_999)) >= deadline);
        assert_eq!(wall, deadline);
    }

    #[test]
    fn wall_instants_round_up_so_timers_never_fire_early() {
        let start = DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")
            .unwrap()
            .to_utc();
        let clock = BusinessClock::new(start, 7);
        let business = start + Duration::milliseconds(10);
        let wall = clock.to_wall(business);
        assert!(clock.to_business(wall) >= business);
    }
}
