//! How `ts` is written in the `--save` log and in structured events: RFC 3339 in UTC,
//! in whole seconds (`2025-09-26T23:00:05Z`), as the original design writes it.
//!
//! jq's `fromdateiso8601` (and `strptime("%Y-%m-%dT%H:%M:%SZ")`, which it is built on)
//! accepts exactly this form and refuses fractional seconds, and jq is the tool the
//! design names for the log. Events are never reordered: the order within a second is
//! the order of the lines in the file or on the connection.

use serde::Serializer;

/// `ts` truncated to its second, never rounded up: an event is never stamped with a
/// second that had not begun when it happened.
pub fn whole_second(ts: jiff::Timestamp) -> jiff::Timestamp {
    jiff::Timestamp::from_second(ts.as_second()).unwrap_or(ts)
}

/// For `#[serde(serialize_with = …)]`: writes `ts` as RFC 3339 UTC in whole seconds.
pub fn serialize<S: Serializer>(ts: &jiff::Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&whole_second(*ts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_are_cut_not_rounded() {
        let ts: jiff::Timestamp = "2025-09-26T23:00:05.987654321Z".parse().unwrap();
        assert_eq!(whole_second(ts).to_string(), "2025-09-26T23:00:05Z");
        let exact: jiff::Timestamp = "2025-09-26T23:00:05Z".parse().unwrap();
        assert_eq!(whole_second(exact), exact);
        let json = serde_json::to_string(&Wrapper(ts)).unwrap();
        assert_eq!(json, r#""2025-09-26T23:00:05Z""#);
    }

    #[derive(serde::Serialize)]
    struct Wrapper(#[serde(serialize_with = "serialize")] jiff::Timestamp);
}
