//! Removing telnet command sequences from a client's byte stream, so that a real telnet
//! client (PuTTY, `telnet` on port 23 semantics) chats like `nc`.
//!
//! RFC 854 (TELNET) escapes commands with IAC (0xFF): `IAC cmd` for the two-byte commands,
//! `IAC WILL|WONT|DO|DONT option` for option negotiation, `IAC SB … IAC SE` for
//! subnegotiation (RFC 855), and `IAC IAC` for a literal 0xFF data byte. 0xFF never
//! occurs in UTF-8, so removing these sequences changes nothing for a client that is
//! not telnet: only bytes that would have decoded to U+FFFD are affected.
//!
//! The filter never answers a negotiation. A telnet client whose offers go unanswered
//! keeps its defaults (local echo, local line editing, lines sent on Enter), which are
//! what tchat's text mode expects; an answer would mean sending IAC bytes, which an `nc`
//! user would see as garbage if the guess that the peer is telnet were ever wrong.

/// Interpret As Command: starts every telnet command (RFC 854).
pub const IAC: u8 = 0xFF;
/// Subnegotiation end (RFC 855).
const SE: u8 = 240;
/// Subnegotiation begin (RFC 855).
const SB: u8 = 250;
/// WILL, WONT, DO and DONT: negotiation commands followed by one option byte.
const WILL: u8 = 251;
const DONT: u8 = 254;

/// Longest subnegotiation skipped, in bytes. Real ones (terminal type, window size,
/// environment) are a few dozen bytes, and tchat never agrees to an option, so a client
/// has no reason to send one at all; without a bound, a stray `IAC SB` in garbage would
/// swallow the rest of the connection.
const MAX_SUBNEGOTIATION: usize = 1024;

/// Where the filter is within a command sequence; carried across reads, since a
/// sequence may be split anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Plain data.
    #[default]
    Data,
    /// After IAC.
    Command,
    /// After IAC WILL/WONT/DO/DONT: the option byte comes next.
    Option,
    /// Inside IAC SB …, with the bytes skipped so far.
    Sub(usize),
    /// After IAC inside a subnegotiation: SE ends it, IAC is an escaped 0xFF.
    SubCommand(usize),
}

/// A stateful filter that removes telnet commands from a byte stream.
#[derive(Debug, Default)]
pub struct TelnetFilter {
    state: State,
}

impl TelnetFilter {
    /// True when `data` may hold (part of) a command, so [`TelnetFilter::filter`] is
    /// needed; false for the usual read, which can then be used as is.
    pub fn needs_filter(&self, data: &[u8]) -> bool {
        self.state != State::Data || data.contains(&IAC)
    }

    /// Appends the data bytes of `input` to `out`, without the commands.
    pub fn filter(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &byte in input {
            self.state = match (self.state, byte) {
                (State::Data, IAC) => State::Command,
                (State::Data, _) => {
                    out.push(byte);
                    State::Data
                }
                (State::Command, IAC) => {
                    out.push(IAC);
                    State::Data
                }
                (State::Command, SB) => State::Sub(0),
                (State::Command, WILL..=DONT) => State::Option,
                // NOP, GA, IP, AYT and the other two-byte commands (and a stray SE).
                (State::Command, _) | (State::Option, _) => State::Data,
                (State::Sub(n), _) if n >= MAX_SUBNEGOTIATION => State::Data,
                (State::Sub(n), IAC) => State::SubCommand(n + 1),
                (State::Sub(n), _) => State::Sub(n + 1),
                (State::SubCommand(_), SE) => State::Data,
                // IAC IAC is a 0xFF inside the subnegotiation; anything else is a
                // protocol error, skipped with the rest of it.
                (State::SubCommand(n), _) => State::Sub(n + 1),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(filter: &mut TelnetFilter, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        filter.filter(input, &mut out);
        out
    }

    /// What PuTTY sends first on a telnet connection: WILL NAWS, WILL TSPEED, WILL
    /// TTYPE, WILL NEW-ENVIRON, DO ECHO, WILL SGA, DO SGA.
    const PUTTY_HELLO: &[u8] =
        b"\xff\xfb\x1f\xff\xfb\x20\xff\xfb\x18\xff\xfb\x27\xff\xfd\x01\xff\xfb\x03\xff\xfd\x03";

    #[test]
    fn negotiation_is_removed() {
        let mut f = TelnetFilter::default();
        let input = [PUTTY_HELLO, b"/nick bob\r\n"].concat();
        assert!(f.needs_filter(&input));
        assert_eq!(run(&mut f, &input), b"/nick bob\r\n");
        assert!(!f.needs_filter(b"plain"));
    }

    #[test]
    fn every_sequence_split_at_every_byte_is_removed() {
        let input = [
            b"a" as &[u8],
            PUTTY_HELLO,
            b"b\xff\xf1c",                             // NOP
            b"d\xff\xfa\x1f\x00\x50\x00\x18\xff\xf0e", // SB NAWS 80x24 SE
            b"f\xff\xfa\x18\x00\xff\xff\xff\xf0g",     // SB with an escaped 0xFF
            b"h\xff\xffi",                             // literal 0xFF
            b"\xff\xf4j",                              // IP
        ]
        .concat();
        let want = b"abcdefgh\xffij";
        for split in 0..=input.len() {
            let mut f = TelnetFilter::default();
            let mut out = run(&mut f, &input[..split]);
            out.extend(run(&mut f, &input[split..]));
            assert_eq!(out, want, "split at {split}");
        }
        // One byte at a time, too.
        let mut f = TelnetFilter::default();
        let out: Vec<u8> = input.iter().flat_map(|b| run(&mut f, &[*b])).collect();
        assert_eq!(out, want);
    }

    #[test]
    fn a_state_left_mid_sequence_asks_for_the_next_read_to_be_filtered() {
        let mut f = TelnetFilter::default();
        assert!(run(&mut f, b"\xff").is_empty());
        assert!(f.needs_filter(b"plain"));
        assert_eq!(run(&mut f, b"\xfb\x18ok"), b"ok");
        assert!(!f.needs_filter(b"plain"));
    }

    #[test]
    fn an_endless_subnegotiation_is_bounded() {
        let mut f = TelnetFilter::default();
        assert!(run(&mut f, b"\xff\xfa").is_empty());
        assert!(run(&mut f, &[b'x'; MAX_SUBNEGOTIATION]).is_empty());
        assert_eq!(run(&mut f, b"yz"), b"z");
    }
}
