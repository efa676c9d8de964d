//! `serve`'s upstream feeds from its flags: `--feed BROKER[:EXCHANGE,…]` (repeatable) or the
//! single `--broker`, each broker's credentials, URL and instrument master.

use std::str::FromStr;

use clap::ValueEnum;

use tickwire_io::brokers::angel::AngelConfig;
use tickwire_io::brokers::dhan::DhanConfig;
use tickwire_io::brokers::fyers::FyersConfig;
use tickwire_io::brokers::noren::{self, NorenConfig};
use tickwire_io::brokers::upstox::UpstoxConfig;
use tickwire_io::brokers::{BrokerConfig, EXCHANGES};
use tickwire_io::feed::FeedConfig;
use tickwire_io::kite::KiteConfig;

use super::start::Upstream;
use super::ServeArgs;
use crate::mock::BrokerKind;

/// One `--feed`: a broker and the OpenAlgo exchanges it serves (none: every exchange no other feed
/// claims).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedSpec {
    /// The broker.
    pub broker: BrokerKind,
    /// Exchanges it serves.
    pub exchanges: Vec<String>,
    /// This feed's most upstream connections (a config file's `connections`; default:
    /// `--upstream-connections`, else the broker's limit).
    pub connections: Option<usize>,
    /// This feed's most instruments per connection (a config file's `symbols_per_connection`).
    pub per_connection: Option<usize>,
}

impl FromStr for FeedSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (b, xs) = s.split_once(':').unwrap_or((s, ""));
        let b = if b.eq_ignore_ascii_case("zerodha") {
            "kite"
        } else {
            b
        };
        let broker = <BrokerKind as clap::ValueEnum>::from_str(b, true).map_err(|_| {
            let names: Vec<_> = BrokerKind::value_variants()
                .iter()
                .map(|k| k.name())
                .collect();
            format!(
                "unknown broker {b:?} (expected one of {})",
                names.join(", ")
            )
        })?;
        let mut exchanges = Vec::new();
        for x in xs.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            let x = x.to_ascii_uppercase();
            if !EXCHANGES.contains(&x.as_str()) {
                return Err(format!(
                    "unknown exchange {x:?} (expected one of {})",
                    EXCHANGES.join(", ")
                ));
            }
            exchanges.push(x);
        }
        Ok(Self {
            broker,
            exchanges,
            connections: None,
            per_connection: None,
        })
    }
}

/// The published instrument master(s) of a broker.
fn default_master(b: BrokerKind) -> String {
    match b {
        BrokerKind::Kite => "https://api.kite.trade/instruments".into(),
        BrokerKind::Upstox => {
            "https://assets.upstox.com/market-quote/instruments/exchange/complete.json.gz".into()
        }
        BrokerKind::Fyers => ["NSE_CM", "NSE_FO", "NSE_CD", "BSE_CM", "BSE_FO", "MCX_COM"]
            .iter()
            .map(|m| format!("https://public.fyers.in/sym_details/{m}.csv"))
            .collect::<Vec<_>>()
            .join(","),
        BrokerKind::Angel => {
            "https://margincalculator.angelbroking.com/OpenAPI_File/files/OpenAPIScripMaster.json"
                .into()
        }
        BrokerKind::Dhan => "https://images.dhan.co/api-data/api-scrip-master.csv".into(),
        // Noren tokens are the exchanges' own: Shoonya's public masters serve every Noren broker.
        BrokerKind::Shoonya | BrokerKind::Flattrade | BrokerKind::Noren => {
            ["NSE", "NFO", "CDS", "MCX", "BSE", "BFO"]
                .iter()
                .map(|x| format!("https://api.shoonya.com/{x}_symbols.txt.zip"))
                .collect::<Vec<_>>()
                .join(",")
        }
    }
}

/// The feeds `serve` was asked for, with credentials and URLs, or a message naming the flag that is
/// missing or does not fit.
pub fn upstreams(a: &ServeArgs) -> Result<Vec<Upstream>, String> {
    let specs = if a.feeds.is_empty() {
        vec![FeedSpec {
            broker: a.broker.unwrap_or_default(),
            exchanges: Vec::new(),
            connections: None,
            per_connection: None,
        }]
    } else {
        if let Some(b) = a.broker {
            return Err(format!(
                "--broker {} and --feed both name brokers: use --feed alone",
                b.name()
            ));
        }
        a.feeds.clone()
    };
    for (i, s) in specs.iter().enumerate() {
        if specs[..i].iter().any(|o| o.broker == s.broker) {
            return Err(format!(
                "--feed {} twice: one feed per broker (list all its exchanges in one --feed)",
                s.broker.name()
            ));
        }
        if s.broker.is_noren() {
            if let Some(o) = specs[..i].iter().find(|o| o.broker.is_noren()) {
                return Err(format!(
                    "--feed {} and --feed {}: the Noren flags (--noren-user, --noren-token) \
                     serve one Noren broker at a time",
                    o.broker.name(),
                    s.broker.name()
                ));
            }
        }
        for x in &s.exchanges {
            if let Some(o) = specs[..i].iter().find(|o| o.exchanges.contains(x)) {
                return Err(format!(
                    "exchange {x} is given to both {} and {}",
                    o.broker.name(),
                    s.broker.name()
                ));
            }
        }
    }
    let single = specs.len() == 1;
    if !single && (a.broker_url.is_some() || a.instruments.is_some()) {
        return Err(
            "--broker-url and --instruments name one broker's; with several --feed use \
                    --kite-url, --upstox-instruments, … (see --help)"
                .into(),
        );
    }
    let feed = FeedConfig {
        ca_file: a.broker_ca_file.clone(),
        ..FeedConfig::default()
    };
    specs
        .iter()
        .map(|s| {
            let b = s.broker;
            let pick = |own: &Option<String>, shared: &Option<String>| {
                own.clone().or_else(|| shared.clone().filter(|_| single))
            };
            let need = |v: &Option<String>, flag: &str| {
                v.clone().ok_or_else(|| {
                    // Every credential flag has a variable of the same name (`--kite-api-key`:
                    // `TICKWIRE_KITE_API_KEY`); `--noren-url` is no secret and has none.
                    let var = match flag {
                        "--noren-url" => String::new(),
                        f => format!(
                            " (or TICKWIRE_{})",
                            f.trim_start_matches('-').replace('-', "_").to_uppercase()
                        ),
                    };
                    format!("the {} feed needs {flag}{var}", b.name())
                })
            };
            let (url, master) = match b {
                BrokerKind::Kite => (&a.kite_url, &a.kite_instruments),
                BrokerKind::Upstox => (&a.upstox_url, &a.upstox_instruments),
                BrokerKind::Fyers => (&a.fyers_url, &a.fyers_instruments),
                BrokerKind::Angel => (&a.angel_url, &a.angel_instruments),
                BrokerKind::Dhan => (&a.dhan_url, &a.dhan_instruments),
                BrokerKind::Shoonya => (&a.shoonya_url, &a.noren_instruments),
                BrokerKind::Flattrade => (&a.flattrade_url, &a.noren_instruments),
                BrokerKind::Noren => (&a.noren_url, &a.noren_instruments),
            };
            let url = pick(url, &a.broker_url);
            let broker = match b {
                BrokerKind::Kite => BrokerConfig::Kite(KiteConfig {
                    url: url.unwrap_or_else(|| KiteConfig::default().url),
                    api_key: need(&a.kite_api_key, "--kite-api-key")?,
                    access_token: need(&a.kite_access_token, "--kite-access-token")?,
                }),
                BrokerKind::Upstox => BrokerConfig::Upstox(UpstoxConfig {
                    api_base: url.unwrap_or_else(|| UpstoxConfig::default().api_base),
                    access_token: need(&a.upstox_access_token, "--upstox-access-token")?,
                }),
                BrokerKind::Fyers => BrokerConfig::Fyers(FyersConfig {
                    access_token: need(&a.fyers_access_token, "--fyers-access-token")?,
                    ws_url: url.unwrap_or_else(|| FyersConfig::default().ws_url),
                    api_base: a.fyers_api_url.clone(),
                }),
                BrokerKind::Angel => BrokerConfig::Angel(AngelConfig {
                    url: url.unwrap_or_else(|| AngelConfig::default().url),
                    api_key: need(&a.angel_api_key, "--angel-api-key")?,
                    client_code: need(&a.angel_client_code, "--angel-client-code")?,
                    jwt: need(&a.angel_jwt, "--angel-jwt")?,
                    feed_token: need(&a.angel_feed_token, "--angel-feed-token")?,
                }),
                BrokerKind::Dhan => BrokerConfig::Dhan(DhanConfig {
                    url: url.unwrap_or_else(|| DhanConfig::default().url),
                    client_id: need(&a.dhan_client_id, "--dhan-client-id")?,
                    access_token: need(&a.dhan_access_token, "--dhan-access-token")?,
                }),
                BrokerKind::Shoonya | BrokerKind::Flattrade | BrokerKind::Noren => {
                    let url = match (url, b) {
                        (Some(u), _) => u,
                        (None, BrokerKind::Shoonya) => noren::SHOONYA_URL.into(),
                        (None, BrokerKind::Flattrade) => noren::FLATTRADE_URL.into(),
                        (None, _) => need(&None, "--noren-url")?,
                    };
                    let user = need(&a.noren_user, "--noren-user")?;
                    BrokerConfig::Noren(NorenConfig {
                        broker: b.name(),
                        url,
                        account: a.noren_account.clone().unwrap_or_else(|| user.clone()),
                        user,
                        token: need(&a.noren_token, "--noren-token")?,
                    })
                }
            };
            Ok(Upstream {
                broker,
                feed: FeedConfig {
                    connections: s.connections,
                    per_connection: s.per_connection,
                    ..feed.clone()
                },
                instruments: pick(master, &a.instruments).unwrap_or_else(|| default_master(b)),
                exchanges: s.exchanges.clone(),
            })
        })
        .collect()
}

/// A duration in seconds: finite, above zero, at most a day.
pub(super) fn positive_secs(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if v.is_finite() && v > 0.0 && v <= 86_400.0 {
        Ok(v)
    } else {
        Err("must be a number of seconds above 0 and at most 86400".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_specs_parse_and_bad_ones_say_why() {
        let f: FeedSpec = "upstox:NFO,bfo".parse().unwrap();
        assert_eq!(f.broker, BrokerKind::Upstox);
        assert_eq!(f.exchanges, vec!["NFO", "BFO"]);
        let f: FeedSpec = "kite".parse().unwrap();
        assert!(f.exchanges.is_empty());
        assert_eq!(
            "shoonya:MCX".parse::<FeedSpec>().unwrap().broker,
            BrokerKind::Shoonya
        );
        assert_eq!(
            "zerodha".parse::<FeedSpec>().unwrap().broker,
            BrokerKind::Kite
        );
        assert!("sharekhan:NSE"
            .parse::<FeedSpec>()
            .unwrap_err()
            .contains("unknown broker"));
        assert!("kite:NSX"
            .parse::<FeedSpec>()
            .unwrap_err()
            .contains("unknown exchange"));
    }

    /// `serve`'s flags as the command line gives them.
    fn serve_args(args: &[&str]) -> ServeArgs {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let argv = ["serve", "--api-key", "k"].iter().chain(args);
        <Cli as clap::Parser>::try_parse_from(argv).unwrap().serve
    }

    #[test]
    fn noren_brokers_take_their_urls_and_one_set_of_credentials() {
        let creds = ["--noren-user", "U1", "--noren-token", "T"];
        let one = |extra: &[&str]| {
            let mut a = vec!["--broker"];
            a.extend_from_slice(extra);
            a.extend_from_slice(&creds);
            upstreams(&serve_args(&a))
        };
        let up = one(&["flattrade"]).unwrap();
        let BrokerConfig::Noren(c) = &up[0].broker else {
            panic!("{:?}", up[0].broker)
        };
        assert_eq!(
            (c.broker, c.url.as_str()),
            ("flattrade", noren::FLATTRADE_URL)
        );
        assert_eq!((c.user.as_str(), c.account.as_str()), ("U1", "U1"));
        assert!(up[0].instruments.contains("NSE_symbols.txt.zip"));
        let up = one(&["shoonya", "--shoonya-url", "ws://127.0.0.1:1/NorenWSTP/"]).unwrap();
        let BrokerConfig::Noren(c) = &up[0].broker else {
            panic!()
        };
        assert_eq!(c.url, "ws://127.0.0.1:1/NorenWSTP/");
        assert!(one(&["noren"]).err().unwrap().contains("--noren-url"));
        let mut two = vec!["--feed", "shoonya:NSE", "--feed", "flattrade:NFO"];
        two.extend_from_slice(&creds);
        assert!(upstreams(&serve_args(&two))
            .err()
            .unwrap()
            .contains("one Noren broker at a time"));
    }

    #[test]
    fn missing_credentials_name_their_flag() {
        let e = upstreams(&serve_args(&["--broker", "angel", "--angel-api-key", "K"]))
            .err()
            .unwrap();
        assert!(e.contains("--angel-client-code"), "{e}");
        let e = upstreams(&serve_args(&["--broker", "dhan", "--dhan-client-id", "1"]))
            .err()
            .unwrap();
        assert!(e.contains("--dhan-access-token"), "{e}");
    }
}
