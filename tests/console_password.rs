//! `switchboard console-password`: the hash it prints verifies the password typed (without the
//! line's end), not another; it never shows the password; the `[web]` section accepts it; each
//! run salts anew; no password is an error.

#![allow(clippy::unwrap_used)]

mod support;

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use support::cli::{stderr, stdout, switchboard};

const PASSWORD: &str = "correct horse battery staple";

#[test]
fn console_password_prints_an_argon2id_hash_of_the_line_typed() {
    let dir = tempfile::tempdir().unwrap();
    let out = switchboard(dir.path(), &["console-password"], &format!("{PASSWORD}\r\n"));
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    assert!(!printed.contains(PASSWORD) && !stderr(&out).contains(PASSWORD), "the password is not shown: {printed}");
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {printed}");
    let phc = lines[0];
    assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
    let hash = PasswordHash::new(phc).unwrap();
    let argon = argon2::Argon2::default();
    assert!(argon.verify_password(PASSWORD.as_bytes(), &hash).is_ok(), "it verifies the password");
    assert!(argon.verify_password(format!("{PASSWORD}\n").as_bytes(), &hash).is_err(), "without the line's end");
    assert!(argon.verify_password(b"correct horse battery stapler", &hash).is_err());

    // What `[[web.accounts]]` takes.
    let table: toml::Table = toml::from_str(&format!("[[accounts]]\nname = \"alice\"\npassword_hash = '{phc}'\n")).unwrap();
    let config = switchboard_web::WebConfig::from_table(&table).unwrap();
    assert_eq!(config.accounts[0].password_hash, phc);

    let again = switchboard(dir.path(), &["console-password"], &format!("{PASSWORD}\n"));
    assert_ne!(stdout(&again).trim(), phc, "a new salt each time");

    let empty = switchboard(dir.path(), &["console-password"], "");
    assert!(!empty.status.success());
    assert!(stderr(&empty).contains("no password"), "{}", stderr(&empty));
}

/// The web channel's signing secret comes from `SWITCHBOARD_WEB_SECRET`: the configuration reader,
/// which refuses `SWITCHBOARD_…` names it does not know, leaves it to the web channel.
#[test]
fn the_web_secret_in_the_environment_is_not_read_as_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = support::cli::command(dir.path());
    cmd.env("SWITCHBOARD_WEB_SECRET", "a secret of at least thirty-two characters").args(["intents", "check"]);
    let out = support::cli::run(&mut cmd, "");
    assert!(out.status.success(), "{}", stderr(&out));
    let mut cmd = support::cli::command(dir.path());
    cmd.env("SWITCHBOARD_NO_SUCH_SETTING", "1").args(["intents", "check"]);
    assert!(!support::cli::run(&mut cmd, "").status.success(), "other unknown names are still refused");
}
