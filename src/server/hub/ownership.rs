//! Registered nicks in the hub: which key each connection presented, which nick it
//! proved by password, and the rule that a registered nick (or any variant of it) goes
//! only to a connection that proves it. The accounts themselves live in
//! [`crate::server::accounts`]; the hub only reads them (in memory, never I/O under
//! its lock).

use super::{Hub, NickChange, Registry};
use crate::fingerprint::Fingerprint;
use crate::nick;
use crate::server::accounts::Account;

use super::profile::Profile;

/// How `profile` proves `account`, if it does: `key` (the connection's key is one of
/// the account's) or `password` (`/identify`, or `/register PASSWORD`).
pub(super) fn proof(profile: &Profile, account: &Account) -> Option<String> {
    if account.has_key(profile.key()) {
        Some("key".into())
    } else if profile.identified() == Some(&nick::key(&account.nick)) {
        Some("password".into())
    } else {
        None
    }
}

impl Hub {
    /// Records the key member `id`'s connection presented (a client certificate).
    pub fn note_key(&self, id: u64, key: Fingerprint) {
        if let Some(m) = self.lock().members.get_mut(&id) {
            m.profile.set_key(Some(key));
        }
    }

    /// The key member `id`'s connection presented, if any.
    pub fn key_of(&self, id: u64) -> Option<Fingerprint> {
        self.lock().members.get(&id).and_then(|m| m.profile.key())
    }

    /// Records that member `id` proved the registered nick `nick` with its password.
    pub fn note_identified(&self, id: u64, nick: &str) {
        if let Some(m) = self.lock().members.get_mut(&id) {
            m.profile.set_identified(nick::key(nick));
        }
    }

    /// The account covering member `id`'s nick, if it is registered and `id` proves it.
    pub fn own_account(&self, id: u64) -> Option<Account> {
        let reg = self.lock();
        let m = reg.members.get(&id)?;
        let account = self.config.accounts.covering(&m.nick)?;
        proof(&m.profile, &account).map(|_| account)
    }

    /// Refuses `wanted` to member `id` when an account covers it that `id` does not
    /// prove, owner online or not; returns the covering account otherwise (`None`:
    /// not registered).
    pub(super) fn check_owner(
        &self,
        reg: &Registry,
        id: u64,
        wanted: &str,
    ) -> Result<Option<Account>, NickChange> {
        let Some(account) = self.config.accounts.covering(wanted) else { return Ok(None) };
        let m = reg.members.get(&id).expect("claiming member exists");
        match proof(&m.profile, &account) {
            Some(_) => Ok(Some(account)),
            None => Err(NickChange::Registered(account.nick)),
        }
    }

    /// After member `id` took a nick of `account`: operator rights bound to it.
    pub(super) fn took_registered(&self, reg: &mut Registry, id: u64, account: &Account) {
        if let Some(m) = reg.members.get_mut(&id)
            && account.oper
        {
            m.profile.oper = true;
            reg.update_claim(id);
        }
    }
}
