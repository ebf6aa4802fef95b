//! `switchboard console-password`: reads a password (one line of standard input) and prints its
//! argon2id hash as a PHC string, for `password_hash` in `[[web.accounts]]`. The password itself
//! is neither printed nor kept.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, SaltString};

/// Hashes the password on standard input.
pub fn run() -> anyhow::Result<ExitCode> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        anyhow::bail!("no password on standard input: type one and press Enter (or pipe it in)");
    }
    println!("{}", hash(password)?);
    Ok(ExitCode::SUCCESS)
}

/// `password`'s argon2id hash (the crate's default costs), with a random salt.
fn hash(password: &str) -> anyhow::Result<String> {
    let salt =
        SaltString::encode_b64(&switchboard_web::token::random_bytes::<16>()).map_err(|e| anyhow::anyhow!("cannot make a salt: {e}"))?;
    let hash = Argon2::default().hash_password(password.as_bytes(), &salt).map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
    Ok(hash.to_string())
}
