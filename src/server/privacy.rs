//! What the event log (console and `--save` file) keeps of a private message
//! (`/msg`, `/reply`), by `tchat serve --private-text`: its text and a preview, as for
//! a public line (`log`, the default), or only its metadata (`omit`): who sent it to
//! whom, when (the record's time), its length in characters and its id. The id is what
//! a restart reads back of a private record (see `journal`): private messages are never
//! replayed after a restart either way, so `omit` loses nothing a restart would give.

use serde_json::{Value, json};

use crate::cli::PrivateText;
use crate::event_log::preview;

/// The log metadata of the private message `text` from `from` to `to`, with its id
/// (`None` on a backbone, whose stream gives it later), under `keep`.
pub fn private_meta(
    keep: PrivateText,
    (from, to): (&str, &str),
    text: &str,
    id: Option<u64>,
) -> Value {
    let len = text.chars().count();
    match keep {
        PrivateText::Log => {
            json!({"from": from, "len": len, "preview": preview(text), "text": text, "id": id, "to": to})
        }
        PrivateText::Omit => json!({"from": from, "len": len, "id": id, "to": to}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omit_keeps_the_metadata_and_no_word_of_the_text() {
        let text = "the vault code is 4711";
        let kept = private_meta(PrivateText::Omit, ("ann", "bob"), text, Some(7));
        assert_eq!(kept, json!({"from": "ann", "to": "bob", "len": 22, "id": 7}));
        let logged = private_meta(PrivateText::Log, ("ann", "bob"), text, None);
        assert_eq!(logged["text"], text);
        assert_eq!(logged["preview"], text);
        assert_eq!(logged["id"], Value::Null);
    }
}
