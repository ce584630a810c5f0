//! What the server's operators control beyond the members themselves: the ban list and
//! its file, the message of the day, the operator password and the request to stop.
//! One owner for each, shared by the hub; [`Moderation::reload`] re-reads the files
//! (on `tchat ctl reload`, and on SIGHUP where the binary wires it).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use super::bans::{Ban, BanList, Target};
use crate::auth::{Failures, Password};

/// Longest MOTD file accepted, in bytes: it is sent to every client that joins.
pub const MAX_MOTD: usize = 16 * 1024;

/// Bytes of a client's send queue kept for the welcome and the room event that come
/// with the MOTD in the server's own burst on join.
pub const WELCOME_ALLOWANCE: usize = 4 * 1024;

/// The longest MOTD that fits a send queue of `send_queue` bytes: the burst a client
/// gets on join (welcome, room, MOTD, replay) must fit the queue, or every client would
/// be dropped as too slow on joining. The replay takes at most half the queue (the hub's
/// replay budget), the welcome [`WELCOME_ALLOWANCE`]; the MOTD, encoded (JSON escapes
/// its line ends and quotes: up to twice its bytes), the rest; and never more than
/// [`MAX_MOTD`].
pub fn motd_limit(send_queue: usize) -> usize {
    let rest = (send_queue / 2).saturating_sub(WELCOME_ALLOWANCE);
    (rest / 2).min(MAX_MOTD)
}

pub struct Moderation {
    /// Plain mutexes, never held across an `.await`. Bans may be looked up under the
    /// hub's registry lock (nick claims), so the order is always registry, then bans,
    /// never the reverse.
    bans: Mutex<BanList>,
    bans_path: Option<PathBuf>,
    motd: Mutex<Option<String>>,
    motd_path: Option<PathBuf>,
    /// Longest MOTD accepted, at start and on reload.
    max_motd: usize,
    /// From `--oper-password-file`; `None`: nobody can `/oper`.
    oper_password: Option<Password>,
    /// Wrong `/oper` passwords per address: the server password's backoff, so that
    /// guessing the operator password is as slow as guessing the server's.
    oper_failures: Mutex<Failures>,
    stop: Notify,
    stop_reason: Mutex<Option<String>>,
    /// Mutes in force, by nick key and by address: a muted user who reconnects (under
    /// the same nick, or from the same address) is muted again, as a ban would refuse
    /// them. In memory: a restart ends them.
    mutes: Mutex<Vec<StandingMute>>,
}

/// A mute remembered beyond the connection it was given to.
#[derive(Debug, Clone)]
struct StandingMute {
    /// [`crate::nick::key`] of the muted nick.
    nick: String,
    /// Its [`crate::nick::skeleton`]: a look-alike of the muted nick is muted as well,
    /// as a ban of a nick refuses its look-alikes.
    looks: String,
    /// The address it was given for, if known.
    ip: Option<IpAddr>,
    mute: super::hub::Mute,
}

impl StandingMute {
    /// Whether this mute is of the nick with key `key` and skeleton `looks`, compared as
    /// nick ownership compares nicks.
    fn names(&self, key: &str, looks: &str) -> bool {
        self.nick == key || self.looks == looks
    }
}

/// Why an `/oper` attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperRefused {
    /// The address must still wait this long after its last wrong password.
    TooSoon(Duration),
    /// A wrong password; the address must now wait this long before the next try.
    Wrong(Duration),
}

/// The refusal while an address must wait after wrong operator passwords, worded as
/// the server password's.
pub const OPER_THROTTLED: &str =
    "too many wrong operator passwords from your address; wait and try again";

/// The reason clients are given when the server stops without one (SIGTERM, Ctrl-C,
/// `shutdown` with no reason). Clients print it after `Server shutting down:`, so it
/// says who, not that again.
pub const STOP_REASON: &str = "stopped by the server's administrator";

/// Files the moderation state is read from; see `tchat serve --help`.
#[derive(Debug, Clone, Default)]
pub struct Files {
    pub bans: Option<PathBuf>,
    pub motd: Option<PathBuf>,
    pub oper_password: Option<PathBuf>,
    /// Longest MOTD accepted ([`motd_limit`] of `--send-queue`); `None`: [`MAX_MOTD`].
    pub max_motd: Option<usize>,
}

/// Asks a running server to re-read its MOTD and bans files, as SIGHUP should: clone
/// it into [`super::Config`] and call [`ReloadTrigger::fire`] from the signal handler.
#[derive(Debug, Clone, Default)]
pub struct ReloadTrigger(Arc<Notify>);

impl ReloadTrigger {
    pub fn fire(&self) {
        self.0.notify_one();
    }

    pub async fn fired(&self) {
        self.0.notified().await;
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Moderation {
    /// Reads every file; an unreadable or malformed one is an error, so a server never
    /// starts with a ban silently lifted.
    pub fn load(files: &Files) -> Result<Moderation, String> {
        let bans = match &files.bans {
            Some(path) => BanList::load(path)?,
            None => BanList::default(),
        };
        let max_motd = files.max_motd.unwrap_or(MAX_MOTD);
        let motd = files.motd.as_ref().map(|p| read_motd(p, max_motd)).transpose()?;
        let oper_password = files.oper_password.as_ref().map(|p| read_password(p)).transpose()?;
        Ok(Moderation {
            bans: Mutex::new(bans),
            bans_path: files.bans.clone(),
            motd: Mutex::new(motd),
            motd_path: files.motd.clone(),
            max_motd,
            oper_password,
            oper_failures: Mutex::new(Failures::default()),
            stop: Notify::new(),
            stop_reason: Mutex::new(None),
            mutes: Mutex::new(Vec::new()),
        })
    }

    /// Re-reads the MOTD and bans files. A file that fails keeps its old contents in
    /// force; the error says which. Who is online is not looked at here:
    /// [`super::operator::reload`] calls this, then applies the bans to them.
    pub fn reload(&self) -> Result<String, String> {
        let mut done = Vec::new();
        let mut errors = Vec::new();
        if let Some(path) = &self.motd_path {
            match read_motd(path, self.max_motd) {
                Ok(text) => {
                    *lock(&self.motd) = Some(text);
                    done.push("message of the day");
                }
                Err(e) => errors.push(e),
            }
        }
        if let Some(path) = &self.bans_path {
            match BanList::load(path) {
                Ok(list) => {
                    *lock(&self.bans) = list;
                    done.push("bans");
                }
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors.join("; "));
        }
        Ok(match done.as_slice() {
            [] => "nothing to reload (no --motd or --bans file)".into(),
            _ => format!("reloaded {}", done.join(" and ")),
        })
    }

    /// The refusal text for a connection from `ip`, if a ban covers it.
    pub fn banned_ip(&self, ip: IpAddr) -> Option<String> {
        lock(&self.bans).for_ip(ip, super::clock::now()).map(Ban::describe)
    }

    /// The refusal text for a claim of the nick `wanted`, if a ban covers it.
    pub fn banned_nick(&self, wanted: &str) -> Option<String> {
        lock(&self.bans).for_nick(wanted, super::clock::now()).map(Ban::describe)
    }

    /// Adds a ban and writes the file. The ban holds in memory even if the write fails.
    pub fn ban(&self, ban: Ban) -> Result<(), String> {
        let mut bans = lock(&self.bans);
        bans.expire(super::clock::now());
        bans.add(ban);
        self.save(&bans)
    }

    /// Lifts the ban of `target`; `Ok(false)` if there was none.
    pub fn unban(&self, target: &Target) -> Result<bool, String> {
        let mut bans = lock(&self.bans);
        let expired = bans.expire(super::clock::now());
        let removed = bans.remove(target);
        if removed || expired {
            self.save(&bans)?;
        }
        Ok(removed)
    }

    fn save(&self, bans: &BanList) -> Result<(), String> {
        match &self.bans_path {
            Some(path) => bans.save(path).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    /// Remembers `mute` for `nick` and address `ip` (replacing what either had), or with
    /// `None` forgets every mute of the nick or the address.
    pub fn remember_mute(&self, nick: &str, ip: Option<IpAddr>, mute: Option<super::hub::Mute>) {
        let (key, looks) = (crate::nick::key(nick), crate::nick::skeleton(nick));
        let mut mutes = lock(&self.mutes);
        let now = super::clock::now();
        mutes.retain(|m| {
            !m.names(&key, &looks)
                && (ip.is_none() || m.ip != ip)
                && m.mute.until.is_none_or(|u| u > now)
        });
        if let Some(mute) = mute {
            mutes.push(StandingMute { nick: key, looks, ip, mute });
        }
    }

    /// The mute in force for `nick` or address `ip`, if any.
    pub fn standing_mute(&self, nick: &str, ip: Option<IpAddr>) -> Option<super::hub::Mute> {
        let mutes = lock(&self.mutes);
        if mutes.is_empty() {
            return None;
        }
        let (key, looks) = (crate::nick::key(nick), crate::nick::skeleton(nick));
        let now = super::clock::now();
        mutes
            .iter()
            .filter(|m| m.mute.until.is_none_or(|u| u > now))
            .find(|m| m.names(&key, &looks) || (ip.is_some() && m.ip == ip))
            .map(|m| m.mute)
    }

    /// The bans in force now.
    pub fn bans(&self) -> Vec<Ban> {
        let now = super::clock::now();
        lock(&self.bans).iter().filter(|b| b.is_active(now)).cloned().collect()
    }

    pub fn motd(&self) -> Option<String> {
        lock(&self.motd).clone()
    }

    pub fn set_motd(&self, text: String) {
        *lock(&self.motd) = Some(text);
    }

    /// Whether operators are possible at all.
    pub fn has_operators(&self) -> bool {
        self.oper_password.is_some()
    }

    /// Checks an `/oper` attempt from `ip`. While `ip` must wait after a wrong
    /// password the attempt is refused unchecked ([`Failures`], as for `/pass`);
    /// otherwise `password` is compared with the operator password in constant time
    /// ([`Password::matches`]), so the time taken tells nothing about how much of a
    /// guess was right, nor about the password's length.
    pub fn check_oper(&self, ip: IpAddr, password: &str) -> Result<(), OperRefused> {
        let now = tokio::time::Instant::now();
        let mut failures = lock(&self.oper_failures);
        failures.check(ip, now).map_err(OperRefused::TooSoon)?;
        if self.oper_password.as_ref().is_some_and(|p| p.matches(password)) {
            failures.succeed(ip);
            return Ok(());
        }
        Err(OperRefused::Wrong(failures.fail(ip, now)))
    }

    /// Asks the server to stop, telling the clients `reason` (`None`: [`STOP_REASON`]).
    pub fn request_stop(&self, reason: Option<String>) {
        *lock(&self.stop_reason) = reason;
        self.stop.notify_one();
    }

    /// Resolves once [`Moderation::request_stop`] was called.
    pub async fn stop_requested(&self) {
        self.stop.notified().await;
    }

    /// What the clients are told when the server stops: the reason given to
    /// `shutdown`, else [`STOP_REASON`] (signals, Ctrl-D at the console).
    pub fn stop_reason(&self) -> String {
        lock(&self.stop_reason).clone().unwrap_or_else(|| STOP_REASON.into())
    }
}

fn read_motd(path: &std::path::Path, max: usize) -> Result<String, String> {
    let context = |e: &dyn std::fmt::Display| format!("cannot read MOTD {}: {e}", path.display());
    let bytes = std::fs::read(path).map_err(|e| context(&e))?;
    if bytes.len() > max && max < MAX_MOTD {
        return Err(context(&format!(
            "{} bytes do not fit the burst a client gets on join with --send-queue {}: \
             at most {max} bytes (half the queue is kept for the replay, {WELCOME_ALLOWANCE} \
             bytes for the welcome, and the MOTD may take twice its size encoded); raise \
             --send-queue or shorten the MOTD",
            bytes.len(),
            queue_for(max),
        )));
    }
    if bytes.len() > max {
        return Err(context(&format!("longer than {max} bytes")));
    }
    let text = String::from_utf8(bytes).map_err(|e| context(&e))?;
    // Line by line: sanitizing drops line ends with every other control.
    let lines: Vec<String> = text.trim_end().lines().map(crate::sanitize::sanitize).collect();
    Ok(lines.join("\n"))
}

/// The `--send-queue` whose [`motd_limit`] is `max` (for the error text).
fn queue_for(max: usize) -> usize {
    (max * 2 + WELCOME_ALLOWANCE) * 2
}

/// The password is the file's first line, without its line end.
fn read_password(path: &std::path::Path) -> Result<Password, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read operator password file {}: {e}", path.display()))?;
    Password::new(text.lines().next().unwrap_or(""))
        .ok_or_else(|| format!("operator password file {} is empty", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The operator password is compared whole (a prefix, an extension or another case
    /// is wrong); each guess comes from another address, so no backoff is in the way.
    #[test]
    fn the_motd_limit_leaves_room_for_the_replay_and_the_welcome() {
        assert_eq!(motd_limit(256 * 1024), MAX_MOTD);
        assert_eq!(motd_limit(16 * 1024), 2048);
        assert_eq!(motd_limit(4 * 1024), 0);
        for queue in [16 * 1024, 40_000, 70_000] {
            let max = motd_limit(queue);
            assert!(2 * max + WELCOME_ALLOWANCE + queue / 2 <= queue, "{queue}");
            assert!(queue_for(max) <= queue, "{queue}");
        }
    }

    #[test]
    fn the_operator_password_compares_whole() {
        let path = std::env::temp_dir().join(format!("tchat-oper-unit-{}", std::process::id()));
        std::fs::write(&path, "s3cret\nsecond line\n").unwrap();
        let files = Files { oper_password: Some(path.clone()), ..Files::default() };
        let moderation = Moderation::load(&files).unwrap();
        std::fs::remove_file(&path).unwrap();
        let attempt = |n: u8, guess: &str| moderation.check_oper([192, 0, 2, n].into(), guess);
        for (n, wrong) in ["s3cre", "s3cret ", "S3cret", "", "second line"].iter().enumerate() {
            assert!(matches!(attempt(n as u8, wrong), Err(OperRefused::Wrong(_))), "{wrong:?}");
        }
        assert_eq!(attempt(100, "s3cret"), Ok(()));
    }

    #[test]
    fn a_standing_mute_holds_for_every_form_of_the_nick_and_for_the_address() {
        let moderation = Moderation::load(&Files::default()).unwrap();
        let ip: IpAddr = [192, 0, 2, 7].into();
        moderation.remember_mute("Alice", Some(ip), Some(super::super::hub::Mute { until: None }));
        for nick in ["alice", "ALICE", "AIice", "\u{ff41}lice"] {
            assert!(moderation.standing_mute(nick, None).is_some(), "{nick}");
        }
        assert!(moderation.standing_mute("bob", Some(ip)).is_some(), "by its address");
        assert!(moderation.standing_mute("bob", Some([192, 0, 2, 8].into())).is_none());
        moderation.remember_mute("AIice", None, None);
        assert!(moderation.standing_mute("alice", Some(ip)).is_none(), "unmuted by a look-alike");
    }
}
