//! The comings and goings of a resume's catch-up, told as one summary that ends in the
//! true state: who is in the room now comes from the server's welcome and room event,
//! sent before the catch-up, so the old join, leave, move and rename events are not
//! applied to the nick list again (a join whose leave the server no longer keeps would
//! leave someone "here" who is gone), and not shown one by one either.

use std::fmt::Write as _;

use crate::nick;
use crate::protocol::EventKind;

/// Whether `kind` is someone coming, going, moving or being renamed.
pub fn is_membership(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Join { .. }
            | EventKind::Leave { .. }
            | EventKind::Part { .. }
            | EventKind::Nick { .. }
    )
}

/// What one person did while the user was away: whether they were here before their
/// first event and after their last (as far as the events tell), and the names they had.
struct Story {
    names: Vec<String>,
    here_before: bool,
    here_after: bool,
}

/// One sentence for the membership events `moves` (oldest first) of a catch-up, and who
/// is `here` now (the nick list as the server last said it): `dave came and went; erin
/// joined; bob is now rob. Here now: alice, erin, rob.`
pub fn summary(moves: &[EventKind], here: &[String]) -> String {
    let mut stories: Vec<Story> = Vec::new();
    for kind in moves {
        let (name, arrives) = match kind {
            EventKind::Join { nick, .. } => (nick, Some(true)),
            EventKind::Leave { nick, .. } | EventKind::Part { nick, .. } => (nick, Some(false)),
            EventKind::Nick { old, .. } => (old, None),
            _ => continue,
        };
        let key = nick::key(name);
        let at = stories.iter().position(|s| s.names.last().is_some_and(|n| nick::key(n) == key));
        let story = match at {
            Some(at) => &mut stories[at],
            None => {
                // A first join says they were not here; a first leave or rename, that
                // they were.
                let before = arrives != Some(true);
                let names = vec![name.clone()];
                stories.push(Story { names, here_before: before, here_after: before });
                stories.last_mut().expect("just pushed")
            }
        };
        match (kind, arrives) {
            (EventKind::Nick { new, .. }, _) => story.names.push(new.clone()),
            (_, Some(arrives)) => story.here_after = arrives,
            _ => {}
        }
    }
    let mut out: Vec<String> = stories.iter().map(told).collect();
    out.retain(|s| !s.is_empty());
    let mut line = out.join("; ");
    if !line.is_empty() {
        line.push_str(". ");
    }
    let _ = write!(
        line,
        "Here now: {}.",
        if here.is_empty() { "only you".into() } else { here.join(", ") }
    );
    line
}

/// One person's part of the summary: `dave joined`, `erin (now erin2) left`, `bob is
/// now rob`.
fn told(story: &Story) -> String {
    let first = &story.names[0];
    let last = story.names.last().expect("a story has a name");
    let who = if story.names.len() > 1 && story.here_before != story.here_after {
        format!("{first} (now {last})")
    } else {
        first.clone()
    };
    let did = match (story.here_before, story.here_after) {
        (false, true) => "joined",
        (true, false) => "left",
        (false, false) => "came and went",
        (true, true) if story.names.len() > 1 => return format!("{first} is now {last}"),
        (true, true) => "left and came back",
    };
    format!("{who} {did}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(nick: &str) -> EventKind {
        EventKind::Join {
            nick: nick.into(),
            online: 1,
            room: "#dev".into(),
            here: 1,
            from_room: None,
        }
    }
    fn leave(nick: &str) -> EventKind {
        EventKind::Leave {
            nick: nick.into(),
            reason: "quit".into(),
            online: 1,
            room: "#dev".into(),
            here: 1,
        }
    }
    fn rename(old: &str, new: &str) -> EventKind {
        EventKind::Nick { old: old.into(), new: new.into(), room: "#dev".into() }
    }

    #[test]
    fn the_summary_ends_in_who_is_here_now() {
        let here = ["ann".to_owned(), "erin".to_owned(), "rob".to_owned()];
        let moves = [join("dave"), join("erin"), rename("bob", "rob"), leave("Dave")];
        assert_eq!(
            summary(&moves, &here),
            "dave came and went; erin joined; bob is now rob. Here now: ann, erin, rob."
        );
        let moves =
            [leave("zed"), join("zed"), join("kim"), rename("kim", "kimmy"), leave("kimmy")];
        assert_eq!(
            summary(&moves, &[]),
            "zed left and came back; kim came and went. Here now: only you."
        );
        assert_eq!(
            summary(&[join("al"), rename("al", "ali")], &[]),
            "al (now ali) joined. Here now: only you."
        );
    }
}
