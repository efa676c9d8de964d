//! `[[feed]]`: one table per upstream broker, and which of its keys stand for which `serve` flag
//! and environment variable.
//!
//! A feed table maps onto the flags `serve` already has: `--feed BROKER:EXCHANGES` plus the
//! broker's own flags (`--kite-access-token`, `--kite-url`, …). Those flags are per broker kind,
//! so a broker may have one table (and the Noren family, which shares `--noren-*`, one table in
//! all).

use serde::{Deserialize, Deserializer};
use tickwire_io::brokers::EXCHANGES;

use crate::gateway_cmd::FeedSpec;
use crate::mock::BrokerKind;

/// One `[[feed]]` table.
#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FeedTable {
    /// The broker (`kite`/`zerodha`, `upstox`, `fyers`, `angel`, `dhan`, `shoonya`, `flattrade`,
    /// `noren`).
    #[serde(deserialize_with = "broker")]
    pub broker: BrokerKind,
    /// OpenAlgo exchanges it serves; none: every exchange no other feed claims.
    #[serde(default, deserialize_with = "exchanges")]
    pub exchanges: Vec<String>,
    /// The broker's WebSocket (Upstox: API base) URL.
    pub url: Option<String>,
    /// Instrument master(s), URL or file (Fyers, Noren: several, comma-separated).
    pub instruments: Option<String>,
    /// Fyers' REST base (`--fyers-api-url`).
    pub api_url: Option<String>,
    /// Most upstream connections.
    pub connections: Option<usize>,
    /// Most instruments per upstream connection.
    pub symbols_per_connection: Option<usize>,
    /// Kite, Angel: API key.
    pub api_key: Option<String>,
    /// Kite, Upstox, Fyers, Dhan: access token.
    pub access_token: Option<String>,
    /// Angel: client code.
    pub client_code: Option<String>,
    /// Angel: JWT.
    pub jwt: Option<String>,
    /// Angel: feed token.
    pub feed_token: Option<String>,
    /// Dhan: client id.
    pub client_id: Option<String>,
    /// Noren: user id.
    pub user: Option<String>,
    /// Noren: account id.
    pub account: Option<String>,
    /// Noren: session token.
    pub token: Option<String>,
}

/// One key of a feed table that stands for a `serve` flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Key in the `[[feed]]` table.
    pub key: &'static str,
    /// `ServeArgs` field (clap id) it sets.
    pub id: &'static str,
    /// Environment variable that wins over the file (secrets only).
    pub env: Option<&'static str>,
    /// The feed cannot start without it.
    pub required: bool,
}

const fn secret(key: &'static str, id: &'static str, env: &'static str, required: bool) -> Slot {
    Slot {
        key,
        id,
        env: Some(env),
        required,
    }
}

const fn plain(key: &'static str, id: &'static str) -> Slot {
    Slot {
        key,
        id,
        env: None,
        required: false,
    }
}

/// The keys a broker's table may have besides `broker`, `exchanges`, `connections` and
/// `symbols_per_connection`, with their flags.
pub fn slots(b: BrokerKind) -> &'static [Slot] {
    match b {
        BrokerKind::Kite => KITE,
        BrokerKind::Upstox => UPSTOX,
        BrokerKind::Fyers => FYERS,
        BrokerKind::Angel => ANGEL,
        BrokerKind::Dhan => DHAN,
        BrokerKind::Shoonya => NOREN_SHOONYA,
        BrokerKind::Flattrade => NOREN_FLATTRADE,
        BrokerKind::Noren => NOREN_OTHER,
    }
}

const KITE: &[Slot] = &[
    plain("url", "kite_url"),
    plain("instruments", "kite_instruments"),
    secret("api_key", "kite_api_key", "TICKWIRE_KITE_API_KEY", true),
    secret(
        "access_token",
        "kite_access_token",
        "TICKWIRE_KITE_ACCESS_TOKEN",
        true,
    ),
];
const UPSTOX: &[Slot] = &[
    plain("url", "upstox_url"),
    plain("instruments", "upstox_instruments"),
    secret(
        "access_token",
        "upstox_access_token",
        "TICKWIRE_UPSTOX_ACCESS_TOKEN",
        true,
    ),
];
const FYERS: &[Slot] = &[
    plain("url", "fyers_url"),
    plain("instruments", "fyers_instruments"),
    plain("api_url", "fyers_api_url"),
    secret(
        "access_token",
        "fyers_access_token",
        "TICKWIRE_FYERS_ACCESS_TOKEN",
        true,
    ),
];
const ANGEL: &[Slot] = &[
    plain("url", "angel_url"),
    plain("instruments", "angel_instruments"),
    secret("api_key", "angel_api_key", "TICKWIRE_ANGEL_API_KEY", true),
    secret(
        "client_code",
        "angel_client_code",
        "TICKWIRE_ANGEL_CLIENT_CODE",
        true,
    ),
    secret("jwt", "angel_jwt", "TICKWIRE_ANGEL_JWT", true),
    secret(
        "feed_token",
        "angel_feed_token",
        "TICKWIRE_ANGEL_FEED_TOKEN",
        true,
    ),
];
const DHAN: &[Slot] = &[
    plain("url", "dhan_url"),
    plain("instruments", "dhan_instruments"),
    secret(
        "client_id",
        "dhan_client_id",
        "TICKWIRE_DHAN_CLIENT_ID",
        true,
    ),
    secret(
        "access_token",
        "dhan_access_token",
        "TICKWIRE_DHAN_ACCESS_TOKEN",
        true,
    ),
];

macro_rules! noren_slots {
    ($name:ident, $url:expr, $url_required:expr) => {
        const $name: &[Slot] = &[
            Slot {
                key: "url",
                id: $url,
                env: None,
                required: $url_required,
            },
            plain("instruments", "noren_instruments"),
            secret("user", "noren_user", "TICKWIRE_NOREN_USER", true),
            secret("account", "noren_account", "TICKWIRE_NOREN_ACCOUNT", false),
            secret("token", "noren_token", "TICKWIRE_NOREN_TOKEN", true),
        ];
    };
}
noren_slots!(NOREN_SHOONYA, "shoonya_url", false);
noren_slots!(NOREN_FLATTRADE, "flattrade_url", false);
// A Noren broker other than Shoonya and Flattrade has no known URL: the table must give it.
noren_slots!(NOREN_OTHER, "noren_url", true);

impl FeedTable {
    /// The value of `key` in this table.
    pub fn get(&self, key: &str) -> Option<&str> {
        match key {
            "url" => self.url.as_deref(),
            "instruments" => self.instruments.as_deref(),
            "api_url" => self.api_url.as_deref(),
            "api_key" => self.api_key.as_deref(),
            "access_token" => self.access_token.as_deref(),
            "client_code" => self.client_code.as_deref(),
            "jwt" => self.jwt.as_deref(),
            "feed_token" => self.feed_token.as_deref(),
            "client_id" => self.client_id.as_deref(),
            "user" => self.user.as_deref(),
            "account" => self.account.as_deref(),
            "token" => self.token.as_deref(),
            _ => None,
        }
    }

    /// Keys given in this table that this broker has no use for (a Dhan `jwt`, a Kite `user`):
    /// most likely a table pasted from another broker, so refused rather than ignored.
    pub fn foreign_keys(&self) -> Vec<&'static str> {
        const ALL: [&str; 12] = [
            "url",
            "instruments",
            "api_url",
            "api_key",
            "access_token",
            "client_code",
            "jwt",
            "feed_token",
            "client_id",
            "user",
            "account",
            "token",
        ];
        let own = slots(self.broker);
        ALL.into_iter()
            .filter(|k| self.get(k).is_some() && !own.iter().any(|s| s.key == *k))
            .collect()
    }

    /// The `--feed` this table stands for.
    pub fn spec(&self) -> FeedSpec {
        FeedSpec {
            broker: self.broker,
            exchanges: self.exchanges.clone(),
            connections: self.connections,
            per_connection: self.symbols_per_connection,
        }
    }
}

/// `broker = "kite"`, checked against the brokers `--feed` knows.
fn broker<'de, D: Deserializer<'de>>(d: D) -> Result<BrokerKind, D::Error> {
    let s = String::deserialize(d)?;
    if s.contains(':') {
        return Err(serde::de::Error::custom(format!(
            "broker {s:?}: give the exchanges as `exchanges = [...]`"
        )));
    }
    s.parse::<FeedSpec>()
        .map(|f| f.broker)
        .map_err(serde::de::Error::custom)
}

/// `exchanges = ["NSE", "BSE"]`, each an OpenAlgo exchange (upper-cased).
fn exchanges<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    v.into_iter()
        .map(|x| {
            let x = x.trim().to_ascii_uppercase();
            match EXCHANGES.contains(&x.as_str()) {
                true => Ok(x),
                false => Err(serde::de::Error::custom(format!(
                    "unknown exchange {x:?} (expected one of {})",
                    EXCHANGES.join(", ")
                ))),
            }
        })
        .collect()
}
