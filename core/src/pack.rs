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
    index: HashMap<String, usize>,
}

/// The longest example phrasing, in characters: customers' questions are a sentence or two, and a
/// longer example only slows training and skews the matcher.
pub const MAX_EXAMPLE_CHARS: usize = 500;
/// The longest label, in characters: Discord refuses a button label over 80, and with it the reply.
pub const MAX_LABEL_CHARS: usize = 80;
/// The longest answer, in characters (the most a customer may send in one message, too).
pub const MAX_ANSWER_CHARS: usize = crate::types::MAX_MESSAGE_CHARS;

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
        if !issues.is_empty() {
            return Err(PackError::Invalid(issues));
        }
        intents.sort_by(|a, b| a.id.cmp(&b.id));
        let index = intents.iter().enumerate().map(|(i, it)| (it.id.clone(), i)).collect();
        Ok(Pack { name, dir: dir.to_path_buf(), languages, values, intents, index })
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
