//! A private state directory for a `tchat join` under test (its XDG_STATE_HOME and
//! HOME), so no test reads or writes the real history file.

use std::path::{Path, PathBuf};

/// A temporary directory, removed on drop.
pub struct StateDir(PathBuf);

impl StateDir {
    /// A fresh, empty directory; `name` keeps parallel tests apart.
    pub fn new(name: &str) -> StateDir {
        let dir = std::env::temp_dir().join(format!("tchat-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        StateDir(dir)
    }
}

impl StateDir {
    /// A fresh directory holding a copy of `dir`'s contents (a server's state, its
    /// certificate in it, for another server of the same chat).
    pub fn copy_of(dir: &Path, name: &str) -> StateDir {
        let copy = StateDir::new(name);
        let status =
            std::process::Command::new("cp").arg("-a").arg(dir.join(".")).arg(&*copy).status();
        assert!(status.is_ok_and(|s| s.success()), "copying {} failed", dir.display());
        copy
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl std::ops::Deref for StateDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}
