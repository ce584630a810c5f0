//! What the client remembers per server between runs: who is ignored and when the bell
//! rings. One JSON file, `servers.json` in the [`crate::state_dir`], mode 0600, holding
//! an object keyed by `host:port`:
//! `{"chat.example.org:5555":{"ignore":["bob"],"bell":"mentions"}}`.
//!
//! Each change re-reads the file and rewrites it whole through a temporary file renamed
//! over it, so two clients of the same user (on different servers) keep each other's
//! settings and a crash leaves the old file or the new one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// When the terminal bell rings (`/bell`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bell {
    /// Never.
    Off,
    /// When someone mentions your nick or writes to you privately.
    #[default]
    Mentions,
    /// On every message from someone else, public or private.
    All,
}

impl Bell {
    pub fn parse(word: &str) -> Option<Bell> {
        match word.to_ascii_lowercase().as_str() {
            "off" => Some(Bell::Off),
            "mentions" => Some(Bell::Mentions),
            "all" => Some(Bell::All),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Bell::Off => "off",
            Bell::Mentions => "mentions",
            Bell::All => "all",
        }
    }
}

/// The settings for one server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerSettings {
    /// Nicks as the user typed them; compared by [`crate::nick::key`].
    #[serde(default)]
    pub ignore: Vec<String>,
    #[serde(default)]
    pub bell: Bell,
}

/// The settings file and the server whose entry this client uses.
pub struct SettingsFile {
    /// `None`: no state directory; settings last for this run only.
    path: Option<PathBuf>,
    server: String,
}

impl SettingsFile {
    /// The file in the state directory, for the server `host:port` (the host in lower
    /// case: host names are case-insensitive).
    pub fn for_server(host: &str, port: u16) -> SettingsFile {
        let path = crate::state_dir::file("servers.json");
        SettingsFile { path, server: server_key(host, port) }
    }

    /// Settings kept for this run only (no state directory to keep them in).
    pub fn in_memory() -> SettingsFile {
        SettingsFile { path: None, server: String::new() }
    }

    /// This server's settings; the defaults if there are none or the file is unreadable
    /// (a broken file must not keep the user from chatting).
    pub fn load(&self) -> ServerSettings {
        let Some(path) = &self.path else { return ServerSettings::default() };
        read_all(path).remove(&self.server).unwrap_or_default()
    }

    /// Stores `settings` for this server, keeping the other servers' entries.
    pub fn save(&self, settings: &ServerSettings) -> std::io::Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        let mut all = read_all(path);
        if *settings == ServerSettings::default() {
            all.remove(&self.server);
        } else {
            all.insert(self.server.clone(), settings.clone());
        }
        crate::private_file::write(path, serde_json::to_string_pretty(&all)?.as_bytes())
    }
}

fn server_key(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

fn read_all(path: &Path) -> BTreeMap<String, ServerSettings> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_kept_per_server_and_the_file_is_private() {
        let dir = std::env::temp_dir().join(format!("tchat-settings-{}", std::process::id()));
        let path = dir.join("tchat").join("servers.json");
        let file = |host: &str, port| SettingsFile {
            path: Some(path.clone()),
            server: server_key(host, port),
        };
        let a = file("Chat.example.org", 5555);
        assert_eq!(a.load(), ServerSettings::default());
        let mine = ServerSettings { ignore: vec!["bob".into()], bell: Bell::All };
        a.save(&mine).unwrap();
        file("::1", 5555).save(&ServerSettings { ignore: vec![], bell: Bell::Off }).unwrap();
        assert_eq!(file("chat.example.org", 5555).load(), mine);
        assert_eq!(file("chat.example.org", 6000).load(), ServerSettings::default());
        assert_eq!(file("::1", 5555).load().bell, Bell::Off);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"[::1]:5555\"") && text.contains("\"bell\": \"all\""), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not json").unwrap();
        assert_eq!(a.load(), ServerSettings::default(), "a broken file costs the settings only");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
