//! The `switchboard` binary as the tests run it: a temporary data folder, the repository as the
//! working directory (so the shipped pack is the default), and nothing from the caller's
//! environment that would point it elsewhere (a database URL, another pack).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The binary with `data` as its data folder, not yet run. `$USER` is `alice` (the desk's agent).
pub fn command(data: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("SWITCHBOARD_DATA_DIR", data)
        .env_remove("SWITCHBOARD_DATABASE_URL")
        .env_remove("SWITCHBOARD_PACK")
        .env("USER", "alice");
    command
}

/// Runs `command` with `input` on its standard input, to the end.
pub fn run(command: &mut Command, input: &str) -> Output {
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the binary runs");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    child.wait_with_output().expect("it exits")
}

/// `switchboard ARGS` on the data folder `data`, with `input` on its standard input.
pub fn switchboard(data: &Path, args: &[&str], input: &str) -> Output {
    run(command(data).args(args), input)
}

/// What it printed on standard output.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What it printed on standard error.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
