//! The nick index: one member per nick ([`nick::key`]) and per look ([`nick::skeleton`]),
//! claims, renames and why a nick was refused.

use super::fan_out::Frames;
use super::{Hub, NickChange, Registry, Skip};
use crate::nick;
use crate::protocol::{Event, EventKind};

impl Hub {
    /// Renames member `id` to the enforced form of `wanted`, announcing the change to
    /// its room (the renamed member too). Returns the old and the new nick, and the id of
    /// the announcement; the nicks are equal, and nothing is announced, when `wanted` is
    /// the nick already held.
    pub fn rename(
        &self,
        id: u64,
        wanted: &str,
    ) -> Result<(String, String, Option<u64>), NickChange> {
        let mut reg = self.lock();
        // Gone when another node took the session over while its claim was made.
        let old = reg.members.get(&id).ok_or(NickChange::Moved)?.nick.clone();
        let new = self.claim(&mut reg, id, wanted)?;
        self.apply_standing_mute(&mut reg, id);
        let mut event_id = None;
        if new != old {
            let key = reg.members[&id].room.clone();
            let room = reg.room_name(&key);
            let event = Event::now(EventKind::Nick { old: old.clone(), new: new.clone(), room });
            let frames = Frames::new(event, self.json_wanted());
            event_id = reg.publish(&key, frames, Skip::Nobody, id);
        }
        Ok((old, new, event_id))
    }

    /// Everyone announced, sorted by [`nick::key`]: the console's Tab completion.
    pub fn nicks(&self) -> Vec<String> {
        self.lock().sorted_nicks_with(0)
    }

    /// [`Registry::claim`], unless a ban covers `wanted` or it is registered to
    /// someone this member does not prove to be.
    pub(super) fn claim(
        &self,
        reg: &mut Registry,
        id: u64,
        wanted: &str,
    ) -> Result<String, NickChange> {
        if let Some(ban) = self.moderation.banned_nick(wanted) {
            return Err(NickChange::Banned(ban));
        }
        let account = self.check_owner(reg, id, wanted)?;
        let nick = reg.claim(id, wanted)?;
        if let Some(account) = account {
            self.took_registered(reg, id, &account);
        }
        Ok(nick)
    }
}

impl Registry {
    /// Gives member `id` the enforced form of `wanted`, releasing its old nick, and
    /// returns it. The nick must pass the rules, be nobody else's ([`nick::key`]) and look
    /// like nobody else's ([`nick::skeleton`]). The mixed-script rule comes after the
    /// look-alike check, so `аlice` (Cyrillic `а`) is told it looks like `alice`.
    pub(super) fn claim(&mut self, id: u64, wanted: &str) -> Result<String, NickChange> {
        let new = nick::enforce(wanted).map_err(NickChange::Invalid)?;
        if let Some(owner) = self.other_holder(self.holder(&nick::key(&new)), id) {
            return Err(NickChange::Taken(owner));
        }
        if let Some(owner) = self.other_holder(self.look_holder(&nick::skeleton(&new)), id) {
            return Err(NickChange::LooksLike(owner));
        }
        nick::check_scripts(&new).map_err(NickChange::Invalid)?;
        let member = self.members.get_mut(&id).expect("claiming member exists");
        let old = std::mem::replace(&mut member.nick, new.clone());
        self.release(&old, id);
        self.hold(&new, id);
        Ok(new)
    }

    /// The member holding the nick whose [`nick::key`] is `key`, if any.
    pub(super) fn holder(&self, key: &str) -> Option<u64> {
        self.nicks.get(key, |id| self.members.get(&id).map(|m| nick::key(&m.nick)))
    }

    /// The member holding a nick whose [`nick::skeleton`] is `skeleton`, if any.
    pub(super) fn look_holder(&self, skeleton: &str) -> Option<u64> {
        self.looks.get(skeleton, |id| self.members.get(&id).map(|m| nick::skeleton(&m.nick)))
    }

    /// The nick of `holder` (from [`Registry::holder`] or [`Registry::look_holder`]) if
    /// it is a member other than `id`.
    pub(super) fn other_holder(&self, holder: Option<u64>, id: u64) -> Option<String> {
        let owner = holder.filter(|&owner| owner != id)?;
        Some(self.members.get(&owner).map_or_else(String::new, |m| m.nick.clone()))
    }

    /// True when nobody holds `nick` or one that looks like it.
    pub(super) fn is_free(&self, nick: &str) -> bool {
        self.holder(&nick::key(nick)).is_none() && self.look_holder(&nick::skeleton(nick)).is_none()
    }

    /// Member `id` holds `nick` (its key and its look) from now on.
    pub(super) fn hold(&mut self, nick: &str, id: u64) {
        let key = nick::key(nick);
        self.nicks.insert(&key, id, |id| self.members.get(&id).map(|m| nick::key(&m.nick)));
        let look = nick::skeleton(nick);
        self.looks.insert(&look, id, |id| self.members.get(&id).map(|m| nick::skeleton(&m.nick)));
    }

    /// Member `id` no longer holds `nick` (it may be gone from the member table, or
    /// renamed, already).
    pub(super) fn release(&mut self, nick: &str, id: u64) {
        self.nicks.remove(&nick::key(nick), id);
        self.looks.remove(&nick::skeleton(nick), id);
    }

    /// Announced nicks plus member `also` (0 for none), sorted by [`nick::key`].
    pub(super) fn sorted_nicks_with(&self, also: u64) -> Vec<String> {
        let mut nicks: Vec<String> = self
            .members
            .iter()
            .filter(|(id, m)| m.announced || **id == also)
            .map(|(_, m)| m.nick.clone())
            .collect();
        nicks.extend(self.presence.all().map(|c| c.nick.clone()));
        nicks.sort_by_cached_key(|n| nick::key(n));
        nicks
    }
}

impl NickChange {
    /// The error text for the user who asked for `wanted`. A taken or look-alike nick is
    /// named in its enforced form (`ＡＬＩＣＥ` as `ALICE`), the name that was compared.
    pub fn describe(&self, wanted: &str) -> String {
        let enforced = match self {
            NickChange::Taken(_) | NickChange::LooksLike(_) | NickChange::Registered(_) => {
                crate::nick::enforce(wanted).ok()
            }
            _ => None,
        };
        let wanted = enforced.as_deref().unwrap_or(wanted);
        match self {
            NickChange::Invalid(e) => format!("invalid nick: {e}"),
            NickChange::Taken(owner) if owner == wanted => {
                format!("the nick {wanted} is already taken")
            }
            NickChange::Taken(owner) => {
                format!("the nick {wanted} is already taken: {owner} is online")
            }
            NickChange::LooksLike(owner) => {
                format!("the nick {wanted} looks like {owner}, who is online")
            }
            NickChange::Banned(text) => text.clone(),
            NickChange::Registered(owner) if nick::key(owner) == nick::key(wanted) => format!(
                "the nick {wanted} is registered; if it is yours, connect with its key \
                 (tchat join presents it) or /identify {owner} PASSWORD"
            ),
            NickChange::Registered(owner) => format!(
                "the nick {wanted} looks like the registered nick {owner}; if that is yours, \
                 connect with its key or /identify {owner} PASSWORD"
            ),
            NickChange::Unavailable => {
                format!(
                    "cannot take the nick {wanted} now: the backbone is unavailable; try again later"
                )
            }
            NickChange::Moved => {
                format!("the nick {wanted} was not taken: this session continues on another server")
            }
        }
    }

    /// Machine-readable code for the structured protocol's error event. A look-alike
    /// counts as taken: the name is in use, only spelt differently.
    pub fn code(&self) -> &'static str {
        match self {
            NickChange::Invalid(_) => "bad_nick",
            NickChange::Taken(_) | NickChange::LooksLike(_) => "nick_taken",
            NickChange::Banned(_) => "banned",
            NickChange::Registered(_) => "nick_registered",
            NickChange::Unavailable => "unavailable",
            NickChange::Moved => "moved",
        }
    }
}
