//! Resume tokens: the secret a structured client presents to take its dropped session
//! back within `--resume-grace`.
//!
//! A token is 128 random bits from the operating system (`getrandom`) after the tag of
//! the server run that gave it out, sent once in the welcome as 40 hex digits (8 for the
//! run, 32 for the secret) and never logged. It is compared in constant time, so a
//! wrong guess learns nothing from how long the refusal took, and replaced on every
//! resume, so each token serves one connection.
//!
//! The run tag is not secret: it tells the server whether the last id a resuming client
//! presents was given out by this run. After a restart the ids continue from the last
//! one logged, and one the old run gave out but did not log (it was killed; or it ran
//! without `--save`) may be given again; a client presenting such an id would otherwise
//! be caught up from the wrong point and miss the new events that reused it.

/// Bytes in the secret: 128 bits, beyond guessing within a grace period.
const SECRET_BYTES: usize = 16;

/// Hex digits of the run tag in front of the secret.
const RUN_DIGITS: usize = 8;

/// One session's resume secret, and the run that gave it out.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    run: u32,
    secret: [u8; SECRET_BYTES],
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret, not even in a debug dump.
        f.write_str("Token(…)")
    }
}

/// A tag for this server run: random, so two runs (a restart within the second, say)
/// are told apart. Fails only if the OS has no randomness to give.
pub fn new_run() -> Result<u32, getrandom::Error> {
    getrandom::u32()
}

impl Token {
    /// A fresh random token of run `run`. Fails only if the OS has no randomness.
    pub fn generate(run: u32) -> Result<Token, getrandom::Error> {
        let mut secret = [0u8; SECRET_BYTES];
        getrandom::fill(&mut secret)?;
        Ok(Token { run, secret })
    }

    /// The form sent to the client: 40 lowercase hex digits, the run's 8 first.
    pub fn to_hex(&self) -> String {
        use std::fmt::Write as _;
        let run = format!("{:08x}", self.run);
        self.secret.iter().fold(run, |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// Whether `presented` (as the client sent it) is this token. Every byte of the
    /// secret is compared whatever the first difference, so the time taken does not
    /// tell an attacker how much of a guess was right.
    pub fn matches(&self, presented: &str) -> bool {
        let Some((run, secret)) = parse(presented) else { return false };
        let diff = self.secret.iter().zip(secret.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        diff == 0 && run == self.run
    }
}

/// The run that gave out `presented`, if it has a token's form.
pub fn run_of(presented: &str) -> Option<u32> {
    parse(presented).map(|(run, _)| run)
}

fn parse(s: &str) -> Option<(u32, [u8; SECRET_BYTES])> {
    if s.len() != RUN_DIGITS + 2 * SECRET_BYTES || !s.is_ascii() {
        return None;
    }
    let (run, secret) = s.split_at(RUN_DIGITS);
    let run = u32::from_str_radix(run, 16).ok()?;
    let mut out = [0u8; SECRET_BYTES];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(secret.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some((run, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_matches_its_own_hex_only() {
        let t = Token::generate(0xfeed_0001).unwrap();
        let hex = t.to_hex();
        assert_eq!(hex.len(), 40);
        assert!(hex.starts_with("feed0001"), "{hex}");
        assert_eq!(run_of(&hex), Some(0xfeed_0001));
        assert!(t.matches(&hex));
        assert!(t.matches(&hex.to_uppercase()));
        let mut wrong = hex.clone().into_bytes();
        wrong[39] = if wrong[39] == b'0' { b'1' } else { b'0' };
        assert!(!t.matches(std::str::from_utf8(&wrong).unwrap()));
        assert!(!t.matches(&hex[..38]));
        assert!(!t.matches(&format!("feed0002{}", &hex[8..])), "another run's token");
        assert_eq!(run_of("-"), None);
        assert_eq!(run_of("é".repeat(20).as_str()), None);
        assert!(!t.matches(""));
        assert!(!t.matches("zz".repeat(20).as_str()));
        assert_ne!(Token::generate(0xfeed_0001).unwrap(), t, "two tokens alike: no randomness");
        assert_eq!(format!("{t:?}"), "Token(…)");
    }
}
