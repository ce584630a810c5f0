//! Files only their owner may read, and the directories that hold them: what tchat keeps
//! between runs holds private messages, passwords typed at a prompt aside, moderation,
//! keys and trusted fingerprints. One place decides how such a file is created and
//! replaced, for the client (history, settings, known hosts) and the server (bans, the
//! generated certificate and key, the console's history).
//!
//! A file is replaced atomically: written to a temporary file in the same directory,
//! synced to disk, then renamed over the old one (rename(2) is atomic within a file
//! system), so a crash leaves the old contents or the new, never half of either.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A file's mode when tchat creates it: its owner reads and writes it, nobody else.
pub const FILE_MODE: u32 = 0o600;

/// A directory's mode when tchat creates it.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` and its missing parents with mode 0700 (whatever the umask adds);
/// directories that exist keep their mode. Errors are `DirBuilder`'s.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)
}

/// Creates the directory `path` lives in, as [`create_dir`]; nothing for a bare name.
pub fn create_parent(path: &Path) -> io::Result<()> {
    match path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        Some(dir) => create_dir(dir),
        None => Ok(()),
    }
}

/// Open options that create a file with mode 0600 on Unix; the caller adds the access
/// (`append`, `write`…) and whether to create. A file that exists keeps its mode.
pub fn options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options
}

/// Creates the directory of `path` (0700) and the file itself if missing, and makes the
/// file 0600 whatever it was: for a file appended to line by line (an input history).
pub fn prepare(path: &Path) -> io::Result<()> {
    create_parent(path)?;
    let file = options().create(true).append(true).open(path)?;
    make_private(&file)
}

/// Replaces `path` with `bytes` atomically (see the module doc), creating its directory
/// (0700) if needed. The file is 0600, also when it existed with another mode.
///
/// Errors: the failed step's (the caller names the file); the temporary file is then
/// removed.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, false)
}

/// As [`write()`], but a file that exists keeps its mode (an administrator may have made
/// it readable by a group); a new one is 0600.
pub fn write_keeping_mode(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace(path, bytes, true)
}

fn replace(path: &Path, bytes: &[u8], keep_mode: bool) -> io::Result<()> {
    let tmp = temporary_name(path);
    let result = (|| {
        create_parent(path)?;
        let _ = std::fs::remove_file(&tmp);
        let mut file = options().write(true).create_new(true).open(&tmp)?;
        match std::fs::metadata(path) {
            Ok(old) if keep_mode => file.set_permissions(old.permissions())?,
            _ => make_private(&file)?,
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `.NAME.tmp-PID` beside `path`: hidden, and two processes never share one.
fn temporary_name(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Sets mode 0600 on an open file (the umask may have taken bits from a created one; an
/// existing one may have had any mode).
fn make_private(file: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tchat-private-file-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_write_creates_private_directories_and_a_private_file() {
        let dir = temp_dir("create");
        let path = dir.join("a/b/known_hosts");
        write(&path, b"one\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one\n");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.join("a/b")), 0o700);
        assert_eq!(mode(&dir.join("a")), 0o700);
        // Nothing left beside it.
        assert_eq!(std::fs::read_dir(dir.join("a/b")).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_write_replaces_the_contents_and_the_mode_unless_asked_to_keep_it() {
        let dir = temp_dir("replace");
        let path = dir.join("bans.jsonl");
        write(&path, b"old\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_keeping_mode(&path, b"new\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new\n");
        assert_eq!(mode(&path), 0o640);
        write(&path, b"newer\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"newer\n");
        assert_eq!(mode(&path), 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file() {
        let dir = temp_dir("fail");
        let path = dir.join("settings.json");
        write(&path, b"kept\n").unwrap();
        // The target is now a non-empty directory: the rename must fail.
        let blocked = dir.join("blocked");
        std::fs::create_dir_all(blocked.join("inside")).unwrap();
        write(&blocked, b"lost\n").unwrap_err();
        assert_eq!(std::fs::read(&path).unwrap(), b"kept\n");
        let names: Vec<_> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn prepare_makes_an_existing_file_private() {
        let dir = temp_dir("prepare");
        let path = dir.join("history");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, "kept\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        prepare(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"kept\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
