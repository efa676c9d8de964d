//! Where `serve`'s broker credentials come from, resolved again while it runs: a flag wins over
//! the environment, which wins over the credentials file (`--credentials-file`, alias of
//! `--secrets-file`), which wins over the config file (`--config`, its `[[feed]]` tables), as at
//! start.
//!
//! Flags and the environment cannot change after start (and the process environment must not be
//! written once threads run), so they are captured once ([`Sources::at_start`]); the credentials
//! file and the config file are read again at every reload. The result goes through the same code
//! as at start (`config::apply`, then [`super::feeds::upstreams`]), so a reload accepts exactly
//! what a start would.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::ArgMatches;
use tickwire_io::brokers::BrokerConfig;

use super::ServeArgs;

/// Secret name → value.
pub type Values = BTreeMap<String, String>;

/// Each broker secret: its variable (and credentials-file) name and its flag's argument id.
const SECRETS: [(&str, &str); 13] = [
    ("TICKWIRE_KITE_API_KEY", "kite_api_key"),
    ("TICKWIRE_KITE_ACCESS_TOKEN", "kite_access_token"),
    ("TICKWIRE_UPSTOX_ACCESS_TOKEN", "upstox_access_token"),
    ("TICKWIRE_FYERS_ACCESS_TOKEN", "fyers_access_token"),
    ("TICKWIRE_ANGEL_API_KEY", "angel_api_key"),
    ("TICKWIRE_ANGEL_CLIENT_CODE", "angel_client_code"),
    ("TICKWIRE_ANGEL_JWT", "angel_jwt"),
    ("TICKWIRE_ANGEL_FEED_TOKEN", "angel_feed_token"),
    ("TICKWIRE_DHAN_CLIENT_ID", "dhan_client_id"),
    ("TICKWIRE_DHAN_ACCESS_TOKEN", "dhan_access_token"),
    ("TICKWIRE_NOREN_USER", "noren_user"),
    ("TICKWIRE_NOREN_ACCOUNT", "noren_account"),
    ("TICKWIRE_NOREN_TOKEN", "noren_token"),
];

/// The `ServeArgs` field of secret `name`.
fn slot<'a>(a: &'a mut ServeArgs, name: &str) -> Option<&'a mut Option<String>> {
    Some(match name {
        "TICKWIRE_KITE_API_KEY" => &mut a.kite_api_key,
        "TICKWIRE_KITE_ACCESS_TOKEN" => &mut a.kite_access_token,
        "TICKWIRE_UPSTOX_ACCESS_TOKEN" => &mut a.upstox_access_token,
        "TICKWIRE_FYERS_ACCESS_TOKEN" => &mut a.fyers_access_token,
        "TICKWIRE_ANGEL_API_KEY" => &mut a.angel_api_key,
        "TICKWIRE_ANGEL_CLIENT_CODE" => &mut a.angel_client_code,
        "TICKWIRE_ANGEL_JWT" => &mut a.angel_jwt,
        "TICKWIRE_ANGEL_FEED_TOKEN" => &mut a.angel_feed_token,
        "TICKWIRE_DHAN_CLIENT_ID" => &mut a.dhan_client_id,
        "TICKWIRE_DHAN_ACCESS_TOKEN" => &mut a.dhan_access_token,
        "TICKWIRE_NOREN_USER" => &mut a.noren_user,
        "TICKWIRE_NOREN_ACCOUNT" => &mut a.noren_account,
        "TICKWIRE_NOREN_TOKEN" => &mut a.noren_token,
        _ => return None,
    })
}

/// The broker secrets `serve`'s command line gave as flags (by variable name), from clap's
/// record of where each value came from.
pub fn secrets_given_as_flags(m: &ArgMatches) -> BTreeSet<String> {
    SECRETS
        .iter()
        .filter(|(_, id)| {
            m.try_contains_id(id).unwrap_or(false)
                && m.value_source(id) == Some(ValueSource::CommandLine)
        })
        .map(|(name, _)| name.to_string())
        .collect()
}

/// Flag over environment over file, per name.
pub fn merge(flags: &Values, env: &Values, file: &Values) -> Values {
    let mut out = file.clone();
    out.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
    out.extend(flags.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

/// The sources of the broker secrets.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// Given as flags: fixed for the life of the process.
    pub flags: Values,
    /// Set in the process environment at start (not by the file): fixed too.
    pub env: Values,
    /// The credentials file, read again at every reload.
    pub file: Option<PathBuf>,
    /// The config file, read again at every reload (its `[[feed]]` credentials and URLs).
    pub config: Option<PathBuf>,
}

impl Sources {
    /// Captures the flags and the environment of `serve` as it starts.
    pub fn at_start(a: &ServeArgs) -> Self {
        let mut a = a.clone();
        let mut flags = Values::new();
        let mut env = Values::new();
        for (name, _) in SECRETS {
            if a.secrets_given_as_flags.contains(name) {
                if let Some(v) = slot(&mut a, name).and_then(|v| v.clone()) {
                    flags.insert(name.into(), v);
                }
            } else if !crate::secrets::loaded_from_file(name) {
                if let Ok(v) = std::env::var(name) {
                    env.insert(name.into(), v);
                }
            }
        }
        Self {
            flags,
            env,
            file: a.secrets_file.clone(),
            config: a.config.clone(),
        }
    }

    /// The files a reload reads (to watch for changes).
    pub fn files(&self) -> Vec<PathBuf> {
        self.file.iter().chain(&self.config).cloned().collect()
    }

    /// Every broker secret now: the file read again, under the flags and the environment.
    /// Names the file sets that a flag or the environment overrides are returned too (a change
    /// to them in the file has no effect, which a reload says).
    pub fn resolve(&self) -> Result<(Values, Vec<String>), String> {
        let mut file = match &self.file {
            Some(p) => crate::secrets::read(p)?,
            None => Values::new(),
        };
        file.retain(|k, _| SECRETS.iter().any(|(n, _)| n == k));
        let shadowed = file
            .keys()
            .filter(|k| self.flags.contains_key(*k) || self.env.contains_key(*k))
            .cloned()
            .collect();
        Ok((merge(&self.flags, &self.env, &file), shadowed))
    }
}

/// `a` as a start would make it now: every broker secret that neither a flag nor the environment
/// gave is taken again from `config` (the config file as it is now, if there is one) and then
/// from `v` (flags, environment and credentials file, [`Sources::resolve`]), which wins.
pub fn apply(
    a: &ServeArgs,
    s: &Sources,
    config: Option<&crate::config::Config>,
    v: &Values,
) -> ServeArgs {
    let mut a = a.clone();
    for (name, id) in SECRETS {
        if s.flags.contains_key(name) || s.env.contains_key(name) {
            continue;
        }
        // At start the credentials file went through the environment, so clap counted its
        // values as given and the config file did not fill them: now the file's value is
        // looked at below, under the config's.
        a.explicit.remove(id);
        if let Some(f) = slot(&mut a, name) {
            *f = None;
        }
    }
    if let Some(c) = config {
        crate::config::apply(c, &mut a);
    }
    for (name, value) in v {
        if let Some(f) = slot(&mut a, name) {
            *f = Some(value.clone());
        }
    }
    a
}

/// Every feed's configuration re-resolved from `a`'s settings and the secrets' sources now: what
/// the reload thread calls.
pub fn broker_configs(a: &ServeArgs, s: &Sources) -> Result<Vec<BrokerConfig>, String> {
    let config = match &s.config {
        Some(p) => Some(crate::config::load(p).map_err(|e| e.to_string())?),
        None => None,
    };
    let (values, shadowed) = s.resolve()?;
    if !shadowed.is_empty() {
        tracing::warn!(
            "credentials reload: {} set by a flag or the environment, which win over the \
             credentials file; the file's value is not used",
            shadowed.join(", ")
        );
    }
    let ups = super::feeds::upstreams(&apply(a, s, config.as_ref(), &values))?;
    Ok(ups.into_iter().map(|u| u.broker).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(v: &[(&str, &str)]) -> Values {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_flag_wins_over_the_environment_which_wins_over_the_file() {
        let flags = values(&[("TICKWIRE_KITE_API_KEY", "flag")]);
        let env = values(&[
            ("TICKWIRE_KITE_API_KEY", "env"),
            ("TICKWIRE_KITE_ACCESS_TOKEN", "env"),
        ]);
        let file = values(&[
            ("TICKWIRE_KITE_API_KEY", "file"),
            ("TICKWIRE_KITE_ACCESS_TOKEN", "file"),
            ("TICKWIRE_DHAN_ACCESS_TOKEN", "file"),
        ]);
        let m = merge(&flags, &env, &file);
        assert_eq!(m["TICKWIRE_KITE_API_KEY"], "flag");
        assert_eq!(m["TICKWIRE_KITE_ACCESS_TOKEN"], "env");
        assert_eq!(m["TICKWIRE_DHAN_ACCESS_TOKEN"], "file");
        assert_eq!(m.len(), 3);
    }

    /// `serve`'s flags as the command line gives them, with clap's record of which were flags.
    fn serve_args(args: &[&str]) -> ServeArgs {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let argv = ["serve", "--api-key", "k"].iter().chain(args);
        let m = <Cli as clap::CommandFactory>::command()
            .try_get_matches_from(argv)
            .unwrap();
        let mut a = <Cli as clap::FromArgMatches>::from_arg_matches(&m)
            .unwrap()
            .serve;
        a.secrets_given_as_flags = secrets_given_as_flags(&m);
        // As `main` does.
        a.explicit = crate::config::explicit(&m);
        if let Some(p) = a.config.clone() {
            crate::config::apply(&crate::config::load(&p).unwrap(), &mut a);
        }
        a
    }

    fn kite(a: &ServeArgs, s: &Sources) -> (String, String, String) {
        match broker_configs(a, s).unwrap().remove(0) {
            BrokerConfig::Kite(k) => (k.api_key, k.access_token, k.url),
            b => panic!("{}", b.name()),
        }
    }

    #[test]
    fn a_reload_reads_the_config_file_under_the_credentials_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("tickwire.toml");
        let toml = |token: &str| {
            format!(
                "[[feed]]\nbroker = \"kite\"\nurl = \"ws://127.0.0.1:1\"\n\
                 api_key = \"cfg_key\"\naccess_token = \"{token}\"\n"
            )
        };
        std::fs::write(&cfg, toml("cfg_day1")).unwrap();
        let a = serve_args(&["--config", cfg.to_str().unwrap()]);
        let s = Sources {
            env: Values::new(),
            ..Sources::at_start(&a)
        };
        assert_eq!(s.files(), vec![cfg.clone()]);
        assert_eq!(
            kite(&a, &s),
            (
                "cfg_key".into(),
                "cfg_day1".into(),
                "ws://127.0.0.1:1".into()
            )
        );
        std::fs::write(&cfg, toml("cfg_day2")).unwrap();
        assert_eq!(kite(&a, &s).1, "cfg_day2");
        // The credentials file wins over the config file; what it does not set, the config gives.
        let creds = dir.path().join("credentials");
        std::fs::write(&creds, "TICKWIRE_KITE_ACCESS_TOKEN=file_token\n").unwrap();
        let both = Sources {
            file: Some(creds),
            ..s.clone()
        };
        assert_eq!(
            kite(&a, &both),
            (
                "cfg_key".into(),
                "file_token".into(),
                "ws://127.0.0.1:1".into()
            )
        );
        // A broken config file: the reload fails naming it.
        std::fs::write(&cfg, "[[feed]]\nbroker = \"kite\"\nacess_token = \"x\"\n").unwrap();
        let e = broker_configs(&a, &s).unwrap_err();
        assert!(
            e.contains("tickwire.toml") && e.contains("acess_token"),
            "{e}"
        );
    }

    #[test]
    fn a_reload_reads_the_file_again_under_the_flags() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("credentials");
        std::fs::write(
            &f,
            "TICKWIRE_KITE_API_KEY=file_key\nTICKWIRE_KITE_ACCESS_TOKEN=day1\n",
        )
        .unwrap();
        let a = serve_args(&[
            "--broker-url",
            "ws://127.0.0.1:1",
            "--kite-api-key",
            "flag_key",
            "--credentials-file",
            f.to_str().unwrap(),
        ]);
        assert_eq!(
            a.secrets_given_as_flags,
            BTreeSet::from(["TICKWIRE_KITE_API_KEY".to_string()])
        );
        // As if the process environment had nothing (the test's own may; it is not consulted).
        let s = Sources {
            env: Values::new(),
            ..Sources::at_start(&a)
        };
        let kite = |s: &Sources| kite(&a, s);
        assert_eq!(
            kite(&s),
            ("flag_key".into(), "day1".into(), "ws://127.0.0.1:1".into())
        );
        std::fs::write(
            &f,
            "TICKWIRE_KITE_API_KEY=file_key\nTICKWIRE_KITE_ACCESS_TOKEN=day2\n",
        )
        .unwrap();
        assert_eq!(kite(&s).1, "day2");
        let env = Sources {
            env: values(&[("TICKWIRE_KITE_ACCESS_TOKEN", "env_token")]),
            ..s.clone()
        };
        assert_eq!(kite(&env).1, "env_token");
        // A credential gone from the file: the reload fails, naming what is missing.
        std::fs::write(&f, "TICKWIRE_KITE_API_KEY=file_key\n").unwrap();
        let e = broker_configs(&a, &s).unwrap_err();
        assert!(e.contains("--kite-access-token"), "{e}");
        std::fs::write(&f, "TICKWIRE_KITE_TOKEN=x\n").unwrap();
        let e = broker_configs(&a, &s).unwrap_err();
        assert!(e.contains("line 1: unknown name"), "{e}");
    }
}
