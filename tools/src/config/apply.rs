//! The config file onto `serve`'s flags: each key fills its flag unless the command line or an
//! environment variable already gave it.

use std::collections::BTreeSet;

use clap::parser::ValueSource;
use clap::ArgMatches;

use super::{slots, Config, FeedTable};
use crate::gateway_cmd::ServeArgs;

/// The ids of the flags `m` got from the command line or an environment variable: the ones the
/// file must not override.
pub fn explicit(m: &ArgMatches) -> BTreeSet<String> {
    m.ids()
        .filter(|id| {
            matches!(
                m.value_source(id.as_str()),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        })
        .map(|id| id.as_str().to_string())
        .collect()
}

/// Fills `a` from `cfg` wherever `a.explicit` (see [`explicit`]) does not name the flag.
///
/// Idempotent, so a running gateway can re-apply a changed file to the flags as first parsed.
pub fn apply(cfg: &Config, a: &mut ServeArgs) {
    let given = std::mem::take(&mut a.explicit);
    let g = |id: &str| given.contains(id);
    // `set!(dst, id, value)`: a value the file gives, unless flag `id` was given.
    macro_rules! set {
        ($dst:expr, $id:literal, $v:expr) => {
            if let Some(v) = &$v {
                if !g($id) {
                    $dst = v.clone();
                }
            }
        };
    }
    macro_rules! set_opt {
        ($dst:expr, $id:literal, $v:expr) => {
            if let Some(v) = &$v {
                if !g($id) {
                    $dst = Some(v.clone());
                }
            }
        };
    }
    let e = &mut a.engine;
    let gw = &cfg.gateway;
    set!(e.listen, "listen", gw.listen);
    set!(a.port, "port", gw.port);
    set!(e.allow_origin, "allow_origin", gw.allow_origin);
    set!(e.max_pending, "max_pending", gw.max_pending);
    set!(
        e.max_pending_per_addr,
        "max_pending_per_addr",
        gw.max_pending_per_addr
    );
    set_opt!(e.client_core, "client_core", gw.client_core);

    set!(e.shm, "shm", cfg.shm.path);
    set!(e.ring_capacity, "ring_capacity", cfg.shm.ring_capacity);

    let j = &cfg.journal;
    set_opt!(e.journal.dir, "journal", j.dir);
    if let Some(on) = j.enabled {
        if !g("no_journal") && !g("journal") {
            e.journal.no_journal = !on;
        }
    }
    set!(
        e.journal.journal_segment_mb,
        "journal_segment_mb",
        j.segment_mb
    );
    set!(e.journal.journal_sync_ms, "journal_sync_ms", j.sync_ms);
    set!(e.journal.journal_ring_mb, "journal_ring_mb", j.ring_mb);

    let k = &cfg.sink;
    set_opt!(e.sink.url, "sink", k.url);
    set!(e.sink.sink_table, "sink_table", k.table);
    set!(e.sink.sink_batch_rows, "sink_batch_rows", k.batch_rows);
    set!(e.sink.sink_flush_ms, "sink_flush_ms", k.flush_ms);
    set!(e.sink.sink_lanes, "sink_lanes", k.lanes);

    let en = &cfg.engine;
    set!(e.router, "router", en.router);
    set!(e.idle, "idle", en.idle);
    set_opt!(e.router_core, "router_core", en.router_core);
    set!(e.feed_threads, "feed_threads", en.feed_threads);
    set!(e.feed_core, "feed_core", en.feed_cores);
    set!(e.flush_ms, "flush_ms", en.flush_ms);
    set!(e.subscribe, "subscribe", en.subscribe);
    set!(e.subscribe_all, "subscribe_all", en.subscribe_all);
    set!(
        e.upstream_confirm_ms,
        "upstream_confirm_ms",
        en.upstream_confirm_ms
    );
    set!(e.stale_floor_s, "stale_floor_s", en.stale_floor_s);
    set!(e.stale_factor, "stale_factor", en.stale_factor);
    set!(e.stall_floor_s, "stall_floor_s", en.stall_floor_s);

    let li = &cfg.limits;
    let l = &mut e.limits;
    set!(
        l.max_subscriptions,
        "max_subscriptions",
        li.max_subscriptions
    );
    set!(
        l.max_subscription_changes_per_minute,
        "max_subscription_changes_per_minute",
        li.subscription_changes_per_minute
    );
    set!(
        l.max_message_bytes,
        "max_message_bytes",
        li.max_message_bytes
    );
    set!(l.idle_timeout_s, "idle_timeout_s", li.idle_timeout_s);
    set!(
        l.max_clients_per_key,
        "max_clients_per_key",
        li.max_clients_per_key
    );
    set!(l.max_clients, "max_clients", li.max_clients);
    set!(
        l.max_auth_attempts,
        "max_auth_attempts",
        li.max_auth_attempts
    );
    set!(
        l.auth_failures_per_minute,
        "auth_failures_per_minute",
        li.auth_failures_per_minute
    );
    // Per-key overrides: the file's, with `--limit-override` flags over them at start.
    e.per_key_limits = li.per_key.clone();

    set!(e.dev, "dev", cfg.market.dev);
    set_opt!(e.holidays, "holidays", cfg.market.holidays);

    set!(a.api_keys, "api_keys", cfg.keys.api_keys);
    set_opt!(a.keys_file, "keys_file", cfg.keys.file);
    set_opt!(a.api_key_pepper, "api_key_pepper", cfg.keys.pepper);
    set_opt!(a.secrets_file, "secrets_file", cfg.credentials_file);

    apply_feeds(cfg, a, &g);
    a.explicit = given;
}

/// `[[feed]]` tables: the feed list (unless `--broker`/`--feed` chose the feeds) and each
/// broker's own flags.
fn apply_feeds(cfg: &Config, a: &mut ServeArgs, g: &dyn Fn(&str) -> bool) {
    if !g("broker") && !g("feeds") && !cfg.feeds.is_empty() {
        a.feeds = cfg.feeds.iter().map(FeedTable::spec).collect();
    } else {
        // Feeds chosen on the command line still take their tables' pool sizes.
        for s in &mut a.feeds {
            if let Some(t) = cfg.feeds.iter().find(|t| t.broker == s.broker) {
                s.connections = s.connections.or(t.connections);
                s.per_connection = s.per_connection.or(t.symbols_per_connection);
            }
        }
    }
    // A per-feed size wins over the global flag in `start`; a global flag given on the command
    // line must win over the file.
    for s in &mut a.feeds {
        if g("upstream_connections") {
            s.connections = None;
        }
        if g("upstream_symbols_per_connection") {
            s.per_connection = None;
        }
    }
    for t in &cfg.feeds {
        for s in slots(t.broker) {
            let Some(v) = t.get(s.key) else { continue };
            // With one broker `--broker-url` / `--instruments` stand for its own URL and master
            // flags: given on the command line, they win over the file's.
            let shared = match s.key {
                "url" => g("broker_url"),
                "instruments" => g("instruments"),
                _ => false,
            };
            if g(s.id) || shared {
                continue;
            }
            if s.id == "fyers_api_url" {
                a.fyers_api_url = v.to_string();
            } else if let Some(dst) = field(a, s.id) {
                *dst = Some(v.to_string());
            }
        }
    }
}

/// The `ServeArgs` field of a broker flag id (every id [`slots`] names but `fyers_api_url`).
fn field<'a>(a: &'a mut ServeArgs, id: &str) -> Option<&'a mut Option<String>> {
    Some(match id {
        "kite_url" => &mut a.kite_url,
        "kite_instruments" => &mut a.kite_instruments,
        "kite_api_key" => &mut a.kite_api_key,
        "kite_access_token" => &mut a.kite_access_token,
        "upstox_url" => &mut a.upstox_url,
        "upstox_instruments" => &mut a.upstox_instruments,
        "upstox_access_token" => &mut a.upstox_access_token,
        "fyers_url" => &mut a.fyers_url,
        "fyers_instruments" => &mut a.fyers_instruments,
        "fyers_access_token" => &mut a.fyers_access_token,
        "angel_url" => &mut a.angel_url,
        "angel_instruments" => &mut a.angel_instruments,
        "angel_api_key" => &mut a.angel_api_key,
        "angel_client_code" => &mut a.angel_client_code,
        "angel_jwt" => &mut a.angel_jwt,
        "angel_feed_token" => &mut a.angel_feed_token,
        "dhan_url" => &mut a.dhan_url,
        "dhan_instruments" => &mut a.dhan_instruments,
        "dhan_client_id" => &mut a.dhan_client_id,
        "dhan_access_token" => &mut a.dhan_access_token,
        "shoonya_url" => &mut a.shoonya_url,
        "flattrade_url" => &mut a.flattrade_url,
        "noren_url" => &mut a.noren_url,
        "noren_instruments" => &mut a.noren_instruments,
        "noren_user" => &mut a.noren_user,
        "noren_account" => &mut a.noren_account,
        "noren_token" => &mut a.noren_token,
        _ => return None,
    })
}
