//! The operator's commands, one interpreter for the server's console, the control
//! socket (`tchat ctl`) and operators in chat: [`Command::parse`] reads a line,
//! [`execute`] acts on the hub and answers in text, every action logged with who
//! did it.

use std::net::IpAddr;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::json;

use super::accounts::AccountError;
use super::backbone::wire::Moderation;
use super::bans::{Ban, Target, parse_duration};
use super::clock;
use super::hub::{Hub, Mute};
use crate::protocol::{Event, span};

/// One operator command, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    Kick {
        nick: &'a str,
        reason: Option<&'a str>,
    },
    Ban {
        target: &'a str,
        duration: Option<Duration>,
        reason: Option<&'a str>,
        /// [`WIDE_FLAG`] was given: the console and `tchat ctl` confirm a network
        /// wider than [`Target::WIDEST_FROM_CHAT`].
        wide: bool,
    },
    Unban(&'a str),
    Bans,
    Mute {
        nick: &'a str,
        duration: Option<Duration>,
    },
    Unmute(&'a str),
    Say(&'a str),
    Motd(Option<&'a str>),
    List,
    Whois(&'a str),
    Op(&'a str),
    Deop(&'a str),
    Shutdown(Option<&'a str>),
    Reload,
    Help,
    /// Releases a registered nick, its owner online or not.
    Unregister(&'a str),
    /// Lists the registered nicks.
    Accounts,
}

/// Every command with its usage, for `/help` and Tab completion on the console.
pub const USAGE: &[(&str, &str)] = &[
    ("/kick <nick> [reason]", "disconnect a user"),
    (
        "/ban <nick|addr|cidr> [--wide] [duration] [reason]",
        "ban a nick, address or network (10m, 2h, 7d); --wide: wider than /16 or /48",
    ),
    ("/unban <nick|addr|cidr>", "lift a ban"),
    ("/bans", "list the bans in force"),
    ("/mute <nick> [duration]", "refuse a user's messages, for a while or until /unmute"),
    ("/unmute <nick>", "let a muted user speak again"),
    ("/say <text>", "send a notice from the server to everyone"),
    ("/motd [text]", "show or set the message of the day (until the next reload)"),
    ("/list", "list the users online with their rooms, operators, muted and away users marked"),
    ("/whois <nick>", "who a user is, with their address"),
    ("/op <nick>", "make a user an operator (a registered nick stays one when it comes back)"),
    ("/deop <nick>", "take a user's operator rights"),
    ("/accounts", "list the registered nicks"),
    ("/unregister <nick>", "release a registered nick"),
    ("/reload", "re-read the MOTD and bans files (as SIGHUP)"),
    ("/shutdown [reason]", "stop the server, telling everyone why"),
    ("/help", "list these commands"),
];

/// Who gives a command: named in the log and in what users are told.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// The server's interactive console.
    Console,
    /// The control socket.
    Ctl,
    /// An operator in chat: their nick, and the address they connect from, which
    /// their own `/ban` may not cover.
    Oper { nick: &'a str, ip: IpAddr },
}

impl Actor<'_> {
    pub fn name(&self) -> &str {
        match self {
            Actor::Console => "console",
            Actor::Ctl => "ctl",
            Actor::Oper { nick, .. } => nick,
        }
    }

    /// Whether the command is open to this actor: operators in chat have the
    /// moderation commands, not the server's own (`/op`, `/shutdown`, `/reload`).
    fn may(&self, command: &Command) -> bool {
        !matches!(
            (self, command),
            (
                Actor::Oper { .. },
                Command::Op(_)
                    | Command::Deop(_)
                    | Command::Shutdown(_)
                    | Command::Reload
                    | Command::Unregister(_)
                    | Command::Accounts
            )
        )
    }
}

/// `(first word, rest)` of `s`, the rest trimmed; `None` for an empty rest.
fn split(s: &str) -> (&str, Option<&str>) {
    match s.trim().split_once(char::is_whitespace) {
        Some((word, rest)) => (word, Some(rest.trim()).filter(|r| !r.is_empty())),
        None => (s.trim(), None),
    }
}

impl<'a> Command<'a> {
    /// Parses `NAME ARGS…`, with or without the leading `/` (the control socket gets
    /// `tchat ctl`'s words without it). The error is the usage to show.
    pub fn parse(line: &'a str) -> Result<Command<'a>, String> {
        let (name, args) = split(line.trim_start().trim_start_matches('/'));
        let usage = || {
            let found = USAGE.iter().find(|(u, _)| u[1..].split(' ').next() == Some(name));
            match found {
                Some((u, _)) => format!("usage: {u}"),
                None => format!("unknown command /{name}; /help lists the commands"),
            }
        };
        let one_word = |a: Option<&'a str>| a.filter(|a| !a.contains(char::is_whitespace));
        let command = match (name.to_ascii_lowercase().as_str(), args) {
            ("kick", Some(a)) => {
                let (nick, reason) = split(a);
                Command::Kick { nick, reason }
            }
            ("ban", Some(a)) => parse_ban(a)?,
            ("unban", a) => Command::Unban(one_word(a).ok_or_else(usage)?),
            ("bans", None) => Command::Bans,
            ("mute", Some(a)) => match split(a) {
                (nick, None) => Command::Mute { nick, duration: None },
                (nick, Some(d)) => {
                    let duration = parse_duration(d).ok_or_else(|| bad_duration(d))?;
                    Command::Mute { nick, duration: Some(duration) }
                }
            },
            ("unmute", a) => Command::Unmute(one_word(a).ok_or_else(usage)?),
            ("say", Some(text)) => Command::Say(text),
            ("motd", text) => Command::Motd(text),
            ("list", None) => Command::List,
            ("whois", a) => Command::Whois(one_word(a).ok_or_else(usage)?),
            ("op", a) => Command::Op(one_word(a).ok_or_else(usage)?),
            ("deop", a) => Command::Deop(one_word(a).ok_or_else(usage)?),
            ("shutdown", reason) => Command::Shutdown(reason),
            ("reload", None) => Command::Reload,
            ("help", None) => Command::Help,
            ("unregister", a) => Command::Unregister(one_word(a).ok_or_else(usage)?),
            ("accounts", None) => Command::Accounts,
            _ => return Err(usage()),
        };
        Ok(command)
    }

    /// The command's name, for the log.
    fn name(&self) -> &'static str {
        match self {
            Command::Kick { .. } => "/kick",
            Command::Ban { .. } => "/ban",
            Command::Unban(_) => "/unban",
            Command::Bans => "/bans",
            Command::Mute { .. } => "/mute",
            Command::Unmute(_) => "/unmute",
            Command::Say(_) => "/say",
            Command::Motd(_) => "/motd",
            Command::List => "/list",
            Command::Whois(_) => "/whois",
            Command::Op(_) => "/op",
            Command::Deop(_) => "/deop",
            Command::Shutdown(_) => "/shutdown",
            Command::Reload => "/reload",
            Command::Help => "/help",
            Command::Unregister(_) => "/unregister",
            Command::Accounts => "/accounts",
        }
    }
}

/// The word that confirms a ban of a network wider than [`Target::WIDEST_FROM_CHAT`]
/// at the console or through `tchat ctl`: `ban 10.0.0.0/8 --wide 1h`.
pub const WIDE_FLAG: &str = "--wide";

/// `rest` without a leading [`WIDE_FLAG`] word, and whether it had one.
fn take_wide(rest: Option<&str>) -> (bool, Option<&str>) {
    match rest.map(split) {
        Some((WIDE_FLAG, after)) => (true, after),
        _ => (false, rest),
    }
}

/// `/ban TARGET [--wide] [DURATION] [--wide] [REASON]`: the second word is a duration
/// if it reads as one. A second word that starts like a number (a digit or a sign) but
/// is no duration (`10 minutes`, `0s`, `-5m`) is an error: taking it as the reason
/// would make a permanent ban of what the operator meant to be a short one.
/// [`WIDE_FLAG`] is read before or after the duration, so that it never ends up as
/// the reason.
fn parse_ban(args: &str) -> Result<Command<'_>, String> {
    let (target, rest) = split(args);
    let (wide, rest) = take_wide(rest);
    let (duration, rest) = match rest.map(split) {
        Some((word, reason)) => match parse_duration(word) {
            Some(d) => (Some(d), reason),
            None if word.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+') => {
                return Err(bad_duration(word));
            }
            None => (None, rest),
        },
        None => (None, None),
    };
    let (wide_after, reason) = if wide { (false, rest) } else { take_wide(rest) };
    Ok(Command::Ban { target, duration, reason, wide: wide || wide_after })
}

fn bad_duration(d: &str) -> String {
    format!("not a duration: {d} (a positive number and s, m, h, d or w: 90s, 10m, 2h, 7d)")
}

fn no_such_user(nick: &str) -> String {
    format!("no such user: {nick}")
}

/// Runs `command` for `by`, returning the answer for them or an error. Everything that
/// changes something is logged with who did it.
///
/// On a backbone a command may wait for NATS (a ban or mute kept for every node, an
/// account changed in the shared bucket, each bounded in time): its caller awaits it
/// in its own task. Without a backbone it is ready when first polled.
pub async fn execute(hub: &Hub, by: Actor<'_>, command: Command<'_>) -> Result<String, String> {
    if !by.may(&command) {
        return Err(format!("{} is for the server's console and tchat ctl", command.name()));
    }
    let name = command.name();
    let result = dispatch(hub, by, command).await;
    let meta =
        |ok: bool, text: &str| json!({"by": by.name(), "command": name, "ok": ok, "result": text});
    match &result {
        Ok(text) if !matches!(name, "/list" | "/bans" | "/whois" | "/help" | "/accounts") => {
            hub.log.info("Operator command", meta(true, text))
        }
        Ok(_) => {}
        Err(e) => hub.log.warn("Operator command failed", meta(false, e)),
    }
    result
}

/// What `command` does, for `by`: [`execute`] checks that `by` may run it first and logs
/// the result.
async fn dispatch(hub: &Hub, by: Actor<'_>, command: Command<'_>) -> Result<String, String> {
    let who = by.name();
    match command {
        Command::Kick { nick, reason } => kick(hub, who, nick, reason).await,
        Command::Ban { target, duration, reason, wide } => {
            ban(hub, by, target, duration, reason, wide).await
        }
        Command::Unban(target) => unban(hub, target).await,
        Command::Bans => Ok(list_bans(hub)),
        Command::Mute { nick, duration } => mute(hub, who, nick, duration).await,
        Command::Unmute(nick) => {
            let nick = mute_anywhere(hub, who, nick, None).await?;
            Ok(format!("unmuted {nick}"))
        }
        Command::Say(text) => {
            hub.notice(&crate::sanitize::sanitize(text));
            Ok("notice sent".into())
        }
        Command::Motd(None) => {
            Ok(hub.moderation.motd().unwrap_or_else(|| "(no message of the day)".into()))
        }
        Command::Motd(Some(text)) => {
            hub.moderation.set_motd(crate::sanitize::sanitize(text));
            Ok("message of the day set".into())
        }
        Command::List => Ok(list_online(hub)),
        Command::Whois(nick) => whois(hub, nick),
        Command::Op(nick) => op(hub, who, nick, true).await,
        Command::Deop(nick) => op(hub, who, nick, false).await,
        Command::Unregister(nick) => {
            let account = hub.config.accounts.remove(nick).await.map_err(|e| e.to_string())?;
            Ok(format!("{} is no longer registered", account.nick))
        }
        Command::Accounts => Ok(list_accounts(hub)),
        Command::Shutdown(reason) => {
            hub.moderation.request_stop(reason.map(str::to_owned));
            Ok("shutting down".into())
        }
        Command::Reload => reload(hub),
        Command::Help => Ok(help()),
    }
}

/// `/op` and `/deop`: the user online, and the registered nick's account, so that the
/// rights last across reconnects and restarts; a registered nick may be offline.
async fn op(hub: &Hub, who: &str, nick: &str, oper: bool) -> Result<String, String> {
    let online = hub.set_oper(nick, oper, who);
    let registered = hub.config.accounts.change(nick, |a| {
        a.oper = oper;
        Ok(a.nick.clone())
    });
    let registered = registered.await;
    let registered = match registered {
        Ok(Ok(name)) => Some(name),
        Ok(Err(_)) | Err(AccountError::NotRegistered(_)) => None,
        Err(e) => return Err(e.to_string()),
    };
    let name = online.clone().or(registered.clone()).ok_or_else(|| no_such_user(nick))?;
    let what = if oper { "is now an operator" } else { "is no longer an operator" };
    Ok(match (online, registered) {
        (Some(_), Some(_)) => format!("{name} {what}, on every connection that proves the nick"),
        (None, Some(_)) => format!("{name} (registered, offline) {what} when they come back"),
        _ => format!("{name} {what} (for this connection: the nick is not registered)"),
    })
}

/// The registered nicks, one a line.
fn list_accounts(hub: &Hub) -> String {
    let accounts = hub.config.accounts.list();
    if accounts.is_empty() {
        return "no registered nicks".into();
    }
    accounts.iter().map(|a| a.describe()).collect::<Vec<_>>().join("\n")
}

async fn kick(hub: &Hub, who: &str, nick: &str, reason: Option<&str>) -> Result<String, String> {
    let why = match reason {
        Some(r) => format!("kicked by {who}: {r}"),
        None => format!("kicked by {who}"),
    };
    let kicked = match hub.kick(nick, &why) {
        Some(here) => Some(here),
        None => match hub.elsewhere(nick) {
            Some(there) => {
                let action = Moderation::Kick { nick: there.clone(), why: why.clone() };
                hub.moderate_across(&action).await.then_some(there)
            }
            None => None,
        },
    };
    let nick = kicked.ok_or_else(|| no_such_user(nick))?;
    Ok(format!("kicked {nick}"))
}

/// `mute`/`unmute` (`until`: `None` for unmute): on this node, or on the node where the
/// user is.
async fn mute_anywhere(
    hub: &Hub,
    who: &str,
    nick: &str,
    mute: Option<Mute>,
) -> Result<String, String> {
    let action = |nick: &str, ip| {
        let (nick, by) = (nick.to_owned(), who.to_owned());
        match mute {
            Some(Mute { until }) => Moderation::Mute { nick, until, by, ip },
            None => Moderation::Unmute { nick, by, ip },
        }
    };
    // Kept for every node (on a backbone) also when the user is here: a muted user
    // who reconnects through another node, or from the same address, is muted there
    // too. The node of a user elsewhere adds the address.
    if let Some((here, ip)) = hub.mute(nick, mute, who) {
        hub.moderate_across(&action(&here, ip)).await;
        return Ok(here);
    }
    let there = hub.elsewhere(nick).ok_or_else(|| no_such_user(nick))?;
    match hub.moderate_across(&action(&there, None)).await {
        true => Ok(there),
        false => Err(format!("the backbone did not take the mute of {there}; try again")),
    }
}

/// What an answer adds when the backbone did not take a ban or unban (NATS away or
/// too slow): it holds on this node, and the operator knows the others lack it.
fn not_across(hub: &Hub, across: bool) -> &'static str {
    match across || !hub.on_backbone() {
        true => "",
        false => {
            " (on this node only: the backbone did not take it, give it again once it is back)"
        }
    }
}

async fn unban(hub: &Hub, target: &str) -> Result<String, String> {
    let target = Target::parse(target).map_err(|e| e.to_string())?;
    let across = hub.moderate_across(&Moderation::Unban { target: target.to_string() }).await;
    match hub.moderation.unban(&target)? {
        true => Ok(format!("unbanned {target}{}", not_across(hub, across))),
        false => Err(format!("{target} is not banned")),
    }
}

async fn mute(
    hub: &Hub,
    who: &str,
    nick: &str,
    duration: Option<Duration>,
) -> Result<String, String> {
    let until = duration.map(|d| clock::now() + d);
    let nick = mute_anywhere(hub, who, nick, Some(Mute { until })).await?;
    Ok(match duration {
        Some(d) => format!("muted {nick} for {}", span(d.as_secs())),
        None => format!("muted {nick} until /unmute"),
    })
}

fn list_online(hub: &Hub) -> String {
    let rows = hub.roster();
    match rows.len() {
        0 => "nobody online".into(),
        n => format!("{n} online: {}", rows.join(", ")),
    }
}

/// The whois answer as the text protocol words it, one field a line, without the
/// `*** ` of chat lines.
fn whois(hub: &Hub, nick: &str) -> Result<String, String> {
    let answer = hub.whois(nick, true).ok_or_else(|| no_such_user(nick))?;
    let text = Event::now(answer).text_line("");
    Ok(text.lines().map(|l| l.trim_start_matches("*** ")).collect::<Vec<_>>().join("\n"))
}

/// Every operator command with its usage, aligned.
fn help() -> String {
    USAGE
        .iter()
        .map(|(usage, description)| format!("{usage:42}  {description}"))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn ban(
    hub: &Hub,
    by: Actor<'_>,
    target: &str,
    duration: Option<Duration>,
    reason: Option<&str>,
    wide: bool,
) -> Result<String, String> {
    let target = Target::parse(target).map_err(|e| e.to_string())?;
    refuse_wide_ban(by, &target, wide)?;
    refuse_self_ban(by, &target)?;
    let ban = Ban {
        target: target.clone(),
        until: duration.map(|d| clock::now() + d),
        reason: reason.map(crate::sanitize::sanitize),
        by: by.name().to_owned(),
        at: clock::now(),
    };
    let saved = hub.moderation.ban(ban.clone());
    let kicked = enforce(hub, &ban);
    // Every node's list, and its users the ban covers.
    let across = hub.moderate_across(&Moderation::Ban { ban: ban.clone() }).await;
    let answer = match duration {
        Some(d) => format!("banned {target} for {}", span(d.as_secs())),
        None => format!("banned {target}"),
    };
    let answer = answer + &disconnected(&kicked) + not_across(hub, across);
    match saved {
        Ok(()) => Ok(answer),
        Err(e) => Err(format!("{answer}, but not saved: {e}")),
    }
}

/// A network wider than [`Target::WIDEST_FROM_CHAT`] locks out a whole provider, or
/// everyone (`0.0.0.0/0`), and is kept in `--bans` across restarts: one mistyped prefix
/// would empty the server. Operators in chat may not make such a ban at all (as ergo and
/// UnrealIRCd refuse it without a server operator's override); the console and `tchat
/// ctl`, the server's admin, may with [`WIDE_FLAG`].
fn refuse_wide_ban(by: Actor, target: &Target, wide: bool) -> Result<(), String> {
    if !target.is_wide() {
        return Ok(());
    }
    let (v4, v6) = Target::WIDEST_FROM_CHAT;
    let bound = format!("wider than /{v4} for IPv4 or /{v6} for IPv6");
    match by {
        Actor::Oper { .. } => Err(format!(
            "not banning {target}: operators in chat may not ban a network {bound}; \
             the server's console or tchat ctl can, with {WIDE_FLAG}"
        )),
        Actor::Console | Actor::Ctl if !wide => Err(format!(
            "not banning {target}: it is a network {bound}; add {WIDE_FLAG} to confirm \
             (ban {target} {WIDE_FLAG} [duration] [reason])"
        )),
        Actor::Console | Actor::Ctl => Ok(()),
    }
}

/// An operator in chat may not ban their own nick or address: the ban would disconnect
/// them at once (and, for a shared address such as 127.0.0.1, everyone else on it),
/// leaving nobody in chat to lift it. The console and `tchat ctl` run on the server's
/// host, by its admin, and may.
fn refuse_self_ban(by: Actor, target: &Target) -> Result<(), String> {
    let Actor::Oper { nick, ip } = by else { return Ok(()) };
    let yours = if target.matches_nick(nick) {
        format!("your nick {nick}")
    } else if target.matches_ip(ip) {
        format!("your address {}", ip.to_canonical())
    } else {
        return Ok(());
    };
    Err(format!(
        "not banning {target}: it covers {yours} and would disconnect you; \
         the server's console or tchat ctl can"
    ))
}

/// Disconnects the members `ban` covers, by nick or address, held-for-resume ones
/// included ([`Hub::kick_banned`]): they are told `you were banned by WHO[ for
/// SPAN][: reason]`
/// and everyone else sees them leave with that reason. Returns their nicks. `by` and
/// the reason are sanitized again: from a hand-edited file they reach every member.
pub(crate) fn enforce(hub: &Hub, ban: &Ban) -> Vec<String> {
    hub.kick_banned(&ban.target, &banned_why(ban, clock::now()))
}

/// `banned by WHO[ for SPAN][: reason]`, SPAN the time left at `now`, rounded up to
/// the second so that a ban made for 1h reads `1h 0m`, not `59m 59s`.
fn banned_why(ban: &Ban, now: Timestamp) -> String {
    let mut why = format!("banned by {}", crate::sanitize::sanitize(&ban.by));
    if let Some(until) = ban.until {
        let left = until.duration_since(now);
        let secs = u64::try_from(left.as_secs()).unwrap_or(0) + u64::from(left.subsec_nanos() > 0);
        why.push_str(&format!(" for {}", span(secs)));
    }
    if let Some(reason) = &ban.reason {
        why.push_str(&format!(": {}", crate::sanitize::sanitize(reason)));
    }
    why
}

/// `; disconnected NICK, NICK` for an answer, or nothing when nobody was.
fn disconnected(nicks: &[String]) -> String {
    match nicks {
        [] => String::new(),
        _ => format!("; disconnected {}", nicks.join(", ")),
    }
}

/// Re-reads the MOTD and bans files ([`super::moderation::Moderation::reload`]) and
/// then enforces every ban in force on who is online, as an operator's `/ban` does:
/// a ban written into the file by hand (or by another tool) takes effect at the reload,
/// not only at the banned user's next connection. Enforced even when a file failed to
/// load, since the bans kept in force then are the old ones. For `tchat ctl reload`,
/// the console's `/reload` and SIGHUP alike.
pub fn reload(hub: &Hub) -> Result<String, String> {
    let result = hub.moderation.reload();
    let kicked: Vec<String> =
        hub.moderation.bans().iter().flat_map(|ban| enforce(hub, ban)).collect();
    let suffix = disconnected(&kicked);
    result.map(|done| done + &suffix).map_err(|e| e + &suffix)
}

fn list_bans(hub: &Hub) -> String {
    let bans = hub.moderation.bans();
    if bans.is_empty() {
        return "no bans".into();
    }
    let rows: Vec<String> = bans
        .iter()
        .map(|b| {
            let until = match b.until {
                Some(t) => format!("until {}", t.strftime("%Y-%m-%d %H:%M:%S UTC")),
                None => "permanent".into(),
            };
            let reason = b.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
            format!("{} {until}, by {}{reason}", b.target, b.by)
        })
        .collect();
    rows.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Command<'_>, String> {
        Command::parse(line)
    }

    #[test]
    fn commands_parse_with_or_without_a_slash() {
        assert_eq!(p("/kick bob"), Ok(Command::Kick { nick: "bob", reason: None }));
        assert_eq!(
            p("KICK bob  spamming  a lot"),
            Ok(Command::Kick { nick: "bob", reason: Some("spamming  a lot") })
        );
        assert_eq!(p("bans"), Ok(Command::Bans));
        assert_eq!(p("/shutdown"), Ok(Command::Shutdown(None)));
        assert_eq!(p("/motd hello  there"), Ok(Command::Motd(Some("hello  there"))));
        assert_eq!(p("/op bob"), Ok(Command::Op("bob")));
    }

    #[test]
    fn a_ban_reads_its_duration_only_when_there_is_one() {
        let ten = Some(Duration::from_secs(600));
        assert_eq!(
            p("/ban bob 10m spam"),
            Ok(Command::Ban { target: "bob", duration: ten, reason: Some("spam"), wide: false })
        );
        assert_eq!(
            p("/ban 10.0.0.0/8 flooding us"),
            Ok(Command::Ban {
                target: "10.0.0.0/8",
                duration: None,
                reason: Some("flooding us"),
                wide: false
            })
        );
        assert_eq!(
            p("/ban bob 2h"),
            Ok(Command::Ban {
                target: "bob",
                duration: Some(Duration::from_secs(7200)),
                reason: None,
                wide: false
            })
        );
    }

    #[test]
    fn the_wide_flag_is_read_before_or_after_the_duration_never_as_the_reason() {
        let wide = |duration: Option<u64>, reason| Command::Ban {
            target: "10.0.0.0/8",
            duration: duration.map(Duration::from_secs),
            reason,
            wide: true,
        };
        assert_eq!(p("/ban 10.0.0.0/8 --wide"), Ok(wide(None, None)));
        assert_eq!(p("ban 10.0.0.0/8 --wide 1h spam"), Ok(wide(Some(3600), Some("spam"))));
        assert_eq!(p("ban 10.0.0.0/8 1h --wide spam"), Ok(wide(Some(3600), Some("spam"))));
        assert_eq!(p("ban 10.0.0.0/8 --wide spam --wide"), Ok(wide(None, Some("spam --wide"))));
    }

    #[test]
    fn a_wide_ban_is_refused_in_chat_and_needs_the_flag_at_the_console_and_ctl() {
        let oper = Actor::Oper { nick: "alice", ip: IpAddr::from([192, 0, 2, 1]) };
        let t = |s: &str| Target::parse(s).unwrap();
        for s in ["0.0.0.0/0", "::/0", "10.0.0.0/8", "2001:db8::/32"] {
            let e = refuse_wide_ban(oper, &t(s), true).unwrap_err();
            assert!(e.contains("operators in chat may not ban a network wider than /16"), "{e}");
            for by in [Actor::Console, Actor::Ctl] {
                let e = refuse_wide_ban(by, &t(s), false).unwrap_err();
                assert!(e.contains("add --wide to confirm"), "{e}");
                assert_eq!(refuse_wide_ban(by, &t(s), true), Ok(()));
            }
        }
        for s in ["198.51.100.0/24", "10.1.0.0/16", "2001:db8::/48", "10.0.0.1", "bob"] {
            assert_eq!(refuse_wide_ban(oper, &t(s), false), Ok(()), "{s}");
            assert_eq!(refuse_wide_ban(Actor::Ctl, &t(s), false), Ok(()), "{s}");
        }
    }

    #[test]
    fn bad_lines_give_the_usage() {
        assert_eq!(p("/kick").unwrap_err(), "usage: /kick <nick> [reason]");
        assert_eq!(p("/whois a b").unwrap_err(), "usage: /whois <nick>");
        assert!(p("/mute bob forever").unwrap_err().contains("not a duration"));
        for line in ["/ban bob 10 minutes", "/ban bob 0s", "/ban bob -5m", "/ban bob +5m spam"] {
            let e = p(line).unwrap_err();
            assert!(e.starts_with("not a duration: ") && e.contains("10m, 2h, 7d"), "{line}: {e}");
        }
        assert!(p("/frob").unwrap_err().contains("unknown command /frob"));
        assert_eq!(p("/bans x").unwrap_err(), "usage: /bans");
    }

    #[test]
    fn a_banned_user_is_told_for_how_long() {
        let at: Timestamp = "2026-01-01T12:00:00Z".parse().unwrap();
        let ban = |until: Option<Timestamp>, reason: Option<&str>| Ban {
            target: Target::parse("bob").unwrap(),
            until,
            reason: reason.map(str::to_owned),
            by: "ctl".into(),
            at,
        };
        let hour = at + Duration::from_secs(3600);
        let just_after = at + Duration::from_millis(1);
        assert_eq!(
            banned_why(&ban(Some(hour), Some("rude")), just_after),
            "banned by ctl for 1h 0m: rude"
        );
        assert_eq!(banned_why(&ban(Some(hour), None), at), "banned by ctl for 1h 0m");
        assert_eq!(banned_why(&ban(None, Some("rude")), at), "banned by ctl: rude");
        assert_eq!(banned_why(&ban(Some(at), None), hour), "banned by ctl for 0s");
    }

    #[test]
    fn an_operator_in_chat_may_not_ban_themselves() {
        let oper = Actor::Oper { nick: "Alice", ip: "::ffff:192.0.2.1".parse().unwrap() };
        let t = |s: &str| Target::parse(s).unwrap();
        let e = refuse_self_ban(oper, &t("alice")).unwrap_err();
        assert!(e.starts_with("not banning alice: it covers your nick Alice"), "{e}");
        let e = refuse_self_ban(oper, &t("192.0.2.0/24")).unwrap_err();
        assert!(e.contains("covers your address 192.0.2.1 "), "{e}");
        assert_eq!(refuse_self_ban(oper, &t("192.0.2.2")), Ok(()));
        assert_eq!(refuse_self_ban(oper, &t("bob")), Ok(()));
        assert_eq!(refuse_self_ban(Actor::Ctl, &t("192.0.2.0/24")), Ok(()));
    }

    #[test]
    fn operators_in_chat_cannot_run_the_server_commands() {
        let oper = Actor::Oper { nick: "alice", ip: IpAddr::from([192, 0, 2, 1]) };
        assert!(oper.may(&Command::Kick { nick: "bob", reason: None }));
        assert!(!oper.may(&Command::Shutdown(None)));
        assert!(!oper.may(&Command::Op("bob")));
        assert!(Actor::Ctl.may(&Command::Shutdown(None)));
    }
}
