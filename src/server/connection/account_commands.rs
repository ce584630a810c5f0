//! Owning a nick: `/register`, `/identify`, `/unregister`, `/keys`, `/password`. The
//! accounts are [`crate::server::accounts`]'s; the hub knows which key and which
//! proven nick each connection has. Passwords go nowhere but the hash and the
//! comparison: not into the log, not into any answer.
//!
//! On a backbone an account is written to NATS's bucket: the session waits for that
//! round trip ([`Session::wait_for`]) and answers once it is done; without a backbone the
//! file is written and the answer given at once.

use std::future::Future;
use std::sync::Arc;

use serde_json::json;

use super::Session;
use crate::fingerprint::Fingerprint;
use crate::nick;
use crate::protocol::Request;
use crate::server::accounts::{self, Account, AccountError, IdentifyRefused};
use crate::server::at_once::now_or_spawn;
use crate::server::hub::Hub;
use crate::server::transport::Carrier;

/// The refusal of a password on a plain connection from another host.
pub const PASSWORD_IN_CLEAR: &str = "passwords are taken only over TLS or from the server's own \
    host: this one crossed the network in clear and was not used (connect with tchat join, \
    openssl s_client or ncat --ssl, and choose another password if it matters)";

/// Lines' worth of flood control a command with a password costs on top of its own
/// line (`/register PASSWORD`, `/identify`, `/password`): each hashes or checks it with
/// Argon2id, tens of milliseconds of a core and 19 MiB, where a line of chat costs
/// microseconds. With the default `--rate 5 --burst 20`, four in a row, then about one
/// a second, so a connection (or sixteen, from one address) cannot keep the server's
/// cores hashing; the lines after are held, as fakelag holds any line over the rate.
const PASSWORD_COST: u16 = 4;

/// The refusal of `/register` without a password on a connection without a key.
const NO_KEY: &str = "this connection has no key to register: tchat join presents one over \
    TLS; other clients can /register PASSWORD (over TLS, or from the server's host)";

impl Session {
    /// Handles the account requests [`Session::handle_profile_command`] passes on.
    pub(super) fn handle_account(&mut self, request: Request<'_>) {
        let command = match &request {
            Request::Register(_) => "/register",
            Request::Identify { .. } => "/identify",
            Request::Unregister => "/unregister",
            Request::Keys | Request::KeysRemove(_) => "/keys",
            Request::Password(_) => "/password",
            _ => return,
        };
        // The command's name only: its arguments may be a password.
        self.hub.log.info("Command", json!({"nick": self.nick, "command": command}));
        if matches!(
            request,
            Request::Register(Some(_)) | Request::Identify { .. } | Request::Password(_)
        ) {
            self.flood_debt = self.flood_debt.saturating_add(PASSWORD_COST);
        }
        let result = match request {
            Request::Register(password) => self.register_nick(password.map(|p| p.0)),
            Request::Identify { nick, password } => self.identify(nick, password.0),
            Request::Unregister => self.unregister(),
            Request::Keys => self.list_keys(),
            Request::KeysRemove(fingerprint) => self.remove_key(fingerprint),
            Request::Password(password) => self.set_password(password.0),
            _ => Ok(String::new()),
        };
        self.answer(result);
    }

    /// Tells the user `answer`: its lines as information, or the error.
    fn answer(&mut self, answer: Answer) {
        match answer {
            Ok(answer) => answer.lines().for_each(|line| self.info(line.to_owned())),
            Err((code, message)) => self.error(code, message),
        }
    }

    /// Answers with what `work` (an account written) comes to, once it is done; the
    /// immediate answer is empty.
    fn answer_after(&mut self, work: impl Future<Output = Answer> + Send + 'static) -> Answer {
        self.wait_for(work, |s, answer| s.answer(answer));
        Ok(String::new())
    }

    /// Notes that the owner of this connection's registered nick took it now, for
    /// `--account-expiry`; nothing for a nick that is not registered or not proven. The
    /// session does not wait for it (only the log hears of a failure): on a backbone it
    /// is written by a task of its own.
    pub(super) fn note_seen(&self) {
        if self.hub.own_account(self.id).is_none() {
            return;
        }
        let (hub, nick) = (Arc::clone(&self.hub), self.nick.clone());
        now_or_spawn(async move {
            if let Err(e) = hub.config.accounts.seen(&nick).await {
                store_error(&hub, e);
            }
        });
    }

    /// Whether a password may be given here ([`accounts::password_allowed`]).
    fn password_allowed(&self) -> Result<(), Refusal> {
        if accounts::password_allowed(self.transport != Carrier::Plain, self.peer.ip()) {
            return Ok(());
        }
        self.hub.log.warn(
            "Password refused in clear",
            json!({"nick": self.nick, "peer": self.peer.to_string()}),
        );
        Err(("password_in_clear", PASSWORD_IN_CLEAR.into()))
    }

    /// `/register [PASSWORD]`: the current nick, to this connection's key and password.
    fn register_nick(&mut self, password: Option<&str>) -> Answer {
        let key = self.hub.key_of(self.id);
        if password.is_none() && key.is_none() {
            return Err(("no_key", NO_KEY.into()));
        }
        if is_guest(&self.nick) {
            return Err(("usage", "choose a nick first (/nick NAME), then /register it".into()));
        }
        if let Some(account) = self.hub.own_account(self.id) {
            return Err((
                "registered",
                format!(
                    "{} is registered already, to you: /keys lists its keys, /password sets \
                     its password",
                    account.nick
                ),
            ));
        }
        let hash = match password {
            Some(password) => {
                self.password_allowed()?;
                Some(accounts::hash_password(password).map_err(|e| self.store_error(e))?)
            }
            None => None,
        };
        let with_password = hash.is_some();
        let (hub, id, nick) = (Arc::clone(&self.hub), self.id, self.nick.clone());
        let account = Account::new(&nick, key, hash);
        self.answer_after(async move {
            hub.config.accounts.create(account).await.map_err(|e| store_error(&hub, e))?;
            if with_password {
                hub.note_identified(id, &nick);
            }
            let meta =
                json!({"nick": nick, "key": key.map(|k| k.to_string()), "password": with_password});
            hub.log.info("Nick registered", meta);
            Ok(registered(&nick, key, with_password))
        })
    }

    /// `/identify NICK PASSWORD`: proves NICK, adds this connection's key to it (a
    /// second device), and takes the nick if this connection does not hold it yet.
    fn identify(&mut self, wanted: &str, password: &str) -> Answer {
        self.password_allowed()?;
        let hub = self.hub.clone();
        let account = match hub.config.accounts.identify(self.peer.ip(), wanted, password) {
            Ok(account) => account,
            Err(refused) => return Err(self.identify_refused(wanted, refused)),
        };
        hub.note_identified(self.id, &account.nick);
        let key = hub.key_of(self.id).filter(|k| !account.keys.contains(k));
        let nick = account.nick.clone();
        let added = async move {
            let Some(key) = key else { return Ok(None) };
            let added = hub.config.accounts.change(&nick, |a| {
                a.keys.push(key);
                Ok(())
            });
            added.await.map_err(|e| store_error(&hub, e))?.map_err(|e| ("registered", e))?;
            Ok(Some(key))
        };
        self.wait_for(added, move |s, added| s.identified(&account.nick, added));
        Ok(String::new())
    }

    /// `/identify` proved `nick`, and `added` this connection's key to it (if it had
    /// one the account lacked): says so, and takes the nick if this connection does not
    /// hold it yet.
    fn identified(&mut self, nick: &str, added: Result<Option<Fingerprint>, Refusal>) {
        let added = match added {
            Ok(added) => added,
            Err((code, message)) => return self.error(code, message),
        };
        let mut answer = format!("you are identified as {nick}");
        if let Some(key) = added {
            answer.push_str(&format!("; this connection's key {key} now proves it too"));
        }
        let peer = self.peer.to_string();
        self.hub.log.info("Nick identified", json!({"nick": nick, "peer": peer}));
        self.info(answer);
        if nick::key(&self.nick) != nick::key(nick) {
            self.rename(nick);
        }
    }

    /// The error for a failed `/identify`, logged without the password.
    fn identify_refused(&self, wanted: &str, refused: IdentifyRefused) -> Refusal {
        let (reason, wait) = match &refused {
            IdentifyRefused::TooSoon(wait) => ("too soon", Some(*wait)),
            IdentifyRefused::Wrong(wait) => ("wrong password", Some(*wait)),
            IdentifyRefused::NotRegistered => ("not registered", None),
            IdentifyRefused::NoPassword(_) => ("no password", None),
        };
        self.hub.log.warn(
            "Identify refused",
            json!({"nick": self.nick, "wanted": wanted, "peer": self.peer.to_string(),
                   "reason": reason, "wait_ms": wait.map(|w| w.as_millis() as u64)}),
        );
        match refused {
            IdentifyRefused::TooSoon(_) => (
                "throttled",
                "too many wrong passwords from your address; wait and try again".into(),
            ),
            IdentifyRefused::Wrong(_) => ("bad_password", format!("wrong password for {wanted}")),
            IdentifyRefused::NotRegistered => {
                ("not_registered", format!("{wanted} is not registered"))
            }
            IdentifyRefused::NoPassword(nick) => {
                ("no_password", format!("{nick} has no password: only its keys prove it"))
            }
        }
    }

    /// The account of this connection's nick, if it proves it.
    fn own(&self) -> Result<Account, Refusal> {
        self.hub.own_account(self.id).ok_or_else(|| {
            let why = match self.hub.config.accounts.covering(&self.nick) {
                Some(_) => format!("you have not proved {} (/identify)", self.nick),
                None => format!("{} is not registered (/register)", self.nick),
            };
            ("not_registered", why)
        })
    }

    /// `/unregister`: gives the current nick up.
    fn unregister(&mut self) -> Answer {
        let account = self.own()?;
        let (hub, by) = (Arc::clone(&self.hub), self.nick.clone());
        self.answer_after(async move {
            hub.config.accounts.remove(&account.nick).await.map_err(|e| store_error(&hub, e))?;
            hub.log.info("Nick unregistered", json!({"nick": account.nick, "by": by}));
            Ok(format!(
                "{} is no longer registered; anyone may take it once you leave",
                account.nick
            ))
        })
    }

    /// `/keys`: the fingerprints of the account's keys, this connection's marked.
    fn list_keys(&self) -> Answer {
        let account = self.own()?;
        let mine = self.hub.key_of(self.id);
        let mut lines = vec![format!(
            "{} has {} key{}{}",
            account.nick,
            account.keys.len(),
            if account.keys.len() == 1 { "" } else { "s" },
            if account.password.is_some() { " and a password" } else { "" }
        )];
        for key in &account.keys {
            let this = if Some(*key) == mine { " (this connection)" } else { "" };
            lines.push(format!("  {key}{this}"));
        }
        Ok(lines.join("\n"))
    }

    /// `/keys remove FINGERPRINT`, unless it is the last way to prove the nick.
    fn remove_key(&mut self, fingerprint: &str) -> Answer {
        let account = self.own()?;
        let key: Fingerprint = fingerprint.parse().map_err(|e| ("usage", format!("{e}")))?;
        let (hub, id) = (Arc::clone(&self.hub), self.id);
        self.answer_after(async move { key_removed(&hub, id, &account.nick, key).await })
    }

    /// `/password NEW`: sets or changes the account's password.
    fn set_password(&mut self, password: &str) -> Answer {
        let account = self.own()?;
        self.password_allowed()?;
        let hash = accounts::hash_password(password).map_err(|e| self.store_error(e))?;
        let hub = Arc::clone(&self.hub);
        self.answer_after(async move {
            let changed = hub.config.accounts.change(&account.nick, |a| {
                a.password = Some(hash);
                Ok(())
            });
            changed.await.map_err(|e| store_error(&hub, e))?.map_err(|e| ("registered", e))?;
            hub.log.info("Password set", json!({"nick": account.nick}));
            Ok(format!(
                "{}'s password is set: /identify {} PASSWORD proves it",
                account.nick, account.nick
            ))
        })
    }
}

/// The answer to `/register` of `nick`, to `key` and perhaps a password.
fn registered(nick: &str, key: Option<Fingerprint>, with_password: bool) -> String {
    match (key, with_password) {
        (Some(key), true) => format!(
            "{nick} is registered to your key {key} and to your password: it is yours \
             wherever you connect with that key, or after /identify {nick} PASSWORD"
        ),
        (Some(key), false) => format!(
            "{nick} is registered to your key {key}: it is yours wherever you connect with \
             that key (tchat join keeps it in its state directory; back it up)"
        ),
        (None, _) => {
            format!("{nick} is registered to your password: /identify {nick} PASSWORD proves it")
        }
    }
}

/// `/keys remove KEY` of member `id`, for the account of `nick`: unless it is the last
/// way to prove the nick.
async fn key_removed(hub: &Hub, id: u64, nick: &str, key: Fingerprint) -> Answer {
    let removed = hub.config.accounts.change(nick, |a| {
        if !a.keys.contains(&key) {
            return Err(format!("{key} is not one of {}'s keys (see /keys)", a.nick));
        }
        if a.keys.len() == 1 && a.password.is_none() {
            return Err(format!(
                "{key} is {}'s only key and it has no password: set one first \
                 (/password) or /unregister",
                a.nick
            ));
        }
        a.keys.retain(|k| *k != key);
        Ok(())
    });
    removed.await.map_err(|e| store_error(hub, e))?.map_err(|e| ("usage", e))?;
    hub.log.info("Key removed", json!({"nick": nick, "key": key.to_string()}));
    let mut answer = format!("{key} no longer proves {nick}");
    // The connection keeps the nick it holds, but no longer proves it: say so, and how
    // to prove it again (the other keys, or the password, which adds this key back).
    if hub.key_of(id) == Some(key) {
        answer.push_str(&format!(
            "; it was this connection's key: you keep {nick} until you leave, then prove \
             it with another key or /identify"
        ));
    }
    Ok(answer)
}

/// An error code and its text for the user.
type Refusal = (&'static str, String);

/// What an account command answers: lines of information, or an error.
type Answer = Result<String, Refusal>;

impl Session {
    /// The user's error for a failed account change ([`store_error`]).
    fn store_error(&self, e: AccountError) -> Refusal {
        store_error(&self.hub, e)
    }
}

/// The user's error for a failed account change; a failure of the server's own (the
/// file, the bucket, the hash) is logged for the operator and told without its details.
fn store_error(hub: &Hub, e: AccountError) -> Refusal {
    match e {
        AccountError::Registered(_) | AccountError::NotRegistered(_) => {
            ("registered", e.to_string())
        }
        AccountError::Store(_) | AccountError::Hash(_) => {
            hub.log.error("Accounts not saved", json!({"error": e.to_string()}));
            ("internal", "the server could not save this; tell its operator".into())
        }
    }
}

/// Whether `nick` is a guest name the server hands out (`guest` and digits): those
/// are the server's to give, not anyone's to keep.
fn is_guest(nick: &str) -> bool {
    nick.get(..5).is_some_and(|g| g.eq_ignore_ascii_case("guest"))
        && nick.len() > 5
        && nick[5..].bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_names_are_told_apart() {
        assert!(is_guest("guest1"));
        assert!(is_guest("Guest42"));
        assert!(!is_guest("guest"));
        assert!(!is_guest("guestbook"));
        assert!(!is_guest("alice"));
        assert!(!is_guest("gué"));
    }
}
