//! The service's binary as operators run it: a clean environment, a folder of its own.

use std::process::{Child, Command, Output};

/// The service's binary, as operators run it.
pub const BIN: &str = env!("CARGO_BIN_EXE_ravan-watch");

/// The binary with `args` and only `env` set, in a new empty folder of its own (no `.env` is
/// read, and a default database file lands there); the folder goes when the `TempDir` drops.
pub fn bin_command(args: &[&str], env: &[(&str, &str)]) -> (Command, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(dir.path());
    (cmd, dir)
}

/// Runs the binary with only `env` set, in an empty folder of its own (no `.env` is read).
pub async fn run_bin(args: &[&str], env: &[(&str, &str)]) -> Output {
    let (cmd, dir) = bin_command(args, env);
    let out = output_of(cmd).await;
    drop(dir);
    out
}

/// Runs `cmd` to its end off the async runtime and collects its output.
pub async fn output_of(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// Waits off the async runtime for `child` to exit and collects the output it piped.
pub async fn wait_output(child: Child) -> Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap()
}
