//! `tickwire keys add|list|revoke`: the API keys file (`docs/keys.md`).
//!
//! A new key is printed once, on stdout and alone on its line (so `KEY=$(tickwire keys add desk)`
//! works); the file keeps only its Argon2id hash made with the pepper. `list` shows names and
//! times, never a key or a hash.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use tickwire_io::gateway::keys::{KeysError, KeysFile, LastUsed};

/// The keys file when `--keys-file` is not given.
pub const DEFAULT_KEYS_FILE: &str = "tickwire-keys.toml";

/// `tickwire keys …`.
#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// Adds a key named NAME and prints it (once: only its hash is stored).
    Add(AddArgs),
    /// Lists the keys: name, created, last used (never the keys or their hashes).
    List(FileArg),
    /// Removes the key named NAME; a running gateway closes the sessions that used it.
    Revoke(RevokeArgs),
}

/// `--keys-file`.
#[derive(Args, Debug)]
pub struct FileArg {
    /// The keys file.
    #[arg(long, env = "TICKWIRE_KEYS_FILE", default_value = DEFAULT_KEYS_FILE)]
    pub keys_file: PathBuf,
}

/// `keys add` flags.
#[derive(Args, Debug)]
pub struct AddArgs {
    /// The key's name (1 to 64 of A-Z a-z 0-9 . _ -), unique in the file.
    pub name: String,
    #[command(flatten)]
    pub file: FileArg,
    /// Server-side pepper to hash with: the gateway must be given the same one. Prefer the
    /// environment variable (kept out of the process table).
    #[arg(long, env = "TICKWIRE_API_KEY_PEPPER", hide_env_values = true)]
    pub api_key_pepper: Option<String>,
}

/// `keys revoke` flags.
#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// The name of the key to remove.
    pub name: String,
    #[command(flatten)]
    pub file: FileArg,
}

/// Runs a `keys` subcommand.
pub fn run(cmd: KeysCmd) -> Result<(), String> {
    match cmd {
        KeysCmd::Add(a) => add(&a).map_err(|e| e.to_string()),
        KeysCmd::List(f) => list(&f.keys_file),
        KeysCmd::Revoke(a) => revoke(&a).map_err(|e| e.to_string()),
    }
}

fn add(a: &AddArgs) -> Result<(), KeysError> {
    let path = &a.file.keys_file;
    let pepper = a.api_key_pepper.as_deref().unwrap_or("").as_bytes();
    let _lock = tickwire_io::gateway::keys::file::WriteLock::take(path)?;
    let mut f = if path.exists() {
        let f = KeysFile::load(path)?;
        // Keys made with two peppers in one file: the gateway could verify only some of them.
        if !f.pepper_matches(pepper) {
            return Err(KeysError::Pepper(path.clone()));
        }
        f
    } else {
        KeysFile::new(pepper)?
    };
    let key = f.add(&a.name, pepper)?;
    f.save(path)?;
    eprintln!(
        "Added API key {:?} to {}. This is the only time it is shown; store it now:",
        a.name,
        path.display()
    );
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{key}");
    let _ = out.flush();
    Ok(())
}

fn list(path: &Path) -> Result<(), String> {
    if !path.exists() {
        return Err(format!(
            "keys file {} does not exist: create it with `tickwire keys add NAME --keys-file {}`",
            path.display(),
            path.display()
        ));
    }
    let f = KeysFile::load(path).map_err(|e| e.to_string())?;
    if f.keys.is_empty() {
        println!("no keys in {}", path.display());
        return Ok(());
    }
    let used = LastUsed::load(path);
    let w = f
        .keys
        .iter()
        .map(|k| k.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!("{:w$}  {:24}  LAST USED", "NAME", "CREATED");
    for k in &f.keys {
        let last = used.last_used.get(&k.name).map_or("never", String::as_str);
        println!("{:w$}  {:24}  {last}", k.name, k.created);
    }
    Ok(())
}

fn revoke(a: &RevokeArgs) -> Result<(), KeysError> {
    let path = &a.file.keys_file;
    let _lock = tickwire_io::gateway::keys::file::WriteLock::take(path)?;
    let mut f = KeysFile::load(path)?;
    f.revoke(&a.name)?;
    f.save(path)?;
    println!(
        "Revoked API key {:?} in {}; a gateway serving this file closes its sessions within \
         about a second (at once on SIGHUP).",
        a.name,
        path.display()
    );
    Ok(())
}
