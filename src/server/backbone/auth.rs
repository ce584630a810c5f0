//! How a node proves itself to NATS: the `--backbone-auth` file, read once at start, so
//! that no backbone secret is ever on the command line (where `ps` shows it) or in a log.
//!
//! The file holds one of:
//! - a NATS credentials file (`.creds`: a user JWT and its NKey seed, as `nsc` writes it);
//! - lines `KEY VALUE`, `#` starting a comment: `user NAME` with `password PASS`,
//!   `token TOKEN`, or `nkey SEED` (a user NKey seed, `SU…`).

use std::fmt;
use std::path::Path;

/// The secret a node connects with. Its `Debug` form shows which kind, never the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// The whole text of a credentials file.
    Credentials(String),
    UserPassword {
        user: String,
        password: String,
    },
    Token(String),
    NkeySeed(String),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

/// What is wrong with an auth file; the text never quotes a value from it.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthError {
    Unknown {
        line: usize,
        key: String,
    },
    MissingValue {
        line: usize,
        key: String,
    },
    /// `user` without `password` or the other way round.
    Incomplete,
    /// Two kinds of secret in one file (a token and a password, say).
    Several,
    Empty,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Unknown { line, key } => write!(
                f,
                "line {line}: unknown key {key:?} (expected user, password, token or nkey, \
                 or a NATS credentials file)"
            ),
            AuthError::MissingValue { line, key } => write!(f, "line {line}: {key} has no value"),
            AuthError::Incomplete => f.write_str("user and password go together"),
            AuthError::Several => f.write_str("give one of user/password, token or nkey"),
            AuthError::Empty => f.write_str("no credentials in the file"),
        }
    }
}

impl Auth {
    /// Reads and parses the auth file at `path`.
    pub fn read(path: &Path) -> Result<Auth, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the backbone auth file {}: {e}", path.display()))?;
        Auth::parse(&text)
            .map_err(|e| format!("the backbone auth file {} is not valid: {e}", path.display()))
    }

    /// Parses the text of an auth file (see the module's documentation).
    pub fn parse(text: &str) -> Result<Auth, AuthError> {
        if text.contains("-----BEGIN NATS USER JWT-----") {
            return Ok(Auth::Credentials(text.to_owned()));
        }
        let (mut user, mut password, mut token, mut nkey) = (None, None, None, None);
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let value = value.trim();
            if value.is_empty() {
                return Err(AuthError::MissingValue { line: n + 1, key: key.to_owned() });
            }
            let slot = match key {
                "user" => &mut user,
                "password" => &mut password,
                "token" => &mut token,
                "nkey" => &mut nkey,
                _ => return Err(AuthError::Unknown { line: n + 1, key: key.to_owned() }),
            };
            *slot = Some(value.to_owned());
        }
        let kinds = usize::from(user.is_some() || password.is_some())
            + usize::from(token.is_some())
            + usize::from(nkey.is_some());
        match (kinds, user, password, token, nkey) {
            (0, ..) => Err(AuthError::Empty),
            (2.., ..) => Err(AuthError::Several),
            (_, Some(user), Some(password), ..) => Ok(Auth::UserPassword { user, password }),
            (_, None, None, Some(token), _) => Ok(Auth::Token(token)),
            (_, None, None, None, Some(seed)) => Ok(Auth::NkeySeed(seed)),
            _ => Err(AuthError::Incomplete),
        }
    }

    /// The kind of secret, for the log.
    pub fn kind(&self) -> &'static str {
        match self {
            Auth::Credentials(_) => "credentials",
            Auth::UserPassword { .. } => "user and password",
            Auth::Token(_) => "token",
            Auth::NkeySeed(_) => "nkey",
        }
    }

    /// `options` made to present this secret.
    pub fn apply(
        &self,
        options: async_nats::ConnectOptions,
    ) -> std::io::Result<async_nats::ConnectOptions> {
        Ok(match self {
            Auth::Credentials(text) => options.credentials(text)?,
            Auth::UserPassword { user, password } => {
                options.user_and_password(user.clone(), password.clone())
            }
            Auth::Token(token) => options.token(token.clone()),
            Auth::NkeySeed(seed) => options.nkey(seed.clone()),
        })
    }
}

/// Refuses a backbone URL that carries a secret (`nats://user:pass@host`): the command
/// line is visible to every user of the machine. The error says where the secret goes.
pub fn refuse_secret_in_url(url: &str) -> Result<(), String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.contains('@') {
        true => Err(format!(
            "the backbone URL {} holds credentials; put them in a file given with \
             --backbone-auth FILE instead (a command line is visible to every user)",
            authority.rsplit_once('@').map_or("", |(_, host)| host)
        )),
        false => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_kind() {
        let up = Auth::parse("# backbone\nuser tchat\npassword s3cret with spaces\n").unwrap();
        let expected =
            Auth::UserPassword { user: "tchat".into(), password: "s3cret with spaces".into() };
        assert_eq!(up, expected);
        assert_eq!(Auth::parse("token abc").unwrap(), Auth::Token("abc".into()));
        assert_eq!(Auth::parse("nkey SUAXYZ\n").unwrap(), Auth::NkeySeed("SUAXYZ".into()));
        let creds = "-----BEGIN NATS USER JWT-----\neyJ0\n------END NATS USER JWT------\n";
        assert_eq!(Auth::parse(creds).unwrap(), Auth::Credentials(creds.into()));
    }

    #[test]
    fn refuses_bad_files_without_quoting_them() {
        let err = Auth::parse("user tchat\n").unwrap_err();
        assert_eq!(err, AuthError::Incomplete);
        assert_eq!(Auth::parse("token a\nuser b\npassword c").unwrap_err(), AuthError::Several);
        assert_eq!(Auth::parse("\n# nothing\n").unwrap_err(), AuthError::Empty);
        assert_eq!(
            Auth::parse("token\n").unwrap_err(),
            AuthError::MissingValue { line: 1, key: "token".into() }
        );
        let err = Auth::parse("pasword hunter2").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn debug_form_hides_the_secret() {
        let auth = Auth::Token("hunter2".into());
        assert_eq!(format!("{auth:?}"), "token");
    }

    #[test]
    fn a_url_with_a_secret_is_refused() {
        assert!(refuse_secret_in_url("nats://127.0.0.1:4222").is_ok());
        assert!(refuse_secret_in_url("tls://nats.example:4222/x@y").is_ok());
        let err = refuse_secret_in_url("nats://tchat:hunter2@nats.example:4222").unwrap_err();
        assert!(err.contains("--backbone-auth") && err.contains("nats.example:4222"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert!(refuse_secret_in_url("tokenvalue@host:4222").is_err());
    }
}
