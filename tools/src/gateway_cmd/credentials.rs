//! Where `serve`'s broker credentials come from, resolved again while it runs: a flag wins over
//! the environment, which wins over the credentials file (`--credentials-file`, alias of
//! `--secrets-file`), as at start.
//!
//! Flags and the environment cannot change after start (and the process environment must not be
//! written once threads run), so they are captured once ([`Sources::at_start`]); the file is read
//! again into a map at every reload. The result goes through the same code as at start
//! ([`super::feeds::upstreams`]), so a reload accepts exactly what a start would.

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
        }
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

/// `a` with every broker secret replaced by its value in `v` (absent: unset).
pub fn apply(a: &ServeArgs, v: &Values) -> ServeArgs {
    let mut a = a.clone();
    for (name, _) in SECRETS {
        if let Some(s) = slot(&mut a, name) {
            *s = v.get(name).cloned();
        }
    }
    a
}

/// Every feed's configuration re-resolved from `a`'s settings and the secrets' sources now: what
/// the reload thread calls.
pub fn broker_configs(a: &ServeArgs, s: &Sources) -> Result<Vec<BrokerConfig>, String> {
    let (values, shadowed) = s.resolve()?;
    if !shadowed.is_empty() {
        tracing::warn!(
            "credentials reload: {} set by a flag or the environment, which win over the \
             credentials file; the file's value is not used",
            shadowed.join(", ")
        );
    }
    let ups = super::feeds::upstreams(&apply(a, &values))?;
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
        a
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
        let kite = |s: &Sources| match broker_configs(&a, s).unwrap().remove(0) {
            BrokerConfig::Kite(k) => (k.api_key, k.access_token, k.url),
            b => panic!("{}", b.name()),
        };
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
