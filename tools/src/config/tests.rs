//! The file format, its errors, and its mapping onto `serve`'s flags.

use std::path::Path;

use clap::{CommandFactory, FromArgMatches};
use tickwire_io::brokers::BrokerConfig;

use super::*;
use crate::gateway_cmd::{RouterPlacement, ServeArgs};
use crate::mock::BrokerKind;

const EXAMPLE: &str = include_str!("../../../tickwire.example.toml");

/// `serve`'s flags as parsed from `argv`, with the set of flags the command line gave.
fn parsed(argv: &[&str]) -> ServeArgs {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }
    let m = Cli::command()
        .try_get_matches_from(std::iter::once("serve").chain(argv.iter().copied()))
        .unwrap();
    let mut a = Cli::from_arg_matches(&m).unwrap().serve;
    a.explicit = explicit(&m);
    a
}

fn cfg(text: &str) -> Config {
    parse(Path::new("t.toml"), text).unwrap()
}

fn err(text: &str) -> String {
    parse(Path::new("t.toml"), text).unwrap_err().to_string()
}

#[test]
fn the_example_parses_and_its_values_are_the_defaults() {
    let c = cfg(EXAMPLE);
    assert_eq!(c.feeds.len(), 1);
    assert_eq!(c.feeds[0].broker, BrokerKind::Kite);
    let defaults = parsed(&[]);
    let mut a = parsed(&[]);
    apply(&c, &mut a);
    // Everything but the feed list is the flags' default (the keys file is commented out: the
    // example takes its client keys from TICKWIRE_API_KEYS, so it runs as is).
    assert_eq!(format!("{:?}", a.engine), format!("{:?}", defaults.engine));
    assert_eq!(a.port, defaults.port);
    assert_eq!(a.fyers_api_url, defaults.fyers_api_url);
    assert_eq!(a.keys_file, None);
    // Every key of the format appears in the example, set or commented out.
    for key in [
        "credentials_file",
        "listen",
        "port",
        "allow_origin",
        "max_pending",
        "max_pending_per_addr",
        "client_core",
        "ring_capacity",
        "router",
        "idle",
        "router_core",
        "feed_threads",
        "feed_cores",
        "flush_ms",
        "subscribe",
        "subscribe_all",
        "upstream_confirm_ms",
        "stale_floor_s",
        "stale_factor",
        "stall_floor_s",
        "enabled",
        "dir",
        "segment_mb",
        "sync_ms",
        "ring_mb",
        "table",
        "batch_rows",
        "lanes",
        "level",
        "format",
        "file",
        "pepper",
        "api_keys",
        "max_subscriptions",
        "subscription_changes_per_minute",
        "max_message_bytes",
        "idle_timeout_s",
        "max_clients_per_key",
        "max_clients",
        "max_auth_attempts",
        "auth_failures_per_minute",
        "dev",
        "holidays",
        "broker",
        "exchanges",
        "url",
        "instruments",
        "api_url",
        "connections",
        "symbols_per_connection",
        "api_key",
        "access_token",
        "client_code",
        "jwt",
        "feed_token",
        "client_id",
        "user",
        "account",
        "token",
    ] {
        let present = EXAMPLE.lines().any(|l| {
            let l = l.trim_start_matches(['#', ' ']);
            l.starts_with(&format!("{key} =")) || l.starts_with(&format!("{key}:"))
        });
        assert!(present, "{key} is not in tickwire.example.toml");
    }
}

#[test]
fn bad_files_name_the_line_and_the_key() {
    let e = err("[gateway]\nport = 8765\n\n[limits]\nmax_subscriptions = \"many\"\n");
    assert!(
        e.starts_with("config file t.toml, line 5, key limits.max_subscriptions: invalid type"),
        "{e}"
    );
    let e = err("[gateway]\nprot = 1\n");
    assert!(
        e.starts_with("config file t.toml, line 2, key gateway.prot: unknown field `prot`"),
        "{e}"
    );
    let e = err("[shm]\npath = \"/x\"\n\n[[feed]]\nexchanges = [\"NSE\"]\n");
    assert!(
        e.starts_with("config file t.toml, line 4, key feed[0].broker: missing field `broker`"),
        "{e}"
    );
    let e = err("[limits.per_key.desk]\nmax_subscription = 3\n");
    assert!(
        e.contains("line 2, key limits.per_key.desk.max_subscription: unknown field"),
        "{e}"
    );
    let e = err("surprise = 1\n");
    assert!(e.contains("line 1, key surprise: unknown field"), "{e}");
    let e = err("[gateway\n");
    assert!(e.starts_with("config file t.toml, line 1: "), "{e}");
}

#[test]
fn bad_values_are_refused_where_they_are() {
    let e = err("[engine]\nidle = \"sleepy\"\n");
    assert!(e.contains("line 2, key engine.idle: idle strategy"), "{e}");
    let e = err("[engine]\nrouter = \"elsewhere\"\n");
    assert!(
        e.contains("key engine.router: unknown router placement"),
        "{e}"
    );
    let e = err("[[feed]]\nbroker = \"sharekhan\"\n");
    assert!(
        e.contains("line 2, key feed[0].broker: unknown broker"),
        "{e}"
    );
    let e = err("[[feed]]\nbroker = \"kite\"\nexchanges = [\"NSX\"]\n");
    assert!(
        e.contains("line 3, key feed[0].exchanges: unknown exchange"),
        "{e}"
    );
    let e = err("[shm]\nring_capacity = 1000\n");
    assert!(
        e.contains("line 2, key shm.ring_capacity: 1000 is not a power of two"),
        "{e}"
    );
    let e = err("[log]\nformat = \"xml\"\n");
    assert!(e.contains("line 2, key log.format"), "{e}");
    let e = err("[gateway]\nlisten = \"localhost:80\"\n");
    assert!(e.contains("line 2, key gateway.listen"), "{e}");
    let e = err("[keys]\napi_keys = [\" \"]\n");
    assert!(e.contains("key keys.api_keys"), "{e}");
}

#[test]
fn feeds_that_serve_cannot_run_are_refused() {
    let e = err("[[feed]]\nbroker = \"kite\"\n\n[[feed]]\nbroker = \"zerodha\"\n");
    assert!(
        e.contains("line 5, key feed[1].broker: a second kite feed"),
        "{e}"
    );
    let e = err("[[feed]]\nbroker = \"shoonya\"\n[[feed]]\nbroker = \"flattrade\"\n");
    assert!(e.contains("one Noren-family feed"), "{e}");
    let e = err("[[feed]]\nbroker = \"dhan\"\njwt = \"x\"\n");
    assert!(
        e.contains("line 3, key feed[0].jwt: a dhan feed has no jwt"),
        "{e}"
    );
    let e = err(
        "[[feed]]\nbroker = \"kite\"\nexchanges = [\"NSE\"]\n[[feed]]\nbroker = \"upstox\"\nexchanges = [\"nse\"]\n",
    );
    assert!(
        e.contains("exchange NSE is given to both kite and upstox"),
        "{e}"
    );
    let e = err("[[feed]]\nbroker = \"kite\"\nconnections = 0\n");
    assert!(e.contains("feed[0].connections: must be at least 1"), "{e}");
}

const TWO_FEEDS: &str = r#"
[gateway]
port = 9000
listen = "127.0.0.2"

[engine]
router = "thread"
idle = "spin"
feed_cores = [2, 3]

[keys]
api_keys = ["from-file"]

[limits]
max_subscriptions = 50

[limits.per_key.desk]
max_subscriptions = 500

[market]
dev = true

[[feed]]
broker = "kite"
exchanges = ["NSE", "BSE"]
url = "ws://127.0.0.1:1"
instruments = "/tmp/kite.csv"
api_key = "ka"
access_token = "kt"
connections = 2

[[feed]]
broker = "flattrade"
exchanges = ["NFO"]
user = "U"
token = "T"
symbols_per_connection = 50
"#;

#[test]
fn the_file_fills_the_flags() {
    let mut a = parsed(&[]);
    apply(&cfg(TWO_FEEDS), &mut a);
    assert_eq!(a.port, 9000);
    assert_eq!(a.engine.listen.to_string(), "127.0.0.2");
    assert_eq!(a.engine.router, RouterPlacement::Thread);
    assert_eq!(a.engine.feed_core, vec![2, 3]);
    assert_eq!(a.api_keys, vec!["from-file"]);
    assert_eq!(a.engine.limits.max_subscriptions, 50);
    assert_eq!(a.engine.per_key_limits["desk"].max_subscriptions, Some(500));
    assert!(a.engine.dev);
    assert_eq!(a.kite_access_token.as_deref(), Some("kt"));
    assert_eq!(a.noren_user.as_deref(), Some("U"));
    let ups = crate::gateway_cmd::upstreams(&a).unwrap();
    assert_eq!(ups.len(), 2);
    let BrokerConfig::Kite(k) = &ups[0].broker else {
        panic!("{:?}", ups[0].broker)
    };
    assert_eq!(
        (k.url.as_str(), k.api_key.as_str()),
        ("ws://127.0.0.1:1", "ka")
    );
    assert_eq!(ups[0].instruments, "/tmp/kite.csv");
    assert_eq!(ups[0].exchanges, vec!["NSE", "BSE"]);
    assert_eq!(ups[0].feed.connections, Some(2));
    let BrokerConfig::Noren(n) = &ups[1].broker else {
        panic!("{:?}", ups[1].broker)
    };
    assert_eq!(
        (n.broker, n.user.as_str(), n.account.as_str()),
        ("flattrade", "U", "U")
    );
    assert_eq!(ups[1].feed.per_connection, Some(50));
}

#[test]
fn flags_on_the_command_line_win_over_the_file() {
    let mut a = parsed(&[
        "--port",
        "9100",
        "--idle",
        "yield",
        "--api-key",
        "from-flag",
        "--kite-access-token",
        "flag-token",
        "--max-subscriptions",
        "7",
        "--upstream-connections",
        "1",
    ]);
    apply(&cfg(TWO_FEEDS), &mut a);
    assert_eq!(a.port, 9100);
    assert_eq!(
        a.engine.idle,
        "yield"
            .parse::<tickwire_engine::idle::IdleStrategy>()
            .unwrap()
    );
    assert_eq!(a.api_keys, vec!["from-flag"]);
    assert_eq!(a.kite_access_token.as_deref(), Some("flag-token"));
    assert_eq!(a.kite_api_key.as_deref(), Some("ka"));
    assert_eq!(a.engine.limits.max_subscriptions, 7);
    // The global pool flag beats the file's per-feed size.
    let ups = crate::gateway_cmd::upstreams(&a).unwrap();
    assert_eq!(ups[0].feed.connections, None);
    assert_eq!(a.engine.upstream_connections, Some(1));
    // Feeds chosen on the command line replace the file's list.
    let mut a = parsed(&["--broker", "kite", "--broker-url", "ws://127.0.0.1:2"]);
    apply(&cfg(TWO_FEEDS), &mut a);
    assert!(a.feeds.is_empty());
    let ups = crate::gateway_cmd::upstreams(&a).unwrap();
    let BrokerConfig::Kite(k) = &ups[0].broker else {
        panic!()
    };
    assert_eq!(k.url, "ws://127.0.0.1:2");
    assert_eq!(k.access_token, "kt");
}

#[test]
fn relative_paths_are_taken_from_the_files_directory() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.toml");
    std::fs::write(
        &p,
        "credentials_file = \"creds\"\n[keys]\nfile = \"/abs/keys.toml\"\n[market]\nholidays = \"h\"\n",
    )
    .unwrap();
    let c = load(&p).unwrap();
    assert_eq!(c.credentials_file, Some(dir.path().join("creds")));
    assert_eq!(c.keys.file.as_deref(), Some(Path::new("/abs/keys.toml")));
    assert_eq!(c.market.holidays, Some(dir.path().join("h")));
    let e = load(&dir.path().join("none.toml")).unwrap_err().to_string();
    assert!(e.contains("none.toml: cannot read it"), "{e}");
}

#[test]
fn the_config_flag_is_found_before_parsing() {
    let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        flag_value(&a(&["tickwire", "serve", "--config", "c.toml"]), "config"),
        Some("c.toml".into())
    );
    assert_eq!(
        flag_value(&a(&["tickwire", "serve", "--config=d.toml"]), "config"),
        Some("d.toml".into())
    );
    assert_eq!(
        flag_value(&a(&["tickwire", "--", "--config", "x"]), "config"),
        None
    );
    assert_eq!(
        flag_value(&a(&["tickwire", "--configure", "x"]), "config"),
        None
    );
}

#[test]
fn check_finds_credentials_in_the_credentials_file() {
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds");
    std::fs::write(
        &creds,
        "TICKWIRE_DHAN_CLIENT_ID=1\nTICKWIRE_DHAN_ACCESS_TOKEN=t\n",
    )
    .unwrap();
    let p = dir.path().join("t.toml");
    let body =
        "credentials_file = \"creds\"\n[keys]\napi_keys = [\"k\"]\n[[feed]]\nbroker = \"dhan\"\n";
    std::fs::write(&p, body).unwrap();
    let ok = check(&p).unwrap();
    assert!(
        ok.starts_with("config OK: ") && ok.contains("feeds dhan"),
        "{ok}"
    );
    std::fs::write(&creds, "TICKWIRE_DHAN_CLIENT_ID=1\n").unwrap();
    let e = check(&p).unwrap_err();
    assert!(
        e.contains("line 4, key feed[0].access_token: the dhan feed needs access_token"),
        "{e}"
    );
    std::fs::write(
        &p,
        "[[feed]]\nbroker = \"dhan\"\nclient_id = \"1\"\naccess_token = \"t\"\n",
    )
    .unwrap();
    let e = check(&p).unwrap_err();
    assert!(e.contains("key keys: no client API keys"), "{e}");
}
