//! Nickname rules, kept apart from the server so clients and tests share them.
//!
//! A nick names one person however it is typed. The rules stand on two standards:
//! - RFC 8266, the PRECIS Nickname profile (via `precis-profiles`): which code points a
//!   nick may hold and its enforced form (NFKC, so `cafe\u{301}` is `café` and fullwidth
//!   letters are plain ones). The enforced form is the nick everyone sees.
//! - Unicode TR39 (via `unicode-security`): confusable skeletons, so `аlice` with a
//!   Cyrillic `а` cannot pass for `alice`, and mixed-script detection.
//!
//! On top of them come tchat's own rules (length, IRC's character set, reserved names).
//! [`key`] is the one identity of a nick: everything that compares nicks (uniqueness,
//! reserved names, `/msg`, completion, mentions, nick colors) goes through it.

mod scripts;

use std::fmt;

use precis_core::profile::PrecisFastInvocation;
use precis_profiles::Nickname;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::sanitize::is_invisible;

/// Longest nickname, in characters of its enforced (NFKC) form.
pub const MAX_NICK_CHARS: usize = 32;

/// Most combining marks on one base character in a nick or room name. Real names need
/// few: Thai stacks a vowel and a tone mark (ที่), Devanagari a nukta and a virama or a
/// vowel sign (क़्), Vietnamese at most two once decomposed (NFKC composes most of them
/// anyway); a "zalgo" name smears dozens over the lines around it.
pub const MAX_MARKS_PER_BASE: usize = 4;

/// Longer input is refused before normalisation: no enforced nick comes from more
/// (a base letter with a few combining marks per character at most).
const MAX_INPUT_CHARS: usize = 4 * MAX_NICK_CHARS;

/// Names nobody may take, or anything that looks like them: they would let a user pass
/// as the server itself in the text protocol.
pub const RESERVED: &[&str] = &["server", "system", "tchat", "admin", "root", "operator"];

/// Punctuation allowed besides letters and digits (IRC's set).
const PUNCTUATION: &[char] = &['_', '-', '[', ']', '{', '}', '|', '^', '\\', '`'];

/// Why a nickname was refused; the `Display` text names the rule for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NickError {
    Empty,
    TooLong,
    /// Outside letters, digits, combining marks and IRC punctuation (spaces included).
    BadChar(char),
    /// A default-ignorable or filler code point: it shows nothing (U+200B, U+3164 …).
    Invisible(char),
    /// A code point the PRECIS Nickname profile disallows (unassigned, old Hangul jamo…).
    NotPrecis(char),
    /// PRECIS enforcement did not reach a stable form (RFC 8264 section 7).
    Unstable,
    /// A combining mark with no letter before it to sit on.
    LeadingMark(char),
    /// More than [`MAX_MARKS_PER_BASE`] combining marks on one character.
    StackedMarks,
    LeadingDash,
    DigitsOnly,
    /// Letters of two scripts that TR39 says must not mix (e.g. Latin with Cyrillic).
    MixedScripts(&'static str, &'static str),
    Reserved(&'static str),
    /// Its skeleton is a reserved name's (`ѕerver` with a Cyrillic `ѕ`).
    LooksReserved(&'static str),
}

impl fmt::Display for NickError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NickError::Empty => write!(f, "a nick needs at least one character"),
            NickError::TooLong => write!(f, "a nick has at most {MAX_NICK_CHARS} characters"),
            NickError::BadChar(c) if c.is_whitespace() => {
                write!(f, "a nick cannot contain spaces")
            }
            NickError::BadChar(c) if !c.is_ascii_graphic() => write!(
                f,
                "a nick cannot contain the character U+{:04X} (use letters, digits and _ - [ ] {{ }} | ^ \\ `)",
                *c as u32
            ),
            NickError::BadChar(c) => write!(
                f,
                "a nick cannot contain '{c}' (use letters, digits and _ - [ ] {{ }} | ^ \\ `)"
            ),
            NickError::Invisible(c) => write!(
                f,
                "a nick cannot contain invisible characters (U+{:04X} shows nothing)",
                *c as u32
            ),
            NickError::NotPrecis(c) => write!(
                f,
                "a nick cannot contain U+{:04X} (not allowed in nicknames by RFC 8266)",
                *c as u32
            ),
            NickError::Unstable => write!(f, "the nick has no stable normalised form"),
            NickError::LeadingMark(c) => {
                write!(f, "a nick cannot start with a combining mark (U+{:04X})", *c as u32)
            }
            NickError::StackedMarks => write!(
                f,
                "a nick cannot stack more than {MAX_MARKS_PER_BASE} combining marks on one character"
            ),
            NickError::LeadingDash => write!(f, "a nick cannot start with '-'"),
            NickError::DigitsOnly => write!(f, "a nick cannot be only digits"),
            NickError::MixedScripts(a, b) => write!(
                f,
                "a nick cannot mix {a} and {b} letters (they can look alike); use one script"
            ),
            NickError::Reserved(name) => write!(f, "{name} is a reserved name"),
            NickError::LooksReserved(name) => write!(f, "it looks like the reserved name {name}"),
        }
    }
}

impl std::error::Error for NickError {}

/// Checks `nick` against every rule that does not depend on who is online, and returns
/// its enforced form: the nick as everyone will see it.
pub fn validate(nick: &str) -> Result<String, NickError> {
    let nick = enforce(nick)?;
    check_scripts(&nick)?;
    Ok(nick)
}

/// The form rules and reserved names, without the mixed-script rule: the server checks
/// that one after comparing with who is online, so that `аlice` with `alice` online is
/// told whom it looks like. Returns the enforced form.
///
/// Rules: 1 to [`MAX_NICK_CHARS`] characters after RFC 8266 enforcement (NFKC); letters
/// of any script, digits, combining marks after a base character (at most
/// [`MAX_MARKS_PER_BASE`] on one) and IRC punctuation;
/// no spaces, controls or invisible (default-ignorable, filler) code points; not
/// starting with `-`; not only digits; not a [`RESERVED`] name nor like one.
pub fn enforce(nick: &str) -> Result<String, NickError> {
    if nick.is_empty() {
        return Err(NickError::Empty);
    }
    if nick.chars().count() > MAX_INPUT_CHARS {
        return Err(NickError::TooLong);
    }
    // Before PRECIS, which would map and trim spaces and name invisible characters only
    // as "disallowed".
    for c in nick.chars() {
        if c.is_whitespace() || c.is_control() {
            return Err(NickError::BadChar(c));
        }
        if is_invisible(c) {
            return Err(NickError::Invisible(c));
        }
    }
    let nick = precis_enforce(nick)?;
    check_form(&nick)?;
    check_reserved(&nick)?;
    Ok(nick)
}

/// RFC 8266 section 2.3 enforcement: the FreeformClass check, the space mapping (no-op
/// here, spaces are refused), NFKC, repeated until stable.
fn precis_enforce(nick: &str) -> Result<String, NickError> {
    match <Nickname as PrecisFastInvocation>::enforce(nick) {
        Ok(enforced) => Ok(enforced.into_owned()),
        Err(precis_core::Error::BadCodepoint(info)) => {
            Err(NickError::NotPrecis(char::from_u32(info.cp).unwrap_or('\u{fffd}')))
        }
        Err(_) => Err(NickError::Unstable),
    }
}

/// tchat's character rules, on the enforced form.
fn check_form(nick: &str) -> Result<(), NickError> {
    if nick.chars().count() > MAX_NICK_CHARS {
        return Err(NickError::TooLong);
    }
    let mut marks = 0;
    for (i, c) in nick.chars().enumerate() {
        if is_combining_mark(c) {
            if i == 0 {
                return Err(NickError::LeadingMark(c));
            }
            marks += 1;
            if marks > MAX_MARKS_PER_BASE {
                return Err(NickError::StackedMarks);
            }
            continue;
        }
        marks = 0;
        if !(c.is_alphanumeric() || PUNCTUATION.contains(&c)) {
            return Err(NickError::BadChar(c));
        }
    }
    if nick.starts_with('-') {
        return Err(NickError::LeadingDash);
    }
    if nick.chars().all(|c| c.is_numeric()) {
        return Err(NickError::DigitsOnly);
    }
    Ok(())
}

fn check_reserved(nick: &str) -> Result<(), NickError> {
    let key = key(nick);
    if let Some(name) = RESERVED.iter().find(|r| **r == key) {
        return Err(NickError::Reserved(name));
    }
    let skeleton = skeleton(nick);
    match RESERVED.iter().find(|r| self::skeleton(r) == skeleton) {
        Some(name) => Err(NickError::LooksReserved(name)),
        None => Ok(()),
    }
}

/// Unicode TR39 mixed-script rule: one script, or Latin with one other script that cannot
/// pass for it ("Moderately Restrictive"). Refuses, e.g., Latin with Cyrillic or Greek,
/// whose letters look alike.
pub fn check_scripts(nick: &str) -> Result<(), NickError> {
    match scripts::confusable_mix(nick) {
        Some((a, b)) => Err(NickError::MixedScripts(a, b)),
        None => Ok(()),
    }
}

/// The identity of a nick: two nicks are the same person exactly when their keys are
/// equal. NFKC, then full Unicode case folding (CaseFolding.txt C+F, so `ΣΑΣ`, `σας`
/// and `σασ` are one, as are `STRASSE` and `straße`), then NFKC again, repeated until
/// stable as RFC 8264 section 7 asks: the NFKC_Casefold idea. Total (any text has a
/// key), so `/msg` and completion can use it on what was typed. Plain ASCII, the common
/// case, costs one lowercase copy.
pub fn key(nick: &str) -> String {
    if nick.is_ascii() {
        return nick.to_ascii_lowercase();
    }
    let mut key: String = nick.nfkc().collect();
    for _ in 0..4 {
        let next: String = caseless::default_case_fold_str(&key).nfkc().collect();
        if next == key {
            break;
        }
        key = next;
    }
    key
}

/// What a nick looks like: the TR39 confusable skeleton of its NFKC form, then case
/// folded, as ergo does (`irc/strings.go`): skeleton first, since folding first would
/// lose visual distinctions. Two nicks with one skeleton can be taken for each other
/// (`аlice` and `alice`, `AIice` and `Alice`); not for display, only for comparing.
pub fn skeleton(nick: &str) -> String {
    let nfkc: String = nick.nfkc().collect();
    let skeleton: String = unicode_security::skeleton(&nfkc).collect();
    caseless::default_case_fold_str(&skeleton).nfd().collect()
}

#[cfg(test)]
mod tests;
