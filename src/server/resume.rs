//! Resume tokens: the secret a structured client presents to take its dropped session
//! back within `--resume-grace`.
//!
//! A token is 128 random bits from the operating system (`getrandom`), sent once in the
//! welcome as 32 hex digits and never logged. It is compared in constant time, so a
//! wrong guess learns nothing from how long the refusal took, and replaced on every
//! resume, so each token serves one connection.

/// Bytes in a token: 128 bits, beyond guessing within a grace period.
const TOKEN_BYTES: usize = 16;

/// One session's resume secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Token([u8; TOKEN_BYTES]);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret, not even in a debug dump.
        f.write_str("Token(…)")
    }
}

impl Token {
    /// A fresh random token. Fails only if the OS has no randomness to give.
    pub fn generate() -> Result<Token, getrandom::Error> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Token(bytes))
    }

    /// The form sent to the client: 32 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        use std::fmt::Write as _;
        self.0.iter().fold(String::with_capacity(2 * TOKEN_BYTES), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// Whether `presented` (as the client sent it) is this token. Every byte is
    /// compared whatever the first difference, so the time taken does not tell an
    /// attacker how much of a guess was right.
    pub fn matches(&self, presented: &str) -> bool {
        let Some(bytes) = parse_hex(presented) else { return false };
        let diff = self.0.iter().zip(bytes.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        diff == 0
    }
}

fn parse_hex(s: &str) -> Option<[u8; TOKEN_BYTES]> {
    if s.len() != 2 * TOKEN_BYTES {
        return None;
    }
    let mut out = [0u8; TOKEN_BYTES];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_matches_its_own_hex_only() {
        let t = Token::generate().unwrap();
        let hex = t.to_hex();
        assert_eq!(hex.len(), 32);
        assert!(t.matches(&hex));
        assert!(t.matches(&hex.to_uppercase()));
        let mut wrong = hex.clone().into_bytes();
        wrong[31] = if wrong[31] == b'0' { b'1' } else { b'0' };
        assert!(!t.matches(std::str::from_utf8(&wrong).unwrap()));
        assert!(!t.matches(&hex[..30]));
        assert!(!t.matches(""));
        assert!(!t.matches("zz".repeat(16).as_str()));
        assert_ne!(Token::generate().unwrap(), t, "two tokens alike: no randomness");
        assert_eq!(format!("{t:?}"), "Token(…)");
    }
}
