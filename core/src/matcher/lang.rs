//! Languages the matcher knows and a cheap script-based language guess.
//!
//! Packs mix Chinese and English examples; [`detect`] tells which one a text is written in from
//! its script (Han characters versus Latin letters), which is all the two supported languages need.

use std::fmt;

/// A supported language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Chinese (simplified or traditional).
    Zh,
    /// English.
    En,
}

impl Lang {
    /// Every supported language.
    pub const ALL: [Lang; 2] = [Lang::Zh, Lang::En];

    /// The short code: `"zh"` or `"en"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// Parses a language tag such as `zh`, `zh-Hans`, `zh_CN`, `zh-TW`, `cmn`, `en`, `en-US`,
    /// `english` or `chinese` (case-insensitive). Unknown tags give `None`.
    pub fn parse(s: &str) -> Option<Lang> {
        let lower = s.trim().to_lowercase();
        let primary = lower.split(['-', '_']).next().unwrap_or("");
        match primary {
            "zh" | "cmn" | "chinese" | "中文" | "汉语" | "漢語" => Some(Lang::Zh),
            "en" | "eng" | "english" => Some(Lang::En),
            _ => None,
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// True for CJK ideographs (Han characters), including the extension blocks and compatibility
/// ideographs.
pub fn is_han(c: char) -> bool {
    matches!(
        c,
        '\u{3007}'
            | '\u{3400}'..='\u{4DBF}'
            | '\u{4E00}'..='\u{9FFF}'
            | '\u{F900}'..='\u{FAFF}'
            | '\u{20000}'..='\u{2EBEF}'
            | '\u{2F800}'..='\u{2FA1F}'
            | '\u{30000}'..='\u{3134F}'
    )
}

/// True for letters of the Latin script (ASCII and the Latin-1/Extended blocks, full-width too).
pub fn is_latin(c: char) -> bool {
    c.is_ascii_alphabetic()
        || (c.is_alphabetic()
            && matches!(c, '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}' | '\u{FF21}'..='\u{FF3A}' | '\u{FF41}'..='\u{FF5A}'))
}

/// Guesses the language of `text` from its script. One Han character carries about as much as a
/// short English word, so the text is Chinese when Han characters are at least a quarter as many as
/// Latin letters, English when it has Latin letters otherwise, and `None` when it has neither
/// (digits, emoji, punctuation only, other scripts).
pub fn detect(text: &str) -> Option<Lang> {
    let (mut han, mut latin) = (0usize, 0usize);
    for c in text.chars() {
        if is_han(c) {
            han += 1;
        } else if is_latin(c) {
            latin += 1;
        }
    }
    if han > 0 && han * 4 >= latin {
        Some(Lang::Zh)
    } else if latin > 0 {
        Some(Lang::En)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_tags() {
        assert_eq!(Lang::parse("zh"), Some(Lang::Zh));
        assert_eq!(Lang::parse("zh-Hans"), Some(Lang::Zh));
        assert_eq!(Lang::parse("zh-CN"), Some(Lang::Zh));
        assert_eq!(Lang::parse("zh_TW"), Some(Lang::Zh));
        assert_eq!(Lang::parse("EN-us"), Some(Lang::En));
        assert_eq!(Lang::parse("en"), Some(Lang::En));
        assert_eq!(Lang::parse("fr"), None);
        assert_eq!(Lang::parse(""), None);
        for l in Lang::ALL {
            assert_eq!(Lang::parse(l.as_str()), Some(l));
            assert_eq!(l.to_string(), l.as_str());
        }
    }

    #[test]
    fn serde_lowercase() {
        assert_eq!(serde_json::to_string(&Lang::Zh).ok().as_deref(), Some("\"zh\""));
        let en: Option<Lang> = serde_json::from_str("\"en\"").ok();
        assert_eq!(en, Some(Lang::En));
    }

    #[test]
    fn detects_script() {
        assert_eq!(detect("我的卡还没到"), Some(Lang::Zh));
        assert_eq!(detect("我的card丢了"), Some(Lang::Zh));
        assert_eq!(detect("Where is my card?"), Some(Lang::En));
        assert_eq!(detect("Ｃａｒｄ"), Some(Lang::En));
        assert_eq!(detect("I paid with 支付宝 yesterday evening"), Some(Lang::En));
        assert_eq!(detect("12345 !!! 😀"), None);
        assert_eq!(detect(""), None);
    }
}
