//! A labelled set of messages to measure the masking on (`tests/data/redaction.tsv`): messages
//! holding secrets, each with the exact masked output expected, and look-alikes that must come out
//! as written. The format is one message per line, fields separated by tabs:
//!
//! ```text
//! secret <TAB> message <TAB> expected masked output [<TAB> intent]
//! keep   <TAB> message
//! ```
//!
//! The secrets of a `secret` line are the parts of the message its expected output replaces with
//! placeholders (`[card •••• 1234]`, `[security code]`, `[code]`, `[password]`, `[ID number]`,
//! `[hidden]`, or `[label]` of a pack's labelled pattern). Lines starting with `#` and blank lines
//! are skipped. [`score`] gives the figures: the share of secrets hidden (recall), of look-alikes
//! kept, and of messages masked exactly as labelled.

use std::fmt::Write as _;

use regex::Regex;

use super::Redactor;

/// One labelled message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// Its line in the file (from 1).
    pub line: usize,
    /// The message as the customer wrote it.
    pub message: String,
    /// What masking must make of it (the message itself for a look-alike).
    pub expected: String,
    /// The secrets in it, as written (empty for a look-alike).
    pub secrets: Vec<String>,
    /// The intent the message obviously asks about, if labelled.
    pub intent: Option<String>,
}

impl Case {
    /// Whether the message holds secrets.
    pub fn has_secrets(&self) -> bool {
        !self.secrets.is_empty()
    }
}

/// The placeholders of the built-in rules and of `[hidden]`, and any of `extra` (a pack's labels).
fn placeholder_regex(extra: &[String]) -> Result<Regex, String> {
    let mut alternatives = vec![
        r"card •••• [0-9]{4}".to_string(),
        "security code".into(),
        "code".into(),
        "password".into(),
        "ID number".into(),
        "hidden".into(),
    ];
    alternatives.extend(extra.iter().map(|l| regex::escape(l)));
    Regex::new(&format!(r"\[(?:{})\]", alternatives.join("|"))).map_err(|e| e.to_string())
}

/// Reads a labelled set. `labels` are the labels of the pack's own patterns, whose placeholders
/// (`[label]`) may appear in expected outputs. An error names the line.
pub fn parse(src: &str, labels: &[String]) -> Result<Vec<Case>, String> {
    let placeholder = placeholder_regex(labels)?;
    let mut cases = Vec::new();
    for (i, raw) in src.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() || raw.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = raw.split('\t').collect();
        match fields.as_slice() {
            ["keep", message] => {
                cases.push(Case { line, message: (*message).to_string(), expected: (*message).to_string(), secrets: vec![], intent: None })
            }
            ["secret", message, expected, rest @ ..] if rest.len() <= 1 => {
                let secrets = secrets_of(&placeholder, message, expected).ok_or_else(|| {
                    format!("line {line}: the expected output is not the message with placeholders for some of its parts")
                })?;
                if secrets.is_empty() {
                    return Err(format!("line {line}: a secret line whose expected output has no placeholder"));
                }
                let intent = rest.first().map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
                cases.push(Case { line, message: (*message).to_string(), expected: (*expected).to_string(), secrets, intent });
            }
            _ => return Err(format!("line {line}: expected `keep<TAB>message` or `secret<TAB>message<TAB>expected[<TAB>intent]`")),
        }
    }
    Ok(cases)
}

/// The parts of `message` that the placeholders of `expected` stand for, or `None` when the rest
/// of `expected` is not the message's own text.
fn secrets_of(placeholder: &Regex, message: &str, expected: &str) -> Option<Vec<String>> {
    let mut pattern = String::from("^");
    let mut last = 0;
    for m in placeholder.find_iter(expected) {
        pattern += &regex::escape(&expected[last..m.start()]);
        pattern += "(.+?)";
        last = m.end();
    }
    pattern += &regex::escape(&expected[last..]);
    pattern += "$";
    let re = Regex::new(&pattern).ok()?;
    let caps = re.captures(message)?;
    Some(caps.iter().skip(1).flatten().map(|m| m.as_str().to_string()).collect())
}

/// A message masking got wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Miss {
    /// Its line in the file.
    pub line: usize,
    /// What went wrong: a secret left visible, a look-alike changed, or another output than labelled.
    pub what: &'static str,
    /// The message.
    pub message: String,
    /// What masking made of it.
    pub got: String,
    /// What the set expects.
    pub expected: String,
}

/// The figures of a run over a labelled set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    /// Messages holding secrets.
    pub secret_messages: usize,
    /// Secrets in them.
    pub secrets: usize,
    /// Secrets no longer visible after masking.
    pub hidden: usize,
    /// Look-alike messages.
    pub lookalikes: usize,
    /// Look-alikes that came out exactly as written.
    pub kept: usize,
    /// Messages (of both kinds) that came out exactly as labelled.
    pub exact: usize,
    /// Everything that went wrong.
    pub misses: Vec<Miss>,
}

fn share(n: usize, of: usize) -> f64 {
    if of == 0 { 1.0 } else { n as f64 / of as f64 }
}

impl Figures {
    /// Secrets hidden / secrets.
    pub fn recall(&self) -> f64 {
        share(self.hidden, self.secrets)
    }

    /// Look-alikes kept / look-alikes.
    pub fn kept_share(&self) -> f64 {
        share(self.kept, self.lookalikes)
    }

    /// Messages exactly as labelled / messages.
    pub fn exact_share(&self) -> f64 {
        share(self.exact, self.secret_messages + self.lookalikes)
    }

    /// The figures, then one line per miss.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let total = self.secret_messages + self.lookalikes;
        let _ = writeln!(
            out,
            "secrets hidden (recall): {}/{} = {:.1} % (in {} messages)",
            self.hidden,
            self.secrets,
            100.0 * self.recall(),
            self.secret_messages
        );
        let _ = writeln!(out, "look-alikes kept: {}/{} = {:.1} %", self.kept, self.lookalikes, 100.0 * self.kept_share());
        let _ = writeln!(out, "masked exactly as labelled: {}/{total} = {:.1} %", self.exact, 100.0 * self.exact_share());
        for m in &self.misses {
            let _ = writeln!(out, "line {}: {}: {:?}\n    got      {:?}\n    expected {:?}", m.line, m.what, m.message, m.got, m.expected);
        }
        out
    }
}

/// Whether `secret` can still be read in `got` (outside the placeholders): as written, or with its
/// spaces and dashes taken out and full-width digits read as digits.
fn visible(placeholder: &Regex, secret: &str, got: &str) -> bool {
    let compact = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| if ('０'..='９').contains(&c) { char::from_u32(c as u32 - 0xFEE0).unwrap_or(c) } else { c })
            .collect()
    };
    let rest = placeholder.replace_all(got, " ");
    let secret = secret.trim();
    rest.contains(secret) || compact(&rest).contains(&compact(secret))
}

/// Masks every message of `cases` with `redactor` and counts.
pub fn score(redactor: &Redactor, cases: &[Case]) -> Figures {
    let labels: Vec<String> = redactor.custom().iter().filter_map(|p| p.label.clone()).collect();
    let placeholder = placeholder_regex(&labels).unwrap_or_else(|_| super::unreachable_regex());
    let mut f = Figures::default();
    for case in cases {
        let got = redactor.redact(&case.message).text;
        let miss = |what| Miss { line: case.line, what, message: case.message.clone(), got: got.clone(), expected: case.expected.clone() };
        let exact = got == case.expected;
        if exact {
            f.exact += 1;
        }
        if case.has_secrets() {
            f.secret_messages += 1;
            f.secrets += case.secrets.len();
            let hidden = case.secrets.iter().filter(|s| !visible(&placeholder, s, &got)).count();
            f.hidden += hidden;
            if hidden < case.secrets.len() {
                f.misses.push(miss("secret left visible"));
            } else if !exact {
                f.misses.push(miss("secrets hidden, but not as labelled"));
            }
        } else {
            f.lookalikes += 1;
            if exact {
                f.kept += 1;
            } else {
                f.misses.push(miss("look-alike changed"));
            }
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_the_parts_placeholders_stand_for() {
        let src = "# comment\n\nsecret\tcard 4242 4242 4242 4242 and cvv 123\tcard [card •••• 4242] and cvv [security code]\ttransfer_failed\nkeep\torder 123\n";
        let cases = parse(src, &[]).expect("valid set");
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].secrets, ["4242 4242 4242 4242", "123"]);
        assert_eq!(cases[0].intent.as_deref(), Some("transfer_failed"));
        assert_eq!(cases[0].line, 3);
        assert!(!cases[1].has_secrets());
        assert_eq!(cases[1].expected, "order 123");
        let f = score(&Redactor::new(), &cases);
        assert_eq!((f.secrets, f.hidden, f.lookalikes, f.kept, f.exact), (2, 2, 1, 1, 2), "{}", f.report());
    }

    #[test]
    fn misses_are_counted_and_reported() {
        let src = "secret\tmy secret is plain words\tmy secret is [password]\nkeep\tcard 4242424242424242\n";
        let f = score(&Redactor::new(), &parse(src, &[]).expect("valid set"));
        assert_eq!((f.hidden, f.secrets, f.kept, f.lookalikes), (0, 1, 0, 1));
        let report = f.report();
        assert!(report.contains("secrets hidden (recall): 0/1 = 0.0 %"), "{report}");
        assert!(report.contains("line 1: secret left visible") && report.contains("line 2: look-alike changed"), "{report}");
    }

    #[test]
    fn a_malformed_line_is_an_error_naming_it() {
        assert!(parse("keep\ta\tb\n", &[]).unwrap_err().starts_with("line 1:"));
        assert!(
            parse("secret\tabc\tabd\n", &[]).unwrap_err().contains("line 1: a secret line whose expected output has no placeholder")
                || parse("secret\tabc\tabd\n", &[]).unwrap_err().contains("line 1: the expected output")
        );
        assert!(parse("keep\tok\nsecret\tpin 1234\tpin [code] x\n", &[]).unwrap_err().starts_with("line 2: the expected output"));
    }
}
