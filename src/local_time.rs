//! Times as people read them, in one convention for every place that shows one: local
//! time (the reader's zone: the client's, or for `nc` users the server's, the only one
//! it knows), `HH:MM` for today and the date before it for any other day, as irssi and
//! weechat date their backlog. A replayed line from five days ago must not read as said
//! at that time today.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// `HH:MM` when `ts` falls on `today` in `tz`, else `YYYY-MM-DD HH:MM`.
pub fn clock(ts: Timestamp, tz: &TimeZone, today: Date) -> String {
    let zoned = ts.to_zoned_datetime(tz.clone());
    if zoned.date() == today {
        zoned.strftime("%H:%M").to_string()
    } else {
        zoned.strftime("%Y-%m-%d %H:%M").to_string()
    }
}

/// The date of `now` in `tz`.
pub fn today(now: Timestamp, tz: &TimeZone) -> Date {
    now.to_zoned_datetime(tz.clone()).date()
}

/// A moment given in full (`/whois`'s "online since"): date, time to the second and the
/// zone's abbreviation, in `tz`: `2026-12-06 09:15:02 CET`.
pub fn full(ts: Timestamp, tz: &TimeZone) -> String {
    ts.to_zoned_datetime(tz.clone()).strftime("%Y-%m-%d %H:%M:%S %Z").to_string()
}

/// The line a long-running client shows when the date changes between two live
/// lines: `Day changed to Sun 6 Dec 2026`.
pub fn day_changed(date: Date) -> String {
    date.strftime("Day changed to %a %-d %b %Y").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_day_is_dated_in_the_readers_zone() {
        let ts: Timestamp = "2026-12-01T23:06:00Z".parse().unwrap();
        let utc = TimeZone::UTC;
        let today: Date = "2026-12-01".parse().unwrap();
        assert_eq!(clock(ts, &utc, today), "23:06");
        assert_eq!(clock(ts, &utc, "2026-12-06".parse().unwrap()), "2026-12-01 23:06");
        // 23:06 UTC is the next day two hours east: that is the date shown there.
        let east = TimeZone::fixed(jiff::tz::offset(2));
        assert_eq!(clock(ts, &east, "2026-12-01".parse().unwrap()), "2026-12-02 01:06");
        assert_eq!(clock(ts, &east, "2026-12-02".parse().unwrap()), "01:06");
        let west = TimeZone::fixed(jiff::tz::offset(-8));
        assert_eq!(super::today(ts, &west), "2026-12-01".parse::<Date>().unwrap());
        assert_eq!(full(ts, &east), "2026-12-02 01:06:00 +02");
        assert_eq!(day_changed("2026-12-06".parse().unwrap()), "Day changed to Sun 6 Dec 2026");
    }
}
