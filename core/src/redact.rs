//! Masking the secrets customers paste into a payment service's support chat: payment card
//! numbers (13–19 digits, spaces or dashes allowed, Luhn-valid; the last four kept), card
//! security codes, one-time codes and passwords given as such (a keyword before them, in Chinese
//! or English), and Chinese resident ID numbers (18 characters with a valid check digit).
//! Look-alikes stay: amounts, dates, order and transaction numbers (digits joined to letters, such
//! as `TX2026…`, are never a card), platform ids in mentions and links (`<@&8000…>`, `/c/123…`),
//! and digit strings that fail the checksum. Pure text in, masked text out; [`Redactor::redact`] also says what it hid.

use std::sync::LazyLock;

use regex::Regex;

/// What was hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    /// A payment card number.
    Card,
    /// A card security code (CVV, CVC, 安全码).
    SecurityCode,
    /// A one-time or verification code.
    OneTimeCode,
    /// A password.
    Password,
    /// A Chinese resident ID number.
    IdNumber,
    /// A deployment's own pattern (`[redact]` in `pack.toml`).
    Custom,
}

/// A text with its secrets masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    /// The masked text.
    pub text: String,
    /// What was hidden, in order.
    pub found: Vec<Secret>,
}

static CARD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^0-9A-Za-z@&#<>/_])((?:[0-9][ -]?){12,18}[0-9])(?:[^0-9A-Za-z<>/_]|$)").unwrap_or_else(|_| unreachable_regex())
});
static SECURITY_CODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(cvv2?|cvc2?|security code|安全码|安全碼|卡背后三位数?|卡背後三位數?)(\s*(?:is|是|为|為|:|：|=)?\s*)([0-9]{3,4})\b")
        .unwrap_or_else(|_| unreachable_regex())
});
static ONE_TIME_CODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(验证码|驗證碼|动态码|動態碼|校验码|校驗碼|短信码|短信碼|otp|one[- ]time (?:pass)?code|verification code|2fa code|auth(?:entication)? code|sms code)(\s*(?:is|是|为|為|:|：|=)?\s*)([0-9]{4,8})\b",
    )
    .unwrap_or_else(|_| unreachable_regex())
});
static PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(密码|密碼|password|passwd|pwd|pass)(\s*(?:is|是|为|為|:|：|=)\s*|\s+is\s+)(\S+)")
        .unwrap_or_else(|_| unreachable_regex())
});
static ID_NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^0-9A-Za-z@&#<>/_])([0-9]{17}[0-9Xx])(?:[^0-9A-Za-z<>/_]|$)").unwrap_or_else(|_| unreachable_regex())
});

/// A regex that matches nothing, for the impossible case that a pattern above does not compile
/// (they are constants, checked by the tests).
fn unreachable_regex() -> Regex {
    #[allow(clippy::unwrap_used)]
    Regex::new(r"[^\s\S]").unwrap()
}

/// Whether the digits pass the Luhn check (payment cards).
pub fn luhn(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.chars().rev().enumerate() {
        let Some(mut d) = c.to_digit(10) else { return false };
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum % 10 == 0
}

/// Whether an 18-character Chinese resident ID number has a valid check character (ISO 7064
/// MOD 11-2).
pub fn resident_id_valid(id: &str) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    let chars: Vec<char> = id.chars().collect();
    if chars.len() != 18 {
        return false;
    }
    let mut sum = 0;
    for (c, w) in chars.iter().take(17).zip(WEIGHTS) {
        let Some(d) = c.to_digit(10) else { return false };
        sum += d * w;
    }
    CHECK[(sum % 11) as usize] == chars[17].to_ascii_uppercase()
}

/// Masks secrets; deployments add their own patterns.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    custom: Vec<Regex>,
}

impl Redactor {
    /// The built-in rules only.
    pub fn new() -> Redactor {
        Redactor::default()
    }

    /// The built-in rules and these patterns (each match is replaced by `[hidden]`).
    pub fn with_patterns(custom: Vec<Regex>) -> Redactor {
        Redactor { custom }
    }

    /// `text` with every secret masked, and what was found.
    pub fn redact(&self, text: &str) -> Redacted {
        let mut found = Vec::new();
        let mut out = text.to_string();
        // Keyword-led secrets first: their digits must not be read as part of a card number.
        for (re, secret, mask) in [
            (&*SECURITY_CODE, Secret::SecurityCode, "[security code]"),
            (&*ONE_TIME_CODE, Secret::OneTimeCode, "[code]"),
            (&*PASSWORD, Secret::Password, "[password]"),
        ] {
            out = re
                .replace_all(&out, |c: &regex::Captures<'_>| {
                    found.push(secret);
                    format!("{}{}{mask}", &c[1], &c[2])
                })
                .into_owned();
        }
        out = replace_group(&ID_NUMBER, &out, |id| resident_id_valid(id).then(|| "[ID number]".to_string()), Secret::IdNumber, &mut found);
        out = replace_group(
            &CARD,
            &out,
            |raw| {
                let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
                ((13..=19).contains(&digits.len()) && luhn(&digits)).then(|| format!("[card •••• {}]", &digits[digits.len() - 4..]))
            },
            Secret::Card,
            &mut found,
        );
        for re in &self.custom {
            out = re
                .replace_all(&out, |_: &regex::Captures<'_>| {
                    found.push(Secret::Custom);
                    "[hidden]".to_string()
                })
                .into_owned();
        }
        Redacted { text: out, found }
    }
}

/// Replaces group 1 of each match of `re` for which `mask` gives a replacement.
fn replace_group(re: &Regex, text: &str, mask: impl Fn(&str) -> Option<String>, secret: Secret, found: &mut Vec<Secret>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut at = 0;
    while let Some(c) = re.captures_at(text, at) {
        let Some(g) = c.get(1) else { break };
        if let Some(m) = mask(g.as_str()) {
            out.push_str(&text[last..g.start()]);
            out.push_str(&m);
            found.push(secret);
            last = g.end();
        }
        // The next match may start right after this one's digits (the separator is shared).
        at = g.end();
        if at >= text.len() {
            break;
        }
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(text: &str) -> String {
        Redactor::new().redact(text).text
    }

    #[test]
    fn card_numbers_keep_their_last_four_when_luhn_valid() {
        assert_eq!(r("my card 4242 4242 4242 4242 was charged twice"), "my card [card •••• 4242] was charged twice");
        assert_eq!(r("卡号4111-1111-1111-1111扣了两次"), "卡号[card •••• 1111]扣了两次");
        assert_eq!(r("5500005555555559"), "[card •••• 5559]");
        // Look-alikes: a failing checksum, an order number, an amount, a date.
        assert_eq!(r("order 4242424242424241 is late"), "order 4242424242424241 is late");
        assert_eq!(r("I sent 1,500.00 USD on 2026-12-01 at 10:30"), "I sent 1,500.00 USD on 2026-12-01 at 10:30");
        assert_eq!(r("transaction TX20261201123456"), "transaction TX20261201123456");
        // Platform ids in mentions and links, however Luhn-valid their digits.
        assert_eq!(
            r("<@&800000000000000003> <#800000000000000003> t.me/c/800000000000000003"),
            "<@&800000000000000003> <#800000000000000003> t.me/c/800000000000000003"
        );
    }

    #[test]
    fn codes_and_passwords_given_as_such_are_hidden() {
        assert_eq!(r("验证码 384920 输进去没用"), "验证码 [code] 输进去没用");
        assert_eq!(r("my verification code is 123456"), "my verification code is [code]");
        assert_eq!(r("OTP: 4821"), "OTP: [code]");
        assert_eq!(r("cvv 123"), "cvv [security code]");
        assert_eq!(r("安全码是 456"), "安全码是 [security code]");
        assert_eq!(r("my password is hunter2 and it still says locked"), "my password is [password] and it still says locked");
        assert_eq!(r("密码是abc123456"), "密码是[password]");
        assert_eq!(r("pwd=S3cret!"), "pwd=[password]");
        // Without the keyword, a short number is a number.
        assert_eq!(r("ticket 384920"), "ticket 384920");
        assert_eq!(r("I forgot my password"), "I forgot my password");
    }

    #[test]
    fn resident_ids_are_hidden_only_with_a_valid_check_digit() {
        assert!(resident_id_valid("11010519491231002X"));
        assert_eq!(r("身份证 11010519491231002X"), "身份证 [ID number]");
        assert_eq!(r("身份证 110105194912310021"), "身份证 110105194912310021", "check digit wrong");
    }

    #[test]
    fn what_was_found_is_listed_and_custom_patterns_apply() {
        let red =
            Redactor::with_patterns(vec![Regex::new(r"ACCT-[0-9]{6}").unwrap()]).redact("card 4242424242424242 and ACCT-123456, otp 9999");
        assert_eq!(red.text, "card [card •••• 4242] and [hidden], otp [code]");
        assert_eq!(red.found, [Secret::OneTimeCode, Secret::Card, Secret::Custom]);
        assert!(Redactor::new().redact("nothing here").found.is_empty());
    }
}
