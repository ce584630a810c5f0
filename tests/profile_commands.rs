//! The profile commands through the real binary: `/reply`, `/away` and `/back`,
//! `/whois`, `/motd`; and `/search`.

mod common;

use common::{Server, temp_path};

#[test]
fn reply_answers_the_last_private_message() {
    let server = Server::start(&[]);
    let mut alice = server.text_client("alice");
    let mut bob = server.text_client("bob");
    let mut carol = server.text_client("carol");
    alice.send("/reply anyone?");
    alice.expect("!!! nobody has sent you a private message yet");
    bob.send("/msg alice ping");
    alice.expect("*bob* ping");
    carol.send("/msg alice hello");
    alice.expect("*carol* hello");
    alice.send("/r hi carol");
    carol.expect("*alice* hi carol");
    alice.expect("-> *carol* hi carol");
    alice.send("/reply again");
    carol.expect("*alice* again");
    let seen_by_bob = bob.sync();
    assert!(!seen_by_bob.iter().any(|l| l.starts_with("*alice*")), "{seen_by_bob:?}");
}

#[test]
fn an_away_message_answers_each_sender_once_and_shows_in_list() {
    let server = Server::start(&[]);
    let mut alice = server.text_client("alice");
    let mut bob = server.text_client("bob");
    alice.send("/away at lunch");
    alice.expect("*** you are marked away");
    bob.send("/msg alice are you there?");
    bob.expect("*** alice is away: at lunch");
    bob.send("/msg alice hello?");
    bob.expect("-> *alice* hello?");
    let lines = bob.sync();
    assert!(!lines.iter().any(|l| l.contains("is away")), "answered twice: {lines:?}");
    assert!(lines.last().unwrap().contains("alice (away), bob"), "{lines:?}");
    alice.expect("*bob* hello?");
    alice.send("/back");
    alice.expect("*** welcome back");
    alice.send("/back");
    alice.expect("*** you are not away");
    bob.send("/msg alice back?");
    bob.expect("-> *alice* back?");
    let lines = bob.sync();
    assert!(!lines.iter().any(|l| l.contains("away")), "{lines:?}");
}

#[test]
fn whois_tells_everything_but_the_address() {
    let server = Server::start(&[]);
    let (mut alice, _) = server.json_client("alice");
    let mut bob = server.text_client("bob");
    bob.send("/away brb");
    bob.expect("marked away");
    alice.send("/whois BOB");
    let w = alice.expect_event("whois");
    assert_eq!(w["nick"], "bob");
    assert!(w["since"].as_str().unwrap().ends_with('Z'), "{w}");
    assert!(w["idle_secs"].as_u64().unwrap() < 60, "{w}");
    assert_eq!(
        (w["away"].as_str(), w["oper"].as_bool(), w["tls"].as_bool()),
        (Some("brb"), Some(false), Some(false))
    );
    assert!(w.get("addr").is_none(), "the address went to a non-operator: {w}");
    assert_eq!(w["room"], "#lobby");
    bob.send("/join #dev");
    bob.expect("You are in #dev");
    alice.send("/whois bob");
    assert_eq!(alice.expect_event("whois")["room"], "#dev", "whois follows the room");
    bob.send("/whois alice");
    let line = bob.expect("*** alice: in #lobby, online since ");
    // In the server's local time, with its zone: the only zone it knows of a reader's.
    let zone = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::system());
    let zone = zone.strftime("%Z").to_string();
    assert!(line.contains(&format!(" {zone}, idle ")) && line.ends_with(", plain TCP"), "{line}");
    let rest = bob.sync();
    assert!(!rest.iter().any(|l| l.contains("127.0.0.1")), "{rest:?}");
    bob.send("/whois nobody");
    bob.expect("!!! no such user: nobody");
}

#[test]
fn the_motd_is_sent_on_join_and_on_request() {
    let motd = temp_path("motd");
    std::fs::write(&motd, "Be kind.\n\u{1b}[31mNo spam.\n").unwrap();
    let server = Server::start(&["--motd", motd.to_str().unwrap()]);
    let (mut alice, _) = server.json_client("alice");
    let event = alice.expect_event("motd");
    assert_eq!(event["text"], "Be kind.\nNo spam.", "sanitised, one string");
    let mut bob = server.connect();
    bob.send("/nick bob");
    bob.expect("You are bob");
    assert_eq!(bob.next_line().unwrap(), "*** MOTD: Be kind.");
    assert_eq!(bob.next_line().unwrap(), "*** MOTD: No spam.");
    bob.send("/motd");
    bob.expect("*** MOTD: Be kind.");
    bob.send("/motd new text");
    bob.expect("!!! /motd is for operators (see /oper)");
    let _ = std::fs::remove_file(&motd);

    let plain = Server::start(&[]);
    let mut carol = plain.text_client("carol");
    carol.send("/motd");
    carol.expect("*** (no message of the day)");
}

/// `/search TEXT` finds, in any case, the lines, actions and topics of the room's kept
/// history (and the searcher's own private messages) that contain TEXT: in text mode
/// with their time and nick between a heading and an end line, in structured mode as
/// history events; at most the newest 20 of many; other rooms' lines and others'
/// private messages are not searched; a restart on `--save` keeps them searchable.
#[test]
fn search_finds_the_rooms_kept_lines_in_any_case() {
    let log = temp_path("search.jsonl");
    let save = log.to_str().unwrap();
    let mut server = Server::start(&["--save", save, "--rate", "0"]);
    let mut ann = server.text_client("ann");
    let mut bob = server.text_client("bob");
    ann.send("the Vault opens at nine");
    ann.send("/me checks the VAULT");
    ann.send("/topic vault day");
    ann.sync();
    bob.send("/msg ann vault code for ann only");
    ann.expect("*bob* vault code for ann only");
    bob.send("/join #other");
    bob.send("the vault in #other");
    for i in 1..=25 {
        ann.send(&format!("lunch {i}"));
    }
    ann.sync();
    bob.sync();

    ann.send("/search VAULT");
    let heading = ann.expect("search results for");
    assert_eq!(heading, "*** search results for \"VAULT\" in #lobby: 4 matches");
    let mut found = Vec::new();
    loop {
        let line = ann.next_line().expect("the end of the results");
        if line == "*** end of search results" {
            break;
        }
        found.push(line);
    }
    let said: Vec<&str> = found.iter().map(|l| l.split_once("] ").expect("a time").1).collect();
    assert_eq!(
        said,
        [
            "<ann> the Vault opens at nine",
            "* ann checks the VAULT",
            "*** ann set the topic of #lobby: vault day",
            "*bob* vault code for ann only",
        ],
        "{found:?}"
    );
    assert!(found.iter().all(|l| l.starts_with('[') && l.as_bytes()[3] == b':'), "{found:?}");

    // Another searcher does not find ann's private message; many matches: the newest 20.
    let (mut carol, _) = server.json_client("carol");
    carol.send("/search vault");
    let info = carol.expect_event("info");
    assert_eq!(info["message"], "search results for \"vault\" in #lobby: 3 matches");
    for _ in 0..3 {
        let line = carol.next_line().unwrap();
        assert!(line.contains("\"history\":true") && !line.contains("ann only"), "{line}");
    }
    assert_eq!(carol.expect_event("info")["message"], "end of search results");
    ann.send("/search lunch");
    ann.expect("*** search results for \"lunch\" in #lobby: 25 matches, the last 20 shown");
    ann.expect("<ann> lunch 6");
    assert!(!ann.seen.iter().any(|l| l.ends_with("<ann> lunch 5")), "{:?}", ann.seen);
    ann.expect("*** end of search results");
    ann.send("/search zebra");
    ann.expect("*** search: nothing in the kept history of #lobby contains \"zebra\"");
    ann.send("/search");
    ann.expect("!!! usage: /search <text>");
    assert!(server.terminate().success());
    assert!(!server.console_text().contains("zebra"), "the query was logged");

    let server = Server::start(&["--save", save]);
    let mut dan = server.text_client("dan");
    dan.send("/search opens AT");
    dan.expect("*** search results for \"opens AT\" in #lobby: 1 match");
    dan.expect("<ann> the Vault opens at nine");
    let _ = std::fs::remove_file(&log);
}
