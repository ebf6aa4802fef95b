//! The dialogue rules, as a pure function: a conversation's state and one customer input go in, the
//! new state, the replies and an optional handoff come out. No I/O happens here, so every rule is
//! testable on its own; [`crate::engine`] performs the effects.

use serde::{Deserialize, Serialize};

use crate::Lang;
use crate::matcher::normalize::normalize;
use crate::matcher::{Decision, Matcher, Thresholds};
use crate::pack::{CollectField, Intent, Pack};
use crate::types::{Choice, Field, HandoffPolicy, HandoffReason, Priority, Reply};

/// Where the bot is in a conversation it owns. Persisted with the conversation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialogueState {
    /// Messages in a row the bot did not understand.
    pub fallbacks: u32,
    /// What the bot is waiting for.
    pub pending: Pending,
    /// While the conversation waits in the queue: when the customer was last told their place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_told_at: Option<crate::types::Millis>,
    /// The customer writes traditional Chinese characters, so replies in Chinese are given in
    /// them ([`crate::hant`]). Kept until they write simplified ones; survives a ticket.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub traditional: bool,
    /// When the customer, over their message limit, was told to slow down. Not told again while
    /// the flood goes on; a message within the limit a minute later clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slowed_at: Option<crate::types::Millis>,
}

impl DialogueState {
    /// A fresh dialogue that keeps what is known about the customer (their script).
    pub fn restart(&self) -> DialogueState {
        DialogueState { traditional: self.traditional, ..DialogueState::default() }
    }
}

/// What the bot's last message asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Pending {
    /// Nothing in particular.
    #[default]
    Nothing,
    /// The last reply offered these choices; typing their number picks one.
    Choices {
        /// The choices, in order.
        choices: Vec<Choice>,
    },
    /// Collecting the fields of an intent before handing off.
    Collecting {
        /// The intent.
        intent: String,
        /// Answers so far.
        fields: Vec<Field>,
        /// Invalid answers to the current question.
        retries: u32,
    },
    /// A ticket just closed and the customer was asked to rate the help, 1 to 5 (buttons whose
    /// payloads are [`PAYLOAD_RATE`] and the score; a typed score, with a comment after it if
    /// they like, counts too). Anything else drops the question.
    Rating {
        /// The closed ticket the rating goes on.
        ticket: i64,
        /// When the customer was asked (the question lapses after [`RATING_WINDOW_MS`]).
        #[serde(default)]
        asked_at: crate::types::Millis,
    },
}

/// How long after a ticket closes its rating is taken (a day): a number typed later is a new
/// message, not a late rating.
pub const RATING_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// The longest comment kept with a rating, in characters (the whole message stays in the
/// transcript).
pub const MAX_RATING_COMMENT: usize = 1000;

/// What the bot did with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Answered an intent.
    Answer,
    /// Asked "did you mean…".
    Clarify,
    /// Did not understand.
    Fallback,
    /// Asked for (or re-asked) a field.
    Collect,
    /// Stopped collecting fields at the customer's word; no ticket.
    Cancel,
    /// Opened a ticket.
    Handoff,
    /// A human owns the conversation; the message went to the ticket.
    Silent,
    /// The message went to the ticket still waiting in the queue, and the customer was reminded
    /// of their place in it (at most once per [`crate::engine::EngineConfig::queue_reminder`]).
    Waiting,
    /// Empty or whitespace; nothing stored.
    Ignored,
    /// Already processed.
    Duplicate,
    /// Too long: stored cut, and the customer told.
    TooLong,
    /// Not text: the customer told the bot reads text only.
    Unsupported,
    /// Nothing but secrets (a card number, a code, a password): stored masked, and the customer
    /// only told they were hidden; the dialogue stays where it was.
    Hidden,
    /// An agent blocked the customer: stored, not answered or relayed.
    Blocked,
    /// The customer writes faster than their limit: stored, not answered or relayed (told once).
    Limited,
    /// Took the customer's rating of the ticket that just closed, and thanked them.
    Rated,
}

impl Action {
    /// Lowercase name, as in conversation scripts.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Answer => "answer",
            Action::Clarify => "clarify",
            Action::Fallback => "fallback",
            Action::Collect => "collect",
            Action::Cancel => "cancel",
            Action::Handoff => "handoff",
            Action::Silent => "silent",
            Action::Waiting => "waiting",
            Action::Ignored => "ignored",
            Action::Duplicate => "duplicate",
            Action::TooLong => "too_long",
            Action::Blocked => "blocked",
            Action::Limited => "limited",
            Action::Unsupported => "unsupported",
            Action::Hidden => "hidden",
            Action::Rated => "rated",
        }
    }
}

/// A ticket the step wants opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandoffRequest {
    /// Why.
    pub reason: HandoffReason,
    /// How urgent.
    pub priority: Priority,
    /// Collected details.
    pub fields: Vec<Field>,
}

/// The result of one step.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The new state.
    pub state: DialogueState,
    /// The language replies are in.
    pub lang: Lang,
    /// Replies, in order.
    pub replies: Vec<Reply>,
    /// What the bot did.
    pub action: Action,
    /// The intent answered or handed off for, if any.
    pub intent: Option<String>,
    /// A ticket to open.
    pub handoff: Option<HandoffRequest>,
    /// A rating to record on a closed ticket.
    pub rating: Option<Rating>,
}

/// A customer's rating of the help on a ticket that closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rating {
    /// The closed ticket.
    pub ticket: i64,
    /// 1 (poor) to 5 (excellent).
    pub score: u8,
    /// What they wrote after the score, if anything (at most [`MAX_RATING_COMMENT`] characters).
    pub comment: Option<String>,
}

/// What the rules read besides the state.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The intent pack.
    pub pack: &'a Pack,
    /// The matcher trained on it.
    pub matcher: &'a Matcher,
    /// Confidence thresholds.
    pub thresholds: Thresholds,
}

/// A customer input the rules act on (already cleaned and non-empty).
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// Typed text.
    Text(&'a str),
    /// A pressed button's payload.
    Choice(&'a str),
}

/// Button payload: answer this intent.
pub const PAYLOAD_INTENT: &str = "intent:";
/// Button payload: the customer asks for a person.
pub const PAYLOAD_HUMAN: &str = "human";
/// Button payload: a person, offered after repeated fallbacks.
pub const PAYLOAD_HUMAN_FALLBACK: &str = "human:fallback";
/// Button payload: the welcome (`/start`).
pub const PAYLOAD_START: &str = "start";
/// Button payload: none of the offered choices.
pub const PAYLOAD_NONE: &str = "none";
/// Button payload prefix: a rating, followed by the score (`rate:4`).
pub const PAYLOAD_RATE: &str = "rate:";

/// Intent id that greets (its follow-ups are the top topics offered by `/start`).
pub const GREETING_INTENT: &str = "greeting";
/// Intent id of asking for a person (its answer is the acknowledgement, its priority the ticket's).
pub const HUMAN_INTENT: &str = "human_agent";

/// Intent id of saying goodbye (while details are collected, it also stops that).
pub const GOODBYE_INTENT: &str = "goodbye";

/// Phrasings that, while details are collected, mean "stop, I don't want this any more", after
/// normalisation.
const CANCEL_WORDS: &[&str] = &[
    "算了",
    "不用了",
    "取消",
    "不要了",
    "没事了",
    "先不用了",
    "算了吧",
    "不用了谢谢",
    "沒事了",
    "cancel",
    "stop",
    "never mind",
    "nevermind",
    "forget it",
    "no thanks",
    "not now",
    "quit",
    "exit",
];

/// Whether `text`, said while details are collected, calls the request off.
pub fn is_cancel_request(text: &str) -> bool {
    let n = bare(text);
    let n = n.strip_prefix("ok ").or_else(|| n.strip_prefix("oh ")).unwrap_or(&n);
    CANCEL_WORDS.contains(&n)
}

/// `text` normalised, without surrounding spaces and punctuation: what set phrasings compare.
fn bare(text: &str) -> String {
    let n = normalize(text);
    n.trim_matches(|c: char| c.is_ascii_punctuation() || "!?。!?,,".contains(c) || c.is_whitespace()).to_string()
}

/// Phrasings that always mean "let me talk to a person", after normalisation.
const HUMAN_WORDS: &[&str] = &[
    "人工",
    "转人工",
    "人工客服",
    "转人工客服",
    "真人",
    "真人客服",
    "找人工",
    "要人工",
    "人工服务",
    "轉人工",
    "人工客戶",
    "human",
    "agent",
    "a human",
    "human agent",
    "real person",
    "a real person",
    "person",
    "operator",
    "talk to a human",
    "speak to a human",
    "talk to a person",
    "speak to a person",
    "talk to an agent",
    "live agent",
    "customer service agent",
];

/// Whether `text` is an explicit request for a person.
pub fn is_human_request(text: &str) -> bool {
    let n = bare(text);
    HUMAN_WORDS.contains(&n.as_str()) || n.strip_prefix("please ").is_some_and(|r| HUMAN_WORDS.contains(&r))
}

/// The bot's own sentences, in each language.
#[derive(Debug, Clone, Copy)]
pub enum Phrase {
    /// Did not understand, first time.
    Fallback,
    /// Did not understand again: offer a person.
    FallbackOffer,
    /// "Talk to a person" button.
    HumanButton,
    /// "None of these" button.
    NoneButton,
    /// Did you mean.
    Clarify,
    /// The message was too long.
    TooLong,
    /// Only text can be read.
    TextOnly,
    /// A field's answer did not look right.
    InvalidField,
    /// Back with the bot after a ticket closed.
    BackToBot,
    /// Back to the detail being collected, after answering a question asked meanwhile.
    Resume,
    /// Collecting details stopped at the customer's word.
    Cancelled,
    /// A card number, code or password in the message was hidden.
    SecretHidden,
    /// Secrets were hidden and the public message that held them was deleted.
    SecretHiddenDeleted,
    /// Secrets were hidden, but the public message that held them could not be deleted.
    SecretHiddenDeleteIt,
    /// The customer writes too fast: told once that the bot stops answering for a while.
    SlowDown,
    /// After a ticket closed: how was the help? (with buttons 1 to 5, see [`rating_prompt`]).
    RatingAsk,
    /// Thanks for a rating.
    RatingThanks,
    /// A rating button pressed again, or after the question lapsed: not taken.
    RatingClosed,
}

impl Phrase {
    /// The sentence in `lang`.
    pub fn text(self, lang: Lang) -> &'static str {
        use Phrase::*;
        match (self, lang) {
            (Fallback, Lang::Zh) => "抱歉,我没太明白。能换个说法再讲一次吗?如果需要,随时输入“人工”就能联系真人客服。",
            (Fallback, Lang::En) => {
                "Sorry, I didn't quite get that. Could you say it another way? You can also type \"human\" at any time to reach a person."
            }
            (FallbackOffer, Lang::Zh) => "我还是没能理解,很抱歉。要不要帮您转接人工客服?",
            (FallbackOffer, Lang::En) => "I'm still not sure what you need, sorry. Would you like me to pass you to a person?",
            (HumanButton, Lang::Zh) => "转人工客服",
            (HumanButton, Lang::En) => "Talk to a person",
            (NoneButton, Lang::Zh) => "都不是",
            (NoneButton, Lang::En) => "None of these",
            (Clarify, Lang::Zh) => "您是想问以下哪一个?",
            (Clarify, Lang::En) => "Did you mean one of these?",
            (TooLong, Lang::Zh) => "您的消息太长了(超过 4000 字),我只保存了前 4000 字。请把问题简短地说一下。",
            (TooLong, Lang::En) => {
                "Your message is too long (over 4,000 characters); I kept the first 4,000. Please tell me your question in a few words."
            }
            (SecretHidden, Lang::Zh) => {
                "为了您的安全,我已隐藏您消息中的卡号、验证码或密码,客服人员也看不到。我们绝不会向您索要密码或验证码,请不要发给任何人。"
            }
            (SecretHidden, Lang::En) => {
                "For your safety I hid the card number, code or password in your message; our staff cannot see it either. We never ask for your password or codes: please don't send them to anyone."
            }
            (SecretHiddenDeleted, Lang::Zh) => {
                "为了您的安全,我已隐藏您消息中的卡号、验证码或密码,并删除了您在公开频道发的那条消息。我们绝不会向您索要密码或验证码,请不要发给任何人。"
            }
            (SecretHiddenDeleted, Lang::En) => {
                "For your safety I hid the card number, code or password in your message and deleted the message from this public channel. We never ask for your password or codes: please don't send them to anyone."
            }
            (SecretHiddenDeleteIt, Lang::Zh) => {
                "为了您的安全,我已隐藏您消息中的卡号、验证码或密码,但我无法删除公开频道里的原消息:请您立即自己删除它。我们绝不会向您索要密码或验证码。"
            }
            (SecretHiddenDeleteIt, Lang::En) => {
                "For your safety I hid the card number, code or password in your message, but I cannot delete it from this public channel: please delete it yourself now. We never ask for your password or codes."
            }
            (SlowDown, Lang::Zh) => "您发送消息太快了。我会保存您的消息,但暂时不会逐条回复;请稍等一会儿,再把问题用一条消息发给我。",
            (SlowDown, Lang::En) => {
                "You're sending messages very fast. I'm keeping them, but I won't answer each one for now; please wait a moment and send your question in one message."
            }
            (TextOnly, Lang::Zh) => "抱歉,我目前只能读取文字消息,请用文字描述您的问题。",
            (TextOnly, Lang::En) => "Sorry, I can only read text messages. Please describe your question in words.",
            (InvalidField, Lang::Zh) => "这个格式好像不太对,请再试一次。",
            (InvalidField, Lang::En) => "That doesn't look quite right, please try again.",
            (Cancelled, Lang::Zh) => "好的,这个请求已经取消,不会转给客服。还有其他问题随时问我。",
            (Cancelled, Lang::En) => "OK, I've called that off; nothing goes to our team. Ask me anything else whenever you like.",
            (Resume, Lang::Zh) => "我们接着处理您刚才的问题:",
            (Resume, Lang::En) => "Now, back to your earlier request:",
            (RatingAsk, Lang::Zh) => {
                "您对本次人工服务满意吗?请打分:1(很不满意)到 5(非常满意)。也可以在分数后面写几句意见,例如“5 很快就解决了”。"
            }
            (RatingAsk, Lang::En) => {
                "How would you rate the help you got? Choose 1 (poor) to 5 (excellent). You can add a few words after the number, e.g. \"5 quick and clear\"."
            }
            (RatingThanks, Lang::Zh) => "感谢您的评价!还有其他问题可以随时问我。",
            (RatingThanks, Lang::En) => "Thank you for your feedback! Ask me anything else at any time.",
            (RatingClosed, Lang::Zh) => "谢谢!这次服务已经评价过了(或评价已结束)。还有其他问题可以随时问我。",
            (RatingClosed, Lang::En) => {
                "Thank you! This conversation has already been rated (or its rating has closed). Ask me anything else at any time."
            }
            (BackToBot, Lang::Zh) => "本次人工服务已结束,您现在回到了智能助手。还有其他问题可以随时问我。",
            (BackToBot, Lang::En) => {
                "Our team has closed this conversation and you're back with the assistant. Ask me anything else at any time."
            }
        }
    }
}

/// What the customer is told when a ticket is opened.
pub fn queued_text(lang: Lang, position: usize) -> String {
    match lang {
        Lang::Zh => format!("已为您转接人工客服,您目前排在第 {position} 位。请稍候,您在这里发送的消息都会转给客服人员。"),
        Lang::En => {
            format!("I've passed you to our support team; you are number {position} in the queue. Anything you write here goes to them.")
        }
    }
}

/// The question asked after a ticket closes: [`Phrase::RatingAsk`] with five buttons, 1 to 5
/// (typing the number picks one).
pub fn rating_prompt(lang: Lang) -> Reply {
    let choices = (1..=5u8).map(|n| Choice { payload: format!("{PAYLOAD_RATE}{n}"), label: rating_label(n) }).collect();
    Reply { text: Phrase::RatingAsk.text(lang).into(), choices }
}

/// A rating button's label: the score and as many stars.
pub fn rating_label(score: u8) -> String {
    format!("{score} {}", "★".repeat(usize::from(score.min(5))))
}

/// The score of a rating button's payload (`rate:4` → 4).
pub fn rating_payload(payload: &str) -> Option<u8> {
    payload.strip_prefix(PAYLOAD_RATE).and_then(|n| n.parse::<u8>().ok()).filter(|n| (1..=5).contains(n))
}

/// A typed rating: a score 1 to 5 alone (`4`, `５`, `4分`, `5 stars`), or followed by a comment
/// after a space or punctuation (`5 很快就解决了`, `4 thanks, fast`). A number running into words
/// (`5月…`, `10`) is not a rating.
pub fn read_rating(text: &str) -> Option<(u8, Option<String>)> {
    let text = text.trim();
    let mut chars = text.chars();
    let first = chars.next()?;
    let score = match first {
        '1'..='5' => first as u8 - b'0',
        '１'..='５' => u8::try_from(u32::from(first) - u32::from('０')).ok()?,
        _ => return None,
    };
    let rest = chars.as_str();
    let rest = ["分", "星", "/5", "/ 5", " stars", " star", " points", " out of 5"]
        .iter()
        .find_map(|unit| rest.strip_prefix(unit))
        .unwrap_or(rest);
    let separator = |c: char| c.is_whitespace() || c.is_ascii_punctuation() || ",。!?、:;~…—".contains(c);
    let mut after = rest.chars();
    match (after.next(), after.next()) {
        (Some(c), _) if !separator(c) => return None,
        // A decimal, a time, an amount: `1.5`, `2:30`, `3,000`.
        (Some(c), Some(d)) if !c.is_whitespace() && d.is_ascii_digit() => return None,
        _ => {}
    }
    let comment: String = rest.trim_start_matches(separator).trim_end().chars().take(MAX_RATING_COMMENT).collect();
    Some((score, (!comment.is_empty()).then_some(comment)))
}

/// What the customer is told when a ticket is opened while nobody is at work: when the team is
/// back (`back`, in words: [`crate::hours::OfficeHours::back_at`]), or that it is closed until
/// further notice (`None`).
pub fn away_text(lang: Lang, back: Option<&str>) -> String {
    match (lang, back) {
        (Lang::Zh, Some(when)) => format!(
            "已为您转接人工客服。现在是非工作时间,客服团队将于{when}回来,届时会在这里回复您。您在这里发送的消息都会转给客服人员。"
        ),
        (Lang::Zh, None) => {
            "已为您转接人工客服。客服团队目前暂停服务,恢复时间另行通知;恢复后会在这里回复您。您在这里发送的消息都会转给客服人员。".into()
        }
        (Lang::En, Some(when)) => format!(
            "I've passed you to our support team. They're away right now: our team is back {when} and will answer you here. Anything you write here goes to them."
        ),
        (Lang::En, None) => "I've passed you to our support team. They're away right now, closed until further notice; they will answer you here as soon as they're back. Anything you write here goes to them.".into(),
    }
}

/// What a customer whose ticket waits while nobody is at work is told when they write again.
pub fn still_away_text(lang: Lang, back: Option<&str>) -> String {
    match (lang, back) {
        (Lang::Zh, Some(when)) => format!("您的消息已转给客服。现在是非工作时间,客服团队将于{when}回来,届时会在这里回复您。"),
        (Lang::Zh, None) => "您的消息已转给客服。客服团队目前暂停服务,恢复时间另行通知;恢复后会在这里回复您。".into(),
        (Lang::En, Some(when)) => format!("Your message is with our support team. They're away right now: our team is back {when} and will reply here."),
        (Lang::En, None) => {
            "Your message is with our support team. They're away right now, closed until further notice; a person will reply here when they're back.".into()
        }
    }
}

/// What a customer still waiting in the queue is told when they write again.
pub fn still_queued_text(lang: Lang, position: usize) -> String {
    match lang {
        Lang::Zh => format!("您的消息已转给客服。目前还在排队,您排在第 {position} 位,客服会在这里回复您。"),
        Lang::En => {
            format!("Your message is with our support team. You're still in the queue, number {position}; a person will reply here.")
        }
    }
}

/// A new ticket's place in the queue, given the tickets waiting per priority (index =
/// `Priority as usize`): behind every ticket of the same or a higher priority.
pub fn queue_position(queued: &[usize; 4], priority: Priority) -> usize {
    queued[priority as usize..].iter().sum::<usize>() + 1
}

/// The language to answer a text in: the text's own, else the platform's hint, else the
/// conversation's. A text's own is told by its script ([`crate::matcher::lang::detect`]), but
/// English only with English words of four letters or more in all: a transaction id
/// (`TX12345`), an amount (`500 USD`) or a bare "ok" does not turn a Chinese conversation English.
pub fn choose_lang(text: Option<&str>, hint: Option<&str>, current: Lang) -> Lang {
    let own = text.and_then(crate::matcher::lang::detect).filter(|&l| l != Lang::En || text.is_some_and(has_english_words));
    own.or_else(|| hint.and_then(Lang::parse)).unwrap_or(current)
}

/// Whether `text` has at least four Latin letters in words without digits.
fn has_english_words(text: &str) -> bool {
    let letters: usize = text
        .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '\''))
        .filter(|w| !w.chars().any(|c| c.is_numeric()))
        .map(|w| w.chars().filter(|&c| crate::matcher::lang::is_latin(c)).count())
        .sum();
    letters >= 4
}

/// One step of the bot's side of a conversation it owns.
pub fn step(state: &DialogueState, lang: Lang, input: Input<'_>, ctx: &Ctx<'_>) -> Step {
    let mut out =
        Step { state: state.clone(), lang, replies: Vec::new(), action: Action::Fallback, intent: None, handoff: None, rating: None };

    // Asked to rate a closed ticket: a score (pressed or typed) is taken once; anything else
    // drops the question and is handled as usual.
    if let Pending::Rating { ticket, .. } = &state.pending {
        let rated = match input {
            Input::Choice(p) => rating_payload(p).map(|score| (score, None)),
            Input::Text(t) => read_rating(t),
        };
        if let Some((score, comment)) = rated {
            out.state.pending = Pending::Nothing;
            out.state.fallbacks = 0;
            out.action = Action::Rated;
            out.rating = Some(Rating { ticket: *ticket, score, comment });
            out.replies.push(Reply::text(Phrase::RatingThanks.text(lang)));
            return out;
        }
    }

    // Typing the number of an offered choice picks it.
    let input = match (input, &state.pending) {
        (Input::Text(t), Pending::Choices { choices }) => match t.trim().parse::<usize>() {
            Ok(n) if (1..=choices.len()).contains(&n) => Input::Choice(&choices[n - 1].payload),
            _ => input,
        },
        _ => input,
    };

    if let Pending::Collecting { intent, fields, retries } = &state.pending
        && let Some(it) = ctx.pack.intent(intent)
    {
        match input {
            Input::Text(t) if is_human_request(t) => {
                return handoff(out, it, fields.clone(), HandoffReason::Intent(it.id.clone()));
            }
            Input::Text(t) if is_cancel_request(t) => {
                out.state.pending = Pending::Nothing;
                out.action = Action::Cancel;
                out.intent = Some(it.id.clone());
                out.replies.push(Reply::text(Phrase::Cancelled.text(lang)));
                return out;
            }
            Input::Text(t) => {
                // What does not look like the detail asked for but is confidently another
                // intent is a new question, not a wrong answer; asking for a person never is an
                // answer.
                let looks_right = next_field(it, fields).is_none_or(|f| f.pattern.is_match(t.trim()));
                let other = match ctx.thresholds.decide(&ctx.matcher.rank(t, 3)) {
                    Decision::Answer(id) if id != it.id => ctx.pack.intent(&id),
                    _ => None,
                };
                return match other {
                    Some(o) if !looks_right || o.id == HUMAN_INTENT => digress(out, it, o, fields.clone(), *retries, ctx),
                    _ => collect(out, it, fields.clone(), *retries, t),
                };
            }
            // A button still on screen from an earlier reply, pressed mid-collection: the same
            // rules as a typed question, so the details collected are not dropped.
            Input::Choice(p) if p == PAYLOAD_HUMAN || p == PAYLOAD_HUMAN_FALLBACK => {
                return handoff(out, it, fields.clone(), HandoffReason::Intent(it.id.clone()));
            }
            Input::Choice(p) => {
                let id = if p == PAYLOAD_START { Some(GREETING_INTENT) } else { p.strip_prefix(PAYLOAD_INTENT) };
                return match id.and_then(|id| ctx.pack.intent(id)) {
                    Some(o) if o.id != it.id => digress(out, it, o, fields.clone(), *retries, ctx),
                    // Its own button, "none of these" or a stale payload: ask for the detail again.
                    _ => ask(out, it, fields.clone(), *retries),
                };
            }
        }
    }
    out.state.pending = Pending::Nothing;

    match input {
        // A rating button pressed again (or after the question lapsed): thanked, not taken.
        Input::Choice(p) if rating_payload(p).is_some() => {
            out.action = Action::Answer;
            out.replies.push(Reply::text(Phrase::RatingClosed.text(lang)));
            out
        }
        Input::Choice(p) if p == PAYLOAD_HUMAN => human(out, HandoffReason::CustomerRequest, ctx),
        Input::Choice(p) if p == PAYLOAD_HUMAN_FALLBACK => human(out, HandoffReason::RepeatedFallback, ctx),
        Input::Choice(p) if p == PAYLOAD_START => match ctx.pack.intent(GREETING_INTENT) {
            Some(it) => answer(out, it, ctx),
            None => fallback(out),
        },
        Input::Choice(p) => match p.strip_prefix(PAYLOAD_INTENT).and_then(|id| ctx.pack.intent(id)) {
            Some(it) => answer(out, it, ctx),
            None => fallback(out),
        },
        Input::Text(t) if is_human_request(t) => human(out, HandoffReason::CustomerRequest, ctx),
        Input::Text(t) => {
            let ranked = ctx.matcher.rank(t, 3);
            match ctx.thresholds.decide(&ranked) {
                Decision::Answer(id) => match ctx.pack.intent(&id) {
                    Some(it) => answer(out, it, ctx),
                    None => fallback(out),
                },
                Decision::Clarify(ids) => {
                    let choices: Vec<Choice> = ids
                        .iter()
                        .filter_map(|id| ctx.pack.intent(id))
                        .filter(|it| !it.small_talk)
                        .map(|it| intent_choice(it, lang))
                        .collect();
                    if choices.is_empty() {
                        // Only small talk came close ("thx bye"): its answer is harmless, give it.
                        return match ids.first().and_then(|id| ctx.pack.intent(id)) {
                            Some(it) if it.small_talk => answer(out, it, ctx),
                            _ => fallback(out),
                        };
                    }
                    let mut all = choices;
                    all.push(Choice { payload: PAYLOAD_NONE.into(), label: Phrase::NoneButton.text(lang).into() });
                    out.state.fallbacks = 0;
                    out.action = Action::Clarify;
                    out.replies.push(Reply { text: Phrase::Clarify.text(lang).into(), choices: all.clone() });
                    out.state.pending = Pending::Choices { choices: all };
                    out
                }
                Decision::Fallback => fallback(out),
            }
        }
    }
}

fn intent_choice(it: &Intent, lang: Lang) -> Choice {
    let label = it.text(lang).map_or_else(|| it.id.clone(), |t| t.label.clone());
    Choice { payload: format!("{PAYLOAD_INTENT}{}", it.id), label }
}

fn fallback(mut out: Step) -> Step {
    let lang = out.lang;
    out.action = Action::Fallback;
    out.state.fallbacks += 1;
    if out.state.fallbacks >= 2 {
        let choices = vec![Choice { payload: PAYLOAD_HUMAN_FALLBACK.into(), label: Phrase::HumanButton.text(lang).into() }];
        out.replies.push(Reply { text: Phrase::FallbackOffer.text(lang).into(), choices: choices.clone() });
        out.state.pending = Pending::Choices { choices };
    } else {
        out.replies.push(Reply::text(Phrase::Fallback.text(lang)));
    }
    out
}

fn human(out: Step, reason: HandoffReason, ctx: &Ctx<'_>) -> Step {
    // The pack's human_agent intent, if any, gives the acknowledgement and priority.
    match ctx.pack.intent(HUMAN_INTENT) {
        Some(it) => {
            let mut out = out;
            if let Some(t) = it.text(out.lang) {
                out.replies.push(Reply::text(ctx.pack.render(&t.answer)));
            }
            out.intent = Some(it.id.clone());
            handoff(out, it, Vec::new(), reason)
        }
        None => open(out, reason, Priority::Normal, Vec::new()),
    }
}

fn answer(out: Step, it: &Intent, ctx: &Ctx<'_>) -> Step {
    answer_with(out, it, Vec::new(), ctx)
}

/// Answers `it`; an intent that leads to a person starts its flow with `fields` already known.
fn answer_with(mut out: Step, it: &Intent, fields: Vec<Field>, ctx: &Ctx<'_>) -> Step {
    let lang = out.lang;
    out.state.fallbacks = 0;
    out.intent = Some(it.id.clone());
    out.action = Action::Answer;
    let text = it.text(lang).map(|t| ctx.pack.render(&t.answer)).unwrap_or_default();
    if it.handoff == HandoffPolicy::Never {
        let choices: Vec<Choice> = it.follow_ups.iter().filter_map(|id| ctx.pack.intent(id)).map(|f| intent_choice(f, lang)).collect();
        if !choices.is_empty() {
            out.state.pending = Pending::Choices { choices: choices.clone() };
        }
        out.replies.push(Reply { text, choices });
        return out;
    }
    out.replies.push(Reply::text(text));
    collect_or_handoff(out, it, fields)
}

/// Asks for `it`'s next missing detail, or opens its ticket when none is missing.
fn collect_or_handoff(out: Step, it: &Intent, fields: Vec<Field>) -> Step {
    if next_field(it, &fields).is_some() { ask(out, it, fields, 0) } else { handoff(out, it, fields, HandoffReason::Intent(it.id.clone())) }
}

/// The first detail `it` collects that `fields` does not have yet.
fn next_field<'a>(it: &'a Intent, fields: &[Field]) -> Option<&'a CollectField> {
    it.collect.iter().find(|c| !fields.iter().any(|f| f.name == c.name))
}

fn ask(mut out: Step, it: &Intent, fields: Vec<Field>, retries: u32) -> Step {
    let lang = out.lang;
    out.action = Action::Collect;
    out.intent = Some(it.id.clone());
    if let Some(f) = next_field(it, &fields) {
        let q = f.questions.get(&lang).or_else(|| f.questions.values().next()).cloned().unwrap_or_else(|| f.name.clone());
        out.replies.push(Reply::text(q));
    }
    out.state.pending = Pending::Collecting { intent: it.id.clone(), fields, retries };
    out
}

/// A question asked while `current`'s details are being collected. Asking for a person hands
/// off with what was collected; any other intent that leads to a person starts its own flow,
/// taking the details collected so far;
/// goodbye ends the collection; any other question the bot answers itself is answered and the
/// pending detail asked for again.
fn digress(out: Step, current: &Intent, other: &Intent, fields: Vec<Field>, retries: u32, ctx: &Ctx<'_>) -> Step {
    if other.id == HUMAN_INTENT {
        return handoff(out, current, fields, HandoffReason::Intent(current.id.clone()));
    }
    if other.handoff != HandoffPolicy::Never {
        // Its own flow, with the details collected so far: a detail it asks for too is not
        // asked again, and the others go on its ticket.
        return answer_with(out, other, fields, ctx);
    }
    if other.id == GOODBYE_INTENT {
        let mut out = out;
        out.state.pending = Pending::Nothing;
        return answer(out, other, ctx);
    }
    let lang = out.lang;
    let mut out = answer(out, other, ctx);
    // The answer's follow-up buttons would replace the pending question: leave them out.
    out.replies.iter_mut().for_each(|r| r.choices.clear());
    let mut out = ask(out, current, fields, retries);
    if let Some(question) = out.replies.last_mut() {
        question.text = format!("{} {}", Phrase::Resume.text(lang), question.text);
    }
    out.action = Action::Answer;
    out.intent = Some(other.id.clone());
    out
}

fn collect(mut out: Step, it: &Intent, mut fields: Vec<Field>, retries: u32, text: &str) -> Step {
    let Some(field) = next_field(it, &fields) else {
        return handoff(out, it, fields, HandoffReason::Intent(it.id.clone()));
    };
    let value = text.trim();
    if !field.pattern.is_match(value) {
        if retries < 2 {
            out.replies.push(Reply::text(Phrase::InvalidField.text(out.lang)));
            return ask(out, it, fields, retries + 1);
        }
        // Third try: keep what the customer said and let a person sort it out.
        fields.push(Field { name: field.name.clone(), value: format!("{value} (unverified)") });
    } else {
        fields.push(Field { name: field.name.clone(), value: value.to_string() });
    }
    collect_or_handoff(out, it, fields)
}

fn handoff(out: Step, it: &Intent, fields: Vec<Field>, reason: HandoffReason) -> Step {
    // One reason per cause: the pack's "talk to a person" intent is the customer asking for one,
    // however they phrased it ("转人工" or "human please").
    let reason = match reason {
        HandoffReason::Intent(id) if id == HUMAN_INTENT => HandoffReason::CustomerRequest,
        other => other,
    };
    let mut out = open(out, reason, it.priority, fields);
    out.intent = Some(it.id.clone());
    out
}

/// Opens a ticket. The customer's place in the queue is not known here: the engine adds that
/// message ([`queued_text`]) after reading the queue.
fn open(mut out: Step, reason: HandoffReason, priority: Priority, fields: Vec<Field>) -> Step {
    out.action = Action::Handoff;
    out.state = out.state.restart();
    out.handoff = Some(HandoffRequest { reason, priority, fields });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_words_are_recognised_and_questions_are_not() {
        for t in ["算了", "不用了!", " Cancel ", "never mind.", "ok forget it", "取消"] {
            assert!(is_cancel_request(t), "{t}");
        }
        for t in ["how do I cancel a transfer", "取消转账怎么操作", "stop payment on my card", ""] {
            assert!(!is_cancel_request(t), "{t}");
        }
    }

    #[test]
    fn human_words_are_recognised_with_noise() {
        for t in ["人工", "转人工!", " HUMAN ", "Agent?", "please human", "轉人工", "talk to a person"] {
            assert!(is_human_request(t), "{t}");
        }
        for t in ["how do I reach a human being about my card", "我的账号被锁了", ""] {
            assert!(!is_human_request(t), "{t}");
        }
    }

    #[test]
    fn ratings_are_read_from_a_score_and_an_optional_comment() {
        assert_eq!(read_rating("4"), Some((4, None)));
        assert_eq!(read_rating(" ５ "), Some((5, None)));
        assert_eq!(read_rating("4分"), Some((4, None)));
        assert_eq!(read_rating("5 stars"), Some((5, None)));
        assert_eq!(read_rating("3/5!"), Some((3, None)));
        assert_eq!(read_rating("5 很快就解决了"), Some((5, Some("很快就解决了".into()))));
        assert_eq!(read_rating("4 thanks, fast"), Some((4, Some("thanks, fast".into()))));
        assert_eq!(read_rating("2 - too slow."), Some((2, Some("too slow.".into()))));
        assert_eq!(read_rating("5,很好"), Some((5, Some("很好".into()))));
        let long = format!("1 {}", "x".repeat(MAX_RATING_COMMENT + 10));
        assert_eq!(read_rating(&long).and_then(|(_, c)| c).map(|c| c.chars().count()), Some(MAX_RATING_COMMENT));
        for not in ["0", "6", "10", "5月转账失败", "1.5", "2:30", "3,000 yuan", "my transfer failed", "", "four"] {
            assert_eq!(read_rating(not), None, "{not}");
        }
        assert_eq!(rating_payload("rate:4"), Some(4));
        assert_eq!(rating_payload("rate:9"), None);
        assert_eq!(rating_payload("intent:rate"), None);
        let prompt = rating_prompt(Lang::En);
        assert_eq!(prompt.choices.iter().map(|c| rating_payload(&c.payload)).collect::<Vec<_>>(), (1..=5).map(Some).collect::<Vec<_>>());
        assert_eq!(prompt.choices[3].label, "4 ★★★★");
    }

    #[test]
    fn stored_states_of_earlier_versions_still_parse_and_a_rating_round_trips() {
        let old: DialogueState = serde_json::from_str(r#"{"fallbacks":1,"pending":{"kind":"nothing"}}"#).unwrap();
        assert_eq!((old.fallbacks, old.pending), (1, Pending::Nothing));
        let choices: DialogueState =
            serde_json::from_str(r#"{"fallbacks":0,"pending":{"kind":"choices","choices":[{"payload":"none","label":"x"}]}}"#).unwrap();
        assert!(matches!(choices.pending, Pending::Choices { .. }));
        let rating = DialogueState { pending: Pending::Rating { ticket: 7, asked_at: 1_000 }, ..DialogueState::default() };
        let json = serde_json::to_string(&rating).unwrap();
        assert!(json.contains(r#""kind":"rating""#), "{json}");
        assert_eq!(serde_json::from_str::<DialogueState>(&json).unwrap(), rating);
        let bare: DialogueState = serde_json::from_str(r#"{"fallbacks":0,"pending":{"kind":"rating","ticket":7}}"#).unwrap();
        assert_eq!(bare.pending, Pending::Rating { ticket: 7, asked_at: 0 });
    }

    #[test]
    fn the_away_message_says_when_the_team_is_back_or_that_it_is_closed() {
        assert!(away_text(Lang::En, Some("Monday 09:00 (Asia/Shanghai)")).contains("our team is back Monday 09:00 (Asia/Shanghai)"));
        assert!(away_text(Lang::Zh, Some("周一 09:00(Asia/Shanghai)")).contains("将于周一 09:00(Asia/Shanghai)回来"));
        assert!(away_text(Lang::En, None).contains("closed until further notice"));
        assert!(away_text(Lang::Zh, None).contains("恢复时间另行通知"));
        assert!(still_away_text(Lang::En, Some("today at 13:00 (UTC)")).contains("back today at 13:00 (UTC)"));
    }

    #[test]
    fn queue_position_counts_same_or_higher_priority() {
        let queued = [5usize, 2, 1, 1];
        assert_eq!(queue_position(&queued, Priority::Urgent), 2);
        assert_eq!(queue_position(&queued, Priority::High), 3);
        assert_eq!(queue_position(&queued, Priority::Normal), 5);
        assert_eq!(queue_position(&queued, Priority::Low), 10);
    }

    #[test]
    fn language_prefers_text_then_hint_then_current() {
        assert_eq!(choose_lang(Some("我的账号"), Some("en"), Lang::En), Lang::Zh);
        assert_eq!(choose_lang(Some("12345"), Some("zh-hans"), Lang::En), Lang::Zh);
        assert_eq!(choose_lang(Some("12345"), None, Lang::Zh), Lang::Zh);
        assert_eq!(choose_lang(Some("hello"), Some("zh"), Lang::Zh), Lang::En);
        // Codes, amounts and a bare "ok" keep a Chinese conversation Chinese.
        for text in ["TX12345", "OKP-7731", "500 USD", "ok", "OK!"] {
            assert_eq!(choose_lang(Some(text), None, Lang::Zh), Lang::Zh, "{text}");
        }
        assert_eq!(choose_lang(Some("ok thanks"), None, Lang::Zh), Lang::En);
        assert_eq!(choose_lang(Some("hi"), None, Lang::En), Lang::En);
        assert_eq!(choose_lang(Some("hi"), Some("zh"), Lang::En), Lang::Zh, "a platform hint beats a bare greeting");
    }
}
