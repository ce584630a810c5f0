//! Mixed-script detection for nicks, after Unicode TR39 section 5.
//!
//! A nick may use one script, or Latin together with one other script that cannot be
//! mistaken for it: TR39's "Moderately Restrictive" level. That admits `名前_bob`
//! (Latin with Han) and `yuki_ゆき`, and refuses `аlice` (Latin with a Cyrillic `а`) or
//! Latin with Greek, whose letters look alike. unicode-security's own level detection
//! is not used as is: it also demands TR39's identifier profile, which has no room for
//! IRC punctuation (`[afk]bob`) and would refuse letters of the less common scripts.
//! Punctuation and digits shared by all scripts (Common, Inherited) count for none.

use unicode_script::{Script, UnicodeScript};
use unicode_security::mixed_script::AugmentedScriptSet;

/// The two scripts that must not mix in `nick`, or `None` when it is at most
/// Moderately Restrictive.
pub(super) fn confusable_mix(nick: &str) -> Option<(&'static str, &'static str)> {
    if moderately_restrictive(nick) {
        return None;
    }
    let mut found: Vec<Script> = Vec::new();
    for c in nick.chars() {
        let script = c.script();
        if !matches!(script, Script::Common | Script::Inherited) && !found.contains(&script) {
            found.push(script);
        }
    }
    // Not single-script, so two scripts are there; the fallback only keeps this total.
    let name = |i: usize| found.get(i).map_or("other", |s: &Script| s.full_name());
    Some((name(0), name(1)))
}

/// TR39 5.2: single script; or Latin plus Han with Bopomofo, Japanese or Korean
/// (Highly Restrictive); or Latin plus one Recommended script other than Cyrillic and
/// Greek (Moderately Restrictive).
fn moderately_restrictive(nick: &str) -> bool {
    if !AugmentedScriptSet::for_str(nick).is_empty() {
        return true;
    }
    let mut without_latin = AugmentedScriptSet::default();
    for c in nick.chars() {
        let set = AugmentedScriptSet::for_char(c);
        if !set.base.contains_script(Script::Latin) {
            without_latin.intersect_with(set);
        }
    }
    if without_latin.hanb || without_latin.jpan || without_latin.kore {
        return true;
    }
    let mut scripts = without_latin.base.iter();
    match (scripts.next(), scripts.next()) {
        (Some(script), None) => {
            script.is_recommended() && !matches!(script, Script::Cyrillic | Script::Greek)
        }
        _ => false,
    }
}
