//! Intent packs: loading and validating the TOML files maintainers edit (`intents/<pack>/`), and
//! rendering answers with the pack's configured values. The file format is documented in
//! `intents/README.md`; every problem found is reported as `file:line: message`.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use crate::error::PackIssue;
use crate::matcher::{Example, normalize::normalize};
use crate::redact::{CustomPattern, Redactor};
use crate::types::{HandoffPolicy, Priority};
use crate::{Lang, PackError};

/// One language's side of an intent.
#[derive(Clone, Debug)]
pub struct IntentText {
    /// Short button text.
    pub label: String,
    /// Example phrasings the matcher learns from.
    pub examples: Vec<String>,
    /// The answer, with `{placeholders}` unrendered.
    pub answer: String,
}

/// A detail to collect before a handoff.
#[derive(Clone, Debug)]
pub struct CollectField {
    /// Field name, shown to agents.
    pub name: String,
    /// What a valid answer matches.
    pub pattern: Regex,
    /// The question, per language.
    pub questions: BTreeMap<Lang, String>,
}

/// An intent: what customers say, what the bot answers, and whether a human takes over.
#[derive(Clone, Debug)]
pub struct Intent {
    /// Unique id, equal to the file name.
    pub id: String,
    /// Whether and when to hand off.
    pub handoff: HandoffPolicy,
    /// The ticket priority if it hands off.
    pub priority: Priority,
    /// Intents offered as quick replies after the answer.
    pub follow_ups: Vec<String>,
    /// Small talk (hello, thanks, ok, bye): answered when matched, but never offered among the
    /// "did you mean" choices, where it would crowd out the questions.
    pub small_talk: bool,
    /// Text per language.
    pub text: BTreeMap<Lang, IntentText>,
    /// Fields to collect before handing off.
    pub collect: Vec<CollectField>,
    /// The file it came from.
    pub file: PathBuf,
}

impl Intent {
    /// The text in `lang`, or in any language the intent has.
    pub fn text(&self, lang: Lang) -> Option<&IntentText> {
        self.text.get(&lang).or_else(|| self.text.values().next())
    }
}

/// A loaded, valid intent pack.
#[derive(Clone, Debug)]
pub struct Pack {
    /// The pack's name.
    pub name: String,
    /// Where it was loaded from.
    pub dir: PathBuf,
    /// Languages every intent covers.
    pub languages: Vec<Lang>,
    /// Values answers may reference as `{name}`.
    pub values: BTreeMap<String, String>,
    /// Intents, sorted by id.
    pub intents: Vec<Intent>,
    /// Masks secrets in customers' messages: the built-in rules and the pack's `[redact]` patterns.
    pub redactor: Redactor,
    index: HashMap<String, usize>,
}

/// The longest example phrasing, in characters: customers' questions are a sentence or two, and a
/// longer example only slows training and skews the matcher.
pub const MAX_EXAMPLE_CHARS: usize = 500;
/// The longest label, in characters: Discord refuses a button label over 80, and with it the reply.
pub const MAX_LABEL_CHARS: usize = 80;
/// The longest answer, in characters (the most a customer may send in one message, too).
pub const MAX_ANSWER_CHARS: usize = crate::types::MAX_MESSAGE_CHARS;
/// The most `[redact]` patterns a pack may have: each is tried on every message.
pub const MAX_REDACT_PATTERNS: usize = 64;
/// The most memory one compiled `[redact]` pattern may take (the regex crate's `size_limit`), so
/// that a pathological pattern (`(\w{100}){100}`) is an error when the pack loads, not a hang or
/// an exhausted memory. Matching itself takes time linear in the message.
pub const REDACT_SIZE_LIMIT: usize = 1 << 20;
/// The longest label of a `[redact]` pattern, in characters (it is what agents see).
pub const MAX_REDACT_LABEL_CHARS: usize = 40;

/// Ordinary things customers write, none of them a secret: a `[redact]` pattern that matches any
/// of them would hide words, amounts, dates or references agents need.
pub const ORDINARY_TEXT: &[&str] = &[
    "hello, I need some help with my account",
    "my transfer of 250.00 USD on 2026-12-01 at 10:30 has not arrived",
    "I sent 1,500 EUR to my sister yesterday and she still has nothing",
    "the app says error 502, what should I do?",
    "transaction TX20261201 failed twice, ticket #4821",
    "can I talk to a person please",
    "thanks, bye",
    "ok",
    "why is my account locked?",
    "I forgot my password and the reset email never came",
    "how much is the fee for sending 100 dollars",
    "my order 2026-1201-77 is still pending after 3 days",
    "你好，请问怎么联系客服",
    "我昨天下午3点转了500元，对方还没收到",
    "转账失败了，提示错误代码 502",
    "账号被锁了怎么办",
    "谢谢",
    "好的",
    "订单 2026年12月1日 一直显示处理中",
    "我想注销账户",
    "請問轉帳手續費是多少",
    "我的帳號被盜了，錢被轉走了",
    "昨天 18:45 匯款 1,000 元，到現在還沒到帳",
    "好的，謝謝",
];

static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::unwrap_used)] // a constant pattern, covered by tests
    Regex::new(r"\{([a-z][a-z0-9_]*)\}").unwrap()
});

impl Pack {
    /// Loads and validates the pack in `dir`. Every problem is reported, not just the first.
    pub fn load(dir: &Path) -> Result<Pack, PackError> {
        let io = |path: &Path, source| PackError::Io { path: path.display().to_string(), source };
        let mut issues = Vec::new();

        let pack_file = dir.join("pack.toml");
        let pack_src = std::fs::read_to_string(&pack_file).map_err(|e| io(&pack_file, e))?;
        let mut pack_file_read = true;
        let mut redact = None;
        let (name, languages, values) = match toml::from_str::<PackFile>(&pack_src) {
            Ok(p) => {
                let mut langs = Vec::new();
                for l in &p.languages {
                    match Lang::parse(l.get_ref()) {
                        Some(lang) => langs.push(lang),
                        None => issues.push(issue(
                            &pack_file,
                            &pack_src,
                            l.span(),
                            format!("unknown language {:?} (use zh or en)", l.get_ref()),
                        )),
                    }
                }
                if langs.is_empty() && p.languages.is_empty() {
                    issues.push(PackIssue {
                        file: pack_file.display().to_string(),
                        line: 1,
                        message: "languages must not be empty".into(),
                    });
                }
                redact = p.redact;
                (p.name, langs, p.values)
            }
            Err(e) => {
                issues.push(toml_issue(&pack_file, &pack_src, &e));
                pack_file_read = false;
                (String::new(), Vec::new(), BTreeMap::new())
            }
        };

        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.file_name().is_some_and(|n| n != "pack.toml"))
            .collect();
        files.sort();
        let stems: Vec<String> = files.iter().filter_map(|f| f.file_stem().map(|s| s.to_string_lossy().to_string())).collect();

        let mut intents = Vec::new();
        let mut follow_up_refs = Vec::new();
        // normalised phrasing -> (intent id, file, line)
        let mut seen_phrasings: HashMap<String, (String, String, usize)> = HashMap::new();
        let mut seen_ids: HashMap<String, String> = HashMap::new();
        for file in files {
            let src = std::fs::read_to_string(&file).map_err(|e| io(&file, e))?;
            let parsed = match toml::from_str::<IntentFile>(&src) {
                Ok(p) => p,
                Err(e) => {
                    issues.push(toml_issue(&file, &src, &e));
                    continue;
                }
            };
            let at = |span: Range<usize>, msg: String| issue(&file, &src, span, msg);
            let id = parsed.id.get_ref().trim().to_string();
            let stem = file.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
                issues.push(at(parsed.id.span(), format!("id {id:?} must be lowercase letters, digits and _")));
            }
            if id != stem {
                issues.push(at(parsed.id.span(), format!("id {id:?} must equal the file name {stem:?}")));
            }
            let here = format!("{}", file.display());
            if let Some(other) = seen_ids.insert(id.clone(), here.clone()) {
                issues.push(at(parsed.id.span(), format!("duplicate intent id {id:?}, also in {other}")));
            }

            let mut text = BTreeMap::new();
            for (lang, side) in [(Lang::Zh, &parsed.zh), (Lang::En, &parsed.en)] {
                let Some(side) = side else {
                    if languages.contains(&lang) {
                        issues.push(PackIssue {
                            file: here.clone(),
                            line: 1,
                            message: format!("missing the [{lang}] section (the pack's languages are {})", lang_list(&languages)),
                        });
                    }
                    continue;
                };
                if !languages.is_empty() && !languages.contains(&lang) {
                    issues.push(at(side.span(), format!("[{lang}] is not one of the pack's languages ({})", lang_list(&languages))));
                }
                let side_ref = side.get_ref();
                if side_ref.examples.is_empty() {
                    issues.push(at(side.span(), format!("[{lang}] has an empty examples list")));
                }
                let answer = match &side_ref.answer {
                    Some(a) if !a.get_ref().trim().is_empty() => {
                        let n = a.get_ref().trim().chars().count();
                        if n > MAX_ANSWER_CHARS {
                            issues.push(at(a.span(), format!("[{lang}] answer is {n} characters long; at most {MAX_ANSWER_CHARS}")));
                        }
                        for cap in PLACEHOLDER.captures_iter(a.get_ref()) {
                            let name = &cap[1];
                            // Without a readable pack.toml every value is missing: its own error says why.
                            if pack_file_read && !values.contains_key(name) {
                                issues.push(at(a.span(), format!("the answer uses {{{name}}}, which pack.toml [values] does not define")));
                            }
                        }
                        a.get_ref().trim().to_string()
                    }
                    Some(a) => {
                        issues.push(at(a.span(), format!("[{lang}] answer is empty")));
                        String::new()
                    }
                    None => {
                        issues.push(at(side.span(), format!("[{lang}] has examples but no answer")));
                        String::new()
                    }
                };
                let mut examples = Vec::new();
                for ex in &side_ref.examples {
                    let n = ex.get_ref().chars().count();
                    if n > MAX_EXAMPLE_CHARS {
                        issues.push(at(ex.span(), format!("an example phrasing is {n} characters long; at most {MAX_EXAMPLE_CHARS}")));
                        continue;
                    }
                    let norm = normalize(ex.get_ref());
                    let line = line_of(&src, ex.span().start);
                    if norm.is_empty() {
                        issues.push(at(ex.span(), "empty example phrasing".into()));
                        continue;
                    }
                    match seen_phrasings.get(&norm) {
                        Some((other_id, other_file, other_line)) if *other_id != id => {
                            issues.push(at(
                                ex.span(),
                                format!(
                                    "the phrasing {:?} is also listed under intent {other_id} ({other_file}:{other_line})",
                                    ex.get_ref()
                                ),
                            ));
                        }
                        Some(_) => {} // repeated within one intent: harmless
                        None => {
                            seen_phrasings.insert(norm, (id.clone(), here.clone(), line));
                        }
                    }
                    examples.push(ex.get_ref().clone());
                }
                let label = match &side_ref.label {
                    // A button needs words: Discord refuses an empty label, and with it the whole reply.
                    Some(l) if l.get_ref().trim().is_empty() => {
                        issues.push(at(l.span(), format!("[{lang}] label is empty")));
                        String::new()
                    }
                    Some(l) => {
                        let n = l.get_ref().trim().chars().count();
                        if n > MAX_LABEL_CHARS {
                            issues.push(at(l.span(), format!("[{lang}] label is {n} characters long; at most {MAX_LABEL_CHARS}")));
                        }
                        l.get_ref().trim().to_string()
                    }
                    None => id.replace('_', " "),
                };
                text.insert(lang, IntentText { label, examples, answer });
            }
            if text.is_empty() && parsed.zh.is_none() && parsed.en.is_none() {
                issues.push(PackIssue { file: here.clone(), line: 1, message: "the intent has no language section ([zh] or [en])".into() });
            }

            let mut collect = Vec::new();
            for c in &parsed.collect {
                let cf = c.get_ref();
                let pattern = match Regex::new(cf.pattern.get_ref()) {
                    Ok(r) => r,
                    Err(e) => {
                        issues.push(at(cf.pattern.span(), format!("invalid pattern: {e}")));
                        continue;
                    }
                };
                let mut questions = BTreeMap::new();
                for (lang, q) in [(Lang::Zh, &cf.zh), (Lang::En, &cf.en)] {
                    match q {
                        Some(q) if !q.trim().is_empty() => {
                            questions.insert(lang, q.trim().to_string());
                        }
                        _ if languages.contains(&lang) => {
                            issues.push(at(c.span(), format!("field {:?} has no {lang} question", cf.name)));
                        }
                        _ => {}
                    }
                }
                collect.push(CollectField { name: cf.name.clone(), pattern, questions });
            }
            if !collect.is_empty() && parsed.handoff == HandoffPolicy::Never {
                issues.push(PackIssue {
                    file: here.clone(),
                    line: 1,
                    message: "fields to collect need a handoff policy (after_answer or instead)".into(),
                });
            }
            for (i, f) in parsed.follow_ups.iter().enumerate() {
                if parsed.follow_ups[..i].iter().any(|g| g.get_ref() == f.get_ref()) {
                    // Two buttons with one id: Discord refuses the whole reply.
                    issues.push(at(f.span(), format!("follow-up {:?} is listed twice", f.get_ref())));
                    continue;
                }
                follow_up_refs.push((here.clone(), line_of(&src, f.span().start), f.get_ref().clone()));
            }
            intents.push(Intent {
                id,
                handoff: parsed.handoff,
                priority: parsed.priority,
                follow_ups: parsed.follow_ups.iter().map(|f| f.get_ref().clone()).collect(),
                small_talk: parsed.small_talk,
                text,
                collect,
                file,
            });
        }
        for (file, line, target) in follow_up_refs {
            // An intent whose file exists but could not be read (or names another id) is reported
            // there; a reference to it is not a second problem.
            if !seen_ids.contains_key(&target) && !stems.contains(&target) {
                issues.push(PackIssue { file, line, message: format!("follow-up {target:?} is not an intent of this pack") });
            }
        }
        if intents.is_empty() && issues.is_empty() {
            issues.push(PackIssue { file: dir.display().to_string(), line: 0, message: "the pack has no intent files".into() });
        }
        intents.sort_by(|a, b| a.id.cmp(&b.id));
        let custom = match &redact {
            Some(r) => redact_patterns(r, &intents, &mut |span, message| issues.push(issue(&pack_file, &pack_src, span, message))),
            None => Vec::new(),
        };
        if !issues.is_empty() {
            return Err(PackError::Invalid(issues));
        }
        let index = intents.iter().enumerate().map(|(i, it)| (it.id.clone(), i)).collect();
        Ok(Pack { name, dir: dir.to_path_buf(), languages, values, intents, redactor: Redactor::with_custom(custom), index })
    }

    /// The intent with this id.
    pub fn intent(&self, id: &str) -> Option<&Intent> {
        self.index.get(id).map(|&i| &self.intents[i])
    }

    /// Every example phrasing, labelled with its intent id, for training a matcher.
    pub fn examples(&self) -> Vec<Example> {
        self.intents
            .iter()
            .flat_map(|it| {
                it.text.values().flat_map(move |t| t.examples.iter().map(move |e| Example { text: e.clone(), label: it.id.clone() }))
            })
            .collect()
    }

    /// Replaces `{name}` in `template` with the pack's values (unknown names are left as they are).
    pub fn render(&self, template: &str) -> String {
        PLACEHOLDER
            .replace_all(template, |c: &regex::Captures<'_>| self.values.get(&c[1]).cloned().unwrap_or_else(|| c[0].to_string()))
            .into_owned()
    }

    /// Overrides values (from configuration).
    pub fn set_values(&mut self, values: impl IntoIterator<Item = (String, String)>) {
        self.values.extend(values);
    }
}

/// The pack's `[redact]` patterns, compiled and checked: each must compile within
/// [`REDACT_SIZE_LIMIT`], be unable to match the empty string (it would match at every position of
/// every message), and match neither [`ORDINARY_TEXT`] nor any of the pack's own examples (what
/// customers ask must reach the matcher and the agents). Problems go to `report` with the span
/// of the pattern at fault.
fn redact_patterns(redact: &Spanned<RedactFile>, intents: &[Intent], report: &mut dyn FnMut(Range<usize>, String)) -> Vec<CustomPattern> {
    let entries = &redact.get_ref().patterns;
    if entries.len() > MAX_REDACT_PATTERNS {
        report(redact.span(), format!("[redact] has {} patterns; at most {MAX_REDACT_PATTERNS}", entries.len()));
        return Vec::new();
    }
    let mut out = Vec::new();
    for entry in entries {
        let span = entry.span();
        let (pattern, label) = match entry.get_ref() {
            RedactEntry::Plain(p) => (p.as_str(), None),
            RedactEntry::Labelled { pattern, label } => (pattern.as_str(), label.as_deref()),
        };
        let shown = shorten(pattern, 60);
        let mut fail = |why: String| report(span.clone(), format!("[redact] pattern '{shown}' {why}"));
        if let Some(label) = label {
            let n = label.trim().chars().count();
            if n == 0 || n > MAX_REDACT_LABEL_CHARS || label.contains(['[', ']', '\n']) {
                fail(format!(
                    "has the label {:?}: a label is 1 to {MAX_REDACT_LABEL_CHARS} characters on one line, without brackets (agents see it as [label])",
                    shorten(label, 60)
                ));
                continue;
            }
        }
        let regex = match regex::RegexBuilder::new(pattern).size_limit(REDACT_SIZE_LIMIT).dfa_size_limit(REDACT_SIZE_LIMIT).build() {
            Ok(r) => r,
            Err(regex::Error::CompiledTooBig(limit)) => {
                fail(format!(
                    "is too big once compiled (over {limit} bytes): use fewer or smaller repetitions, or ASCII classes ([0-9], [A-Za-z]) instead of \\d and \\w"
                ));
                continue;
            }
            Err(e) => {
                // The regex crate's message spans several lines, with the pattern drawn again.
                let why = e.to_string().lines().filter_map(|l| l.strip_prefix("error: ")).collect::<Vec<_>>().join("; ");
                fail(format!("does not compile: {}", if why.is_empty() { e.to_string() } else { why }));
                continue;
            }
        };
        match regex_syntax::Parser::new().parse(pattern).map(|hir| hir.properties().minimum_len()) {
            Ok(Some(0)) => {
                fail("can match the empty string, so it would match everywhere: make every part required (+ rather than *, no empty alternative)".into());
                continue;
            }
            Ok(None) => {
                fail("can never match anything".into());
                continue;
            }
            _ => {}
        }
        let ordinary: Vec<&str> = ORDINARY_TEXT.iter().copied().filter(|t| regex.is_match(t)).collect();
        if let Some(first) = ordinary.first() {
            let how = if ordinary.len() * 2 >= ORDINARY_TEXT.len() { "matches almost any text" } else { "matches ordinary text" };
            fail(format!(
                "{how} ({} of {} ordinary sentences, such as {first:?}): it would hide words that are not secrets",
                ordinary.len(),
                ORDINARY_TEXT.len()
            ));
            continue;
        }
        let examples: Vec<(&Intent, &String)> = intents
            .iter()
            .flat_map(|it| it.text.values().flat_map(move |t| t.examples.iter().map(move |e| (it, e))))
            .filter(|(_, e)| regex.is_match(e))
            .collect();
        if let Some((it, example)) = examples.first() {
            let more = if examples.len() > 1 { format!(" and {} more", examples.len() - 1) } else { String::new() };
            let file = it.file.file_name().map_or_else(String::new, |f| f.to_string_lossy().to_string());
            fail(format!(
                "matches the example {example:?} of intent {} ({file}){more}: what customers ask would be hidden from the matcher and the agents",
                it.id
            ));
            continue;
        }
        out.push(CustomPattern { regex, label: label.map(|l| l.trim().to_string()) });
    }
    out
}

/// `s`, cut to `max` characters with an ellipsis.
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_string() } else { s.chars().take(max).collect::<String>() + "…" }
}

fn lang_list(langs: &[Lang]) -> String {
    langs.iter().map(|l| l.as_str()).collect::<Vec<_>>().join(", ")
}

fn line_of(src: &str, offset: usize) -> usize {
    src.get(..offset.min(src.len())).map_or(1, |s| s.matches('\n').count() + 1)
}

fn issue(file: &Path, src: &str, span: Range<usize>, message: String) -> PackIssue {
    PackIssue { file: file.display().to_string(), line: line_of(src, span.start), message }
}

/// A file toml cannot read, at the line of the fault, naming the key (`en.examples`) when toml's
/// message does not ("wanted string or table").
fn toml_issue(file: &Path, src: &str, e: &toml::de::Error) -> PackIssue {
    let line = e.span().map_or(0, |s| line_of(src, s.start));
    let message = match toml_error_key(e) {
        Some(key) if !e.message().contains(&format!("`{key}`")) => format!("{key}: {}", e.message()),
        _ => e.message().to_string(),
    };
    PackIssue { file: file.display().to_string(), line, message }
}

/// The dotted path of the key toml's error is about. toml keeps it private and prints it (as a
/// last line "in `a.b`") only when the error is shown without its source text.
fn toml_error_key(e: &toml::de::Error) -> Option<String> {
    let mut bare = e.clone();
    bare.set_input(None);
    let shown = bare.to_string();
    let key = shown.lines().last()?.strip_prefix("in `")?.strip_suffix('`')?;
    (!key.is_empty()).then(|| key.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PackFile {
    name: String,
    languages: Vec<Spanned<String>>,
    #[serde(default)]
    values: BTreeMap<String, String>,
    redact: Option<Spanned<RedactFile>>,
}

/// `[redact]`: a deployment's own secret formats.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedactFile {
    #[serde(default)]
    patterns: Vec<Spanned<RedactEntry>>,
}

/// A pattern, alone (`'OK-[0-9]{10}'`) or with the label agents see instead of its match
/// (`{ pattern = 'OK-[0-9]{10}', label = "account number" }`).
#[derive(Deserialize)]
#[serde(untagged)]
enum RedactEntry {
    Plain(String),
    Labelled { pattern: String, label: Option<String> },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntentFile {
    id: Spanned<String>,
    #[serde(default)]
    handoff: HandoffPolicy,
    #[serde(default)]
    priority: Priority,
    #[serde(default)]
    follow_ups: Vec<Spanned<String>>,
    #[serde(default)]
    small_talk: bool,
    zh: Option<Spanned<LangFile>>,
    en: Option<Spanned<LangFile>>,
    #[serde(default)]
    collect: Vec<Spanned<CollectFile>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LangFile {
    label: Option<Spanned<String>>,
    #[serde(default)]
    examples: Vec<Spanned<String>>,
    answer: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CollectFile {
    name: String,
    pattern: Spanned<String>,
    zh: Option<String>,
    en: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str) {
        std::fs::write(dir.join(name), body).expect("write test file");
    }

    const PACK: &str = "name = \"t\"\nlanguages = [\"zh\", \"en\"]\n[values]\nsupport_email = \"help@t.example\"\n";

    fn intent(id: &str, zh_ex: &str, en_ex: &str) -> String {
        format!(
            "id = \"{id}\"\n[zh]\nexamples = [\"{zh_ex}\"]\nanswer = \"答 {{support_email}}\"\n[en]\nexamples = [\"{en_ex}\"]\nanswer = \"answer {{support_email}}\"\n"
        )
    }

    fn errors(dir: &Path) -> Vec<String> {
        match Pack::load(dir) {
            Ok(_) => Vec::new(),
            Err(PackError::Invalid(v)) => v.iter().map(|i| i.to_string()).collect(),
            Err(e) => vec![e.to_string()],
        }
    }

    #[test]
    fn loads_a_valid_pack_and_renders_values() {
        let d = tempfile::tempdir().expect("tempdir");
        write(d.path(), "pack.toml", PACK);
        write(d.path(), "a.toml", &intent("a", "你好", "hello"));
        write(d.path(), "b.toml", &intent("b", "再见", "bye"));
        let p = Pack::load(d.path()).expect("valid pack");
        assert_eq!(p.intents.len(), 2);
        assert_eq!(p.examples().len(), 4);
        let a = p.intent("a").expect("a");
        assert_eq!(p.render(&a.text[&Lang::En].answer), "answer help@t.example");
    }

    #[test]
    fn rejects_unknown_keys_with_file_and_line() {
        let d = tempfile::tempdir().expect("tempdir");
        write(d.path(), "pack.toml", PACK);
        write(d.path(), "a.toml", &format!("{}colour = \"red\"\n", intent("a", "你好", "hello")));
        let errs = errors(d.path());
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("a.toml:8") && errs[0].contains("colour"), "{errs:?}");
    }

    #[test]
    fn rejects_duplicate_ids_empty_examples_missing_answers_and_shared_phrasings() {
        let d = tempfile::tempdir().expect("tempdir");
        write(d.path(), "pack.toml", PACK);
        write(d.path(), "a.toml", &intent("a", "你好", "Hello there"));
        write(d.path(), "b.toml", &intent("a", "再见", "bye"));
        write(d.path(), "d.toml", &intent("d", "拜拜", "HELLO   there"));
        write(d.path(), "c.toml", "id = \"c\"\n[zh]\nexamples = []\nanswer = \"x\"\n[en]\nexamples = [\"x y\"]\n");
        let errs = errors(d.path()).join("\n");
        assert!(errs.contains("b.toml:1: id \"a\" must equal the file name"), "{errs}");
        assert!(errs.contains("duplicate intent id \"a\""), "{errs}");
        assert!(errs.contains("d.toml:6: the phrasing \"HELLO   there\" is also listed under intent a ("), "{errs}");
        assert!(errs.contains("c.toml:2: [zh] has an empty examples list"), "{errs}");
        assert!(errs.contains("c.toml:5: [en] has examples but no answer"), "{errs}");
    }

    #[test]
    fn rejects_unknown_placeholders_follow_ups_and_bad_patterns() {
        let d = tempfile::tempdir().expect("tempdir");
        write(d.path(), "pack.toml", PACK);
        write(
            d.path(),
            "a.toml",
            "id = \"a\"\nhandoff = \"instead\"\nfollow_ups = [\"nope\"]\n[zh]\nexamples = [\"你好\"]\nanswer = \"{phone}\"\n[en]\nexamples = [\"hi\"]\nanswer = \"x\"\n[[collect]]\nname = \"n\"\npattern = '('\nzh = \"?\"\nen = \"?\"\n",
        );
        let errs = errors(d.path()).join("\n");
        assert!(errs.contains("a.toml:6: the answer uses {phone}"), "{errs}");
        assert!(errs.contains("a.toml:3: follow-up \"nope\""), "{errs}");
        assert!(errs.contains("a.toml:12: invalid pattern"), "{errs}");
    }

    #[test]
    fn rejects_empty_labels_and_repeated_follow_ups() {
        let d = tempfile::tempdir().expect("tempdir");
        write(d.path(), "pack.toml", PACK);
        write(d.path(), "b.toml", &intent("b", "再见", "bye"));
        write(
            d.path(),
            "a.toml",
            "id = \"a\"\nfollow_ups = [\"b\", \"b\"]\n[zh]\nlabel = \"  \"\nexamples = [\"你好\"]\nanswer = \"x\"\n[en]\nlabel = \" Hi \"\nexamples = [\"hi\"]\nanswer = \"x\"\n",
        );
        let errs = errors(d.path()).join("\n");
        assert!(errs.contains("a.toml:2: follow-up \"b\" is listed twice"), "{errs}");
        assert!(errs.contains("a.toml:4: [zh] label is empty"), "{errs}");
        assert_eq!(errs.lines().count(), 2, "{errs}");
        write(d.path(), "a.toml", &intent("a", "你好", "hi").replace("[en]\n", "[en]\nlabel = \" Hi \"\n"));
        let p = Pack::load(d.path()).expect("valid pack");
        assert_eq!(p.intent("a").expect("a").text[&Lang::En].label, "Hi", "labels are trimmed");
    }

    #[test]
    fn a_missing_language_section_is_an_error() {
        let d = tempfile::tempdir().expect("tempdir");
        write(d.path(), "pack.toml", PACK);
        write(d.path(), "a.toml", "id = \"a\"\n[zh]\nexamples = [\"你好\"]\nanswer = \"x\"\n");
        let errs = errors(d.path()).join("\n");
        assert!(errs.contains("missing the [en] section"), "{errs}");
    }
}

#[cfg(test)]
mod limits_and_parse_errors {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str) {
        std::fs::write(dir.join(name), body).expect("write test file");
    }

    const PACK: &str = "name = \"t\"\nlanguages = [\"en\"]\n[values]\nsupport_email = \"help@t.example\"\n";

    fn errors(dir: &Path) -> Vec<String> {
        match Pack::load(dir) {
            Ok(_) => Vec::new(),
            Err(PackError::Invalid(v)) => v.iter().map(|i| i.to_string()).collect(),
            Err(e) => vec![e.to_string()],
        }
    }

    #[test]
    fn an_absurdly_long_example_label_or_answer_is_an_error_with_file_and_line() {
        let d = tempfile::tempdir().expect("tempdir");
        write(d.path(), "pack.toml", PACK);
        let huge = "a".repeat(1 << 20);
        let body = format!(
            "id = \"a\"\n[en]\nlabel = \"{}\"\nexamples = [\n  \"hello\",\n  \"{huge}\",\n]\nanswer = \"\"\"\n{}\"\"\"\n",
            "b".repeat(MAX_LABEL_CHARS + 1),
            "c ".repeat(MAX_ANSWER_CHARS),
        );
        write(d.path(), "a.toml", &body);
        let errs = errors(d.path());
        let all = errs.join("\n");
        assert_eq!(errs.len(), 3, "{all:.2000}");
        assert!(
            all.contains(&format!("a.toml:3: [en] label is {} characters long; at most {MAX_LABEL_CHARS}", MAX_LABEL_CHARS + 1)),
            "{all:.2000}"
        );
        assert!(
            all.contains(&format!("a.toml:6: an example phrasing is {} characters long; at most {MAX_EXAMPLE_CHARS}", 1 << 20)),
            "{all:.2000}"
        );
        assert!(
            all.contains(&format!("a.toml:8: [en] answer is {} characters long; at most {MAX_ANSWER_CHARS}", 2 * MAX_ANSWER_CHARS - 1)),
            "{all:.2000}"
        );
        assert!(all.len() < 2000, "the long text is not repeated in the errors");

        // At the limits, all is well.
        let body = format!(
            "id = \"a\"\n[en]\nlabel = \"{}\"\nexamples = [\"{}\"]\nanswer = \"{}\"\n",
            "b".repeat(MAX_LABEL_CHARS),
            "词".repeat(MAX_EXAMPLE_CHARS),
            "c".repeat(MAX_ANSWER_CHARS)
        );
        write(d.path(), "a.toml", &body);
        assert_eq!(errors(d.path()), Vec::<String>::new());
    }

    fn intent(id: &str, example: &str, follow_ups: &[&str]) -> String {
        format!("id = \"{id}\"\nfollow_ups = {follow_ups:?}\n[en]\nexamples = [\"{example}\"]\nanswer = \"mail {{support_email}}\"\n")
    }

    #[test]
    fn a_file_that_cannot_be_parsed_is_the_only_error_and_names_its_key() {
        let d = tempfile::tempdir().expect("tempdir");
        write(d.path(), "pack.toml", PACK);
        write(d.path(), "a.toml", &intent("a", "hello", &["b", "c"]));
        write(d.path(), "c.toml", &intent("c", "bye", &["a"]));
        // A type error: the policy is a number.
        write(d.path(), "b.toml", &intent("b", "thanks", &["a"]).replace("follow_ups", "handoff = 5\nfollow_ups"));
        let errs = errors(d.path());
        assert_eq!(errs.len(), 1, "only the broken file is reported: {errs:?}");
        assert!(errs[0].starts_with(&format!("{}:2: ", d.path().join("b.toml").display())), "{errs:?}");
        assert!(errs[0].contains("handoff"), "the key at fault is named: {errs:?}");

        // A type error deeper down names the whole path.
        write(d.path(), "b.toml", &intent("b", "thanks", &["a"]).replace("[\"thanks\"]", "[\"thanks\", 7]"));
        let errs = errors(d.path());
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("b.toml:4: ") && errs[0].contains("en.examples"), "{errs:?}");

        // A syntax error.
        write(d.path(), "b.toml", "id = \"b\"\n[en\nexamples = [\"thanks\"]\n");
        let errs = errors(d.path());
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("b.toml:2: "), "{errs:?}");

        // A follow-up naming a file that does not exist is still an error.
        write(d.path(), "b.toml", &intent("b", "thanks", &["zzz"]));
        let errs = errors(d.path());
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("b.toml:2: follow-up \"zzz\" is not an intent"), "{errs:?}");
    }

    #[test]
    fn a_pack_toml_that_cannot_be_parsed_does_not_fail_every_answer() {
        let d = tempfile::tempdir().expect("tempdir");
        write(d.path(), "pack.toml", &PACK.replace("name = \"t\"", "name = 5"));
        write(d.path(), "a.toml", &intent("a", "hello", &[]));
        let errs = errors(d.path());
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("pack.toml:1: ") && errs[0].contains("name"), "{errs:?}");
    }
}

#[cfg(test)]
mod redact_patterns {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str) {
        std::fs::write(dir.join(name), body).expect("write test file");
    }

    /// A pack whose `pack.toml` ends with `redact` (its `[redact]` table from line 3 on).
    fn pack_with(redact: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        write(d.path(), "pack.toml", &format!("name = \"t\"\nlanguages = [\"en\"]\n{redact}"));
        write(
            d.path(),
            "greeting.toml",
            "id = \"greeting\"\n[en]\nexamples = [\"hello there\", \"my order OK-77 is late\"]\nanswer = \"hi\"\n",
        );
        d
    }

    fn errors(redact: &str) -> Vec<String> {
        let d = pack_with(redact);
        match Pack::load(d.path()) {
            Ok(_) => Vec::new(),
            Err(PackError::Invalid(v)) => v.iter().map(|i| i.to_string()).collect(),
            Err(e) => vec![e.to_string()],
        }
    }

    /// The one error for `pattern` (on line 5 of pack.toml).
    fn error(pattern: &str) -> String {
        let errs = errors(&format!("[redact]\npatterns = [\n  '{pattern}',\n]\n"));
        assert_eq!(errs.len(), 1, "{pattern}: {errs:?}");
        assert!(errs[0].contains(&format!("pack.toml:5: [redact] pattern '{pattern}' ")), "the file, line and pattern are named: {errs:?}");
        errs[0].clone()
    }

    #[test]
    fn patterns_with_and_without_labels_mask_what_they_match() {
        let d = pack_with("[redact]\npatterns = [\n  'OK-[0-9]{10}',\n  { pattern = 'ACCT-[0-9]{6}', label = \"account number\" },\n]\n");
        let pack = Pack::load(d.path()).expect("valid pack");
        assert_eq!(pack.redactor.custom().len(), 2);
        let red = pack.redactor.redact("OK-1234567890 and ACCT-123456, card 4242 4242 4242 4242");
        assert_eq!(red.text, "[hidden] and [account number], card [card •••• 4242]");
        // Without a [redact] table, the built-in rules alone.
        let d = pack_with("");
        assert!(Pack::load(d.path()).expect("valid pack").redactor.custom().is_empty());
    }

    #[test]
    fn a_pattern_that_does_not_compile_is_an_error() {
        let e = error("OK-([0-9]");
        assert!(e.contains("does not compile: ") && e.contains("unclosed group"), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }

    #[test]
    fn a_pattern_that_can_match_the_empty_string_is_an_error() {
        for p in [".*", r"\w*", "x?", r"\b", "^", "(OK-[0-9]+)?", "OK-[0-9]{10}|"] {
            let e = error(p);
            assert!(e.contains("can match the empty string"), "{e}");
        }
        assert!(error(r"[^\s\S]").contains("can never match anything"));
    }

    #[test]
    fn a_pattern_that_matches_ordinary_text_is_an_error() {
        for p in [".+", r"\w+", r"\S+", "[a-z]+", r"[\p{Han}]+"] {
            let e = error(p);
            assert!(e.contains("matches almost any text ("), "{p}: {e}");
            assert!(e.contains("it would hide words that are not secrets"), "{e}");
        }
        // A few ordinary sentences are enough: amounts and dates are not secrets.
        let e = error(r"[0-9]{4}-[0-9]{2}-[0-9]{2}");
        assert!(e.contains("matches ordinary text (1 of ") && e.contains("2026-12-01"), "{e}");
    }

    #[test]
    fn a_pattern_that_matches_an_example_names_the_intent_and_example() {
        let e = error("OK-[0-9]+");
        assert!(e.contains("matches the example \"my order OK-77 is late\" of intent greeting (greeting.toml)"), "{e}");
        let e = error("(?i)there|ok-");
        assert!(e.contains("of intent greeting (greeting.toml) and 1 more"), "{e}");
    }

    #[test]
    fn a_pathological_pattern_is_an_error_not_a_hang() {
        let started = std::time::Instant::now();
        let e = error(r"(\w{100}){100}");
        assert!(e.contains("too big once compiled"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[test]
    fn labels_and_the_number_of_patterns_are_checked() {
        let errs = errors(
            "[redact]\npatterns = [\n  { pattern = 'OK-[0-9]{10}', label = \" \" },\n  { pattern = 'OK-[0-9]{11}', label = \"[x]\" },\n]\n",
        );
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].contains("pack.toml:5: ") && errs[0].contains("has the label \" \""), "{errs:?}");
        assert!(errs[1].contains("pack.toml:6: ") && errs[1].contains("without brackets"), "{errs:?}");
        let many: String = (0..=MAX_REDACT_PATTERNS).map(|i| format!("  'OK-{i}-[0-9]{{10}}',\n")).collect();
        let errs = errors(&format!("[redact]\npatterns = [\n{many}]\n"));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].contains(&format!("pack.toml:3: [redact] has {} patterns; at most {MAX_REDACT_PATTERNS}", MAX_REDACT_PATTERNS + 1)),
            "{errs:?}"
        );
        // An unknown key, or a pattern that is neither a string nor a table, is the file's error.
        let errs = errors("[redact]\npattern = ['x']\n");
        assert!(errs.len() == 1 && errs[0].contains("pack.toml:") && errs[0].contains("pattern"), "{errs:?}");
        let errs = errors("[redact]\npatterns = [5]\n");
        assert!(errs.len() == 1 && errs[0].contains("pack.toml:4"), "{errs:?}");
    }

    #[test]
    fn the_ordinary_sentences_hold_no_secret() {
        for t in ORDINARY_TEXT {
            assert_eq!(Redactor::new().redact(t).text, *t);
        }
    }
}
