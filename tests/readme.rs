//! README's table of log events against the code: every event the server logs is in
//! the table, and every row of the table is an event the server logs, so an operator
//! reading the log (or writing a jq filter) finds each `msg` explained.

use std::collections::BTreeSet;
use std::path::Path;

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

/// The Rust files under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
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
    rust_files(&root.join("src/server"), &mut files);
    rust_files(&root.join("src/event_log"), &mut files);
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

/// The first column of README's table of log events.
fn documented_events(readme: &str) -> BTreeSet<String> {
    let start = readme.find("| `msg` | level | `meta` | when |").expect("the table of events");
    readme[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.split('|').nth(1).unwrap().trim().trim_matches('`').to_owned())
        .collect()
}

#[test]
fn the_readme_lists_every_log_event_and_only_those() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let logged = logged_events(root);
    assert!(logged.contains("Listening") && logged.contains("Log file writable again"));
    assert!(logged.len() > 40, "the scan found too few events: {logged:?}");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let documented = documented_events(&readme);
    let missing: Vec<_> = logged.difference(&documented).collect();
    assert!(missing.is_empty(), "logged but not in README's table of events: {missing:?}");
    let stale: Vec<_> = documented.difference(&logged).collect();
    assert!(stale.is_empty(), "in README's table of events but never logged: {stale:?}");
}

#[test]
fn squeezing_joins_calls_split_over_lines() {
    let code = "hub.log\n    .warn(\n        \"Nick refused\",\n        json!({}),\n    );";
    assert_eq!(squeeze(code), "hub.log.warn(\"Nick refused\",json!({}),);");
    assert_eq!(squeeze("a  b"), "a b");
}
