//! Registered nicks: which nick belongs to which keys (client certificate fingerprints,
//! see `server::client_key`) and, optionally, to a password.
//!
//! [`Accounts`] holds them in memory, indexed by [`nick::key`] and [`nick::skeleton`]
//! so that a registered nick also covers its case, width and look-alike variants, and
//! writes every change through a [`Backing`]: the accounts file ([`AccountsFile`],
//! JSON Lines, rewritten atomically, 0600) by default, or memory only. On a backbone the
//! node's accounts are shared instead ([`Accounts::share`]): the backbone's key-value
//! bucket is the backing, and every node's index follows it ([`Accounts::replicate`]).
//!
//! Passwords are kept as Argon2id hashes in the PHC string format
//! (`$argon2id$v=19$m=…`), never in clear; [`Account`]'s `Debug` hides even the hash.
//! A password is accepted only where it cannot have crossed the network in clear
//! ([`password_allowed`]).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::auth::Failures;
use crate::fingerprint::Fingerprint;
use crate::nick;
use futures_util::FutureExt;

/// File name of the accounts file inside the state directory.
pub const ACCOUNTS_FILE: &str = "accounts.jsonl";

/// How stale an account's `seen` may get before a login writes it again: it matters
/// only to `--account-expiry` (given in days and more), and a write per login would
/// rewrite the whole file at every connection.
const SEEN_GRANULARITY: Duration = Duration::from_secs(86_400);

/// One registered nick.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Account {
    /// The nick as registered (its enforced form), as `/whois` and `ctl accounts` show it.
    pub nick: String,
    /// Keys that prove the nick: a connection presenting one of these gets it.
    #[serde(default)]
    pub keys: Vec<Fingerprint>,
    /// The password's Argon2id hash (PHC string), for clients without a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Operator rights come with the nick (`op NICK`), on every connection that proves it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oper: bool,
    pub registered: Timestamp,
    /// When the nick was last taken by its owner, for `--account-expiry`.
    pub seen: Timestamp,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("nick", &self.nick)
            .field("keys", &self.keys.len())
            .field("password", &self.password.is_some())
            .field("oper", &self.oper)
            .finish()
    }
}

impl Account {
    /// A new account for `nick`, proven by `key` and/or a password hash.
    pub fn new(nick: &str, key: Option<Fingerprint>, password: Option<String>) -> Account {
        let now = Timestamp::now();
        Account {
            nick: nick.to_owned(),
            keys: key.into_iter().collect(),
            password,
            oper: false,
            registered: now,
            seen: now,
        }
    }

    /// Whether `key` is one of the account's keys.
    pub fn has_key(&self, key: Option<Fingerprint>) -> bool {
        key.is_some_and(|k| self.keys.contains(&k))
    }

    /// One line for `tchat ctl accounts`.
    pub fn describe(&self) -> String {
        let keys = match self.keys.len() {
            1 => "1 key".to_owned(),
            n => format!("{n} keys"),
        };
        let mut row = format!("{} ({keys}", self.nick);
        if self.password.is_some() {
            row.push_str(", password");
        }
        if self.oper {
            row.push_str(", operator");
        }
        row.push_str(&format!(
            "), registered {}, last seen {}",
            self.registered.strftime("%Y-%m-%d"),
            self.seen.strftime("%Y-%m-%d")
        ));
        row
    }
}

/// Why an account operation failed; the `Display` text is for the user.
#[derive(Debug)]
pub enum AccountError {
    /// No account covers the nick.
    NotRegistered(String),
    /// An account covers the nick already: the registered one's nick.
    Registered(String),
    /// The change was made in memory but could not be written (it is undone).
    Store(io::Error),
    /// Hashing failed (no randomness for the salt, say).
    Hash(String),
}

impl fmt::Display for AccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountError::NotRegistered(nick) => write!(f, "{nick} is not registered"),
            AccountError::Registered(nick) => write!(f, "{nick} is registered already"),
            AccountError::Store(e) => write!(f, "the accounts could not be saved: {e}"),
            AccountError::Hash(e) => write!(f, "the password could not be hashed: {e}"),
        }
    }
}

impl std::error::Error for AccountError {}

/// A change to the accounts, as a [`Backing`] is told it.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// This account is new: a shared backing refuses it (an error of kind
    /// [`io::ErrorKind::AlreadyExists`]) when another node registered the nick, or a
    /// look-alike, first.
    Created(&'a Account),
    /// This account was changed.
    Stored(&'a Account),
    /// This account was removed.
    Removed(&'a Account),
}

/// A backing's answer: ready when first polled for a file, a NATS round trip for the
/// backbone's bucket, awaited by the task that asked (never blocking a worker thread).
pub type Pending<T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send>>;

/// `result` as a [`Pending`] answer that is ready at once.
pub fn ready<T: Send + 'static>(result: io::Result<T>) -> Pending<T> {
    Box::pin(std::future::ready(result))
}

/// Where accounts live beyond memory. Called with the accounts' lock held, so changes
/// reach it in order; what it returns is awaited without the lock, each write after the
/// one before it.
pub trait Backing: Send + Sync {
    /// Every account kept, at start.
    fn load(&self) -> Pending<Vec<Account>>;
    /// Records `change`; `all` is every account after it, for a backing that rewrites
    /// everything at once (a file, which writes before it returns).
    fn store(&self, change: Change<'_>, all: &[&Account]) -> Pending<()>;
}

/// The accounts file: one JSON object per line, rewritten atomically (a temporary file
/// renamed over it) and readable by the server's user only.
#[derive(Debug)]
pub struct AccountsFile {
    pub path: PathBuf,
}

impl Backing for AccountsFile {
    fn load(&self) -> Pending<Vec<Account>> {
        ready(self.read())
    }

    fn store(&self, _change: Change<'_>, all: &[&Account]) -> Pending<()> {
        ready(self.write(all))
    }
}

impl AccountsFile {
    fn read(&self) -> io::Result<Vec<Account>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.error(e)),
        };
        parse_accounts(&text).map_err(|e| self.error(e))
    }

    fn write(&self, all: &[&Account]) -> io::Result<()> {
        let mut text = String::new();
        for account in all {
            text.push_str(&serde_json::to_string(account).map_err(io::Error::other)?);
            text.push('\n');
        }
        crate::private_file::write(&self.path, text.as_bytes()).map_err(|e| self.error(e))
    }

    fn error(&self, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("accounts file {}: {e}", self.path.display()))
    }
}

/// The accounts in a file's text; a line that is no account is an error naming it
/// (starting without it would let anyone take the nicks it holds).
fn parse_accounts(text: &str) -> io::Result<Vec<Account>> {
    let mut accounts = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let account = serde_json::from_str(line).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("line {}: {e}", i + 1))
        })?;
        accounts.push(account);
    }
    Ok(accounts)
}

/// The registered nicks, their backing, and the wrong-password backoff of `/identify`.
pub struct Accounts {
    /// The index and the backing, under one lock so that changes reach the backing in
    /// the order they are made.
    state: Mutex<Index>,
    /// `--account-expiry`: an account not seen for this long is released.
    expiry: Option<Duration>,
    /// Wrong account passwords per address, counted apart from `/pass` and `/oper`.
    failures: Mutex<Failures>,
    /// Held by a change from before it is made until its backing has it: changes reach
    /// the backing one at a time, in the order they are made, while readers of the
    /// index never wait for the backing.
    turn: tokio::sync::Mutex<()>,
}

impl fmt::Debug for Accounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accounts").field("count", &self.lock().by_key.len()).finish()
    }
}

impl Default for Accounts {
    fn default() -> Accounts {
        Accounts::in_memory(None)
    }
}

/// Accounts by [`nick::key`], and [`nick::skeleton`] -> key; and where they are kept.
#[derive(Default)]
struct Index {
    by_key: HashMap<String, Account>,
    looks: HashMap<String, String>,
    /// `None`: memory only (no state directory, or in-process tests).
    backing: Option<Box<dyn Backing>>,
}

impl Index {
    fn insert(&mut self, account: Account) {
        let key = nick::key(&account.nick);
        self.looks.insert(nick::skeleton(&account.nick), key.clone());
        self.by_key.insert(key, account);
    }

    fn remove(&mut self, key: &str) -> Option<Account> {
        let account = self.by_key.remove(key)?;
        self.looks.remove(&nick::skeleton(&account.nick));
        Some(account)
    }

    /// The key of the account that covers `nick`: the same key, or the same skeleton.
    fn covering(&self, nick: &str) -> Option<String> {
        let key = nick::key(nick);
        if self.by_key.contains_key(&key) {
            return Some(key);
        }
        self.looks.get(&nick::skeleton(nick)).cloned()
    }
}

impl Accounts {
    /// Accounts kept in memory only: lost at a restart.
    pub fn in_memory(expiry: Option<Duration>) -> Accounts {
        Accounts {
            state: Mutex::new(Index::default()),
            expiry,
            failures: Mutex::default(),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// The accounts `backing` holds, those expired left out (and dropped at the next
    /// write). For a backing that loads at once (a file): one that would wait is an
    /// error (the backbone's bucket is taken on with [`Accounts::share`]).
    pub fn open(backing: Box<dyn Backing>, expiry: Option<Duration>) -> io::Result<Accounts> {
        let loaded =
            backing.load().as_mut().now_or_never().unwrap_or_else(|| {
                Err(io::Error::other("the accounts' backing did not load at once"))
            });
        let accounts = Accounts::in_memory(expiry);
        let mut index = accounts.lock();
        let now = Timestamp::now();
        for account in loaded? {
            if live(expiry, &account, now) {
                index.insert(account);
            }
        }
        index.backing = Some(backing);
        drop(index);
        Ok(accounts)
    }

    /// Moves the accounts to `shared`, a backing every node of a backbone uses: from
    /// now on the accounts are those it holds, and each change goes to it. The
    /// accounts held until now (this node's file) that `shared` lacks are registered
    /// there first, as if made now, unless another node holds their nick (its account
    /// wins). Returns how many were brought over.
    pub async fn share(&self, shared: Box<dyn Backing>) -> io::Result<usize> {
        let _turn = self.turn.lock().await;
        let mut fresh = Index::default();
        for account in shared.load().await? {
            fresh.insert(account);
        }
        let mut brought = 0;
        let held: Vec<Account> = self.lock().by_key.values().cloned().collect();
        for account in held {
            if fresh.covering(&account.nick).is_some() {
                continue;
            }
            match shared.store(Change::Created(&account), &[]).await {
                Ok(()) => {
                    fresh.insert(account);
                    brought += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        fresh.backing = Some(shared);
        *self.lock() = fresh;
        Ok(brought)
    }

    /// Takes in a change another node made to the shared accounts (or this node's own,
    /// seen again): `account` stored, replacing any account that covers its nick. The
    /// backing is not told (it holds the change already). Returns the account it
    /// replaced, if any.
    pub fn replicate(&self, account: Account) -> Option<Account> {
        let mut index = self.lock();
        let old = index.covering(&account.nick).and_then(|key| index.remove(&key));
        index.insert(account);
        old
    }

    /// Takes in the removal, by another node, of the account of nick key `key`
    /// ([`nick::key`]). Returns it.
    pub fn replicate_removal(&self, key: &str) -> Option<Account> {
        self.lock().remove(key)
    }

    fn lock(&self) -> MutexGuard<'_, Index> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The account that covers `nick` (same [`nick::key`] or [`nick::skeleton`]), if
    /// one does and has not expired.
    pub fn covering(&self, nick: &str) -> Option<Account> {
        let index = self.lock();
        let account = index.by_key.get(&index.covering(nick)?)?;
        live(self.expiry, account, Timestamp::now()).then(|| account.clone())
    }

    /// Every live account, sorted by nick key.
    pub fn list(&self) -> Vec<Account> {
        let index = self.lock();
        let now = Timestamp::now();
        let mut all: Vec<Account> =
            index.by_key.values().filter(|a| live(self.expiry, a, now)).cloned().collect();
        all.sort_by_cached_key(|a| nick::key(&a.nick));
        all
    }

    /// Registers `account`, unless an account covers its nick already.
    pub async fn create(&self, account: Account) -> Result<(), AccountError> {
        let _turn = self.turn.lock().await;
        // An expired account that covers the nick gives way (and is dropped from the
        // backing with this write).
        let (old, removed) = {
            let mut index = self.lock();
            let old = match index.covering(&account.nick) {
                Some(key) if live(self.expiry, &index.by_key[&key], Timestamp::now()) => {
                    return Err(AccountError::Registered(index.by_key[&key].nick.clone()));
                }
                Some(key) => index.remove(&key),
                None => None,
            };
            let removed = old.as_ref().map(|old| self.write(&mut index, Change::Removed(old)));
            (old, removed)
        };
        if let (Some(old), Some(removed)) = (old, removed)
            && let Err(e) = removed.await
        {
            self.lock().insert(old);
            return Err(e);
        }
        let key = nick::key(&account.nick);
        let created = {
            let mut index = self.lock();
            index.insert(account.clone());
            self.write(&mut index, Change::Created(&account))
        };
        created.await.inspect_err(|_| {
            self.lock().remove(&key);
        })
    }

    /// Changes the account covering `nick` with `edit` (which may refuse with its own
    /// error) and saves it; returns what `edit` returned. A failed save undoes it.
    pub async fn change<R>(
        &self,
        nick: &str,
        edit: impl FnOnce(&mut Account) -> Result<R, String>,
    ) -> Result<Result<R, String>, AccountError> {
        let _turn = self.turn.lock().await;
        let (key, before, result, stored) = {
            let mut index = self.lock();
            let key =
                index.covering(nick).ok_or_else(|| AccountError::NotRegistered(nick.into()))?;
            let account = index.by_key.get_mut(&key).expect("indexed");
            let before = account.clone();
            let result = match edit(account) {
                Ok(r) => r,
                Err(refused) => return Ok(Err(refused)),
            };
            if *account == before {
                return Ok(Ok(result));
            }
            let stored = account.clone();
            let written = self.write(&mut index, Change::Stored(&stored));
            (key, before, result, written)
        };
        match stored.await {
            Ok(()) => Ok(Ok(result)),
            Err(e) => {
                self.lock().by_key.insert(key, before);
                Err(e)
            }
        }
    }

    /// Removes the account covering `nick`; returns it.
    pub async fn remove(&self, nick: &str) -> Result<Account, AccountError> {
        let _turn = self.turn.lock().await;
        let (account, removed) = {
            let mut index = self.lock();
            let key =
                index.covering(nick).ok_or_else(|| AccountError::NotRegistered(nick.into()))?;
            let account = index.remove(&key).expect("indexed");
            let removed = self.write(&mut index, Change::Removed(&account));
            (account, removed)
        };
        match removed.await {
            Ok(()) => Ok(account),
            Err(e) => {
                self.lock().insert(account);
                Err(e)
            }
        }
    }

    /// Notes that the owner of `nick`'s account took it now; written only when the
    /// last note is older than a day.
    pub async fn seen(&self, nick: &str) -> Result<(), AccountError> {
        let now = Timestamp::now();
        let stale = |a: &Account| now.duration_since(a.seen).unsigned_abs() >= SEEN_GRANULARITY;
        if !self.covering(nick).is_some_and(|a| stale(&a)) {
            return Ok(());
        }
        let seen = self.change(nick, |a| {
            a.seen = now;
            Ok(())
        });
        seen.await.map(|_| ())
    }

    /// Passes `change` and every live account to the backing, dropping expired ones;
    /// the returned future is its answer (the backing's error, or the nick registered
    /// elsewhere for a create a shared backing refused).
    fn write(&self, index: &mut Index, change: Change<'_>) -> Written {
        if index.backing.is_none() {
            return Box::pin(std::future::ready(Ok(())));
        }
        let now = Timestamp::now();
        let expired: Vec<String> = (index.by_key.iter())
            .filter(|(_, a)| !live(self.expiry, a, now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            index.remove(&key);
        }
        let mut all: Vec<&Account> = index.by_key.values().collect();
        all.sort_by(|a, b| a.registered.cmp(&b.registered).then_with(|| a.nick.cmp(&b.nick)));
        let backing = index.backing.as_ref().expect("checked above");
        let stored = backing.store(change, &all);
        let created = match change {
            Change::Created(a) => Some(a.nick.clone()),
            _ => None,
        };
        Box::pin(async move {
            stored.await.map_err(|e| match (e.kind(), created) {
                (io::ErrorKind::AlreadyExists, Some(nick)) => AccountError::Registered(nick),
                _ => AccountError::Store(e),
            })
        })
    }
}

/// What [`Accounts::write`] returns: the backing's answer, awaited without the index's
/// lock.
type Written = Pin<Box<dyn Future<Output = Result<(), AccountError>> + Send>>;

/// Why `/identify` failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentifyRefused {
    NotRegistered,
    /// The account has keys only: holds its nick.
    NoPassword(String),
    /// The address must wait this long after wrong passwords; the password was not
    /// even checked.
    TooSoon(Duration),
    /// Wrong; the address must now wait this long.
    Wrong(Duration),
}

impl Accounts {
    /// Checks `given` against the password of the account covering `nick`, under the
    /// per-address backoff ([`Failures`]: 1 s, 2 s, 4 s … after each wrong one).
    /// Returns the account.
    pub fn identify(
        &self,
        ip: IpAddr,
        nick: &str,
        given: &str,
    ) -> Result<Account, IdentifyRefused> {
        let account = self.covering(nick).ok_or(IdentifyRefused::NotRegistered)?;
        let Some(hash) = &account.password else {
            return Err(IdentifyRefused::NoPassword(account.nick));
        };
        let now = tokio::time::Instant::now();
        let failures = || self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures().check(ip, now).map_err(IdentifyRefused::TooSoon)?;
        // Not under the lock: other addresses' attempts need not wait for this hash.
        if password_matches(hash, given) {
            failures().succeed(ip);
            Ok(account)
        } else {
            Err(IdentifyRefused::Wrong(failures().fail(ip, now)))
        }
    }
}

/// Whether `account` is still registered at `now` under `expiry`.
fn live(expiry: Option<Duration>, account: &Account, now: Timestamp) -> bool {
    expiry.is_none_or(|e| now.duration_since(account.seen).unsigned_abs() < e)
}

/// Whether a password may be given on this connection: over TLS, or from loopback
/// (where it never crossed a network). A password typed in clear over the network is
/// refused, so the server never teaches anyone to send one that way.
pub fn password_allowed(tls: bool, peer: IpAddr) -> bool {
    tls || peer.to_canonical().is_loopback()
}

/// The Argon2id hash of `password` with a fresh 128-bit salt, as a PHC string. Costs
/// Argon2's default (19 MiB, two passes: tens of milliseconds), the OWASP minimum.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| AccountError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AccountError::Hash(e.to_string()))?;
    let hash = costly(|| Argon2::default().hash_password(password.as_bytes(), &salt))
        .map_err(|e| AccountError::Hash(e.to_string()))?;
    Ok(hash.to_string())
}

/// Runs `work`, tens of milliseconds of hashing, without holding up the other
/// connections served by this worker thread: on a multi-thread runtime (the server's)
/// the worker hands them to another thread first (`block_in_place`); elsewhere (a
/// current-thread runtime, no runtime) it just runs.
fn costly<R>(work: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// Whether `given` is the password `hash` (a PHC string) was made from; the
/// parameters are the hash's own. A hash that does not parse matches nothing.
pub fn password_matches(hash: &str, given: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|hash| {
        costly(|| Argon2::default().verify_password(given.as_bytes(), &hash)).is_ok()
    })
}

/// The accounts file to use: `given` (`--accounts`), else the state directory's.
pub fn file_path(given: Option<&Path>, state_dir: Option<&Path>) -> Option<PathBuf> {
    given.map(Path::to_owned).or_else(|| Some(state_dir?.join(ACCOUNTS_FILE)))
}

#[cfg(test)]
mod tests;
