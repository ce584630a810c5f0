//! The start of a session: the hello window, the password, registration with its
//! welcome (across nodes on a backbone), and the quiet join of a client that says nothing.

use std::sync::Arc;

use serde_json::json;
use tokio::time::Instant;

use super::{Closing, Phase, QUIET_JOIN, Session, claiming};
use crate::auth;
use crate::framing::Line;
use crate::protocol::Resume;
use crate::server::hub::{Across, Joined, NickChange};
use crate::server::journal::Kind;

impl Session {
    /// The hello timer fired (connected at `connected`): ends the hello window, the
    /// wait for the password, or the wait before a silent client is announced. Returns
    /// when it should fire next, if ever.
    pub(super) fn on_hello_timer(&mut self, connected: Instant) -> Option<Instant> {
        match self.phase {
            Phase::Welcomed | Phase::Announced => {
                self.announce();
                None
            }
            // The password never came (the timer was reset to its bound).
            Phase::PasswordOverdue => {
                self.password_timed_out();
                None
            }
            // Welcomed once the password is given, if before the bound.
            Phase::Password => {
                self.phase = Phase::PasswordOverdue;
                self.info(auth::PASSWORD_PROMPT.into());
                Some(connected + self.hub.config.password_timeout)
            }
            Phase::Hello => {
                self.welcome_silent();
                Some(connected + QUIET_JOIN)
            }
        }
    }

    pub(super) fn register(
        &mut self,
        json_mode: bool,
        wanted: Option<&str>,
        resume: Option<Resume<'_>>,
    ) {
        self.enter(json_mode, wanted, true, resume, None);
    }

    /// The hello window passed in silence: welcome this client in text mode, but leave
    /// its announcement for its first line or [`QUIET_JOIN`].
    fn welcome_silent(&mut self) {
        self.enter(false, None, false, None, None);
    }

    pub(super) fn announce(&mut self) {
        if let Some(id) = self.hub.announce(self.id) {
            // Logged with its id, so a restart can replay it (see `journal`).
            let online = self.hub.online();
            let meta = json!({"nick": self.nick, "id": id, "online": online, "room": self.room});
            self.hub.log.info("Joined", Kind::Join.tag(meta));
        }
        self.phase = Phase::Announced;
    }

    /// Registers this client. On a backbone the nick is claimed across nodes first, and
    /// the guest nick when the wanted one is not given: the session waits for that
    /// ([`claiming`]), and `replay`, the line that made it register, is handled after.
    fn enter(
        &mut self,
        json_mode: bool,
        wanted: Option<&str>,
        announce: bool,
        resume: Option<Resume<'_>>,
        replay: Option<&str>,
    ) {
        if !self.hub.on_backbone() {
            return self.enter_with(json_mode, wanted, announce, resume, Ok(Across::No));
        }
        let entry = claiming::Entry {
            json_mode,
            wanted: wanted.map(str::to_owned),
            announce,
            resume: resume.map(claiming::OwnedResume::new),
            replay: replay.map(str::to_owned),
        };
        self.claim = Some(claiming::entry(Arc::clone(&self.hub), self.id, entry));
    }

    /// Registers this client, once `across` says how claiming its nick across nodes
    /// went (`Across::No` without a backbone; the guest nick claimed as well where it
    /// was needed).
    pub(super) fn enter_with(
        &mut self,
        json_mode: bool,
        wanted: Option<&str>,
        announce: bool,
        resume: Option<Resume<'_>>,
        across: Result<Across, NickChange>,
    ) {
        self.phase = if announce { Phase::Announced } else { Phase::Welcomed };
        let hub = Arc::clone(&self.hub);
        let joined = match (across, resume) {
            // A session held on another node, taken over here.
            (Ok(Across::Adopted(claim)), Some(r)) => {
                let adopted = hub.adopt(self.id, claim, r.token, r.last_id);
                return self.entered(adopted, true, None, None);
            }
            (across, _) => across,
        };
        let claimed = matches!(joined, Ok(Across::Claimed));
        let wanted_here = wanted.filter(|_| joined.is_ok());
        let registered = hub.register(self.id, json_mode, wanted_here, announce, resume);
        if let (Joined::Fresh { refused: Some(_), nick, .. }, Some(w), true) =
            (&registered, wanted, claimed)
        {
            hub.release_across(self.id, w, Some(nick));
        }
        self.entered(registered, json_mode, wanted, joined.err());
    }

    /// Takes in how registering went (`refused_across`: the wanted nick was refused
    /// across nodes, before the hub was asked), and logs it.
    fn entered(
        &mut self,
        joined: Joined,
        json_mode: bool,
        wanted: Option<&str>,
        refused_across: Option<NickChange>,
    ) {
        let peer = self.peer.to_string();
        match joined {
            Joined::Resumed { nick, room, missed, took_over } => {
                (self.nick, self.room) = (nick, room);
                self.phase = Phase::Announced;
                let meta = json!({"nick": self.nick, "peer": peer, "missed": missed, "took_over": took_over, "room": self.room});
                self.hub.log.info("Resumed", meta);
            }
            Joined::Fresh { nick, room, refused, join_id } => {
                (self.nick, self.room) = (nick, room);
                let mode = if json_mode { "json" } else { "text" };
                let mut meta = json!({"new": self.nick, "peer": peer, "mode": mode, "room": self.room, "transport": self.transport.name()});
                if let Some(join_id) = join_id {
                    meta["id"] = join_id.into();
                    meta["online"] = self.hub.online().into();
                }
                // The key's fingerprint (public, as an ssh key's): which device it was.
                if let Some(key) = self.hub.key_of(self.id) {
                    meta["key"] = key.to_string().into();
                }
                self.hub.log.info("Nick set", Kind::Join.tag(meta));
                if let (Some(err), Some(wanted)) = (refused_across.or(refused), wanted) {
                    self.error(err.code(), err.describe(wanted));
                }
            }
            Joined::Refused(refusal) => {
                let reason = refusal.to_string();
                self.hub.log.warn(
                    "Connection refused",
                    json!({"peer": peer, "reason": reason, "after": "no session resumed"}),
                );
                self.hub.send_line(self.id, &format!("!!! {reason}\n"));
                self.closing = Closing::Leave(reason.into());
            }
        }
        self.note_seen();
    }

    /// A line before the password was given: it must be `/pass` with the right one;
    /// anything else gets one `!!!` line and a close. Once it is given after the hello
    /// window, the client is welcomed (and announced: it has spoken).
    pub(super) fn authenticate(&mut self, line: Line<'_>) {
        let given = match &line {
            Line::Text(text) => auth::parse_pass(text),
            Line::TooLong => None,
        };
        let access = &self.hub.config.access;
        match access.check_password(&self.hub.log, self.peer, given) {
            Ok(()) => {
                if self.phase == Phase::PasswordOverdue {
                    self.register(false, None, None);
                } else {
                    self.phase = Phase::Hello;
                }
            }
            Err(refusal) => {
                self.error("password", refusal.to_owned());
                self.closing = Closing::Leave(refusal.into());
            }
        }
    }

    /// The password timeout passed without the password: one line, a close, a WARN.
    /// Without the bound, connections that never authenticate would hold slots (of
    /// `--max-clients` and `--max-per-ip`) for good.
    fn password_timed_out(&mut self) {
        let after = self.hub.config.password_timeout.as_secs();
        self.hub
            .log
            .warn("Password not given", json!({"peer": self.peer.to_string(), "after_s": after}));
        self.error("password", format!("no password given within {after} s; closing"));
        self.closing = Closing::Leave("no password".into());
    }

    /// Registers this client as a guest if it is not registered yet, because of `line`.
    /// True when that waits for a claim across nodes: `line` is handled again once the
    /// client is registered, and must not be acted on now.
    pub(super) fn register_if_needed(&mut self, line: &str) -> bool {
        if !self.phase.registered() {
            self.enter(false, None, true, None, Some(line));
        }
        self.claim.is_some()
    }
}
