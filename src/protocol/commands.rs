//! The command tables: every command with its usage and description, the operator
//! commands, the aliases, and the `/help` answer made from them.

use super::event::HelpEntry;

/// Every command with its usage and a one-line description; `/help` sends this list and
/// the client completes command names from it.
pub const COMMANDS: &[(&str, &str)] = &[
    ("/nick <name>", "set or change your nickname"),
    ("/list [all]", "list the users in your room, or everyone with their room (also /who, /names)"),
    ("/join <#room>", "move to a room, creating it if needed (you are in one room at a time)"),
    ("/part", "go back to the default room"),
    ("/rooms", "list the rooms with how many are in each and their topics"),
    ("/topic [text]", "show your room's topic, or set it"),
    (
        "/msg <user> <text>",
        "send a message only that user is shown; the server sees it and may log it (also /query, /tell)",
    ),
    ("/me <action>", "send an action, shown as \"* nick action\""),
    ("/quit [reason]", "leave the chat (also /exit, /bye)"),
    ("/reply <text>", "answer the last private message you received (also /r)"),
    ("/away [message]", "mark yourself away; private messages get your message once"),
    ("/back", "you are back: clear your away message"),
    ("/whois <user>", "who a user is: room, online since, idle time, away, operator"),
    ("/motd", "show the message of the day"),
    ("/oper <password>", "become an operator (with the server's operator password)"),
    (
        "/register [password]",
        "keep your nick: register it to your key (tchat join has one), or to a password",
    ),
    (
        "/identify <nick> <password>",
        "prove a registered nick with its password (adds this device's key)",
    ),
    ("/unregister", "give your registered nick up"),
    ("/keys [remove <fingerprint>]", "list your registered nick's keys, or remove one"),
    ("/password <new password>", "set or change your registered nick's password"),
    (
        "/history [n]",
        "show the last n lines of your room again (default: as many as the server replays on joining; at most 200)",
    ),
    (
        "/search <text>",
        "find the lines of your room's history that contain text, in any case (the last 20)",
    ),
    ("/help", "list these commands (also /?)"),
    ("//text", "send a public line that starts with '/'"),
];

/// The commands an operator may use in chat after `/oper`, with their usage; `/help`
/// lists them for operators only. The same commands (and a few more) work on the
/// server's console and through `tchat ctl`.
pub const OPERATOR_COMMANDS: &[(&str, &str)] = &[
    ("/kick <user> [reason]", "disconnect a user"),
    ("/ban <nick|addr|cidr> [duration] [reason]", "ban a nick, address or network (10m, 2h, 7d)"),
    ("/unban <nick|addr|cidr>", "lift a ban"),
    ("/bans", "list the bans in force"),
    ("/mute <user> [duration]", "refuse a user's messages, for a while or until /unmute"),
    ("/unmute <user>", "let a muted user speak again"),
    ("/say <text>", "send a notice from the server to everyone"),
    ("/motd <text>", "set the message of the day (until the next reload)"),
];

/// Other names a command answers to, for people used to IRC and other chats:
/// `(alias, command)`. Each is named in its command's [`COMMANDS`] description.
pub const ALIASES: &[(&str, &str)] = &[
    ("/who", "/list"),
    ("/names", "/list"),
    ("/query", "/msg"),
    ("/tell", "/msg"),
    ("/exit", "/quit"),
    ("/bye", "/quit"),
    ("/?", "/help"),
    ("/r", "/reply"),
];

/// The command `name` (a `/word`, any case) stands for: itself unless it is an alias.
pub fn canonical(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    match ALIASES.iter().find(|(alias, _)| *alias == lower) {
        Some((_, command)) => (*command).to_owned(),
        None => lower,
    }
}

/// The `/help` answer; an operator's also lists [`OPERATOR_COMMANDS`].
/// `history_default`: how many lines `/history` without a count sends (the server's
/// `--replay`, at least 1), which its line names.
pub fn help_entries_for(oper: bool, history_default: usize) -> Vec<HelpEntry> {
    let mut entries = help_entries();
    // The default is the server's `--replay` count: the answer says the number itself.
    if let Some(history) = entries.iter_mut().find(|e| e.usage.starts_with("/history")) {
        history.description = format!(
            "show the last n lines of your room again (default {history_default}, at most 200)"
        );
    }
    if oper {
        entries.extend(OPERATOR_COMMANDS.iter().map(|(usage, description)| HelpEntry {
            usage: (*usage).to_owned(),
            description: format!("(operator) {description}"),
        }));
    }
    entries
}

/// The `/help` answer.
pub fn help_entries() -> Vec<HelpEntry> {
    COMMANDS
        .iter()
        .map(|(usage, description)| HelpEntry {
            usage: (*usage).to_owned(),
            description: (*description).to_owned(),
        })
        .collect()
}
