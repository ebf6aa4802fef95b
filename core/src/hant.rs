//! Traditional Chinese for customers who write it. Packs are written in simplified Chinese (the
//! matcher folds the two scripts, so either matches); a customer who writes traditional
//! characters (Taiwan, Hong Kong, Macau) is answered in traditional characters, converted
//! phrase by phrase with OpenCC's dictionaries (`s2tw`: Taiwan's standard character forms,
//! without swapping vocabulary) through `ferrous-opencc`.

use std::collections::HashMap;
use std::sync::{LazyLock, RwLock};

use ferrous_opencc::OpenCC;
use ferrous_opencc::config::BuiltinConfig;

/// The converters, built once from the dictionaries compiled into the binary. `None` only if
/// those fail to load, in which case everything stays in simplified characters.
static TO_TRADITIONAL: LazyLock<Option<OpenCC>> = LazyLock::new(|| load(BuiltinConfig::S2tw));
static TO_SIMPLIFIED: LazyLock<Option<OpenCC>> = LazyLock::new(|| load(BuiltinConfig::Tw2s));

fn load(config: BuiltinConfig) -> Option<OpenCC> {
    OpenCC::from_config(config).map_err(|e| tracing::error!(error = %e, "Chinese script conversion unavailable")).ok()
}

/// Whether converting `c` to simplified characters changes it (it is a traditional form) and
/// whether converting it to traditional ones does (it is a simplified form); `None` when the
/// converters are unavailable. Remembered per character: a converter call costs microseconds, and
/// every Chinese message asks about each of its characters.
fn script_of(c: char) -> Option<(bool, bool)> {
    static SEEN: LazyLock<RwLock<HashMap<char, (bool, bool)>>> = LazyLock::new(|| RwLock::new(HashMap::new()));
    if let Some(&known) = SEEN.read().unwrap_or_else(|p| p.into_inner()).get(&c) {
        return Some(known);
    }
    let (to_t, to_s) = (TO_TRADITIONAL.as_ref()?, TO_SIMPLIFIED.as_ref()?);
    let mut buf = [0u8; 4];
    let one = c.encode_utf8(&mut buf);
    let answer = (to_s.convert(one) != *one, to_t.convert(one) != *one);
    let mut seen = SEEN.write().unwrap_or_else(|p| p.into_inner());
    // Chinese has tens of thousands of characters, but a bound keeps a flood of odd ones harmless.
    if seen.len() < 50_000 {
        seen.insert(c, answer);
    }
    Some(answer)
}

/// How many Chinese characters of a message [`writes_traditional`] looks at.
pub const SAMPLE: usize = 100;

/// Whether `text` is written in traditional characters (`Some(true)`), in simplified ones
/// (`Some(false)`), or cannot tell (`None`: no Chinese, or only characters both scripts share,
/// such as 人工 or 客服, or as many of each). Counts the characters each direction would change,
/// among the first [`SAMPLE`] Chinese characters: enough to tell, and a long message costs no more.
pub fn writes_traditional(text: &str) -> Option<bool> {
    let (mut traditional, mut simplified) = (0usize, 0usize);
    for c in text.chars().filter(|&c| crate::matcher::lang::is_han(c)).take(SAMPLE) {
        let (t, s) = script_of(c)?;
        traditional += usize::from(t);
        simplified += usize::from(s);
    }
    match traditional.cmp(&simplified) {
        std::cmp::Ordering::Greater => Some(true),
        std::cmp::Ordering::Less => Some(false),
        std::cmp::Ordering::Equal => None,
    }
}

/// Whether to answer in traditional characters: as the text is written, else as the platform's
/// language tag says (`zh-Hant`, `zh-TW`, `zh-HK`, `zh-MO` against `zh-Hans`, `zh-CN`, `zh-SG`),
/// else as before.
pub fn choose(text: Option<&str>, hint: Option<&str>, current: bool) -> bool {
    text.and_then(writes_traditional).or_else(|| hint.and_then(hinted)).unwrap_or(current)
}

/// What a BCP 47 language tag says about the script, if anything.
fn hinted(tag: &str) -> Option<bool> {
    let tag = tag.trim().to_ascii_lowercase();
    let mut parts = tag.split(['-', '_']);
    if parts.next() != Some("zh") {
        return None;
    }
    parts.find_map(|p| match p {
        "hant" | "tw" | "hk" | "mo" => Some(true),
        "hans" | "cn" | "sg" | "my" => Some(false),
        _ => None,
    })
}

/// `text` in traditional characters (text without Chinese comes back as it is).
pub fn to_traditional(text: &str) -> String {
    match TO_TRADITIONAL.as_ref() {
        Some(cc) if text.chars().any(crate::matcher::lang::is_han) => cc.convert(text),
        _ => text.to_string(),
    }
}

/// `reply` as a customer writing traditional Chinese should read it (only Chinese replies change).
pub(crate) fn in_script(reply: crate::types::Reply, lang: crate::Lang, traditional: bool) -> crate::types::Reply {
    let choices = reply.choices.into_iter().map(|c| in_script_choice(c, lang, traditional)).collect();
    crate::types::Reply { text: in_script_text(reply.text, lang, traditional), choices }
}

pub(crate) fn in_script_choice(c: crate::types::Choice, lang: crate::Lang, traditional: bool) -> crate::types::Choice {
    crate::types::Choice { label: in_script_text(c.label, lang, traditional), ..c }
}

fn in_script_text(text: String, lang: crate::Lang, traditional: bool) -> String {
    if lang == crate::Lang::Zh && traditional { to_traditional(&text) } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_the_scripts_apart() {
        assert_eq!(writes_traditional("我的帳號被鎖了,請幫我轉人工"), Some(true));
        assert_eq!(writes_traditional("我的账号被锁了,请帮我转人工"), Some(false));
        assert_eq!(writes_traditional("人工客服"), None, "shared by both scripts");
        assert_eq!(writes_traditional("TX12345"), None);
        assert_eq!(writes_traditional(""), None);
        // Only the start of a long message is looked at.
        let long = format!("{}{}", "帳號".repeat(SAMPLE / 2), "账号".repeat(SAMPLE));
        assert_eq!(writes_traditional(&long), Some(true));
    }

    #[test]
    fn the_text_decides_then_the_platform_tag_then_what_was_known() {
        assert!(choose(Some("我的帳號"), Some("zh-hans"), false));
        assert!(!choose(Some("我的账号"), Some("zh-TW"), true));
        for tag in ["zh-hant", "zh-TW", "zh_HK", "zh-Hant-MO"] {
            assert!(choose(Some("人工"), Some(tag), false), "{tag}");
        }
        for tag in ["zh-hans", "zh-CN", "zh-Hans-SG"] {
            assert!(!choose(Some("人工"), Some(tag), true), "{tag}");
        }
        for tag in ["zh", "en", "en-HK", "pt-TW", ""] {
            assert!(choose(Some("TX123"), Some(tag), true), "{tag}");
            assert!(!choose(None, Some(tag), false), "{tag}");
        }
    }

    #[test]
    fn converts_phrases_and_leaves_the_rest() {
        assert_eq!(to_traditional("请联系客服,头发干净,只有一只"), "請聯繫客服,頭髮乾淨,只有一隻");
        assert_eq!(to_traditional("support@okpay.example"), "support@okpay.example");
        assert_eq!(to_traditional("账户被锁了"), "賬戶被鎖了");
    }
}
