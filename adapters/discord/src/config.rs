//! The adapter's settings, read from the `[discord]` table of `switchboard.toml` (or the
//! `SWITCHBOARD_DISCORD__*` environment variables). The bot token is not here: it comes only from
//! `DISCORD_TOKEN`.

use serde::{Deserialize, Deserializer};

use crate::Error;

/// The `[discord]` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordConfig {
    /// The staff text channel whose threads hold the tickets; no agent desk on Discord without it.
    #[serde(default, deserialize_with = "opt_id")]
    pub staff_channel_id: Option<u64>,
    /// Members with this role may work tickets (it joins the agent allowlist as
    /// `discord-role:<id>`).
    #[serde(default, deserialize_with = "opt_id")]
    pub staff_role_id: Option<u64>,
    /// Guild channels where customers reach the bot by mentioning it.
    #[serde(default, deserialize_with = "ids")]
    pub support_channel_ids: Vec<u64>,
    /// The guild the slash commands are registered in; by default the staff channel's guild.
    #[serde(default, deserialize_with = "opt_id")]
    pub staff_guild_id: Option<u64>,
    /// Where the Discord REST API is (`http://127.0.0.1:PORT` for the fake, or an HTTP proxy that
    /// rate limits for several processes). Setting it disables serenity's rate limiter, which
    /// would otherwise bypass the proxy; the adapter then honours the 429 answers it gets itself
    /// (`retry_after`, and the global flag, which pauses every destination). Tests and special
    /// deployments only.
    #[serde(default)]
    pub api_url: Option<String>,
}

impl DiscordConfig {
    /// Reads the raw `[discord]` table.
    pub fn from_table(table: &toml::Table) -> Result<DiscordConfig, Error> {
        toml::Value::Table(table.clone()).try_into().map_err(|e: toml::de::Error| Error::Config(e.message().to_string()))
    }
}

/// A Discord id written as a number or a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawId {
    Int(i64),
    Str(String),
}

impl RawId {
    fn parse<E: serde::de::Error>(self) -> Result<u64, E> {
        match self {
            RawId::Int(n) => u64::try_from(n).ok().filter(|&n| n > 0).ok_or_else(|| E::custom(format!("{n} is not a Discord id"))),
            RawId::Str(s) => s.trim().parse::<u64>().ok().filter(|&n| n > 0).ok_or_else(|| E::custom(format!("{s:?} is not a Discord id"))),
        }
    }
}

fn opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Option::<RawId>::deserialize(d)?.map(RawId::parse).transpose()
}

/// A list of ids, as an array or a comma-separated string (handy in environment variables).
fn ids<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<RawId>),
        One(RawId),
    }
    match Raw::deserialize(d)? {
        Raw::List(v) => v.into_iter().map(RawId::parse).collect(),
        Raw::One(RawId::Str(s)) => s.split(',').filter(|p| !p.trim().is_empty()).map(|p| RawId::Str(p.to_string()).parse()).collect(),
        Raw::One(id) => Ok(vec![id.parse()?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<DiscordConfig, Error> {
        DiscordConfig::from_table(&s.parse::<toml::Table>().map_err(|e| Error::Config(e.to_string()))?)
    }

    #[test]
    fn reads_numbers_strings_and_lists() -> Result<(), Error> {
        let c = parse("staff_channel_id = 10\nstaff_role_id = \"20\"\nsupport_channel_ids = [1, \"2\"]")?;
        assert_eq!(c.staff_channel_id, Some(10));
        assert_eq!(c.staff_role_id, Some(20));
        assert_eq!(c.support_channel_ids, vec![1, 2]);
        assert_eq!(c.staff_guild_id, None);
        assert_eq!(parse("support_channel_ids = \"3, 4\"")?.support_channel_ids, vec![3, 4]);
        assert_eq!(parse("support_channel_ids = 5")?.support_channel_ids, vec![5]);
        assert_eq!(parse("")?, DiscordConfig::default());
        Ok(())
    }

    #[test]
    fn rejects_unknown_keys_and_bad_ids() {
        assert!(parse("staff_chanel_id = 1").is_err());
        assert!(parse("staff_channel_id = -1").is_err());
        assert!(parse("staff_channel_id = \"abc\"").is_err());
    }
}
