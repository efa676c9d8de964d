//! `tickwire serve`, `tickwire demo`, `tickwire mock-broker`: assembling the threads.
//!
//! ```text
//!  feed thread (broker protocol + router inline) ──► shm (ring + last values)
//!        ▲ control, upstream demand  │ deliveries            │ last values
//!        └──────────── client IO thread ◄────────────────────┘
//!                             └──► WebSocket clients
//! ```
//!
//! With `--router thread` the router runs on its own thread between the two (`docs/architecture.md`).

mod core;
pub use self::core::{replay_core, ReplayCore};
mod credentials;
mod engine_args;
mod feeds;
pub mod journal;
mod limits;
mod rollover;
mod start;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Args;
use tickwire_io::feed::FeedConfig;
use tickwire_io::gateway::keys::{secret, KeyStore};

pub use credentials::{secrets_given_as_flags, Sources};
pub use engine_args::{EngineArgs, RouterPlacement};
#[cfg(test)]
pub(crate) use feeds::upstreams;
pub use feeds::FeedSpec;
pub use limits::{KeyLimit, LimitArgs};
pub use rollover::{FeedCredentials, Resolve, Rollover};
pub use start::{start, ClientAuth, Running, Upstream};

use crate::mock::{BrokerKind, MockBroker, MockConfig};

/// Most mock market updates per second a flag accepts: far above what one mock thread produces
/// (it falls behind rather than buffering), far below what would overflow anything.
pub const MAX_RATE: u64 = 10_000_000;
/// Most synthetic instruments a flag accepts.
pub const MAX_SYMBOLS: i64 = 500_000;

/// `tickwire serve` flags.
#[derive(Args, Debug, Clone)]
#[command(after_help = "Each broker's flags:\n  \
    kite:   --kite-api-key K --kite-access-token T [--kite-url wss://ws.kite.trade] [--kite-instruments URL|FILE]\n  \
    upstox: --upstox-access-token T [--upstox-url https://api.upstox.com] [--upstox-instruments URL|FILE]\n  \
    fyers:  --fyers-access-token APPID:JWT [--fyers-url wss://socket.fyers.in/hsm/v1-5/prod] [--fyers-api-url https://api-t1.fyers.in] [--fyers-instruments URL,URL,...]\n  \
    angel:  --angel-api-key K --angel-client-code C --angel-jwt JWT --angel-feed-token F [--angel-url wss://smartapisocket.angelone.in/smart-stream] [--angel-instruments URL|FILE]\n  \
    dhan:   --dhan-client-id ID --dhan-access-token T [--dhan-url wss://api-feed.dhan.co] [--dhan-instruments URL|FILE]\n  \
    shoonya, flattrade, noren: --noren-user UID --noren-token SUSERTOKEN [--noren-account ACTID] [--shoonya-url|--flattrade-url|--noren-url URL (required for noren)] [--noren-instruments URL,URL,...]\n\
With one broker, --broker-url and --instruments may stand for its own URL and master flags.\n\
Several brokers at once: --feed kite:NSE,BSE,NSE_INDEX,BSE_INDEX --feed upstox:NFO,BFO,CDS,MCX\n\
Secrets can come from the environment or a file instead of flags (kept out of the process table):\n  \
TICKWIRE_API_KEYS (comma-separated), TICKWIRE_API_KEY_PEPPER, TICKWIRE_KITE_API_KEY, TICKWIRE_KITE_ACCESS_TOKEN,\n  \
TICKWIRE_UPSTOX_ACCESS_TOKEN, TICKWIRE_FYERS_ACCESS_TOKEN, TICKWIRE_ANGEL_API_KEY,\n  \
TICKWIRE_ANGEL_CLIENT_CODE, TICKWIRE_ANGEL_JWT, TICKWIRE_ANGEL_FEED_TOKEN, TICKWIRE_DHAN_CLIENT_ID,\n  \
TICKWIRE_DHAN_ACCESS_TOKEN, TICKWIRE_NOREN_USER, TICKWIRE_NOREN_ACCOUNT, TICKWIRE_NOREN_TOKEN,\n  \
as variables or as NAME=value lines of --credentials-file FILE (alias --secrets-file); a flag
  \
wins over its variable, a variable over the file.
\
Every setting can come from a TOML file instead: --config tickwire.toml (tickwire.example.toml lists
\
the keys; `tickwire config check FILE` validates one); flags and variables win over it.
\
The broker credentials are read again while the gateway runs, when the credentials file or the
\
config file changes or on SIGHUP: a feed whose credentials changed reconnects with them, clients
\
kept. SIGINT or SIGTERM stops the gateway cleanly (the shm file is marked closed).")]
pub struct ServeArgs {
    /// A TOML config file (`tickwire.example.toml` documents every key); flags and environment
    /// variables override its values.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Client WebSocket port (OpenAlgo's 8765), on the `--listen` address.
    #[arg(long, default_value_t = 8765)]
    pub port: u16,
    /// API key clients authenticate with (repeatable; from the environment: comma-separated, so
    /// it stays out of the process table). `serve` needs `--api-key` or `--keys-file`.
    #[arg(
        long = "api-key",
        env = "TICKWIRE_API_KEYS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub api_keys: Vec<String>,
    /// API keys file made by `tickwire keys add` (Argon2id hashes only); re-read when it changes
    /// and on SIGHUP, without dropping connections.
    #[arg(long, env = "TICKWIRE_KEYS_FILE")]
    pub keys_file: Option<PathBuf>,
    /// Server-side pepper the keys file's keys were hashed with (the one `tickwire keys add` was
    /// given). Prefer the environment variable or `--secrets-file`.
    #[arg(long, env = "TICKWIRE_API_KEY_PEPPER", hide_env_values = true)]
    pub api_key_pepper: Option<String>,
    /// The broker whose feed to serve (default kite); or use `--feed`.
    #[arg(long, value_enum)]
    pub broker: Option<BrokerKind>,
    /// A feed: `BROKER[:EXCHANGE,EXCHANGE,...]` (repeatable, one per broker). Each feed serves the
    /// OpenAlgo exchanges listed; a feed listing none serves every exchange no other feed claims.
    #[arg(long = "feed")]
    pub feeds: Vec<FeedSpec>,
    /// Kite ticker URL (default `wss://ws.kite.trade`).
    #[arg(long)]
    pub kite_url: Option<String>,
    /// Kite instrument master, URL or file (default `https://api.kite.trade/instruments`).
    #[arg(long)]
    pub kite_instruments: Option<String>,
    /// Upstox API base the feed is authorized at (default `https://api.upstox.com`).
    #[arg(long)]
    pub upstox_url: Option<String>,
    /// Upstox instrument master (gzip JSON), URL or file (default: Upstox's published one).
    #[arg(long)]
    pub upstox_instruments: Option<String>,
    /// Fyers data socket URL (default `wss://socket.fyers.in/hsm/v1-5/prod`).
    #[arg(long)]
    pub fyers_url: Option<String>,
    /// Fyers symbol masters (CSV), URLs or files, comma-separated (default: Fyers' published ones).
    #[arg(long)]
    pub fyers_instruments: Option<String>,
    /// With one broker: its URL (as --kite-url / --upstox-url / --fyers-url). Kite: the ticker URL (default `wss://ws.kite.trade`). Upstox: the API base the feed is
    /// authorized at (default `https://api.upstox.com`). Fyers: the data socket URL (default
    /// `wss://socket.fyers.in/hsm/v1-5/prod`).
    #[arg(long)]
    pub broker_url: Option<String>,
    /// With one broker: its instrument master (as --kite-instruments, …): URL or file (default: the
    /// broker's published one; Fyers: several, comma-separated).
    #[arg(long)]
    pub instruments: Option<String>,
    /// Kite API key.
    #[arg(long, env = "TICKWIRE_KITE_API_KEY", hide_env_values = true)]
    pub kite_api_key: Option<String>,
    /// Kite access token.
    #[arg(long, env = "TICKWIRE_KITE_ACCESS_TOKEN", hide_env_values = true)]
    pub kite_access_token: Option<String>,
    /// Upstox access token (OAuth; Upstox rolls it daily).
    #[arg(long, env = "TICKWIRE_UPSTOX_ACCESS_TOKEN", hide_env_values = true)]
    pub upstox_access_token: Option<String>,
    /// Fyers access token, `APPID-100:<JWT>` or the bare JWT (Fyers rolls it daily).
    #[arg(long, env = "TICKWIRE_FYERS_ACCESS_TOKEN", hide_env_values = true)]
    pub fyers_access_token: Option<String>,
    /// Fyers REST base, where symbols are resolved to topics (`/data/symbol-token`).
    #[arg(long, default_value = "https://api-t1.fyers.in")]
    pub fyers_api_url: String,
    /// Angel One SmartAPI WebSocket URL (default `wss://smartapisocket.angelone.in/smart-stream`).
    #[arg(long)]
    pub angel_url: Option<String>,
    /// Angel One scrip master (JSON), URL or file (default: Angel's published
    /// `OpenAPIScripMaster.json`).
    #[arg(long)]
    pub angel_instruments: Option<String>,
    /// Angel One SmartAPI app key (`x-api-key`).
    #[arg(long, env = "TICKWIRE_ANGEL_API_KEY", hide_env_values = true)]
    pub angel_api_key: Option<String>,
    /// Angel One client code (`x-client-code`).
    #[arg(long, env = "TICKWIRE_ANGEL_CLIENT_CODE", hide_env_values = true)]
    pub angel_client_code: Option<String>,
    /// Angel One JWT from the login (`Authorization`; Angel rolls it daily).
    #[arg(long, env = "TICKWIRE_ANGEL_JWT", hide_env_values = true)]
    pub angel_jwt: Option<String>,
    /// Angel One feed token from the login (`x-feed-token`).
    #[arg(long, env = "TICKWIRE_ANGEL_FEED_TOKEN", hide_env_values = true)]
    pub angel_feed_token: Option<String>,
    /// Dhan feed URL, without its query (default `wss://api-feed.dhan.co`).
    #[arg(long)]
    pub dhan_url: Option<String>,
    /// Dhan scrip master (CSV), URL or file (default: Dhan's published `api-scrip-master.csv`).
    #[arg(long)]
    pub dhan_instruments: Option<String>,
    /// Dhan client id.
    #[arg(long, env = "TICKWIRE_DHAN_CLIENT_ID", hide_env_values = true)]
    pub dhan_client_id: Option<String>,
    /// Dhan access token.
    #[arg(long, env = "TICKWIRE_DHAN_ACCESS_TOKEN", hide_env_values = true)]
    pub dhan_access_token: Option<String>,
    /// Shoonya's Noren WebSocket URL (default `wss://api.shoonya.com/NorenWSTP/`).
    #[arg(long)]
    pub shoonya_url: Option<String>,
    /// Flattrade's Noren WebSocket URL (default `wss://piconnect.flattrade.in/PiConnectWSTp/`).
    #[arg(long)]
    pub flattrade_url: Option<String>,
    /// Another Noren broker's WebSocket URL (needed with `--broker noren`).
    #[arg(long)]
    pub noren_url: Option<String>,
    /// Noren symbol masters (zip or text), URLs or files, comma-separated (default: the masters
    /// Shoonya publishes; Noren tokens are the exchanges' own, the same at every Noren broker).
    #[arg(long)]
    pub noren_instruments: Option<String>,
    /// Noren user id (`uid`) for Shoonya, Flattrade or another Noren broker.
    #[arg(long, env = "TICKWIRE_NOREN_USER", hide_env_values = true)]
    pub noren_user: Option<String>,
    /// Noren account id (`actid`; default: the user id).
    #[arg(long, env = "TICKWIRE_NOREN_ACCOUNT", hide_env_values = true)]
    pub noren_account: Option<String>,
    /// Noren session token from the login (`susertoken`; rolled daily).
    #[arg(long, env = "TICKWIRE_NOREN_TOKEN", hide_env_values = true)]
    pub noren_token: Option<String>,
    /// Extra CA certificates (PEM) to trust for a wss:// broker URL, besides the Mozilla roots.
    #[arg(long)]
    pub broker_ca_file: Option<PathBuf>,
    /// A file of `NAME=value` lines setting the secrets' variables (see below); keep it mode 600.
    /// Its broker tokens are read again while the gateway runs, when the file changes or on
    /// SIGHUP: a feed whose credentials changed reconnects with them, clients stay connected.
    #[arg(long, visible_alias = "credentials-file")]
    pub secrets_file: Option<PathBuf>,
    /// The secrets given as flags on the command line, by variable name (filled in by `main` from
    /// clap's value sources): a reload keeps their values, since a flag wins over the file.
    #[arg(skip)]
    pub secrets_given_as_flags: std::collections::BTreeSet<String>,
    /// The flags given on the command line or by an environment variable: the config file does
    /// not override them (also when it is re-read at run time).
    #[arg(skip)]
    pub explicit: std::collections::BTreeSet<String>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// `tickwire demo` flags.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Client WebSocket port on 127.0.0.1.
    #[arg(long, default_value_t = 8765)]
    pub port: u16,
    /// Synthetic instruments in the mock market besides the named ones (at most 500,000).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=MAX_SYMBOLS))]
    pub symbols: u32,
    /// Mock market updates per second, all instruments together (1 to 10,000,000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=MAX_RATE))]
    pub rate: u64,
    /// The API key clients use (default: a fresh random one, printed).
    #[arg(long, env = "TICKWIRE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// A file of `NAME=value` lines, e.g. `TICKWIRE_API_KEY=…` (kept out of the process table).
    #[arg(long)]
    pub secrets_file: Option<PathBuf>,
    /// Mock broker port (0 = any free port).
    #[arg(long, default_value_t = 0)]
    pub broker_port: u16,
    /// Mock market seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The wire format the mock market speaks (the gateway's feed speaks it too).
    #[arg(long, value_enum, default_value_t = BrokerKind::Kite)]
    pub broker: BrokerKind,
    /// Follow the market calendar as `serve` does (the feed disconnects outside market hours).
    /// Without it the demo's mock market is always open (`--dev`), whatever the hour.
    #[arg(long)]
    pub market_hours: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// `tickwire mock-broker` flags.
#[derive(Args, Debug, Clone)]
pub struct MockArgs {
    /// Which broker's protocol to speak.
    #[arg(long, value_enum, default_value_t = BrokerKind::Kite)]
    pub broker: BrokerKind,
    /// Port on 127.0.0.1.
    #[arg(long)]
    pub port: u16,
    /// Synthetic instruments besides the named ones (at most 500,000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=MAX_SYMBOLS))]
    pub symbols: u32,
    /// Market updates per second (1 to 10,000,000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=MAX_RATE))]
    pub rate: u64,
    /// Random-walk seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// api_key the mock accepts (Kite).
    #[arg(long, default_value = "mock_api_key")]
    pub api_key: String,
    /// Access token the mock accepts (every broker).
    #[arg(long, default_value = "mock_access_token")]
    pub access_token: String,
    /// Serve wss:// with this PEM certificate chain (with --tls-key).
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// Pin the mock's market and connection threads to this CPU.
    #[arg(long)]
    pub core: Option<usize>,
    /// Sleep between market batches, µs: the updates due meanwhile share one frame.
    #[arg(long, default_value_t = 100)]
    pub frame_us: u64,
    /// Ignore the first N client messages (over all connections), as a broker that loses
    /// requests (for testing a gateway's retries).
    #[arg(long, default_value_t = 0)]
    pub ignore_requests: u64,
}

fn wait(stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `tickwire serve`.
pub fn serve(a: ServeArgs, stop: &AtomicBool) -> Result<(), String> {
    if a.api_keys.iter().any(|k| k.trim().is_empty()) {
        return Err("--api-key must not be empty: no client could authenticate".into());
    }
    if a.api_keys.is_empty() && a.keys_file.is_none() {
        return Err(
            "no API keys: serve needs --keys-file FILE (made with `tickwire keys add`) or --api-key \
                    (or TICKWIRE_API_KEYS, or [keys] api_keys in the config file)"
                .into(),
        );
    }
    // The keys file is read (and its pepper checked) before anything else starts: a bad file
    // or a wrong pepper is a start-up error naming the file, not a gateway nobody can use.
    let keys = match &a.keys_file {
        Some(path) => {
            let pepper = a.api_key_pepper.as_deref().unwrap_or("");
            // Watched from before the read: a change made meanwhile is a change.
            let watch = crate::reload::Watch::new(path);
            let store = KeyStore::open(path, pepper.as_bytes()).map_err(|e| e.to_string())?;
            tracing::info!("tickwire: {} API keys from {}", store.len(), path.display());
            Some((store, watch))
        }
        None => None,
    };
    let ups = feeds::upstreams(&a)?;
    let names: Vec<String> = ups
        .iter()
        .map(|u| match u.exchanges.is_empty() {
            true => u.broker.name().to_string(),
            false => format!("{} ({})", u.broker.name(), u.exchanges.join(",")),
        })
        .collect();
    // Watching starts before the feeds do: a file rewritten during a slow start is not missed.
    let sources = Sources::at_start(&a);
    let files = sources.files();
    let args = a.clone();
    let rollover = Rollover::new(
        &files,
        Box::new(move || credentials::broker_configs(&args, &sources)),
    );
    let auth = ClientAuth {
        api_keys: a.api_keys,
        keys,
    };
    // `serve` journals by default (`demo` only when asked).
    let mut engine = a.engine.clone();
    engine.journal.default_on();
    let mut run = start(ups, a.port, auth, &engine)?;
    let rollover = rollover.with_feeds(std::mem::take(&mut run.credentials));
    tracing::info!(
        "tickwire: serving ws://{} ({} instruments from {}), shm {}",
        run.addr,
        run.registry.len(),
        names.join(" + "),
        a.engine.shm.display()
    );
    std::thread::scope(|s| {
        let reload = std::thread::Builder::new()
            .name("tickwire-reload".into())
            .spawn_scoped(s, || rollover.run(stop));
        if let Err(e) = &reload {
            tracing::error!("cannot start the reload thread ({e}): credentials are not reloaded");
        }
        wait(stop);
        run.shutdown();
    });
    Ok(())
}

/// Starts a mock broker and a gateway whose feed connects to it over a real WebSocket.
pub fn start_with_mock(
    mcfg: MockConfig,
    port: u16,
    api_keys: Vec<String>,
    engine: &EngineArgs,
) -> Result<(MockBroker, Running), String> {
    let mock = MockBroker::start(mcfg.clone()).map_err(|e| format!("mock broker: {e}"))?;
    let (broker, instruments) = mcfg.broker.gateway(mock.addr(), &mcfg);
    let up = Upstream {
        broker,
        feed: FeedConfig::default(),
        instruments,
        exchanges: Vec::new(),
    };
    let run = start(vec![up], port, api_keys.into(), engine)?;
    Ok((mock, run))
}

/// `tickwire demo`: the mock broker and the gateway wired to it.
pub fn demo(a: DemoArgs, stop: &AtomicBool) -> Result<(), String> {
    if a.api_key.as_deref().is_some_and(|k| k.trim().is_empty()) {
        return Err("--api-key must not be empty: no client could authenticate".into());
    }
    let mcfg = MockConfig {
        broker: a.broker,
        port: a.broker_port,
        symbols: a.symbols,
        rate: a.rate,
        seed: a.seed,
        ..MockConfig::default()
    };
    let key = match a.api_key {
        Some(k) => k,
        // From the OS random source: 256 bits.
        None => secret::random_token().map_err(|e| e.to_string())?,
    };
    // The demo's market is small: keep every instrument flowing, so shared memory shows live ticks
    // before any WebSocket client subscribes.
    let mut engine = a.engine.clone();
    engine.subscribe_all = true;
    // A mock market trades at any hour: the demo works at night and on weekends.
    engine.dev = engine.dev || !a.market_hours;
    let (mock, run) = start_with_mock(mcfg, a.port, vec![key.clone()], &engine)?;
    let base = mock.addr();
    println!("tickwire demo: mock {} broker + gateway", a.broker.title());
    println!("  WebSocket (OpenAlgo protocol): ws://{}", run.addr);
    println!("  dashboard (in a browser):      http://{}/", run.addr);
    println!("  API key:                       {key}");
    println!(
        "  shared memory:                 {}",
        a.engine.shm.display()
    );
    println!(
        "  mock broker ({} protocol): ws://{base}  ({} instruments, {} updates/s)",
        a.broker.title(),
        run.registry.len(),
        a.rate
    );
    println!("  try: NSE:SBIN NSE:RELIANCE NSE:INFY NSE:TCS NSE_INDEX:NIFTY NFO:NIFTY29DEC26FUT CDS:USDINR29DEC26FUT");
    println!("Ctrl-C to stop.");
    wait(stop);
    tracing::info!("tickwire demo: shutting down");
    run.shutdown();
    mock.stop();
    Ok(())
}

/// `tickwire mock-broker`.
pub fn mock_broker(a: MockArgs, stop: &AtomicBool) -> Result<(), String> {
    let cfg = MockConfig {
        broker: a.broker,
        port: a.port,
        symbols: a.symbols,
        rate: a.rate,
        seed: a.seed,
        api_key: a.api_key,
        access_token: a.access_token,
        tls: match (a.tls_cert, a.tls_key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => return Err("--tls-cert and --tls-key go together".into()),
        },
        core: a.core,
        frame_interval: Duration::from_micros(a.frame_us),
        ignore_requests: a.ignore_requests,
    };
    let (ws, http) = if cfg.tls.is_some() {
        ("wss", "https")
    } else {
        ("ws", "http")
    };
    let mcfg = cfg.clone();
    let mock = MockBroker::start(cfg).map_err(|e| format!("mock broker: {e}"))?;
    let addr = mock.addr();
    println!("{}", a.broker.describe(ws, http, addr, &mcfg));
    wait(stop);
    mock.stop();
    Ok(())
}
