//! Draft intent files for `switchboard intents suggest --write DIR`: a group judged a new intent
//! becomes `<id>.toml` in the pack's own format (`intents/README.md`), its phrasings as the
//! examples and a placeholder answer the maintainer must replace, so that the file loads as it is
//! and `switchboard intents check` warns until the answers are written ([`is_draft_answer`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use super::Group;
use super::cluster::{STOPWORDS, tokens};
use crate::Lang;

/// What every placeholder answer starts with; `intents check` warns about an answer holding it.
pub const DRAFT_MARK: &str = "DRAFT (switchboard intents suggest)";

/// The most examples a draft takes (the group's phrasings closest to its centroid).
pub const MAX_DRAFT_EXAMPLES: usize = 40;

/// Whether an answer is still a draft's placeholder.
pub fn is_draft_answer(answer: &str) -> bool {
    answer.contains(DRAFT_MARK)
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `text` on one line, cut to `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max { format!("{}…", flat.chars().take(max.saturating_sub(1)).collect::<String>()) } else { flat }
}

/// An intent id for the `n`th group (1-based) that `taken` does not refuse: `suggested_<n>`, with
/// up to three of the group's most frequent English words (`suggested_2_exchange_rate`).
pub fn draft_id(group: &Group, n: usize, taken: impl Fn(&str) -> bool) -> String {
    let mut words: BTreeMap<String, u64> = BTreeMap::new();
    for (text, count) in &group.phrasings {
        let mut seen: Vec<String> = Vec::new();
        for (t, han) in tokens(text) {
            if !han && t.len() >= 3 && t.chars().all(|c| c.is_ascii_lowercase()) && !STOPWORDS.contains(&t.as_str()) && !seen.contains(&t) {
                seen.push(t);
            }
        }
        for w in seen {
            *words.entry(w).or_default() += count;
        }
    }
    let mut ranked: Vec<(String, u64)> = words.into_iter().filter(|(_, c)| *c >= 2 || group.phrasings.len() == 1).collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut base = format!("suggested_{n}");
    for (w, _) in ranked.into_iter().take(3) {
        base.push('_');
        base.push_str(&w);
    }
    let mut id = base.clone();
    let mut k = 2;
    while taken(&id) {
        id = format!("{base}_{k}");
        k += 1;
    }
    id
}

/// The draft file of `group` as intent `id` of a pack in `languages` (a section for each, with its
/// examples, a label and a placeholder answer), or `None` when none of the group's phrasings can
/// be an example (each too long, or in `taken`: see [`super::taken_phrasings`]).
pub fn draft(group: &Group, id: &str, languages: &[Lang], taken: &HashMap<String, String>) -> Option<String> {
    let (mut fresh, elsewhere) = super::usable_examples(group, taken);
    if fresh.is_empty() {
        return None;
    }
    let more = fresh.len().saturating_sub(MAX_DRAFT_EXAMPLES);
    fresh.truncate(MAX_DRAFT_EXAMPLES);
    let langs: Vec<Lang> = if languages.is_empty() { Lang::ALL.to_vec() } else { languages.to_vec() };
    let main = group.lang.filter(|l| langs.contains(l)).unwrap_or(langs[0]);
    let mut by_lang: BTreeMap<Lang, Vec<&str>> = BTreeMap::new();
    for t in &fresh {
        let l = crate::matcher::lang::detect(t).filter(|l| langs.contains(l)).unwrap_or(main);
        by_lang.entry(l).or_default().push(t);
    }

    let mut out = String::new();
    let _ = writeln!(out, "# {DRAFT_MARK}: a new intent drafted from {} customer messages the bot did not answer", group.size);
    match &group.nearest {
        Some(n) => {
            let _ = writeln!(out, "# (nearest existing intent: {}, confidence {:.2}).", n.intent, n.confidence);
        }
        None => out.push_str("# (no existing intent near them).\n"),
    }
    out.push_str(
        "# Before it goes live:\n\
         #   1. write each language's answer (and its button label): `switchboard intents check` warns\n\
         #      while an answer is still the placeholder below;\n\
         #   2. read the examples: keep those that ask this question, add phrasings of your own;\n\
         #   3. rename the file and its id if you like, move it into the pack, and run\n\
         #      `switchboard intents check` again.\n",
    );
    if more > 0 {
        let _ = writeln!(out, "# {more} more phrasings of the group are not listed (the {MAX_DRAFT_EXAMPLES} closest to its centre are).");
    }
    if !elsewhere.is_empty() {
        out.push_str(
            "# Phrasings of the group left out because another intent lists them (move them here if this intent\n# takes them over):\n",
        );
        for (text, other) in &elsewhere {
            let _ = writeln!(out, "#   {} ({other})", quote(&one_line(text, 100)));
        }
    }
    let _ = writeln!(out, "id = {}", quote(id));
    out.push_str("handoff = \"never\"\n");
    for lang in Lang::ALL.into_iter().filter(|l| langs.contains(l)) {
        let _ = writeln!(out, "\n[{lang}]");
        let own = by_lang.get(&lang);
        let examples: Vec<&str> = match own {
            Some(v) => v.clone(),
            None => {
                let other = by_lang.keys().map(|l| l.to_string()).collect::<Vec<_>>().join(", ");
                let _ = writeln!(
                    out,
                    "# Nobody asked this in {lang} yet: the phrasings in {other} stand in so that the draft loads.\n# Replace them with {lang} ones."
                );
                fresh.iter().map(String::as_str).collect()
            }
        };
        let label = one_line(examples.first().copied().unwrap_or(id), 40);
        let _ = writeln!(out, "label = {}   # the button text: make it short", quote(if label.trim().is_empty() { id } else { &label }));
        out.push_str("examples = [\n");
        for e in &examples {
            let _ = writeln!(out, "  {},", quote(e));
        }
        out.push_str("]\n");
        let placeholder = match lang {
            Lang::Zh => format!("{DRAFT_MARK}: 请在这里写上给客户的中文回答。Write the answer customers get in Chinese."),
            Lang::En => format!("{DRAFT_MARK}: write the answer customers get in English."),
        };
        let _ = writeln!(out, "answer = {}", quote(&placeholder));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::Pack;
    use crate::suggest::{Nearest, Verdict, taken_phrasings};

    fn write_draft(g: &Group, id: &str, p: &Pack) -> Option<String> {
        draft(g, id, &p.languages, &taken_phrasings([p]))
    }

    fn pack(dir: &std::path::Path) -> Pack {
        std::fs::write(dir.join("pack.toml"), "name = \"t\"\nlanguages = [\"zh\", \"en\"]\n[values]\nsite = \"x\"\n").expect("write");
        std::fs::write(
            dir.join("fees.toml"),
            "id = \"fees\"\n[zh]\nexamples = [\"手续费多少\"]\nanswer = \"免费\"\n[en]\nexamples = [\"what are your fees\"]\nanswer = \"Free. {site}\"\n",
        )
        .expect("write");
        Pack::load(dir).expect("the pack loads")
    }

    fn group(phrasings: &[&str]) -> Group {
        Group {
            size: phrasings.len() as u64 + 1,
            phrasings: phrasings.iter().enumerate().map(|(i, t)| (t.to_string(), if i == 0 { 2 } else { 1 })).collect(),
            lang: Some(Lang::En),
            nearest: Some(Nearest { intent: "fees".into(), confidence: 0.2, agreement: 0.5, example_similarity: 0.1 }),
            verdict: Verdict::NewIntent,
        }
    }

    #[test]
    fn ids_name_the_group_and_avoid_taken_ones() {
        let g = group(&["Can I pay with Bitcoin?", "bitcoin payment", "do you take bitcoin or ethereum"]);
        assert_eq!(draft_id(&g, 1, |_| false), "suggested_1_bitcoin_pay");
        assert_eq!(draft_id(&g, 1, |id| id == "suggested_1_bitcoin_pay"), "suggested_1_bitcoin_pay_2");
        assert_eq!(draft_id(&group(&["比特币", "比特币付款"]), 3, |_| false), "suggested_3");
    }

    #[test]
    fn a_draft_loads_as_an_intent_of_the_pack_and_is_marked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = pack(dir.path());
        let g = group(&[
            "Can I pay with \"Bitcoin\"?",
            "bitcoin payment\nplease",
            "what are your fees",
            "WHAT ARE YOUR FEES",
            "比特币可以吗",
            &"x".repeat(600),
        ]);
        let text = write_draft(&g, "suggested_1_bitcoin", &p).expect("a draft");
        assert!(text.starts_with("# DRAFT (switchboard intents suggest): a new intent drafted from 7 customer messages"), "{text}");
        assert!(text.contains("#   \"what are your fees\" (fees)"), "{text}");
        std::fs::write(dir.path().join("suggested_1_bitcoin.toml"), &text).expect("write");
        let loaded = Pack::load(dir.path()).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let it = loaded.intent("suggested_1_bitcoin").expect("the draft is an intent");
        let en = it.text(Lang::En).expect("en");
        assert_eq!(en.examples, ["Can I pay with \"Bitcoin\"?", "bitcoin payment\nplease"]);
        assert!(is_draft_answer(&en.answer));
        let zh = it.text(Lang::Zh).expect("zh");
        assert_eq!(zh.examples, ["比特币可以吗"]);
        assert!(is_draft_answer(&zh.answer));
        assert!(!is_draft_answer("Free."));
    }

    #[test]
    fn a_language_nobody_asked_in_borrows_the_phrasings_and_says_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = pack(dir.path());
        let text = write_draft(&group(&["bitcoin?", "pay in bitcoin"]), "suggested_2", &p).expect("a draft");
        assert!(text.contains("Nobody asked this in zh yet"), "{text}");
        std::fs::write(dir.path().join("suggested_2.toml"), &text).expect("write");
        let loaded = Pack::load(dir.path()).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(loaded.intent("suggested_2").and_then(|i| i.text.get(&Lang::Zh)).map(|t| t.examples.len()), Some(2));
        // Nothing usable: no draft.
        assert_eq!(write_draft(&group(&["What are your fees"]), "suggested_3", &p), None);
    }
}
