//! Nickname rules, kept apart from the server so clients and tests share them.

use std::fmt;

/// Longest nickname, in characters.
pub const MAX_NICK_CHARS: usize = 32;

/// Names nobody may take, compared case-insensitively: they would let a user pass as the
/// server itself in the text protocol.
const RESERVED: &[&str] = &["server", "system", "tchat", "admin", "root", "operator"];

/// Punctuation allowed besides letters and digits (IRC's set).
const PUNCTUATION: &[char] = &['_', '-', '[', ']', '{', '}', '|', '^', '\\', '`'];

/// Why a nickname was refused; the `Display` text names the rule for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NickError {
    Empty,
    TooLong,
    BadChar(char),
    LeadingDash,
    DigitsOnly,
    Reserved,
}

impl fmt::Display for NickError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NickError::Empty => write!(f, "a nick needs at least one character"),
            NickError::TooLong => write!(f, "a nick has at most {MAX_NICK_CHARS} characters"),
            NickError::BadChar(c) if c.is_whitespace() => {
                write!(f, "a nick cannot contain spaces")
            }
            NickError::BadChar(c) if !c.is_ascii_graphic() => {
                write!(f, "a nick cannot contain the character U+{:04X}", *c as u32)
            }
            NickError::BadChar(c) => write!(
                f,
                "a nick cannot contain '{c}' (use letters, digits and _ - [ ] {{ }} | ^ \\ `)"
            ),
            NickError::LeadingDash => write!(f, "a nick cannot start with '-'"),
            NickError::DigitsOnly => write!(f, "a nick cannot be only digits"),
            NickError::Reserved => write!(f, "that nick is reserved"),
        }
    }
}

impl std::error::Error for NickError {}

/// Checks `nick` against the rules: 1 to 32 characters, letters (any script), digits and
/// IRC punctuation only, not starting with '-', not only digits, not reserved.
/// Zero-width and control characters fail the letter/digit test, so look-alike nicks made
/// with invisible characters are refused.
pub fn validate(nick: &str) -> Result<(), NickError> {
    if nick.is_empty() {
        return Err(NickError::Empty);
    }
    if nick.chars().count() > MAX_NICK_CHARS {
        return Err(NickError::TooLong);
    }
    if let Some(c) = nick.chars().find(|&c| !(c.is_alphanumeric() || PUNCTUATION.contains(&c))) {
        return Err(NickError::BadChar(c));
    }
    if nick.starts_with('-') {
        return Err(NickError::LeadingDash);
    }
    if nick.chars().all(|c| c.is_numeric()) {
        return Err(NickError::DigitsOnly);
    }
    if RESERVED.contains(&fold(nick).as_str()) {
        return Err(NickError::Reserved);
    }
    Ok(())
}

/// The key under which nicks are unique: `Alice` and `alice` are the same person.
pub fn fold(nick: &str) -> String {
    nick.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_nicks_pass() {
        for n in
            ["alice", "MrLaction", "a", "x_1", "[afk]bob", "zoë", "Łukasz", "名前", "a-b", "a|b^c"]
        {
            assert_eq!(validate(n), Ok(()), "{n}");
        }
        assert_eq!(validate(&"a".repeat(32)), Ok(()));
    }

    #[test]
    fn each_rule_is_enforced() {
        assert_eq!(validate(""), Err(NickError::Empty));
        assert_eq!(validate(&"a".repeat(33)), Err(NickError::TooLong));
        assert_eq!(validate("two words"), Err(NickError::BadChar(' ')));
        assert_eq!(validate("/nick"), Err(NickError::BadChar('/')));
        assert_eq!(validate("a\u{200b}b"), Err(NickError::BadChar('\u{200b}')));
        assert_eq!(validate("a\x1b[31m"), Err(NickError::BadChar('\x1b')));
        assert_eq!(validate("bob@home"), Err(NickError::BadChar('@')));
        assert_eq!(validate("-dash"), Err(NickError::LeadingDash));
        assert_eq!(validate("12345"), Err(NickError::DigitsOnly));
        assert_eq!(validate("Server"), Err(NickError::Reserved));
    }

    #[test]
    fn errors_name_the_rule() {
        assert!(NickError::BadChar(' ').to_string().contains("spaces"));
        assert!(NickError::BadChar('@').to_string().contains("'@'"));
        assert!(NickError::BadChar('\u{200b}').to_string().contains("U+200B"));
        assert!(NickError::TooLong.to_string().contains("32"));
    }

    #[test]
    fn folding_is_case_insensitive() {
        assert_eq!(fold("Alice"), fold("aLICE"));
        assert_eq!(fold("ZOË"), fold("zoë"));
    }
}
