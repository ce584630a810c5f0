//! The terminal mode from before a line editor started, put back when the program ends
//! while the editor is still waiting for a key: rustyline only restores it when
//! `readline` returns. Shared by the client and the server's interactive console.

use std::io::Write;

pub struct TerminalMode {
    #[cfg(unix)]
    saved: Option<nix::sys::termios::Termios>,
}

impl TerminalMode {
    /// Saves the mode of standard input; call it before the editor first reads.
    pub fn save() -> TerminalMode {
        #[cfg(unix)]
        {
            // On failure (not a terminal after all) there is nothing to restore.
            let saved = nix::sys::termios::tcgetattr(std::io::stdin()).ok();
            TerminalMode { saved }
        }
        #[cfg(not(unix))]
        TerminalMode {}
    }

    /// Restores the saved mode and clears the abandoned prompt line.
    pub fn restore(self) {
        #[cfg(unix)]
        if let Some(termios) = &self.saved {
            use nix::sys::termios::{SetArg, tcsetattr};
            // Best effort: the terminal may be gone (SIGHUP), and the process is ending.
            let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, termios);
        }
        let mut stdout = std::io::stdout();
        let _ = stdout.write_all(b"\r\x1b[K").and_then(|()| stdout.flush());
    }
}
