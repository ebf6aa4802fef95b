//! `switchboard eval` (placeholder until the matcher evaluation lands; owned by the matcher work).

/// Options of `switchboard eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {}

pub fn run(_args: &EvalArgs, _t: switchboard_core::matcher::Thresholds) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
