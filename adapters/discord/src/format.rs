//! Text for Discord: escaping markdown so customer and agent text shows as written (and cannot
//! mention anyone), cutting messages at Discord's 2,000-character limit, the ticket summary embed
//! and the lines posted in ticket threads.

use serenity::all::{ButtonStyle, Colour, CreateActionRow, CreateAllowedMentions, CreateButton, CreateEmbed};
use switchboard_core::channel::{TicketView, chars_len, one_line, split_message};
use switchboard_core::types::{Author, Choice, DeskNotice, HandoffReason, Priority};

/// Discord's limit on a message's content, in characters.
pub const MESSAGE_LIMIT: usize = 2000;
/// Room for the mention that starts a reply in a support channel (`<@` 20 digits `> `).
pub const MENTION_ROOM: usize = 24;
/// Room for the start of a line in a ticket's thread (`💬 **name** → customer: `, the name cut
/// at 100 characters and escaped).
pub const NOTICE_PREFIX_ROOM: usize = 250;
/// Discord's limit on a thread's name.
pub const THREAD_NAME_LIMIT: usize = 100;
/// Discord's limit on a button's `custom_id`.
pub const CUSTOM_ID_LIMIT: usize = 100;
/// Discord's limit on a button's label.
const BUTTON_LABEL_LIMIT: usize = 80;

/// Allowed mentions for everything the bot sends: nobody, no role, not `@everyone`.
pub fn no_mentions() -> CreateAllowedMentions {
    CreateAllowedMentions::new().replied_user(false)
}

/// `text` with Discord markdown escaped, so it shows as written: emphasis, code, spoilers,
/// strike-through, masked links, mentions (`<@…>`, `@everyone`), and at a line's start headings,
/// quotes and lists. Web addresses are left whole so they stay clickable.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        escape_line(line, &mut out);
    }
    out
}

fn escape_line(line: &str, out: &mut String) {
    // Block syntax counts only before the first non-space character (or after leading digits: "1.").
    let mut line_start = true;
    let mut digits = false;
    let mut word_start = true;
    let mut in_url = false;
    for (i, c) in line.char_indices() {
        if c.is_whitespace() {
            out.push(c);
            word_start = true;
            in_url = false;
            if digits {
                line_start = false;
                digits = false;
            }
            continue;
        }
        if word_start {
            let rest = &line[i..];
            in_url = rest.starts_with("https://") || rest.starts_with("http://");
            word_start = false;
        }
        if in_url {
            out.push(c);
            line_start = false;
            continue;
        }
        let escape = match c {
            '\\' | '*' | '_' | '~' | '`' | '|' | '<' | '>' | '@' | '[' | ']' => true,
            '#' | '-' | '+' => line_start,
            '.' | ')' => line_start && digits,
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
        if c.is_ascii_digit() && (line_start || digits) {
            digits = true;
            line_start = true;
        } else if !matches!(c, '#' | '-') {
            // "-#" (subtext) and "##" keep the line start open for the next character.
            line_start = false;
            digits = false;
        }
    }
}

/// How long `text` is once escaped, as Discord counts.
pub fn escaped_len(text: &str) -> usize {
    chars_len(&escape(text))
}

/// `text` escaped and cut into messages within the limit, the first one starting with `prefix`
/// (markdown of ours, not escaped). Pieces are cut before escaping, so an escape is never split.
pub fn pieces(prefix: &str, text: &str) -> Vec<String> {
    let room = MESSAGE_LIMIT.saturating_sub(chars_len(prefix)).max(1);
    split_message(text, room, escaped_len)
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let body = escape(&p);
            let body = if chars_len(&body) > room { body.chars().take(room).collect() } else { body };
            if i == 0 { format!("{prefix}{body}") } else { body }
        })
        .collect()
}

/// The quick-reply choices as rows of buttons (five per row, at most five rows). Choices whose
/// payload does not fit in a `custom_id` are left out.
pub fn buttons(choices: &[Choice]) -> Vec<CreateActionRow> {
    let mut seen: Vec<&str> = Vec::new();
    let buttons: Vec<CreateButton> = choices
        .iter()
        .filter(|c| {
            let fits = !c.payload.is_empty() && chars_len(&c.payload) <= CUSTOM_ID_LIMIT && !c.label.trim().is_empty();
            if !fits {
                tracing::warn!(
                    len = c.payload.len(),
                    "a quick-reply button without a label or with a payload too long for Discord; left out"
                );
            }
            // Discord refuses a message whose buttons share an id, so a repeated one is left out.
            let new = !seen.contains(&c.payload.as_str());
            seen.push(&c.payload);
            fits && new
        })
        .take(25)
        .map(|c| CreateButton::new(c.payload.clone()).label(one_line(&c.label, BUTTON_LABEL_LIMIT)).style(ButtonStyle::Secondary))
        .collect();
    buttons.chunks(5).map(|row| CreateActionRow::Buttons(row.to_vec())).collect()
}

fn reason_text(reason: &HandoffReason) -> String {
    match reason {
        HandoffReason::Intent(id) => format!("intent `{}`", id.replace('`', "'")),
        HandoffReason::RepeatedFallback => "not understood twice".into(),
        HandoffReason::CustomerRequest => "asked for a person".into(),
    }
}

fn priority_colour(p: Priority) -> Colour {
    match p {
        Priority::Urgent => Colour::RED,
        Priority::High => Colour::ORANGE,
        Priority::Normal => Colour::BLUE,
        Priority::Low => Colour::LIGHT_GREY,
    }
}

/// Cuts already escaped text to `max` characters without leaving a dangling backslash.
fn cut(text: &str, max: usize) -> String {
    if chars_len(text) <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    let trailing = s.chars().rev().take_while(|&c| c == '\\').count();
    if trailing % 2 == 1 {
        s.pop();
    }
    s.push('…');
    s
}

/// The embed that opens a ticket's thread: channel, customer, language, reason, priority, the
/// collected details and the last messages.
pub fn summary_embed(view: &TicketView) -> CreateEmbed {
    let t = &view.ticket;
    let mut embed = CreateEmbed::new()
        .title(cut(&escape(&one_line(&format!("Ticket #{} — {}", t.id, t.customer_name), 250)), 256))
        .colour(priority_colour(t.priority))
        .field("Channel", escape(&t.key.channel), true)
        .field("Customer", cut(&format!("{} ({})", escape(&one_line(&t.customer_name, 200)), escape(&t.customer_id)), 1024), true)
        .field("Language", view.language(), true)
        .field("Reason", reason_text(&t.reason), true)
        .field("Priority", t.priority.as_str(), true);
    if !t.fields.is_empty() {
        let details: Vec<String> =
            t.fields.iter().map(|f| format!("**{}**: {}", escape(&f.name), escape(&one_line(&f.value, 200)))).collect();
        embed = embed.field("Details", cut(&details.join("\n"), 1024), false);
    }
    if !view.recent.is_empty() {
        let lines: Vec<String> = view
            .recent
            .iter()
            .map(|e| {
                let who = match &e.author {
                    Author::Customer => "customer",
                    Author::Bot => "bot",
                    Author::Agent(_) => "agent",
                };
                format!("**{who}:** {}", escape(&one_line(&e.text, 300)))
            })
            .collect();
        embed = embed.description(cut(&format!("**Last messages**\n{}", lines.join("\n")), 3500));
    }
    embed.footer(serenity::all::CreateEmbedFooter::new("Write here to answer the customer. /claim /release /note /close"))
}

/// The line posted in a ticket's thread for a notice (`None` for [`DeskNotice::Opened`], which is
/// the summary embed), already escaped and cut into messages.
pub fn notice_pieces(view: &TicketView, notice: &DeskNotice) -> Option<Vec<String>> {
    let name = |n: &str| escape(&one_line(n, 100));
    let (prefix, text) = match notice {
        DeskNotice::Opened => return None,
        DeskNotice::CustomerMessage { text } => (format!("**{}:** ", name(&view.ticket.customer_name)), text.as_str()),
        DeskNotice::AgentReply { agent, text } => (format!("💬 **{}** → customer: ", name(agent)), text.as_str()),
        DeskNotice::Note { agent, text } => (format!("📝 Note by **{}**: ", name(agent)), text.as_str()),
        DeskNotice::Claimed { agent } => (format!("🙋 **{}** claimed this ticket.", name(agent)), ""),
        DeskNotice::Released { agent } => (format!("↩️ **{}** put this ticket back in the queue.", name(agent)), ""),
        DeskNotice::Closed { agent } => (format!("✅ **{}** closed this ticket; the customer is back with the bot.", name(agent)), ""),
        DeskNotice::DeliveryFailed { reason } => ("⚠️ A message could not be delivered to the customer: ".to_string(), reason.as_str()),
        DeskNotice::Blocked { agent, until, reason } => (
            format!(
                "🚫 **{}** blocked the customer{}. Their messages are kept but not answered.",
                name(agent),
                escape(&switchboard_core::guard::block_terms(*until, reason))
            ),
            "",
        ),
        DeskNotice::Unblocked { agent } => (format!("🔓 **{}** unblocked the customer.", name(agent)), ""),
        DeskNotice::Rated { score, comment: None } => (format!("⭐ The customer rated the help **{score}/5**."), ""),
        DeskNotice::Rated { score, comment: Some(comment) } => {
            (format!("⭐ The customer rated the help **{score}/5**: "), comment.as_str())
        }
    };
    Some(pieces(&prefix, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markdown_and_mentions() {
        assert_eq!(escape("**bold** _it_ `code` ||spoiler|| ~~s~~"), r"\*\*bold\*\* \_it\_ \`code\` \|\|spoiler\|\| \~\~s\~\~");
        assert_eq!(escape("@everyone <@123> <@&9>"), r"\@everyone \<\@123\> \<\@&9\>");
        assert_eq!(escape("# title\n> quote\n- item\n1. first\n-# small"), "\\# title\n\\> quote\n\\- item\n1\\. first\n\\-\\# small");
        assert_eq!(escape("a - b # c 1. d"), "a - b # c 1. d");
        assert_eq!(escape("[link](https://x.example/a_b*c)"), r"\[link\](https://x.example/a\_b\*c)");
        assert_eq!(escape("see https://x.example/a_b*c now"), "see https://x.example/a_b*c now");
        assert_eq!(escape("我的账号被锁了"), "我的账号被锁了");
        assert_eq!(escape("100 yuan"), "100 yuan");
    }

    #[test]
    fn pieces_stay_within_the_limit_with_the_prefix() {
        let text = "*".repeat(3000);
        let parts = pieces("<@1> ", &text);
        assert!(parts.len() >= 3);
        assert!(parts.iter().all(|p| chars_len(p) <= MESSAGE_LIMIT));
        assert!(parts[0].starts_with("<@1> \\*"));
        let joined: String = parts.concat().replace("<@1> ", "").replace('\\', "");
        assert_eq!(joined, text);
        let long = "字".repeat(4500);
        let parts = pieces("", &long);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), long);
    }

    /// A ticket of a Discord customer named `name`, for rendering.
    fn view(id: i64, name: &str, status: switchboard_core::types::TicketStatus) -> TicketView {
        use switchboard_core::Lang;
        use switchboard_core::types::{ConversationKey, Ticket};
        let ticket = Ticket {
            id,
            key: ConversationKey { channel: "discord".into(), chat: "1".into() },
            conversation_id: 1,
            customer_id: "1".into(),
            customer_name: name.into(),
            lang: Lang::En,
            status,
            priority: Priority::Normal,
            reason: HandoffReason::CustomerRequest,
            fields: Vec::new(),
            agent: None,
            created_at: 0,
            updated_at: 0,
        };
        TicketView { ticket, recent: Vec::new() }
    }

    #[test]
    fn text_within_the_exported_limits_is_one_message() {
        use switchboard_core::types::TicketStatus;
        // The worst case: every character of a 100-character name and of the text escaped.
        let name = "*".repeat(150);
        let text = "_".repeat(crate::DESK_TEXT_LIMIT.max / 2);
        assert_eq!((crate::DESK_TEXT_LIMIT.measure)(&text), crate::DESK_TEXT_LIMIT.max);
        let view = view(1, &name, TicketStatus::Queued);
        let notices = [
            DeskNotice::CustomerMessage { text: text.clone() },
            DeskNotice::AgentReply { agent: name.clone(), text: text.clone() },
            DeskNotice::Note { agent: name.clone(), text: text.clone() },
            DeskNotice::DeliveryFailed { reason: text.clone() },
        ];
        for n in &notices {
            let parts = notice_pieces(&view, n).unwrap_or_default();
            assert_eq!(parts.len(), 1, "{n:?}");
            assert!(chars_len(&parts[0]) <= MESSAGE_LIMIT);
        }
        let reply = "*".repeat(crate::TEXT_LIMIT.max / 2);
        assert_eq!(pieces(&format!("<@{}> ", u64::MAX), &reply).len(), 1);
    }

    #[test]
    fn a_rating_shows_its_score_and_escaped_comment() {
        let view = view(3, "Mei", switchboard_core::types::TicketStatus::Closed);
        let rated = DeskNotice::Rated { score: 5, comment: Some("**great** @everyone".into()) };
        assert_eq!(notice_pieces(&view, &rated).unwrap(), ["⭐ The customer rated the help **5/5**: \\*\\*great\\*\\* \\@everyone"]);
        let bare = DeskNotice::Rated { score: 1, comment: None };
        assert_eq!(notice_pieces(&view, &bare).unwrap(), ["⭐ The customer rated the help **1/5**."]);
    }

    #[test]
    fn buttons_come_in_rows_of_five() {
        let choices: Vec<Choice> = (0..7).map(|i| Choice { payload: format!("p{i}"), label: format!("L{i}") }).collect();
        assert_eq!(buttons(&choices).len(), 2);
        let too_long = Choice { payload: "x".repeat(101), label: "x".into() };
        assert!(buttons(&[too_long]).is_empty());
        let unlabelled = Choice { payload: "p".into(), label: " ".into() };
        assert!(buttons(&[unlabelled]).is_empty());
        let twice: Vec<Choice> = (0..3).map(|i| Choice { payload: "same".into(), label: format!("L{i}") }).collect();
        let rows = buttons(&twice);
        assert_eq!(rows.len(), 1);
        assert!(matches!(&rows[0], CreateActionRow::Buttons(b) if b.len() == 1), "one button per id");
    }

    #[test]
    fn cut_never_leaves_a_dangling_escape() {
        assert_eq!(cut(r"ab\*cd", 4), "ab…");
        assert_eq!(cut("abc", 5), "abc");
    }
}
