//! The Discord objects the fake sends, shaped as the API documents them (and as serenity 0.12
//! reads them; the tests below check that).

use serde_json::{Value, json};

use super::ChannelKind;
use super::{APPLICATION_ID, BOT_ID, FakeChannel, FakeUser, GUILD_ID};

/// The current time as Discord writes it.
pub(super) fn now() -> String {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    serenity::model::Timestamp::from_millis(ms).map_or_else(|_| "2025-01-01T00:00:00.000Z".to_string(), |t| t.to_string())
}

pub(super) fn user(id: u64, name: &str, bot: bool) -> Value {
    json!({
        "id": id.to_string(),
        "username": name,
        "discriminator": "0",
        "global_name": name,
        "avatar": null,
        "bot": bot,
        "public_flags": 0
    })
}

pub(super) fn member(user: &FakeUser, with_user: bool) -> Value {
    let mut m = json!({
        "nick": null,
        "roles": user.roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        "joined_at": now(),
        "deaf": false,
        "mute": false,
        "flags": 0,
        "pending": false,
        "permissions": "0"
    });
    if with_user {
        m["user"] = self::user(user.id, &user.name, false);
    }
    m
}

/// A MESSAGE_CREATE payload (or a message object).
#[allow(clippy::too_many_arguments)]
pub(super) fn message(
    id: u64,
    channel: u64,
    guild: Option<u64>,
    author: Value,
    content: &str,
    mentions: Vec<Value>,
    roles: &[u64],
    attachment: bool,
) -> Value {
    let attachments = if attachment {
        vec![json!({
            "id": (id + 1).to_string(),
            "filename": "photo.jpg",
            "size": 1234,
            "url": "https://cdn.discordapp.invalid/photo.jpg",
            "proxy_url": "https://media.discordapp.invalid/photo.jpg",
            "content_type": "image/jpeg",
            "height": 10,
            "width": 10
        })]
    } else {
        Vec::new()
    };
    let mut m = json!({
        "id": id.to_string(),
        "channel_id": channel.to_string(),
        "author": author,
        "content": content,
        "timestamp": now(),
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": mentions,
        "mention_roles": [],
        "attachments": attachments,
        "embeds": [],
        "pinned": false,
        "type": 0,
        "flags": 0,
        "components": []
    });
    if let Some(g) = guild {
        m["guild_id"] = json!(g.to_string());
        m["member"] = json!({
            "roles": roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            "joined_at": now(),
            "deaf": false,
            "mute": false,
            "flags": 0
        });
    }
    m
}

/// An INTERACTION_CREATE payload: `kind` 2 (slash command) or 3 (button).
#[allow(clippy::too_many_arguments)]
pub(super) fn interaction(
    id: u64,
    kind: u8,
    token: &str,
    channel: u64,
    guild: Option<u64>,
    from: &FakeUser,
    data: Value,
    message: Option<Value>,
) -> Value {
    let mut i = json!({
        "id": id.to_string(),
        "application_id": APPLICATION_ID.to_string(),
        "type": kind,
        "data": data,
        "channel_id": channel.to_string(),
        "token": token,
        "version": 1,
        "app_permissions": "0",
        "locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {},
        "attachment_size_limit": 10_485_760
    });
    match guild {
        Some(g) => {
            i["guild_id"] = json!(g.to_string());
            i["guild_locale"] = json!("en-US");
            i["member"] = member(from, true);
            i["context"] = json!(0);
        }
        None => {
            i["user"] = user(from.id, &from.name, false);
            i["context"] = json!(1);
        }
    }
    if let Some(m) = message {
        i["message"] = m;
    }
    i
}

/// A channel object.
pub(super) fn channel(c: &FakeChannel, users: &dyn Fn(u64) -> Value) -> Value {
    match &c.kind {
        ChannelKind::Text => json!({
            "id": c.id.to_string(),
            "type": 0,
            "guild_id": GUILD_ID.to_string(),
            "name": c.name,
            "position": 0,
            "permission_overwrites": [],
            "nsfw": false,
            "parent_id": null,
            "topic": null,
            "last_message_id": null,
            "rate_limit_per_user": 0,
            "flags": 0
        }),
        ChannelKind::Dm { user } => json!({
            "id": c.id.to_string(),
            "type": 1,
            "last_message_id": null,
            "recipients": [users(*user)],
            "flags": 0
        }),
        ChannelKind::Thread { parent } => json!({
            "id": c.id.to_string(),
            "type": 11,
            "guild_id": GUILD_ID.to_string(),
            "parent_id": parent.to_string(),
            "owner_id": BOT_ID.to_string(),
            "name": c.name,
            "last_message_id": null,
            "rate_limit_per_user": 0,
            "message_count": 0,
            "member_count": 1,
            "thread_metadata": {
                "archived": c.archived,
                "auto_archive_duration": 10080,
                "archive_timestamp": now(),
                "locked": c.locked,
                "create_timestamp": now()
            },
            "total_message_sent": 0,
            "flags": 0
        }),
    }
}

/// The READY payload.
pub(super) fn ready(session: &str, resume_url: &str) -> Value {
    let mut me = user(BOT_ID, "switchboard", true);
    me["verified"] = json!(true);
    me["mfa_enabled"] = json!(false);
    me["flags"] = json!(0);
    json!({
        "v": 10,
        "user": me,
        "guilds": [{ "id": GUILD_ID.to_string(), "unavailable": true }],
        "session_id": session,
        "resume_gateway_url": resume_url,
        "shard": [0, 1],
        "application": { "id": APPLICATION_ID.to_string(), "flags": 0 }
    })
}

/// A registered command, from what the bot sent.
pub(super) fn command(id: u64, sent: &Value) -> Value {
    let mut c = sent.clone();
    c["id"] = json!(id.to_string());
    c["application_id"] = json!(APPLICATION_ID.to_string());
    c["guild_id"] = json!(GUILD_ID.to_string());
    c["version"] = json!(id.to_string());
    if c.get("type").is_none() {
        c["type"] = json!(1);
    }
    if c.get("default_member_permissions").is_none() {
        c["default_member_permissions"] = Value::Null;
    }
    c
}

#[cfg(test)]
mod tests {
    use serenity::all::{
        BotGateway, Channel, Command, CommandInteraction, ComponentInteraction, CurrentUser, GuildChannel, Interaction, Message, Ready,
    };

    use super::*;

    fn thread() -> FakeChannel {
        FakeChannel { id: 5, kind: ChannelKind::Thread { parent: 4 }, name: "t".into(), archived: true, locked: true }
    }

    #[test]
    fn serenity_reads_what_the_fake_sends() -> Result<(), serde_json::Error> {
        let u = FakeUser::new(7, "ann").with_role(9);
        let m = message(1, 2, Some(3), user(7, "ann", false), "hi", vec![user(BOT_ID, "bot", true)], &[9], true);
        let m: Message = serde_json::from_value(m)?;
        assert_eq!(m.member.map(|m| m.roles.len()), Some(1));
        assert_eq!(m.attachments.len(), 1);
        let dm: Message = serde_json::from_value(message(1, 2, None, user(7, "ann", false), "hi", vec![], &[], false))?;
        assert!(dm.guild_id.is_none());

        let click = interaction(
            10,
            3,
            "tok",
            2,
            None,
            &u,
            json!({"custom_id": "x", "component_type": 2}),
            Some(message(1, 2, None, user(BOT_ID, "b", true), "", vec![], &[], false)),
        );
        let click: ComponentInteraction = serde_json::from_value(click.clone())?;
        assert_eq!(click.user.id.get(), 7);
        assert_eq!(click.data.custom_id, "x");
        let cmd = interaction(
            11,
            2,
            "tok",
            2,
            Some(3),
            &u,
            json!({"id": "1", "name": "note", "type": 1, "options": [{"name": "text", "type": 3, "value": "v"}, {"name": "ticket", "type": 4, "value": 3}]}),
            None,
        );
        let parsed: Interaction = serde_json::from_value(cmd.clone())?;
        assert!(matches!(parsed, Interaction::Command(_)));
        let cmd: CommandInteraction = serde_json::from_value(cmd)?;
        assert_eq!(cmd.user.id.get(), 7);
        assert_eq!(cmd.member.map(|m| m.roles.len()), Some(1));
        assert_eq!(cmd.data.options.len(), 2);

        let th: GuildChannel = serde_json::from_value(channel(&thread(), &|id| user(id, "u", false)))?;
        assert_eq!(th.thread_metadata.map(|m| m.locked), Some(true));
        let text = FakeChannel { id: 4, kind: ChannelKind::Text, name: "staff".into(), archived: false, locked: false };
        let ch: Channel = serde_json::from_value(channel(&text, &|id| user(id, "u", false)))?;
        assert!(matches!(ch, Channel::Guild(g) if g.guild_id.get() == GUILD_ID));
        let dmc = FakeChannel { id: 6, kind: ChannelKind::Dm { user: 7 }, name: String::new(), archived: false, locked: false };
        let ch: Channel = serde_json::from_value(channel(&dmc, &|id| user(id, "u", false)))?;
        assert!(matches!(ch, Channel::Private(_)));

        let r: Ready = serde_json::from_value(ready("s", "ws://x"))?;
        assert_eq!(r.application.id.get(), APPLICATION_ID);
        let me: CurrentUser = serde_json::from_value(user(BOT_ID, "switchboard", true))?;
        assert!(me.bot);
        let c: Command = serde_json::from_value(command(12, &json!({"name": "queue", "description": "d"})))?;
        assert_eq!(c.name, "queue");
        let g: BotGateway = serde_json::from_value(
            json!({"url": "ws://x", "shards": 1, "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}}),
        )?;
        assert_eq!(g.shards, 1);
        Ok(())
    }
}
