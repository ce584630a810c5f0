//! The server password typed at a terminal: the prompt, and how many tries a person
//! gets. A wrong password typed at the prompt is asked for again, up to
//! [`TRIES`] in all, as ssh asks (its `NumberOfPasswordPrompts`); one from
//! `--password-file` is not, since there is nothing to retype. The server lets three
//! tries in a row through before it makes the address wait (`auth::FREE_MISSES`).

use super::ClientError;
use super::target::Target;
use crate::auth::{PASSWORD_WRONG, Password};

/// How many passwords the prompt takes, the first included.
pub const TRIES: u32 = 3;

/// What the user is told before the prompt comes again.
pub const TRY_AGAIN: &str = "Wrong password, try again.";

/// Asks for the password of `target` on the terminal, without echo.
pub fn prompt(target: &Target) -> Result<Password, ClientError> {
    let typed =
        rpassword::prompt_password(format!("Password for {target}: ")).map_err(ClientError::Io)?;
    Password::new(&typed).ok_or_else(|| ClientError::Trust("no password given".into()))
}

/// Whether the server's first line `first` (the bytes read up to its line end) refuses
/// the password given as wrong.
pub fn refused_as_wrong(first: &[u8]) -> bool {
    let line = first.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.strip_prefix(b"!!! ") == Some(PASSWORD_WRONG.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_wrong_password_refusal_is_retried() {
        assert!(refused_as_wrong(b"!!! wrong password\n"));
        assert!(refused_as_wrong(b"!!! wrong password\r\n"));
        assert!(!refused_as_wrong(b"!!! wrong password for erin\n"));
        let throttled = b"!!! too many wrong passwords from your address; wait and try again\n";
        assert!(!refused_as_wrong(throttled));
        assert!(!refused_as_wrong(b"{\"type\":\"welcome\"}\n"));
    }
}
