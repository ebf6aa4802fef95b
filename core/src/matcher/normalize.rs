//! Text normalisation for matching and cleaning for storage.
//!
//! [`normalize`] turns any user text into the canonical form the matcher works on: invisible and
//! direction-changing characters removed, Unicode NFKC (so full-width Latin and digits become
//! half-width), lower case, whitespace collapsed and trimmed. [`clean`] only removes the invisible
//! characters (keeping newlines and tabs) and is what should be stored or echoed back.

use unicode_normalization::UnicodeNormalization;

/// True for characters that are invisible but change how text is read or compared: zero-width
/// characters, the byte-order mark, soft hyphen, and bidirectional marks, embeddings, overrides and
/// isolates.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// Removes control characters (except `\n` and `\t`), zero-width characters and bidi controls.
/// Nothing else changes: use it on text that is stored or shown again.
pub fn clean(text: &str) -> String {
    text.chars().filter(|&c| c == '\n' || c == '\t' || !(c.is_control() || is_invisible(c))).collect()
}

/// The canonical form the matcher compares: invisible characters removed, control characters
/// turned into spaces, NFKC, lower case, runs of whitespace collapsed to one space, trimmed.
/// Idempotent: normalising twice gives the same text.
pub fn normalize(text: &str) -> String {
    if text.is_ascii() {
        return collapse(text.chars().map(|c| c.to_ascii_lowercase()));
    }
    let mut out = once(text);
    // Lower-casing can, for a handful of characters, produce text that NFKC changes again
    // (and vice versa); repeat until stable so that normalising is idempotent.
    for _ in 0..4 {
        let again = once(&out);
        if again == out {
            break;
        }
        out = again;
    }
    out
}

/// One pass of [`normalize`] on non-ASCII text.
fn once(text: &str) -> String {
    let stripped: String = text.chars().filter(|&c| !is_invisible(c)).collect();
    collapse(stripped.nfkc().flat_map(char::to_lowercase).filter(|&c| !is_invisible(c)))
}

/// Turns whitespace and control characters into single spaces between words, trimmed.
fn collapse(chars: impl Iterator<Item = char>) -> String {
    let mut out = String::new();
    let mut pending_space = false;
    for c in chars {
        if c.is_whitespace() || c.is_control() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_invisible_and_bidi() {
        assert_eq!(normalize("ca\u{200B}rd\u{FEFF}"), "card");
        assert_eq!(normalize("\u{202E}abc\u{202C} \u{2066}x\u{2069}"), "abc x");
        assert_eq!(clean("a\u{200D}b\u{0007}c\n\td\u{202E}"), "abc\n\td");
    }

    #[test]
    fn nfkc_case_and_whitespace() {
        assert_eq!(normalize("  ＣＡＲＤ　ｌｏｓｔ\n\n１２３ "), "card lost 123");
        assert_eq!(normalize("Hello\tWORLD"), "hello world");
        assert_eq!(normalize("我的卡丢了"), "我的卡丢了");
        assert_eq!(normalize(""), "");
        assert_eq!(normalize("\u{200B}\u{0000} "), "");
        assert_eq!(normalize("a\u{0007}b"), "a b");
    }

    #[test]
    fn idempotent_on_every_character() {
        let mut s = String::new();
        for c in (0u32..0x3_0000).step_by(7).filter_map(char::from_u32) {
            s.push(c);
            s.push(if (c as u32).is_multiple_of(3) { ' ' } else { '\u{0301}' });
        }
        let once = normalize(&s);
        assert_eq!(normalize(&once), once);
    }
}
