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
