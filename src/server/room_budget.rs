//! How many rooms one address may create: [`ROOMS_AT_ONCE`], then one per
//! [`ROOM_EVERY`], shared by all its connections.
//!
//! Creating a room already costs flood control on its connection, but an address has up
//! to `--max-per-ip` connections, each with its own bucket: 16 connections open 64 rooms
//! at once at the defaults. Rooms are server state that outlives them (a room's history
//! is kept after it closes, and a new room may push a closed one's out, see `history`),
//! so their creation is budgeted per address, as `--max-per-ip` counts connections: by
//! IPv4 address or IPv6 /64 ([`crate::net::origin`]), and not at all for the networks
//! `--max-per-ip-exempt` names (loopback by default: a tunnel or a proxy carries many
//! people from one address).
//!
//! Time is passed in, so the policy is tested without sleeping.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

/// Rooms an address may create in a row.
pub const ROOMS_AT_ONCE: u32 = 10;

/// After that, one more room per this long (ten an hour).
pub const ROOM_EVERY: Duration = Duration::from_secs(6 * 60);

/// Addresses kept before those with a full budget (that created nothing lately) are
/// forgotten: a bound on memory, since a forgotten address starts with a full budget.
const REMEMBERED: usize = 1024;

/// The room-creation budget of every address that created rooms lately.
#[derive(Debug, Default)]
pub struct RoomBudget {
    /// Origin -> rooms it may still create, as of when.
    by_origin: HashMap<IpAddr, (f64, Instant)>,
}

impl RoomBudget {
    /// Takes one room from `origin`'s budget at `now`; when there is none, how long
    /// until there is.
    pub fn take(&mut self, origin: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.by_origin.len() >= REMEMBERED {
            self.by_origin
                .retain(|_, (left, at)| refilled(*left, *at, now) < f64::from(ROOMS_AT_ONCE));
        }
        let (left, at) = self.by_origin.entry(origin).or_insert((f64::from(ROOMS_AT_ONCE), now));
        let now_left = refilled(*left, *at, now);
        if now_left < 1.0 {
            let wait = ROOM_EVERY.mul_f64(1.0 - now_left);
            return Err(wait);
        }
        (*left, *at) = (now_left - 1.0, now);
        Ok(())
    }
}

/// What `left` rooms at `at` have grown to at `now`.
fn refilled(left: f64, at: Instant, now: Instant) -> f64 {
    let grown = now.saturating_duration_since(at).as_secs_f64() / ROOM_EVERY.as_secs_f64();
    (left + grown).min(f64::from(ROOMS_AT_ONCE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_makes_its_budget_at_once_then_one_per_interval() {
        let t0 = Instant::now();
        let mut budget = RoomBudget::default();
        let a: IpAddr = "198.51.100.7".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        for _ in 0..ROOMS_AT_ONCE {
            assert_eq!(budget.take(a, t0), Ok(()));
        }
        assert_eq!(budget.take(a, t0), Err(ROOM_EVERY));
        // Another address has its own budget.
        assert_eq!(budget.take(b, t0), Ok(()));
        let half = t0 + ROOM_EVERY / 2;
        assert_eq!(budget.take(a, half), Err(ROOM_EVERY / 2));
        assert_eq!(budget.take(a, t0 + ROOM_EVERY), Ok(()));
        assert!(budget.take(a, t0 + ROOM_EVERY).is_err());
    }

    #[test]
    fn idle_addresses_are_forgotten_past_the_bound() {
        let t0 = Instant::now();
        let mut budget = RoomBudget::default();
        for i in 0..REMEMBERED as u32 {
            budget.take(IpAddr::from(i.to_be_bytes()), t0).unwrap();
        }
        let later = t0 + ROOM_EVERY * 2;
        budget.take("203.0.113.1".parse().unwrap(), later).unwrap();
        assert_eq!(budget.by_origin.len(), 1, "refilled ones forgotten");
    }
}
