use super::*;

fn ok(nick: &str) -> String {
    validate(nick).unwrap_or_else(|e| panic!("{nick:?} refused: {e}"))
}

#[test]
fn good_nicks_pass() {
    for n in [
        "alice",
        "MrLaction",
        "a",
        "x_1",
        "[afk]bob",
        "zoë",
        "Łukasz",
        "名前",
        "a-b",
        "a|b^c",
        "σασ",
        "ΣΑΣ",
        "Ελένη",
        "Дмитрий",
        "名前_bob",
        "yuki_ゆき",
        "김민수",
        "علي",
        "नमस्ते",
    ] {
        assert_eq!(ok(n), n);
    }
    assert_eq!(ok(&"a".repeat(32)), "a".repeat(32));
}

#[test]
fn each_rule_is_enforced() {
    assert_eq!(validate(""), Err(NickError::Empty));
    assert_eq!(validate(&"a".repeat(33)), Err(NickError::TooLong));
    assert_eq!(validate(&"a".repeat(500)), Err(NickError::TooLong));
    assert_eq!(validate("two words"), Err(NickError::BadChar(' ')));
    assert_eq!(validate("/nick"), Err(NickError::BadChar('/')));
    assert_eq!(validate("a\x1b[31m"), Err(NickError::BadChar('\x1b')));
    assert_eq!(validate("bob@home"), Err(NickError::BadChar('@')));
    assert_eq!(validate("-dash"), Err(NickError::LeadingDash));
    assert_eq!(validate("12345"), Err(NickError::DigitsOnly));
    assert_eq!(validate("١٢٣"), Err(NickError::DigitsOnly));
    assert_eq!(validate("Server"), Err(NickError::Reserved("server")));
    assert_eq!(validate("ROOT"), Err(NickError::Reserved("root")));
}

#[test]
fn invisible_and_filler_code_points_are_refused() {
    for c in ['\u{3164}', '\u{115f}', '\u{1160}', '\u{ffa0}', '\u{200b}', '\u{feff}', '\u{2060}'] {
        assert_eq!(validate(&c.to_string()), Err(NickError::Invisible(c)), "U+{:04X}", c as u32);
        assert_eq!(validate(&format!("a{c}b")), Err(NickError::Invisible(c)));
    }
    // A braille blank is a symbol, not invisible by property, but shows an empty cell.
    assert_eq!(validate("\u{2800}"), Err(NickError::Invisible('\u{2800}')));
    assert_eq!(validate("a\u{200d}b"), Err(NickError::Invisible('\u{200d}')));
    assert_eq!(validate("a\u{61c}b"), Err(NickError::Invisible('\u{61c}')));
    assert_eq!(validate("a\u{202e}b"), Err(NickError::Invisible('\u{202e}')));
}

#[test]
fn precis_disallowed_code_points_are_refused() {
    // Unassigned (a noncharacter) and old Hangul jamo are outside RFC 8264's classes.
    assert_eq!(validate("a\u{fdd0}"), Err(NickError::NotPrecis('\u{fdd0}')));
    assert_eq!(validate("\u{1100}"), Err(NickError::NotPrecis('\u{1100}')));
}

#[test]
fn the_enforced_form_is_nfkc() {
    // e + COMBINING ACUTE is the same nick as é, and is shown composed.
    assert_eq!(ok("cafe\u{301}"), "café");
    assert_eq!(ok("ＡＬＩＣＥ"), "ALICE");
    assert_eq!(ok("ﬁsh"), "fish");
    // Combining marks are fine after a letter, never first.
    assert_eq!(ok("a\u{302}\u{301}"), "ấ");
    assert_eq!(validate("\u{301}a"), Err(NickError::LeadingMark('\u{301}')));
    // NFKC can produce characters outside the rules: they are checked after it.
    assert_eq!(validate("⑴x"), Err(NickError::BadChar('(')));
}

#[test]
fn keys_follow_full_case_folding_and_normalisation() {
    assert_eq!(key("Alice"), key("aLICE"));
    assert_eq!(key("ZOË"), key("zoë"));
    assert_eq!(key("ΣΑΣ"), key("σασ"));
    assert_eq!(key("σας"), key("σασ"));
    assert_eq!(key("cafe\u{301}"), key("café"));
    assert_eq!(key("CAFE\u{301}"), key("café"));
    assert_eq!(key("STRASSE"), key("straße"));
    assert_eq!(key("ＡＬＩＣＥ"), key("alice"));
    assert_ne!(key("alice"), key("аlice"));
    assert_eq!(key("MrLaction"), "mrlaction");
}

#[test]
fn look_alikes_share_a_skeleton() {
    assert_eq!(skeleton("аlice"), skeleton("alice"));
    assert_eq!(skeleton("ѕerver"), skeleton("server"));
    assert_eq!(skeleton("AIice"), skeleton("Alice"));
    assert_eq!(skeleton("b0b"), skeleton("bob"));
    assert_ne!(skeleton("alice"), skeleton("bob"));
}

#[test]
fn names_that_look_reserved_are_refused() {
    assert_eq!(validate("ѕerver"), Err(NickError::LooksReserved("server")));
    assert_eq!(validate("r00t"), Err(NickError::LooksReserved("root")));
    assert_eq!(validate("adrnin"), Err(NickError::LooksReserved("admin")));
    assert_eq!(validate("ｓｅｒｖｅｒ"), Err(NickError::Reserved("server")));
}

#[test]
fn scripts_that_look_alike_do_not_mix() {
    assert_eq!(validate("аlice"), Err(NickError::MixedScripts("Cyrillic", "Latin")));
    assert_eq!(validate("pαypal"), Err(NickError::MixedScripts("Latin", "Greek")));
    assert_eq!(validate("Дmitry"), Err(NickError::MixedScripts("Cyrillic", "Latin")));
    // enforce() leaves the script rule to the caller, which first compares with who
    // is online.
    assert_eq!(enforce("аlice").as_deref(), Ok("аlice"));
}

#[test]
fn errors_name_the_rule() {
    assert!(NickError::BadChar(' ').to_string().contains("spaces"));
    assert!(NickError::BadChar('@').to_string().contains("'@'"));
    assert!(NickError::Invisible('\u{3164}').to_string().contains("U+3164"));
    assert!(NickError::Invisible('\u{3164}').to_string().contains("invisible"));
    assert!(NickError::TooLong.to_string().contains("32"));
    assert!(NickError::NotPrecis('\u{1100}').to_string().contains("RFC 8266"));
    assert_eq!(
        NickError::LooksReserved("server").to_string(),
        "it looks like the reserved name server"
    );
    assert!(
        NickError::MixedScripts("Latin", "Cyrillic").to_string().contains("Latin and Cyrillic")
    );
}

#[test]
fn marks_stack_a_few_per_character_as_real_names_do_not_more() {
    // Vietnamese typed decomposed (e, circumflex, tilde), Hindi, Thai, Tamil.
    for name in ["Nguye\u{302}\u{303}n", "प्रियंका", "क़्रिया", "สมศักดิ์", "ที่รัก", "முத்து"]
    {
        assert!(validate(name).is_ok(), "{name}: {:?}", validate(name));
    }
    let four = format!("a{}", "\u{301}\u{302}\u{303}\u{304}");
    assert!(enforce(&four).is_ok(), "{four}");
    let zalgo = format!("z{}", "\u{301}\u{302}\u{303}\u{304}\u{305}".repeat(6));
    assert_eq!(enforce(&zalgo), Err(NickError::StackedMarks));
    let five_on_the_second = format!("ab{}", "\u{300}\u{301}\u{302}\u{303}\u{304}");
    assert_eq!(enforce(&five_on_the_second), Err(NickError::StackedMarks));
}
