//! Masking the secrets customers paste into a payment service's support chat: payment card
//! numbers (13–19 digits, spaces or dashes allowed, full-width digits too, Luhn-valid, starting
//! as cards do; the last four kept), card security codes (after a keyword, or right after a
//! card number and its expiry date), one-time codes, passwords and PINs given as such (a keyword
//! before them, in Chinese — simplified or traditional — or English, common misspellings
//! included), and Chinese resident ID numbers (18 characters, possibly grouped 6-8-4, with a
//! plausible region and birth date and a valid check character). Look-alikes stay: amounts,
//! dates, times, phone numbers (`+86 138…`), order and transaction numbers (digits joined to
//! letters, such as `TX2026…`, are never a card), platform ids in mentions and links
//! (`<@&8000…>`, `/c/123…`), digit strings that fail the checksum or start as no card does (a
//! Discord id, a millisecond timestamp, `2026…`), and keywords without a secret ("my password is
//! not working"). Pure text in, masked text out; [`Redactor::redact`] also says what it hid.
//! The labelled set that measures all this is read by [`set`].

use std::sync::LazyLock;

use regex::Regex;

pub mod set;

/// What was hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    /// A payment card number.
    Card,
    /// A card security code (CVV, CVC, 安全码).
    SecurityCode,
    /// A one-time or verification code.
    OneTimeCode,
    /// A password (or a PIN).
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
    /// What was hidden: the built-in rules' finds in the order the rules run (security codes,
    /// one-time codes, passwords, ID numbers, cards), then the pack's patterns'.
    pub found: Vec<Secret>,
    /// The message held secrets and nothing else (besides the words that gave them, as in
    /// "my password is …"): nothing to answer but that they were hidden.
    pub nothing_else: bool,
    /// The message with its secrets cut out rather than masked, the words that gave them kept
    /// ("my card was charged twice"): what the matcher reads, so that a placeholder's own words
    /// ("card", "code") do not sway it. The same as `text` when nothing was found.
    pub bare: String,
}

/// What a rule leaves, in [`Mode::Strip`] and [`Mode::Bare`], where a secret (and in
/// [`Mode::Strip`] the words that gave it) was: not a letter or digit (so that what else was said
/// can be told), and unlike anything customers type.
const STRIPPED: &str = "\u{E000}";

/// How a keyword and its secret may be joined: spaces, a colon (full-width too), `=`, a dash, and
/// "is", "are", "was", "to", 是, 为, 為.
const JOIN: &str = r"[ \t:：=\-]*(?:(?:is|are|was|to)(?-u:\b)[ \t:：=]*|[是为為][ \t:：=]*)?";

/// Compiles a built-in rule (constants, checked by the tests).
fn rule(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|_| unreachable_regex())
}

/// `lead` (the keyword and how it is joined, kept) then `value` (the secret).
static SECURITY_CODE: LazyLock<Regex> = LazyLock::new(|| {
    rule(&format!(
        r"(?i)(?P<lead>(?:(?-u:\b)(?:(?:cvv2?|cvc2?|cvn2?)(?:[ \t]*(?:code|number|no\.?)(?-u:\b))?|security code|card verification (?:value|code|number))|(?-u:\b)(?:the )?(?:3|three|4|four)[- ]digits?(?: code| number)? on the back(?: of (?:my|the) card)?|安全[码碼]|(?:卡片?)?背(?:面|后|後)的?(?:末|后|後)?(?:三|3)(?:位数|位數|位|码|碼|个数字|個數字)){JOIN})(?P<value>[0-9]{{3,4}})(?-u:\b)"
    ))
});
static ONE_TIME_CODE: LazyLock<Regex> = LazyLock::new(|| {
    rule(&format!(
        r"(?i)(?P<lead>(?:[验驗][证證][码碼]|[动動][态態](?:密)?[码碼]|[校][验驗][码碼]|短信[码碼]|一次性密[码碼]|(?-u:\b)(?:otp|one[- ]time (?:pass(?:word|code)?|code)|verification code|verify code|2fa code|sms code|text code|auth(?:entication|orization)? code|(?:the|this|that|a|my|your) code)(?-u:\b)){JOIN})(?P<value>[0-9]{{4,8}}|[0-9]{{3}}[ \-][0-9]{{3}})(?-u:\b)"
    ))
});
/// A password's keyword: 密码 (登录密码, 支付密码, 交易密码, 取款密码…), password and its common
/// misspellings, pw, pwd, pass, passcode.
const PASSWORD_WORD: &str = r"密[码碼]|(?-u:\b)(?:passwords?|passwd|pasword|passwrod|passowrd|pssword|pwd|pw|pass|passcode)(?-u:\b)";
/// A password: a run of anything but spaces, Chinese characters and full-width punctuation (which
/// end it, as in 密码是abc123登不上).
const PASSWORD_VALUE: &str = r"[^\s\p{Han}，。！？；：、（）「」『』【】《》“”‘’]+";
static PASSWORD: LazyLock<Regex> =
    LazyLock::new(|| rule(&format!(r"(?i)(?P<lead>(?:{PASSWORD_WORD})(?P<join>{JOIN}))(?P<value>{PASSWORD_VALUE})")));
/// "my password, I think it was Hello1234", "密码忘了，试过 abc12345": a few words between the
/// keyword and "is", "was", 是, 试过 (tried)…
static PASSWORD_LATER: LazyLock<Regex> = LazyLock::new(|| {
    rule(&format!(
        r"(?i)(?P<lead>(?:{PASSWORD_WORD})[^.!?。！？\n\[\]]{{1,30}}?(?P<later>(?-u:\b)(?:is|was)(?-u:\b)|是不是|好像是|应该是|應該是|可能是|用的是|试过|試過|试了|試了|是|为|為)[ \t:：]*)(?P<value>{PASSWORD_VALUE})"
    ))
});
static PIN: LazyLock<Regex> = LazyLock::new(|| {
    rule(&format!(r"(?i)(?P<lead>(?:(?-u:\b)pin(?:[ \t]*(?:code|number|no\.?))?(?-u:\b)|pin[码碼]){JOIN})(?P<value>[0-9]{{4,6}})(?-u:\b)"))
});
/// A digit, ASCII or full-width.
const DIGIT: &str = "[0-9０-９]";
/// A run of digits, grouped by single spaces or dashes, possibly ending in X (an ID number's check
/// character): where card and ID numbers are looked for.
static RUN: LazyLock<Regex> = LazyLock::new(|| rule(&format!(r"{DIGIT}(?:[ \-]?{DIGIT})*[Xx]?")));
/// A security code without a keyword, right after a card number and its expiry date
/// (`4242 4242 4242 4242 09/27 123`).
static CODE_AFTER_CARD: LazyLock<Regex> = LazyLock::new(|| {
    rule(&format!(
        r"(?i)(?P<lead>(?:\[card •••• [0-9]{{4}}\]|{STRIPPED})[ \t,;/]*(?:(?:exp(?:iry|ires|\.)?|valid (?:thru|through|until)|有效期至?)[ \t:：]*)?(?:0[1-9]|1[0-2])[ \t]*/[ \t]*(?:20)?[0-9]{{2}}[ \t,;/]+)(?P<value>[0-9]{{3,4}})(?-u:\b)"
    ))
});

/// Words that, after "password is", say something about the password rather than give it.
const NOT_A_PASSWORD: &[&str] = &[
    "a",
    "an",
    "the",
    "not",
    "no",
    "wrong",
    "right",
    "correct",
    "incorrect",
    "invalid",
    "valid",
    "expired",
    "locked",
    "blocked",
    "too",
    "very",
    "still",
    "being",
    "been",
    "same",
    "different",
    "fine",
    "ok",
    "okay",
    "good",
    "bad",
    "weak",
    "strong",
    "reset",
    "changed",
    "definitely",
    "accepted",
    "rejected",
    "required",
    "needed",
    "missing",
    "forgotten",
    "lost",
    "stolen",
    "compromised",
    "hacked",
    "working",
    "empty",
    "long",
    "short",
    "easy",
    "hard",
    "simple",
    "secure",
    "safe",
    "case",
    "my",
    "your",
    "his",
    "her",
    "their",
    "our",
    "it",
    "this",
    "that",
    "what",
    "which",
    "how",
    "because",
    "also",
    "just",
    "probably",
    "now",
    "then",
    "there",
    "here",
    "and",
    "or",
    "but",
    "so",
    "for",
    "with",
    "in",
    "on",
    "at",
    "of",
    "like",
    "already",
    "always",
    "never",
    "sent",
    "saved",
    "shown",
    "visible",
    "case-sensitive",
    "only",
    "exactly",
    "over",
    "under",
    "less",
    "more",
    "at least",
    "supposed",
    "asking",
    "asked",
    "set",
    "reset",
    "change",
    "update",
    "recover",
    "unlock",
    "log",
    "login",
];

/// Words that say nothing by themselves around a secret ("here is my …", "我的…").
const FILLER: &[&str] = &[
    "my", "the", "is", "it", "its", "here", "heres", "here's", "this", "that", "and", "also", "new", "old", "again", "please", "pls",
    "plz", "ok", "okay", "hi", "hello", "我的", "这是", "這是", "是", "给你", "給你", "如下", "还有", "還有", "和",
];

/// Whether what is left once the secrets (and the words that gave them) are cut says nothing.
fn only_filler(rest: &str) -> bool {
    rest.split(|c: char| !c.is_alphanumeric() && c != '\'').filter(|w| !w.is_empty()).all(|w| FILLER.contains(&w.to_lowercase().as_str()))
}

/// A digit's value, ASCII or full-width.
fn digit(c: char) -> Option<char> {
    match c {
        '0'..='9' => Some(c),
        '０'..='９' => char::from_u32(c as u32 - 0xFEE0),
        _ => None,
    }
}

/// The digits of `s`, in ASCII.
fn digits_of(s: &str) -> String {
    s.chars().filter_map(digit).collect()
}

/// A regex that matches nothing, for the impossible case that a pattern above does not compile
/// (they are constants, checked by the tests).
pub(crate) fn unreachable_regex() -> Regex {
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

/// Whether the digits start as a payment card does (ISO/IEC 7812: the networks' ranges): 3 (Amex,
/// JCB, Diners), 4 (Visa), 5 (Mastercard, Maestro), 6 (Discover, UnionPay, Maestro, RuPay), 2200–2204
/// (Mir) and 2221–2720 (Mastercard), 81–82 (UnionPay, RuPay). Not 1, 7, 9 or 0 — Discord and
/// Telegram ids, timestamps, phone numbers with their country code, airline and fuel cards — nor
/// a date-like 20xx.
pub fn card_prefix(digits: &str) -> bool {
    let lead = |n: usize| digits.get(..n).and_then(|p| p.parse::<u32>().ok()).unwrap_or(0);
    match digits.as_bytes().first() {
        Some(b'3'..=b'6') => true,
        Some(b'2') => matches!(lead(4), 2200..=2204 | 2221..=2720),
        Some(b'8') => matches!(lead(2), 81 | 82),
        _ => false,
    }
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

/// Whether an 18-character ID number (ASCII) reads as one: a province's code (11–15, 21–23,
/// 31–37, 41–46, 50–54, 61–65, 71, 81–83), a birth date from 1900 on (month 01–12, day 01–31), and a
/// valid check character. Random 18-digit order numbers seldom pass all three.
pub fn resident_id_plausible(id: &str) -> bool {
    let num = |r: std::ops::Range<usize>| id.get(r).and_then(|p| p.parse::<u32>().ok());
    let province = num(0..2).is_some_and(|p| matches!(p, 11..=15 | 21..=23 | 31..=37 | 41..=46 | 50..=54 | 61..=65 | 71 | 81..=83));
    let year = num(6..10).is_some_and(|y| (1900..=2099).contains(&y));
    let month = num(10..12).is_some_and(|m| (1..=12).contains(&m));
    let day = num(12..14).is_some_and(|d| (1..=31).contains(&d));
    province && year && month && day && resident_id_valid(id)
}

/// Whether the digit run at `start..end` of `text` stands alone: not part of a word or a longer
/// number, of a mention (`<@123>`, `<#123>`, `<@&123>`), a link's path (`/123`, `_123`), a
/// handle (`@123`), a phone number (`+86 …`) or an amount (`1,234…`, `.123`).
fn stands_alone(text: &str, start: usize, end: usize) -> bool {
    stands_alone_before(text, start) && stands_alone_after(text, end)
}

fn joined(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric() || digit(c).is_some() || c == '_' || c == '/')
}

fn stands_alone_before(text: &str, start: usize) -> bool {
    let mut back = text[..start].chars().rev();
    let (before, before2) = (back.next(), back.next());
    // `<#123>` is a channel; `card#4242…` is a card.
    let mention = before == Some('#') && before2 == Some('<');
    !(joined(before) || matches!(before, Some('@' | '&' | '+' | '.' | ',')) || mention)
}

fn stands_alone_after(text: &str, end: usize) -> bool {
    let after = text[end..].chars().next();
    !joined(after) && after != Some('>')
}

/// A deployment's own secret format (`[redact]` in `pack.toml`): what it matches is replaced by
/// `[label]`, or `[hidden]` without a label.
#[derive(Debug, Clone)]
pub struct CustomPattern {
    /// The compiled pattern.
    pub regex: Regex,
    /// What agents see instead of the match (`account number` → `[account number]`).
    pub label: Option<String>,
}

impl CustomPattern {
    /// The placeholder a match becomes.
    pub fn mask(&self) -> String {
        format!("[{}]", self.label.as_deref().unwrap_or("hidden"))
    }
}

/// Masks secrets; deployments add their own patterns.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    custom: Vec<CustomPattern>,
}

/// What a rule does with its match: mask the secret (what agents see), or cut the secret and
/// the words that introduce it (to see whether anything else was said), or cut the secret alone
/// (what the matcher reads: a placeholder's words, "card" or "code", would sway it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Mask,
    Strip,
    Bare,
}

impl Redactor {
    /// The built-in rules only.
    pub fn new() -> Redactor {
        Redactor::default()
    }

    /// The built-in rules and these patterns (each match is replaced by `[hidden]`).
    pub fn with_patterns(custom: Vec<Regex>) -> Redactor {
        Redactor { custom: custom.into_iter().map(|regex| CustomPattern { regex, label: None }).collect() }
    }

    /// The built-in rules and a deployment's own patterns.
    pub fn with_custom(custom: Vec<CustomPattern>) -> Redactor {
        Redactor { custom }
    }

    /// The deployment's own patterns.
    pub fn custom(&self) -> &[CustomPattern] {
        &self.custom
    }

    /// `text` with every secret masked, and what was found.
    pub fn redact(&self, text: &str) -> Redacted {
        let (masked, found) = self.apply(text, Mode::Mask);
        // Whether anything but the secrets (and the words that gave them, "my password is") is
        // left: only asked when something was found.
        let nothing_else = !found.is_empty() && only_filler(&self.apply(text, Mode::Strip).0);
        let bare = if found.is_empty() {
            masked.clone()
        } else {
            let cut = self.apply(text, Mode::Bare).0;
            cut.split(|c: char| c.is_whitespace() || STRIPPED.starts_with(c)).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
        };
        Redacted { text: masked, found, nothing_else, bare }
    }

    fn apply(&self, text: &str, mode: Mode) -> (String, Vec<Secret>) {
        let mut found = Vec::new();
        let mut out = text.to_string();
        let cut = |mask: String| if mode == Mode::Mask { mask } else { STRIPPED.to_string() };
        // Keyword-led secrets first: their digits must not be read as part of a card number. One-time
        // codes before passwords: 动态密码 is a one-time code, and a placeholder is no password.
        for (re, secret, mask) in [
            (&*SECURITY_CODE, Secret::SecurityCode, "[security code]"),
            (&*ONE_TIME_CODE, Secret::OneTimeCode, "[code]"),
            (&*PIN, Secret::Password, "[password]"),
            (&*PASSWORD, Secret::Password, "[password]"),
            (&*PASSWORD_LATER, Secret::Password, "[password]"),
        ] {
            out = replace_keyed(re, &out, mode, mask, secret, &mut found);
        }
        out = replace_runs(
            &out,
            |raw| {
                let id: String = raw.chars().filter_map(|c| digit(c).or((c == 'x' || c == 'X').then_some(c))).collect();
                resident_id_plausible(&id).then(|| cut("[ID number]".to_string()))
            },
            Secret::IdNumber,
            &mut found,
        );
        out = replace_runs(
            &out,
            |raw| {
                let digits = digits_of(raw);
                (!raw.contains(['X', 'x']) && (13..=19).contains(&digits.len()) && card_prefix(&digits) && luhn(&digits))
                    .then(|| cut(format!("[card •••• {}]", &digits[digits.len() - 4..])))
            },
            Secret::Card,
            &mut found,
        );
        out = replace_keyed(&CODE_AFTER_CARD, &out, mode, "[security code]", Secret::SecurityCode, &mut found);
        for p in &self.custom {
            out = p
                .regex
                .replace_all(&out, |_: &regex::Captures<'_>| {
                    found.push(Secret::Custom);
                    cut(p.mask())
                })
                .into_owned();
        }
        (out, found)
    }
}

/// Replaces each match of a keyword rule (`lead`, then `value`): in [`Mode::Mask`] the value by
/// `mask`, the keyword kept; in [`Mode::Strip`] both by [`STRIPPED`]; in [`Mode::Bare`] the value
/// by [`STRIPPED`], the keyword kept. A value that is already a
/// placeholder, or (after "password is") a word that says something about the password, is left.
fn replace_keyed(re: &Regex, text: &str, mode: Mode, mask: &str, secret: Secret, found: &mut Vec<Secret>) -> String {
    re.replace_all(text, |c: &regex::Captures<'_>| {
        let whole = c.get(0).map_or("", |m| m.as_str());
        let (Some(lead), Some(value)) = (c.name("lead"), c.name("value")) else { return whole.to_string() };
        let join = c.name("join").map(|j| j.as_str()).or(c.name("later").map(|_| "later"));
        if !is_secret_value(value.as_str(), join) {
            return whole.to_string();
        }
        found.push(secret);
        match mode {
            Mode::Mask => format!("{}{mask}", lead.as_str()),
            Mode::Strip => STRIPPED.to_string(),
            Mode::Bare => format!("{}{STRIPPED}", lead.as_str()),
        }
    })
    .into_owned()
}

/// Whether a password rule's `value` is one. Codes are digits and always are. A password has 4
/// characters or more (trailing punctuation aside). A password given
/// after a colon, `=` or 是 is taken as it is; after "to", only with something other than letters
/// in it; after "is" or "was", not a word that says something about it ("not", "correct",
/// "denied", "the same"); a few words later ("my password, I think
/// it was …"), only with something other than letters in it; after a space only (or nothing, as
/// in 密码abc123), only with a digit in it ("password reset" is no password).
fn is_secret_value(value: &str, join: Option<&str>) -> bool {
    if value.starts_with('[') && value.contains(']') || value.starts_with(STRIPPED) {
        return false; // another rule's placeholder
    }
    let Some(join) = join else { return true };
    let word = value.trim_end_matches(['.', ',', ';', '!', '?']).to_lowercase();
    // No service takes a password this short: "my password is 8 characters long".
    if word.chars().count() < 4 {
        return false;
    }
    let join = join.trim().to_lowercase();
    if join.is_empty() || join == "-" {
        return value.chars().any(|c| c.is_ascii_digit()) && value.chars().count() >= 4;
    }
    if join == "later" {
        // A few words after the keyword ("my password, I think it was …"): only what looks like one.
        return word.chars().any(|c| !c.is_alphabetic());
    }
    if join.starts_with("is") || join.starts_with("was") || join.starts_with("are") {
        return !NOT_A_PASSWORD.contains(&word.as_str()) && !describes(&word);
    }
    if join == "to" {
        // "changed my password to Aa112233", not "my passcode to access the app".
        return word.chars().any(|c| !c.is_alphabetic());
    }
    !word.is_empty()
}

/// Whether a lowercase word says how a password is rather than give it: one of
/// [`NOT_A_PASSWORD`], or a participle or adverb ("denied", "working", "really").
fn describes(word: &str) -> bool {
    NOT_A_PASSWORD.contains(&word)
        || (word.chars().all(|c| c.is_ascii_lowercase()) && ["ed", "ing", "ly"].iter().any(|end| word.ends_with(end)))
}

/// Replaces the secrets `mask` finds in each run of digits (grouped by single spaces or dashes,
/// possibly ending in X): the whole run if it stands alone and `mask` takes it, else the longest
/// sequence of its groups that `mask` takes (`4242 4242 4242 4242 09` followed by `/27` holds a
/// card), and the same again on either side of what was taken.
fn replace_runs(text: &str, mask: impl Fn(&str) -> Option<String>, secret: Secret, found: &mut Vec<Secret>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for run in RUN.find_iter(text) {
        // The groups' byte spans.
        let mut groups = Vec::new();
        let mut start = None;
        for (i, c) in run.as_str().char_indices() {
            let at = run.start() + i;
            match (c == ' ' || c == '-', start) {
                (true, Some(s)) => {
                    groups.push((s, at));
                    start = None;
                }
                (false, None) => start = Some(at),
                _ => {}
            }
        }
        if let Some(s) = start {
            groups.push((s, run.end()));
        }
        let mut taken = Vec::new();
        take_groups(text, &groups, &mask, &mut taken);
        taken.sort_unstable_by_key(|t| t.0);
        for (s, e, r) in taken {
            out.push_str(&text[last..s]);
            out.push_str(&r);
            found.push(secret);
            last = e;
        }
    }
    out.push_str(&text[last..]);
    out
}

/// The longest sequence of `groups` (byte spans in `text`) that `mask` takes, then the same on its
/// left and its right. The sequence's outer edges must stand alone in `text` where they are the
/// run's own edges; inside a run they are a separator.
fn take_groups(text: &str, groups: &[(usize, usize)], mask: &impl Fn(&str) -> Option<String>, taken: &mut Vec<(usize, usize, String)>) {
    let n = groups.len();
    for len in (1..=n).rev() {
        for i in 0..=n - len {
            let (start, end) = (groups[i].0, groups[i + len - 1].1);
            // The run's own edges must stand alone where the sequence reaches them; inside the
            // run, its edges are separators.
            let alone = match (i == 0, i + len == n) {
                (true, true) => stands_alone(text, start, end),
                (true, false) => stands_alone_before(text, start),
                (false, true) => stands_alone_after(text, end),
                (false, false) => true,
            };
            if !alone {
                continue;
            }
            if let Some(r) = mask(&text[start..end]) {
                taken.push((start, end, r));
                take_groups(text, &groups[..i], mask, taken);
                take_groups(text, &groups[i + len..], mask, taken);
                return;
            }
        }
    }
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

    #[test]
    fn cards_are_found_however_written_and_only_where_cards_start() {
        // Full-width digits, a 19-digit UnionPay number grouped 4-4-4-4-3, a card then its expiry.
        assert_eq!(r("卡号４２４２４２４２４２４２４２４２怎么转不了账"), "卡号[card •••• 4242]怎么转不了账");
        assert_eq!(r("6217 0000 1234 5678 907"), "[card •••• 8907]");
        assert_eq!(r("4242 4242 4242 4242 09/27 123"), "[card •••• 4242] 09/27 [security code]");
        assert_eq!(r("card#4242424242424242"), "card#[card •••• 4242]");
        // Luhn-valid, but no card starts so: a Discord id, a timestamp, a date, a phone number.
        for keep in ["1000000000000000009", "1733040000122", "20261201103011", "+86 138 1234 5678", "chat id -1000000000009"] {
            assert!(luhn(&digits_of(keep)), "{keep} is Luhn-valid");
            assert_eq!(r(keep), keep);
        }
    }

    #[test]
    fn ids_may_be_grouped_and_must_look_like_ids() {
        assert_eq!(r("身份证 110105 19491231 002X"), "身份证 [ID number]");
        assert!(resident_id_plausible("11010519491231002X"));
        // A valid check character, but no province 99 and no month 13.
        assert!(resident_id_valid("990105194912310023") && !resident_id_plausible("990105194912310023"));
        assert!(resident_id_valid("110105194913310021") && !resident_id_plausible("110105194913310021"));
    }

    #[test]
    fn keywords_without_a_secret_are_left_alone() {
        for keep in [
            "my password is correct but it says wrong",
            "the password is not working",
            "My passcode was denied.",
            "I don't have my passcode to access the app.",
            "my password is 8 characters long",
            "密码是对的，但是登不上",
            "PIN code not received",
            "I entered the code 3 times",
            "error code 40013",
        ] {
            assert_eq!(r(keep), keep);
        }
        // Given in other words, or a few words later, they are hidden.
        assert_eq!(r("i forgot my password, i think it was Hello1234"), "i forgot my password, i think it was [password]");
        assert_eq!(r("密码忘了，试过 abc12345 不对"), "密码忘了，试过 [password] 不对");
        assert_eq!(r("PIN is 4821"), "PIN is [password]");
        assert_eq!(r("動態密碼是320231，轉帳失敗"), "動態密碼是[code]，轉帳失敗", "a one-time code, never read again as a password");
        assert_eq!(r("the 3 digits on the back are 961"), "the 3 digits on the back are [security code]");
    }

    #[test]
    fn a_message_of_secrets_alone_is_told_apart() {
        let red = |t: &str| Redactor::new().redact(t);
        for only in ["4242 4242 4242 4242", "my password is hunter22", "验证码：384920", "cvv 123, otp 4821", "4242424242424242 09/27 123"]
        {
            assert!(red(only).nothing_else, "{only}");
        }
        for more in ["my card 4242 4242 4242 4242 was charged twice", "验证码 384920 输进去没用", "hello", "order 123"] {
            assert!(!red(more).nothing_else, "{more}");
        }
        let custom = Redactor::with_patterns(vec![Regex::new("OK-[0-9]{10}").unwrap()]);
        assert!(custom.redact("OK-1234567890").nothing_else);
        // What the matcher reads: the secrets cut out, the words around them kept.
        assert_eq!(red("my card 4242 4242 4242 4242 was charged twice").bare, "my card was charged twice");
        assert_eq!(red("密码是abc12345登不上去").bare, "密码是 登不上去");
        assert_eq!(red("4242424242424242 09/27 123 help").bare, "09/27 help");
        assert_eq!(red("nothing here").bare, "nothing here");
    }
}
