//! Known hosts: the certificate fingerprints the user has trusted, one per server, as
//! ssh keeps host keys. The file is `$XDG_DATA_HOME/tchat/known_hosts` (else
//! `~/.local/share/tchat/known_hosts`), mode 0600; each line is `HOST:PORT SHA256:…`,
//! and lines starting with `#` are comments.

use std::io;
use std::path::{Path, PathBuf};

use crate::fingerprint::Fingerprint;

/// The known hosts file's default place.
pub fn default_path() -> Option<PathBuf> {
    Some(crate::state_dir::data_dir()?.join("known_hosts"))
}

/// A pinned fingerprint and the line it is on (from 1), for the message that says how
/// to forget it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin {
    pub fingerprint: Fingerprint,
    pub line: usize,
}

/// The pin for `host` (`HOST:PORT` as the client writes it) in the file's text. Lines
/// that do not parse are skipped, so one bad edit does not lock the user out.
pub fn find(text: &str, host: &str) -> Option<Pin> {
    text.lines().enumerate().find_map(|(i, line)| {
        let mut words = line.split_whitespace();
        let (name, fp) = (words.next()?, words.next()?);
        if name.starts_with('#') || name != host {
            return None;
        }
        Some(Pin { fingerprint: fp.parse().ok()?, line: i + 1 })
    })
}

/// The file's text with `host` pinned to `fingerprint`: replaces its line if it has one,
/// else appends one.
pub fn with_pin(text: &str, host: &str, fingerprint: Fingerprint) -> String {
    let entry = format!("{host} {fingerprint}");
    let mut out = String::with_capacity(text.len() + entry.len() + 1);
    let mut replaced = false;
    for line in text.lines() {
        if !replaced && line.split_whitespace().next() == Some(host) {
            out.push_str(&entry);
            replaced = true;
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if !replaced {
        out.push_str(&entry);
        out.push('\n');
    }
    out
}

/// Reads the file; a missing file has no pins.
pub fn read(path: &Path) -> io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    }
}

/// Pins `host` to `fingerprint` in the file, creating it (0600, in a directory made
/// 0700) if needed.
pub fn pin(path: &Path, host: &str, fingerprint: Fingerprint) -> io::Result<()> {
    let context = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let text = with_pin(&read(path)?, host, fingerprint);
    crate::private_file::write(path, text.as_bytes()).map_err(context)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(seed: &[u8]) -> Fingerprint {
        Fingerprint::of(seed)
    }

    #[test]
    fn a_pin_is_found_by_host_and_port_with_its_line() {
        let text = format!(
            "# comment\nexample.org:5555 {}\n127.0.0.1:5555 {}\nbroken line\n",
            fp(b"a"),
            fp(b"b")
        );
        assert_eq!(find(&text, "127.0.0.1:5555"), Some(Pin { fingerprint: fp(b"b"), line: 3 }));
        assert_eq!(find(&text, "example.org:5555").unwrap().fingerprint, fp(b"a"));
        assert_eq!(find(&text, "example.org:5556"), None);
        assert_eq!(find(&text, "#"), None);
    }

    #[test]
    fn pinning_replaces_or_appends() {
        let one = with_pin("", "h:1", fp(b"a"));
        assert_eq!(one, format!("h:1 {}\n", fp(b"a")));
        let two = with_pin(&one, "h:2", fp(b"b"));
        let replaced = with_pin(&two, "h:1", fp(b"c"));
        assert_eq!(replaced, format!("h:1 {}\nh:2 {}\n", fp(b"c"), fp(b"b")));
    }
}
