//! The docs against the code and against themselves: the operator's manual's table of
//! log events lists every event the server logs and only those, so an operator reading
//! the log (or writing a jq filter) finds each `msg` explained; and every relative link
//! in README.md and docs/ leads to a file, and to a heading, that exist.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// How a log call starts once whitespace is squeezed out ([`squeeze`]): the event
/// log's methods, and its own records of the file's health.
const CALLS: &[&str] = &[
    "log.info(\"",
    "log.warn(\"",
    "log.error(\"",
    "record(Level::Info,\"",
    "record(Level::Warn,\"",
    "record(Level::Error,\"",
    "report(console,\"",
];

/// The files under `dir` whose extension is `ext`, recursively.
fn files_under(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

/// `code` without the whitespace that rustfmt puts between a call's parts (after `(`
/// and `,`, before `.`), so a call split over lines reads as one.
fn squeeze(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_whitespace() {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let before = out.chars().last();
            let after = chars.peek().copied();
            if matches!(before, Some('(' | ',')) || after == Some('.') {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// Every event name the code under `src/server`, `src/main.rs` and `src/event_log*`
/// logs, test modules left out.
fn logged_events(root: &Path) -> BTreeSet<String> {
    let mut files = vec![root.join("src/main.rs"), root.join("src/event_log.rs")];
    files_under(&root.join("src/server"), "rs", &mut files);
    files_under(&root.join("src/event_log"), "rs", &mut files);
    let mut events = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        let code = squeeze(code);
        for call in CALLS {
            for (at, _) in code.match_indices(call) {
                let rest = &code[at + call.len()..];
                events.insert(rest[..rest.find('"').unwrap()].to_owned());
            }
        }
    }
    events
}

/// The first column of the operator's manual's table of log events.
fn documented_events(manual: &str) -> BTreeSet<String> {
    let start = manual.find("| `msg` | level | `meta` | when |").expect("the table of events");
    manual[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.split('|').nth(1).unwrap().trim().trim_matches('`').to_owned())
        .collect()
}

#[test]
fn the_operators_manual_lists_every_log_event_and_only_those() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let logged = logged_events(root);
    assert!(logged.contains("Listening") && logged.contains("Log file writable again"));
    assert!(logged.len() > 40, "the scan found too few events: {logged:?}");
    let manual = std::fs::read_to_string(root.join("docs/operator-manual.md")).unwrap();
    let documented = documented_events(&manual);
    let missing: Vec<_> = logged.difference(&documented).collect();
    assert!(missing.is_empty(), "logged but not in the manual's table of events: {missing:?}");
    let stale: Vec<_> = documented.difference(&logged).collect();
    assert!(stale.is_empty(), "in the manual's table of events but never logged: {stale:?}");
}

#[test]
fn squeezing_joins_calls_split_over_lines() {
    let code = "hub.log\n    .warn(\n        \"Nick refused\",\n        json!({}),\n    );";
    assert_eq!(squeeze(code), "hub.log.warn(\"Nick refused\",json!({}),);");
    assert_eq!(squeeze("a  b"), "a b");
}

/// README.md and every Markdown file under docs/.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md")];
    files_under(&root.join("docs"), "md", &mut files);
    files
}

/// `text` without fenced code blocks and code spans, where `](` is not a link.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push_str(&without_code_spans(line));
            out.push('\n');
        }
    }
    out
}

/// `line` without its code spans: a run of N backticks up to the next run of exactly N
/// (CommonMark), so `` `a` `` and ``` `` ` `` ``` both end where they should.
fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        out.push_str(&rest[..start]);
        let run = rest[start..].len() - rest[start..].trim_start_matches('`').len();
        let after = &rest[start + run..];
        let fence = "`".repeat(run);
        let close = after
            .match_indices(&fence)
            .find(|(at, _)| !after[at + run..].starts_with('`') && !after[..*at].ends_with('`'));
        match close {
            Some((at, _)) => rest = &after[at + run..],
            None => return out + &rest[start..],
        }
    }
    out + rest
}

/// The targets of the inline links `[text](target)` in `text`'s prose.
fn link_targets(text: &str) -> Vec<String> {
    let prose = prose(text);
    prose
        .match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &prose[at + 2..];
            rest.find(')').map(|end| rest[..end].to_owned())
        })
        .collect()
}

/// GitHub's anchor for a heading: lower case, punctuation other than `-` and `_`
/// dropped, spaces made hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of the headings of a Markdown file.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.insert(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

/// What is wrong with the relative link `target` in `file`, if anything.
fn broken(file: &Path, target: &str) -> Option<String> {
    if target.contains("://") || target.starts_with("mailto:") {
        return None;
    }
    let (path, fragment) = target.split_once('#').unwrap_or((target, ""));
    let dest = if path.is_empty() { file.to_owned() } else { file.parent().unwrap().join(path) };
    if !dest.exists() {
        return Some(format!("{} does not exist", dest.display()));
    }
    if fragment.is_empty() {
        return None;
    }
    let text = std::fs::read_to_string(&dest).ok()?;
    (!anchors(&text).contains(fragment))
        .then(|| format!("{} has no heading #{fragment}", dest.display()))
}

#[test]
fn every_relative_link_in_the_readme_and_docs_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = markdown_files(root);
    assert!(files.len() >= 5, "README.md and docs/ hold too few pages: {files:?}");
    let mut bad = Vec::new();
    let mut checked = 0;
    for file in &files {
        for target in link_targets(&std::fs::read_to_string(file).unwrap()) {
            checked += 1;
            if let Some(why) = broken(file, &target) {
                bad.push(format!("{}: ({target}): {why}", file.display()));
            }
        }
    }
    assert!(checked > 20, "found too few links to check: {checked}");
    assert!(bad.is_empty(), "broken links:\n{}", bad.join("\n"));
}

#[test]
fn links_are_found_in_prose_only_and_anchors_follow_github() {
    let text = "See [a](x.md#b-c) and `[not](code)`.\n```\n[nor](fence)\n```\n[d](#e)";
    assert_eq!(link_targets(text), ["x.md#b-c", "#e"]);
    let spans = "`` ` `` [f](g) ``[no](h)`` `[i](j)";
    assert_eq!(link_targets(spans), ["g", "j"]);
    assert_eq!(anchor(" `tchat serve`"), "tchat-serve");
    assert_eq!(anchor(" As a service (systemd)"), "as-a-service-systemd");
    assert_eq!(anchor(" Ids, history and resume"), "ids-history-and-resume");
}

/// The first column of every Markdown table in `text`, as written (code marks and all;
/// an escaped `\|` is part of a cell).
fn first_cells(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with('|'))
        .filter_map(|l| l.replace("\\|", "\u{0}").split('|').nth(1).map(str::to_owned))
        .map(|cell| cell.trim().replace('\u{0}', "|"))
        .collect()
}

/// Each command of `table` (its first word, `/nick` of `/nick <name>`, without the
/// slash when `slash` is false) that no first cell of a table in `doc` starts with.
fn undocumented<'a>(table: &[(&'a str, &str)], doc: &str, slash: bool) -> Vec<&'a str> {
    let cells = first_cells(doc);
    table
        .iter()
        .map(|(usage, _)| usage.split(' ').next().unwrap())
        .filter(|command| {
            let word = if slash { command } else { command.trim_start_matches('/') };
            !cells.iter().any(|cell| {
                cell.split(", ").any(|part| {
                    let part = part.trim_start_matches('`');
                    part == word
                        || part.starts_with(&format!("{word} "))
                        || part.starts_with(&format!("{word}`"))
                })
            })
        })
        .collect()
}

/// The guides' tables of commands and keys say more than `/help` and the man pages, so
/// they are written by hand; they must still name every command and key the program
/// has, and the man pages and `/help` are rendered from the program's own tables.
#[test]
fn the_guides_name_every_command_and_key_the_program_has() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let guide = std::fs::read_to_string(root.join("docs/user-guide.md")).unwrap();
    let manual = std::fs::read_to_string(root.join("docs/operator-manual.md")).unwrap();
    let missing = undocumented(tchat::protocol::COMMANDS, &guide, true);
    assert!(missing.is_empty(), "in-chat commands missing from the user's guide: {missing:?}");
    let missing = undocumented(tchat::client::local::CLIENT_COMMANDS, &guide, true);
    assert!(missing.is_empty(), "client commands missing from the user's guide: {missing:?}");
    let missing = undocumented(tchat::server::operator::USAGE, &manual, false);
    assert!(missing.is_empty(), "operator commands missing from the manual: {missing:?}");
    let cells = first_cells(&guide);
    let missing: Vec<_> = tchat::client::editor::CLIENT_KEYS
        .iter()
        .map(|(key, _)| *key)
        .filter(|key| !cells.iter().any(|cell| cell == key))
        .collect();
    assert!(missing.is_empty(), "keys missing from the user's guide: {missing:?}");
    // The check can fail: a command nobody documented is found.
    assert_eq!(undocumented(&[("/frobnicate <x>", "")], &guide, true), ["/frobnicate"]);
}
