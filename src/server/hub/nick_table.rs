//! A table from a string made from a nick (its [`nick::key`], its [`nick::skeleton`]) to
//! the member holding it, that keeps the member's id and the string's hash, not the
//! string.
//!
//! Every connected member, idle ones included, has an entry in two such tables. Keyed by
//! the strings themselves, an entry was a 24-byte slot plus the string's own allocation
//! (32 bytes for a short nick), in tables of about 1.6 slots per member: some 150 bytes
//! per connection for the two. Here a slot is 16 bytes and holds no allocation, about 55
//! bytes for the two. The string is made again from the holder's nick when a lookup has
//! to tell a match from a hash collision: once per lookup that finds someone, since
//! two slots with equal 64-bit hashes are all but unheard of.
//!
//! [`nick::key`]: crate::nick::key
//! [`nick::skeleton`]: crate::nick::skeleton

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

/// Member ids by a string made from their nick, one member per string.
pub(super) struct NickTable {
    slots: HashTable<Slot>,
    /// SipHash with a random key, as `HashMap`'s: nicks are input, so collisions must not
    /// be easy to make on purpose.
    hasher: RandomState,
}

/// One holder: its id, and the hash of the string it holds (kept so the table can grow
/// without making every string again).
#[derive(Debug, Clone, Copy)]
struct Slot {
    hash: u64,
    id: u64,
}

impl NickTable {
    pub(super) fn new() -> NickTable {
        NickTable { slots: HashTable::new(), hasher: RandomState::new() }
    }

    /// The member holding `value`. `made(id)` makes the string from member `id`'s nick
    /// (`None` when there is no such member).
    pub(super) fn get(&self, value: &str, made: impl Fn(u64) -> Option<String>) -> Option<u64> {
        let hash = self.hasher.hash_one(value);
        let slot = self.slots.find(hash, |s| s.hash == hash && holds(s, value, &made))?;
        Some(slot.id)
    }

    /// Member `id` holds `value` now, in place of whoever held it (`made` as for
    /// [`NickTable::get`]).
    pub(super) fn insert(&mut self, value: &str, id: u64, made: impl Fn(u64) -> Option<String>) {
        let hash = self.hasher.hash_one(value);
        match self.slots.find_mut(hash, |s| s.hash == hash && holds(s, value, &made)) {
            Some(slot) => slot.id = id,
            None => {
                self.slots.insert_unique(hash, Slot { hash, id }, |s| s.hash);
            }
        }
    }

    /// Member `id` no longer holds `value`. Found by the id, not by making the string
    /// again: the member may be gone from the member table, or renamed, already.
    pub(super) fn remove(&mut self, value: &str, id: u64) {
        let hash = self.hasher.hash_one(value);
        if let Ok(slot) = self.slots.find_entry(hash, |s| s.hash == hash && s.id == id) {
            slot.remove();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.len()
    }
}

/// Whether `slot`'s member holds `value`.
fn holds(slot: &Slot, value: &str, made: impl Fn(u64) -> Option<String>) -> bool {
    made(slot.id).is_some_and(|held| held == value)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::nick;

    /// Member nicks by id, as the hub's member table gives them.
    fn keys(members: &HashMap<u64, &str>) -> impl Fn(u64) -> Option<String> {
        |id| members.get(&id).map(|n| nick::key(n))
    }

    #[test]
    fn a_nick_is_found_in_any_case_and_freed_by_its_holder_only() {
        let mut members = HashMap::from([(1, "Alice"), (2, "bob")]);
        let mut table = NickTable::new();
        table.insert(&nick::key("Alice"), 1, keys(&members));
        table.insert(&nick::key("bob"), 2, keys(&members));
        assert_eq!(table.get(&nick::key("ALICE"), keys(&members)), Some(1));
        assert_eq!(table.get(&nick::key("Bob"), keys(&members)), Some(2));
        assert_eq!(table.get(&nick::key("carol"), keys(&members)), None);
        // Someone else letting go of it frees nothing.
        table.remove(&nick::key("alice"), 2);
        assert_eq!(table.get(&nick::key("alice"), keys(&members)), Some(1));
        // Renamed first, then freed by its old nick: found by its id.
        members.insert(1, "carol");
        table.remove(&nick::key("Alice"), 1);
        table.insert(&nick::key("carol"), 1, keys(&members));
        assert_eq!(table.get(&nick::key("alice"), keys(&members)), None);
        assert_eq!(table.get(&nick::key("CAROL"), keys(&members)), Some(1));
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn a_member_whose_nick_no_longer_makes_the_string_does_not_hold_it() {
        let mut members = HashMap::from([(1, "alice")]);
        let mut table = NickTable::new();
        table.insert("alice", 1, keys(&members));
        members.insert(1, "zed");
        assert_eq!(table.get("alice", keys(&members)), None, "the hash alone is no match");
        members.remove(&1);
        assert_eq!(table.get("alice", keys(&members)), None);
    }

    #[test]
    fn inserting_a_held_string_gives_it_to_the_new_holder() {
        let members = HashMap::from([(1, "alice"), (2, "alice")]);
        let mut table = NickTable::new();
        table.insert("alice", 1, keys(&members));
        table.insert("alice", 2, keys(&members));
        assert_eq!(table.len(), 1);
        assert_eq!(table.get("alice", keys(&members)), Some(2));
    }

    /// Thousands of members: the table grows by the kept hashes and finds every one.
    #[test]
    fn many_members_are_each_found() {
        let nicks: Vec<String> = (0..5000).map(|i| format!("User{i}")).collect();
        let members: HashMap<u64, &str> =
            (0..5000u64).map(|i| (i, nicks[i as usize].as_str())).collect();
        let mut table = NickTable::new();
        for (&id, n) in &members {
            table.insert(&nick::key(n), id, keys(&members));
        }
        for (&id, n) in &members {
            assert_eq!(table.get(&nick::key(&n.to_uppercase()), keys(&members)), Some(id));
        }
        assert_eq!(table.len(), 5000);
    }
}
