//! Room name rules, kept apart from the server so the command line and tests share them.
//!
//! A room name is `#` and a name that follows the nick rules of [`crate::nick`]
//! (RFC 8266 normalisation, characters, length, the mixed-script rule), and rooms are
//! told apart by the nick identity functions ([`nick::key`], [`nick::skeleton`]), so the
//! same rules decide that `#Dev` and `#dev` are one room, and that `#dеv` (Cyrillic `е`)
//! looks like `#dev`, as decide it for `Alice`, `alice` and `аlice`. Two nick rules do
//! not apply: a room may be named only with digits (`#42`) or with a word reserved for
//! nicks (`#admin`), since neither can pass for the server.

use std::fmt;

use crate::nick::{self, NickError};

/// The first character of every room name (IRC's channel prefix).
pub const PREFIX: char = '#';

/// The default room's name when `--default-room` is not given.
pub const DEFAULT_ROOM: &str = "#lobby";

/// Why a room name was refused; the `Display` text names the rule for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomNameError {
    /// The name does not start with [`PREFIX`].
    NoPrefix,
    /// The part after `#` breaks a nick rule.
    Name(NickError),
}

impl fmt::Display for RoomNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoomNameError::NoPrefix => write!(f, "a room name starts with '#' (as in #dev)"),
            RoomNameError::Name(NickError::Empty) => {
                write!(f, "a room name needs at least one character after '#'")
            }
            RoomNameError::Name(NickError::TooLong) => {
                write!(f, "a room name has at most {} characters after '#'", nick::MAX_NICK_CHARS)
            }
            // The nick rule's own text ("a nick cannot …"), reworded for rooms.
            RoomNameError::Name(e) => {
                write!(f, "{}", e.to_string().replacen("a nick", "a room name", 1))
            }
        }
    }
}

impl std::error::Error for RoomNameError {}

/// Checks `name` (`#` included): [`PREFIX`] then 1 to 32 characters under the nick rules,
/// except that digits only and reserved nick words are allowed. Returns the enforced
/// form (RFC 8266), as the room will be shown.
pub fn validate(name: &str) -> Result<String, RoomNameError> {
    let rest = name.strip_prefix(PREFIX).ok_or(RoomNameError::NoPrefix)?;
    match nick::validate(rest) {
        Ok(enforced) => Ok(format!("{PREFIX}{enforced}")),
        // Those rules come after every form rule, so the name passed those as it is.
        Err(NickError::DigitsOnly | NickError::Reserved(_) | NickError::LooksReserved(_)) => {
            Ok(name.to_owned())
        }
        Err(e) => Err(RoomNameError::Name(e)),
    }
}

/// The key under which rooms are one: `#Dev` and `#dev` are the same room
/// ([`nick::key`]).
pub fn key(name: &str) -> String {
    let rest = name.strip_prefix(PREFIX).unwrap_or(name);
    format!("{PREFIX}{}", nick::key(rest))
}

/// What a room name looks like ([`nick::skeleton`]): two rooms with one skeleton could be
/// taken for each other, so the second is refused.
pub fn skeleton(name: &str) -> String {
    let rest = name.strip_prefix(PREFIX).unwrap_or(name);
    format!("{PREFIX}{}", nick::skeleton(rest))
}

/// `value_parser` for `--default-room`: a valid room name, in its enforced form.
pub fn parse_arg(name: &str) -> Result<String, String> {
    validate(name).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_names_pass() {
        for n in ["#lobby", "#Dev", "#a", "#42", "#admin", "#zoë", "#名前", "#a-b"] {
            assert_eq!(validate(n), Ok(n.to_owned()), "{n}");
        }
        assert!(validate(&format!("#{}", "a".repeat(32))).is_ok());
        // Mixing look-alike scripts is refused as for nicks.
        assert!(matches!(
            validate("#d\u{0435}v"),
            Err(RoomNameError::Name(NickError::MixedScripts(..)))
        ));
    }

    #[test]
    fn each_rule_is_enforced_and_named() {
        assert_eq!(validate("dev"), Err(RoomNameError::NoPrefix));
        assert_eq!(validate("#"), Err(RoomNameError::Name(NickError::Empty)));
        let long = format!("#{}", "a".repeat(33));
        assert_eq!(validate(&long), Err(RoomNameError::Name(NickError::TooLong)));
        assert_eq!(validate("##dev"), Err(RoomNameError::Name(NickError::BadChar('#'))));
        assert_eq!(validate("#a b"), Err(RoomNameError::Name(NickError::BadChar(' '))));
        assert_eq!(validate("#-x"), Err(RoomNameError::Name(NickError::LeadingDash)));
        assert!(validate("dev").unwrap_err().to_string().contains("starts with '#'"));
        assert!(validate(&long).unwrap_err().to_string().contains("at most 32"));
        let spaces = validate("#a b").unwrap_err().to_string();
        assert_eq!(spaces, "a room name cannot contain spaces");
        let invisible = validate("#a\u{200b}b").unwrap_err().to_string();
        assert!(invisible.contains("U+200B"), "{invisible}");
    }

    #[test]
    fn names_differing_in_case_are_one_room() {
        assert_eq!(key("#Dev"), key("#dev"));
        assert_eq!(key("#ZOË"), key("#zoë"));
        assert_ne!(key("#dev"), key("#devs"));
        assert_eq!(skeleton("#coco"), skeleton("#\u{0441}\u{043e}\u{0441}\u{043e}"));
    }
}
