//! `/help` in `tchat join`: an overview that fits an 80×24 terminal (commands by name, in
//! groups, a few rows), and `/help COMMAND` or `/help keys` for what each does, wrapped at
//! word boundaries to the terminal's width. The server's `/help` answer (every command,
//! with the operator's for an operator) drives the overview; the client adds its own
//! commands and keys. `/help COMMAND` is answered by the client from the command tables
//! it was built with (the same as the server's), so it needs no round trip.

use std::fmt::Write as _;

use rustyline::GraphemeClusterMode;

use super::editor::CLIENT_KEYS;
use super::local::CLIENT_COMMANDS;
use crate::protocol::{COMMANDS, HelpEntry, OPERATOR_COMMANDS, canonical};

/// An answer with more rows than this in full is shown as the overview instead.
const MOST_ROWS: usize = 18;

/// The overview's groups of the server's commands, by name; a command the server lists
/// and no group names (a newer server's) goes under "More".
const GROUPS: &[(&str, &[&str])] = &[
    ("Talk", &["/msg", "/reply", "/me", "/away", "/back", "//text"]),
    ("People", &["/nick", "/list", "/whois"]),
    ("Rooms", &["/join", "/part", "/rooms", "/topic", "/history", "/search"]),
    ("Your nick", &["/register", "/identify", "/password", "/keys", "/unregister"]),
    ("Server", &["/motd", "/oper", "/help", "/quit"]),
];

/// The command name an entry's usage starts with (`/msg <user> <text>` → `/msg`).
fn name(usage: &str) -> &str {
    usage.split_whitespace().next().unwrap_or(usage)
}

/// Whether `entries` are shown in full: when they fit in 18 rows of `cols`
/// columns (a topic's answer, or a short list), else as [`overview`] rows.
pub fn in_full(entries: &[HelpEntry], cols: Option<u16>) -> bool {
    let rows: usize = entries.iter().map(|e| 1 + wrap(&e.description, cols, 4).len()).sum();
    rows <= MOST_ROWS
}

/// The overview of the server's `entries`, the client's commands and, with `keys`, its
/// keys: `(group, names)` rows, then the line that says how to learn more.
pub fn overview(entries: &[HelpEntry], keys: bool) -> (Vec<(String, Vec<String>)>, String) {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut add = |group: &str, command: &str| match rows.iter_mut().find(|(g, _)| g == group) {
        Some((_, names)) if names.iter().any(|n| n == command) => {}
        Some((_, names)) => names.push(command.to_owned()),
        None => rows.push((group.to_owned(), vec![command.to_owned()])),
    };
    let operator = |entry: &HelpEntry| entry.description.starts_with("(operator)");
    // Groups in their order, commands in the server's.
    for (group, names) in GROUPS {
        for entry in entries.iter().filter(|e| !operator(e) && names.contains(&name(&e.usage))) {
            add(group, name(&entry.usage));
        }
    }
    for entry in entries {
        let command = name(&entry.usage);
        if operator(entry) {
            add("Operator", command);
        } else if !GROUPS.iter().any(|(_, names)| names.contains(&command)) {
            add("More", command);
        }
    }
    for (usage, _) in CLIENT_COMMANDS {
        add("This client", name(usage));
    }
    if keys {
        for (key, _) in CLIENT_KEYS {
            add("Keys", &key.replace(" / ", "/"));
        }
    }
    let more = if keys {
        "/help COMMAND says what one does and how (/help msg); /help keys, what the keys do."
    } else {
        "/help COMMAND says what one does and how (/help msg)."
    };
    (rows, more.to_owned())
}

/// The client's own commands as `/help` entries.
pub fn client_entries() -> impl Iterator<Item = HelpEntry> {
    CLIENT_COMMANDS.iter().map(|(usage, description)| HelpEntry {
        usage: (*usage).into(),
        description: (*description).into(),
    })
}

/// The answer to `/help TOPIC`: the command `topic` names (with or without its `/`, in
/// any case, or one of its aliases), `keys`, or `commands` (the full list); an error
/// naming what there is otherwise.
pub fn topic(topic: &str) -> Result<Vec<HelpEntry>, String> {
    let entry = |usage: &str, description: &str| HelpEntry {
        usage: usage.to_owned(),
        description: description.to_owned(),
    };
    let word = topic.trim().to_lowercase();
    if word == "keys" {
        return Ok(CLIENT_KEYS.iter().map(|(k, d)| entry(k, d)).collect());
    }
    let command = canonical(&if word.starts_with('/') { word.clone() } else { format!("/{word}") });
    let tables = [COMMANDS, OPERATOR_COMMANDS, CLIENT_COMMANDS];
    let found: Vec<HelpEntry> = tables
        .iter()
        .flat_map(|table| table.iter())
        .filter(|(usage, _)| name(usage) == command)
        .map(|(usage, description)| entry(usage, description))
        .collect();
    if found.is_empty() {
        return Err(format!("no command {command}; /help lists them, /help keys the keys"));
    }
    // An operator's form of a command the user has too (/motd TEXT) says so.
    let operator = OPERATOR_COMMANDS.iter().map(|(u, _)| *u).collect::<Vec<_>>();
    Ok(found
        .into_iter()
        .map(|mut e| {
            if operator.contains(&e.usage.as_str()) {
                e.description = format!("(operator) {}", e.description);
            }
            e
        })
        .collect())
}

/// `text` broken at spaces into rows of at most `cols` display columns less `indent`
/// (a word longer than that is cut); one row when `cols` is `None` (not a terminal: a
/// script reads whole lines). The help text is the program's own and short, so a greedy
/// fill is enough (no hyphenation, no optimal fit).
pub fn wrap(text: &str, cols: Option<u16>, indent: u16) -> Vec<String> {
    let Some(cols) = cols else { return vec![text.to_owned()] };
    let room = usize::from(cols.saturating_sub(indent).max(10));
    let mode = GraphemeClusterMode::from_env();
    let width = |s: &str| usize::from(mode.width(s));
    let mut rows = Vec::new();
    let mut row = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_owned();
        if !row.is_empty() && width(&row) + 1 + width(&word) <= room {
            let _ = write!(row, " {word}");
            continue;
        }
        if !row.is_empty() {
            rows.push(std::mem::take(&mut row));
        }
        // A word wider than a row: as much as fits on each.
        while width(&word) > room {
            let mut cut = 0;
            for (at, c) in word.char_indices() {
                if width(&word[..at + c.len_utf8()]) > room {
                    break;
                }
                cut = at + c.len_utf8();
            }
            let cut = cut.max(word.chars().next().map_or(1, char::len_utf8));
            rows.push(word[..cut].to_owned());
            word = word[cut..].to_owned();
        }
        row = word;
    }
    if !row.is_empty() || rows.is_empty() {
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{help_entries, help_entries_for};

    #[test]
    fn the_overview_groups_every_command_the_server_lists() {
        let entries = help_entries_for(true, 20);
        let (rows, more) = overview(&entries, true);
        let listed: Vec<&str> =
            rows.iter().flat_map(|(_, n)| n.iter().map(String::as_str)).collect();
        for entry in &entries {
            assert!(listed.contains(&name(&entry.usage)), "{} missing", entry.usage);
        }
        for (usage, _) in CLIENT_COMMANDS {
            assert!(listed.contains(&name(usage)), "{usage} missing");
        }
        let groups: Vec<&str> = rows.iter().map(|(g, _)| g.as_str()).collect();
        assert_eq!(
            groups,
            ["Talk", "People", "Rooms", "Your nick", "Server", "Operator", "This client", "Keys"]
        );
        assert!(more.contains("/help keys"));
        // Without an operator, no operator group; piped, no keys.
        let (rows, more) = overview(&help_entries(), false);
        assert!(rows.iter().all(|(g, _)| g != "Operator" && g != "Keys"), "{rows:?}");
        assert!(!more.contains("keys"));
        // A command of a newer server is listed too.
        let mut newer = help_entries();
        newer.push(HelpEntry { usage: "/poll <q>".into(), description: "ask".into() });
        let (rows, _) = overview(&newer, false);
        assert!(rows.contains(&("More".into(), vec!["/poll".into()])), "{rows:?}");
    }

    #[test]
    fn a_topic_is_a_command_by_any_of_its_names_or_the_keys() {
        let msg = topic("msg").unwrap();
        assert_eq!(msg.len(), 1);
        assert!(msg[0].usage.starts_with("/msg <user>"));
        assert_eq!(topic("/MSG"), Ok(msg.clone()));
        assert_eq!(topic("tell"), Ok(msg));
        assert_eq!(topic("keys").unwrap().len(), CLIENT_KEYS.len());
        assert!(topic("ignore").unwrap()[0].usage.starts_with("/ignore"));
        // Both forms of /motd, the operator's marked.
        let motd = topic("motd").unwrap();
        assert_eq!(motd.len(), 2);
        assert!(motd[1].description.starts_with("(operator) "), "{motd:?}");
        assert_eq!(
            topic("frobnicate"),
            Err("no command /frobnicate; /help lists them, /help keys the keys".into())
        );
    }

    #[test]
    fn a_topic_is_shown_in_full_and_the_whole_list_is_not() {
        assert!(in_full(&topic("msg").unwrap(), Some(40)));
        assert!(in_full(&topic("keys").unwrap(), Some(80)));
        assert!(!in_full(&help_entries(), Some(200)));
        assert!(!in_full(&help_entries(), None));
    }

    #[test]
    fn rows_break_at_spaces_within_the_width() {
        let text = "send a message only that user is shown; the server sees it";
        let rows = wrap(text, Some(30), 4);
        assert_eq!(rows, ["send a message only that", "user is shown; the server", "sees it"]);
        assert!(rows.iter().all(|r| r.len() <= 26));
        assert_eq!(wrap(text, None, 4), [text]);
        // A word longer than a row is cut; wide characters count twice.
        assert_eq!(wrap("abcdefghijklmnop", Some(14), 4), ["abcdefghij", "klmnop"]);
        assert_eq!(wrap("名前名前名前 x", Some(14), 4), ["名前名前名", "前 x"]);
        assert_eq!(wrap("", Some(80), 0), [""]);
    }
}
