//! Where tchat keeps what it remembers between runs: `$XDG_STATE_HOME/tchat/`, or
//! `~/.local/state/tchat/` when XDG_STATE_HOME is unset or not absolute (as the XDG Base
//! Directory specification says). The client's history and per-server settings and the
//! server console's history live there, private to the user: they hold private
//! messages and moderation.

use std::path::PathBuf;

use etcetera::base_strategy::{BaseStrategy, Xdg};

/// The path of `name` in the state directory; `None` when no home directory is known
/// (and XDG_STATE_HOME does not say).
pub fn file(name: &str) -> Option<PathBuf> {
    Some(dir()?.join(name))
}

/// The XDG Base Directory layout, on every platform (a terminal chat's users expect
/// `~/.local/state` on macOS too, as for ssh's `~/.ssh`), from `etcetera`: it ignores
/// relative XDG variables, as the specification says. `None` without a home directory.
fn xdg() -> Option<Xdg> {
    Xdg::new().ok()
}

/// tchat's state directory: `$XDG_STATE_HOME/tchat`, else `~/.local/state/tchat`. The
/// server keeps its generated TLS key and certificate there too.
pub fn dir() -> Option<PathBuf> {
    Some(xdg()?.state_dir()?.join("tchat"))
}

/// tchat's data directory: `$XDG_DATA_HOME/tchat`, else `~/.local/share/tchat`; the
/// client's known hosts live there, as ssh's do in `~/.ssh`, apart from disposable state.
pub fn data_dir() -> Option<PathBuf> {
    Some(xdg()?.data_dir().join("tchat"))
}

/// `$XDG_RUNTIME_DIR` (the place for sockets), if set to an absolute path.
pub fn runtime_dir() -> Option<PathBuf> {
    xdg()?.runtime_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_directory_follows_xdg() {
        // Read, never set: the environment is shared by the tests running in parallel.
        // HOME, else the password database's entry, as `etcetera` (and ssh) find it.
        let home = etcetera::home_dir().ok();
        let expected = match std::env::var_os("XDG_STATE_HOME").map(PathBuf::from) {
            Some(xdg) if xdg.is_absolute() && home.is_some() => Some(xdg.join("tchat")),
            _ => home.map(|h| h.join(".local/state/tchat")),
        };
        assert_eq!(dir(), expected);
        assert_eq!(file("history"), expected.map(|dir| dir.join("history")));
    }
}
