//! Where tchat keeps what it remembers between runs: `$XDG_STATE_HOME/tchat/`, or
//! `~/.local/state/tchat/` when XDG_STATE_HOME is unset or not absolute (as the XDG Base
//! Directory specification says). The client's history and per-server settings and the
//! server console's history live there, private to the user: they hold private
//! messages and moderation.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The path of `name` in the state directory; `None` when neither XDG_STATE_HOME nor
/// HOME helps.
pub fn file(name: &str) -> Option<PathBuf> {
    Some(dir()?.join(name))
}

/// tchat's state directory: `$XDG_STATE_HOME/tchat`, else `~/.local/state/tchat`. The
/// server keeps its generated TLS key and certificate there too.
pub fn dir() -> Option<PathBuf> {
    tchat_dir(std::env::var_os("XDG_STATE_HOME"), std::env::var_os("HOME"), ".local/state")
}

/// tchat's data directory: `$XDG_DATA_HOME/tchat`, else `~/.local/share/tchat`; the
/// client's known hosts live there, as ssh's do in `~/.ssh`, apart from disposable state.
pub fn data_dir() -> Option<PathBuf> {
    tchat_dir(std::env::var_os("XDG_DATA_HOME"), std::env::var_os("HOME"), ".local/share")
}

/// `XDG/tchat` when the XDG variable holds an absolute path (relative ones are to be
/// ignored, the specification says), else `HOME/fallback/tchat`.
fn tchat_dir(xdg: Option<OsString>, home: Option<OsString>, fallback: &str) -> Option<PathBuf> {
    let base = match xdg.map(PathBuf::from).filter(|p| p.is_absolute()) {
        Some(xdg) => xdg,
        None => PathBuf::from(home.filter(|h| !h.is_empty())?).join(fallback),
    };
    Some(base.join("tchat"))
}

/// Creates the directory of `path` (0700) and the file itself if missing, and makes the
/// file 0600 whatever it was.
pub fn prepare_private_file(path: &Path) -> std::io::Result<()> {
    create_private_dir(path)?;
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Creates the directory `path` lives in (0700), and its parents.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let Some(dir) = path.parent() else { return Ok(()) };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_directory_follows_xdg() {
        let p = |state: Option<&str>, home: Option<&str>| {
            tchat_dir(state.map(Into::into), home.map(Into::into), ".local/state")
                .map(|dir| dir.join("history"))
        };
        assert_eq!(p(Some("/s"), Some("/h")), Some(PathBuf::from("/s/tchat/history")));
        assert_eq!(p(None, Some("/h")), Some(PathBuf::from("/h/.local/state/tchat/history")));
        assert_eq!(
            p(Some("relative"), Some("/h")),
            Some(PathBuf::from("/h/.local/state/tchat/history"))
        );
        assert_eq!(p(None, None), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_state_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("tchat-hist-{}", std::process::id()));
        let path = dir.join("tchat").join("history");
        prepare_private_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
