//! `/search TEXT`: the lines of the room's kept history (and the searcher's own private
//! messages of this session) whose text contains TEXT, in any case. Done by the server,
//! over the history it keeps for replay and `/history` (`--history` events per room,
//! read back from `--save` after a restart), not by the client over what it happened to
//! see: a client knows only what was said while it was connected, and `nc` users have
//! no client at all. Matching is on the text said (a line, an action, a private
//! message, a topic), not on nicks or joins.

use crate::protocol::EventKind;
use crate::server::history::Stored;

/// Most matches sent for one search: the newest ones. Like `/history`, the answer must
/// stay small next to the send queue, and a person reads a screenful at most.
pub const MAX_SEARCH_RESULTS: usize = 20;

/// What a search found: up to [`MAX_SEARCH_RESULTS`] of the newest matches, oldest
/// first, and how many matched in all.
#[derive(Debug, PartialEq)]
pub struct Found<'a> {
    pub shown: Vec<&'a Stored>,
    pub total: usize,
}

/// The events of `kept` (oldest first) whose text contains `query`, compared in lower
/// case (Unicode's, so `ÉTÉ` finds `été`).
pub fn search<'a>(kept: Vec<&'a Stored>, query: &str) -> Found<'a> {
    let needle = query.to_lowercase();
    let mut shown: Vec<&Stored> = kept
        .into_iter()
        .filter(|stored| {
            said_text(&stored.event.kind).is_some_and(|text| text.to_lowercase().contains(&needle))
        })
        .collect();
    let total = shown.len();
    shown.drain(..total.saturating_sub(MAX_SEARCH_RESULTS));
    Found { shown, total }
}

/// The text someone said in `kind`, if it is something said.
fn said_text(kind: &EventKind) -> Option<&str> {
    match kind {
        EventKind::Public { text, .. }
        | EventKind::Action { text, .. }
        | EventKind::Private { text, .. } => Some(text),
        EventKind::Topic { topic, by: Some(_), .. } => Some(topic),
        _ => None,
    }
}

/// The line that opens a search's answer.
pub fn heading(query: &str, room: &str, found: &Found<'_>) -> String {
    match (found.total, found.shown.len()) {
        (0, _) => format!("search: nothing in the kept history of {room} contains \"{query}\""),
        (1, _) => format!("search results for \"{query}\" in {room}: 1 match"),
        (total, shown) if shown < total => format!(
            "search results for \"{query}\" in {room}: {total} matches, the last {shown} shown"
        ),
        (total, _) => format!("search results for \"{query}\" in {room}: {total} matches"),
    }
}

/// The line that closes a search's answer, when it had matches.
pub const END_OF_RESULTS: &str = "end of search results";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Event;
    use crate::server::history::Scope;

    fn said(id: u64, kind: EventKind) -> Stored {
        let mut event = Event::now(kind);
        event.id = Some(id);
        Stored { event, scope: Scope::Room }
    }

    fn public(id: u64, text: &str) -> Stored {
        said(id, EventKind::Public { from: "ann".into(), text: text.into(), room: "#r".into() })
    }

    #[test]
    fn any_case_in_what_was_said_only() {
        let kept = [
            public(1, "The Vault is open"),
            said(
                2,
                EventKind::Join {
                    nick: "vault".into(),
                    online: 1,
                    room: "#r".into(),
                    here: 1,
                    from_room: None,
                },
            ),
            said(
                3,
                EventKind::Action {
                    from: "bob".into(),
                    text: "locks the VAULT".into(),
                    room: "#r".into(),
                },
            ),
            public(4, "nothing here"),
            said(
                5,
                EventKind::Topic {
                    room: "#r".into(),
                    topic: "vault day".into(),
                    by: Some("ann".into()),
                },
            ),
            public(6, "ÉTÉ en Provence"),
        ];
        let found = search(kept.iter().collect(), "vAuLt");
        let ids: Vec<u64> = found.shown.iter().map(|s| s.id()).collect();
        assert_eq!((ids, found.total), (vec![1, 3, 5], 3));
        assert_eq!(search(kept.iter().collect(), "été").total, 1);
        assert_eq!(search(kept.iter().collect(), "absent").total, 0);
    }

    #[test]
    fn the_newest_matches_are_shown_and_all_are_counted() {
        let kept: Vec<Stored> = (1..=50).map(|i| public(i, &format!("line {i}"))).collect();
        let found = search(kept.iter().collect(), "LINE");
        assert_eq!(found.total, 50);
        assert_eq!(found.shown.len(), MAX_SEARCH_RESULTS);
        assert_eq!(found.shown.first().map(|s| s.id()), Some(31));
        assert_eq!(found.shown.last().map(|s| s.id()), Some(50));
        assert_eq!(
            heading("line", "#r", &found),
            "search results for \"line\" in #r: 50 matches, the last 20 shown"
        );
        let none = search(kept.iter().collect(), "zebra");
        assert_eq!(
            heading("zebra", "#r", &none),
            "search: nothing in the kept history of #r contains \"zebra\""
        );
    }
}
