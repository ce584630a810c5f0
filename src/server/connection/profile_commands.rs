//! The commands beyond chatting itself: `/reply`, `/away`, `/back`, `/whois`, `/motd`,
//! `/search`, `/oper` and the operator commands in chat; and the checks every message passes
//! (mutes) and every first nick claim passes (bans).

use serde_json::json;

use super::{Closing, Session};
use crate::protocol::{EventKind, Request};
use crate::server::journal::Kind;
use crate::server::moderation::{OPER_THROTTLED, OperRefused};
use crate::server::operator::{self, Actor};
use crate::server::privacy::private_meta;

impl Session {
    /// Handles the requests [`Session::handle`] passes on.
    pub(super) fn handle_profile_command(&mut self, request: Request<'_>) {
        let hub = self.hub.clone();
        match request {
            Request::Reply(text) => match hub.reply_target(self.id) {
                Ok(to) => self.private_message(&to, text),
                Err(why) => self.error("no_reply_target", why.into()),
            },
            Request::Away(message) => {
                // A muted user is marked away, but its message reaches nobody.
                let message = if self.is_muted("/away MESSAGE") { "" } else { message };
                hub.log.info("Away", json!({"nick": self.nick, "message": message}));
                hub.set_away(self.id, Some(message.to_owned()));
                self.info("you are marked away; /back to return".into());
            }
            Request::Back => {
                if hub.set_away(self.id, None) {
                    hub.log.info("Back", json!({"nick": self.nick}));
                    self.info("welcome back".into());
                } else {
                    self.info("you are not away".into());
                }
            }
            Request::Whois(nick) => self.whois(nick),
            Request::Motd(None) => {
                let text = hub.moderation.motd().unwrap_or_default();
                self.send(EventKind::Motd { text });
            }
            Request::Motd(Some(text)) => self.operator(format!("/motd {text}")),
            Request::Oper(password) => self.oper(password.0),
            Request::Search(query) => {
                // The query is not logged: what people look for is their business.
                hub.log.info("Command", json!({"nick": self.nick, "command": "/search"}));
                hub.search(self.id, query);
            }
            Request::Register(_)
            | Request::Identify { .. }
            | Request::Unregister
            | Request::Keys
            | Request::KeysRemove(_)
            | Request::Password(_) => self.handle_account(request),
            Request::Operator(line) => match operator::Command::parse(line) {
                Ok(_) => self.operator(line.to_owned()),
                Err(usage) => self.error("usage", usage),
            },
            // Handled by `handle` itself.
            _ => {}
        }
    }

    /// `/whois NICK`: the holder's profile, the address to operators only. For a nick
    /// nobody holds that is registered, says so: whoever asks learns it is not free.
    fn whois(&self, nick: &str) {
        let hub = &self.hub;
        hub.log.info("Command", json!({"nick": self.nick, "command": "/whois", "whom": nick}));
        if let Some(answer) = hub.whois(nick, hub.is_oper(self.id)) {
            return self.send(answer);
        }
        let message = match hub.config.accounts.covering(nick) {
            Some(account) => format!("{} is not online; the nick is registered", account.nick),
            None => format!("no such user: {nick} (see /list)"),
        };
        self.error("no_such_user", message);
    }

    /// A private message from this client to `to`, unless it is muted.
    pub(super) fn private_message(&mut self, to: &str, text: &str) {
        if !self.may_speak() {
            return;
        }
        let hub = self.hub.clone();
        match hub.private(self.id, to, text) {
            Some((target, id)) => {
                let keep = hub.config.private_text;
                // On a backbone, logged with its id when the stream gives it one.
                if !hub.on_backbone() {
                    let meta = private_meta(keep, (&self.nick, &target), text, id);
                    hub.log.info("Private message", Kind::Private.tag(meta));
                }
            }
            None => {
                hub.log
                    .warn("Private message to unknown user", json!({"from": self.nick, "to": to}));
                self.error("no_such_user", format!("no such user: {to} (see /list)"));
            }
        }
    }

    /// Whether this client may send a message now; tells it why not if muted.
    pub(super) fn may_speak(&self) -> bool {
        match self.hub.speak(self.id) {
            Ok(()) => true,
            Err(mute) => {
                self.hub.log.info("Muted message refused", json!({"nick": self.nick}));
                self.error("muted", mute.describe());
                false
            }
        }
    }

    /// Whether this client is muted; if so it is told that `what` (a command whose
    /// text others would see: a topic, a nick, a new room's name, a quit reason, an
    /// away message) is refused or stripped, and it is logged. A mute covers every text
    /// the user chooses that reaches others, not only messages.
    pub(super) fn is_muted(&self, what: &str) -> bool {
        let Some(mute) = self.hub.muted(self.id) else { return false };
        let meta = json!({"nick": self.nick, "command": what});
        self.hub.log.info("Muted message refused", meta);
        let until = mute.describe();
        let why = until.trim_end_matches("; your message was not sent");
        self.error("muted", format!("{why}: {what} is not sent to anyone"));
        true
    }

    /// Refuses a connection whose first line claims a banned nick: one line and a
    /// close, no join announced. Returns whether it did.
    pub(super) fn refuse_banned_nick(&mut self, wanted: Option<&str>) -> bool {
        let Some(ban) = wanted.and_then(|w| self.hub.moderation.banned_nick(w)) else {
            return false;
        };
        self.hub.log.warn(
            "Connection refused",
            json!({"peer": self.peer.to_string(), "nick": wanted, "reason": ban}),
        );
        self.error("banned", ban);
        // Never announced, so nobody sees a leave; the reason is for the log's
        // `Disconnected` line.
        self.closing = Closing::Leave("banned nick".into());
        true
    }

    /// `/oper PASSWORD`. The password goes nowhere but the comparison: not in the log,
    /// not in any answer.
    fn oper(&mut self, password: &str) {
        let hub = self.hub.clone();
        if !hub.moderation.has_operators() {
            hub.log.warn(
                "Operator login refused",
                json!({"nick": self.nick, "peer": self.peer.to_string(), "reason": "no operators"}),
            );
            return self.error("no_operators", "this server has no operators in chat".into());
        }
        let refused = match hub.moderation.check_oper(self.peer.ip(), password) {
            Ok(()) => {
                hub.grant_oper(self.id);
                let meta = json!({"nick": self.nick, "peer": self.peer.to_string()});
                hub.log.info("Operator login", meta);
                return self.info("you are now an operator; /help lists your commands".into());
            }
            Err(refused) => refused,
        };
        let (reason, wait, code, text) = match refused {
            OperRefused::TooSoon(wait) => ("too soon", wait, "throttled", OPER_THROTTLED),
            OperRefused::Wrong(wait) => {
                ("wrong password", wait, "bad_password", "wrong operator password")
            }
        };
        hub.log.warn(
            "Operator login refused",
            json!({"nick": self.nick, "peer": self.peer.to_string(), "reason": reason,
                   "wait_ms": wait.as_millis() as u64}),
        );
        self.error(code, text.into());
    }

    /// An operator command typed in chat, `line` (a command that parses). On a backbone
    /// it may wait for NATS (a ban kept for every node): the session waits for it as for
    /// a nick claim ([`Session::wait_for`]), so the line is parsed again in the wait's own
    /// future, which owns it.
    fn operator(&mut self, line: String) {
        let hub = self.hub.clone();
        if !hub.is_oper(self.id) {
            let name = line.split_whitespace().next().unwrap_or(&line);
            hub.log.warn("Operator command refused", json!({"nick": self.nick, "command": name}));
            return self.error("not_operator", format!("{name} is for operators (see /oper)"));
        }
        let (nick, ip) = (self.nick.clone(), self.peer.ip());
        let run = async move {
            let command = operator::Command::parse(&line)?;
            operator::execute(&hub, Actor::Oper { nick: &nick, ip }, command).await
        };
        self.wait_for(run, |s, result| match result {
            Ok(answer) => answer.lines().for_each(|line| s.info(line.to_owned())),
            Err(e) => s.error("operator", e),
        });
    }
}
