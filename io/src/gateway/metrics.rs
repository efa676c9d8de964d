//! `GET /metrics`: the Prometheus text exposition format (version 0.0.4), written by hand.
//!
//! Hand-written rather than the `prometheus` crate (`docs/decisions.md` has the measurements):
//! every figure already lives in an atomic the tick path updates anyway (`FeedStatus`,
//! `GatewayStats`, `RouterStats`) or in a [`tickwire_engine::hist::Histogram`] recorded with a
//! plain load and store, so a scrape only reads them; the crate would add its own counters
//! (`fetch_add`, a locked instruction) on the tick path, or a collector doing what this does.
//! Names are `tickwire_*`, each family with `# HELP` and `# TYPE`; latencies are seconds, as
//! Prometheus names them. `docs/observability.md` lists them all.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use tickwire_engine::health;

use tickwire_engine::hist::Snapshot;

use super::{Shared, View};
use crate::feed::{feed_state, upstream_state};

/// The exposition's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label value escaped for the text format (backslash, double quote, newline).
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Builds the exposition text one family at a time.
struct Out(String);

impl Out {
    /// `# HELP` and `# TYPE` lines of a family.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample; `labels` are (name, unescaped value).
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    /// A family with one unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: u64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// A histogram family from nanosecond buckets, exposed in seconds.
    fn histogram(&mut self, name: &str, help: &str, s: &Snapshot) {
        self.family(name, "histogram", help);
        let bucket = format!("{name}_bucket");
        for (le, n) in s.cumulative() {
            self.sample(&bucket, &[("le", &seconds(le))], n);
        }
        let count = s.count();
        self.sample(&bucket, &[("le", "+Inf")], count);
        self.sample(&format!("{name}_sum"), &[], seconds(s.sum));
        self.sample(&format!("{name}_count"), &[], count);
    }
}

/// Nanoseconds as seconds in decimal (`128` → `0.000000128`): exact, no exponent.
fn seconds(ns: u64) -> String {
    let frac = ns % 1_000_000_000;
    if frac == 0 {
        return format!("{}", ns / 1_000_000_000);
    }
    let s = format!("{}.{frac:09}", ns / 1_000_000_000);
    s.trim_end_matches('0').to_string()
}

fn ld(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// The whole exposition.
pub(super) fn exposition(shared: &Shared, view: &View) -> String {
    let mut o = Out(String::with_capacity(16 << 10));
    let feeds = &shared.feeds;
    let per_feed = |o: &mut Out, name: &str, kind: &str, help: &str, f: &dyn Fn(usize) -> u64| {
        o.family(name, kind, help);
        for (i, fr) in feeds.iter().enumerate() {
            o.sample(name, &[("broker", &fr.broker)], f(i));
        }
    };
    per_feed(
        &mut o,
        "tickwire_feed_ticks_total",
        "counter",
        "Ticks parsed from the broker's frames.",
        &|i| ld(&feeds[i].status.ticks),
    );
    per_feed(
        &mut o,
        "tickwire_feed_parse_errors_total",
        "counter",
        "Broker frames or packets that did not parse.",
        &|i| ld(&feeds[i].status.parse_errors),
    );
    per_feed(
        &mut o,
        "tickwire_feed_frames_total",
        "counter",
        "Messages read from the broker.",
        &|i| ld(&feeds[i].status.frames),
    );
    per_feed(
        &mut o,
        "tickwire_feed_reconnects_total",
        "counter",
        "Connects of the feed's connections after their first.",
        &|i| {
            let conns = feeds[i].status.used_conns();
            conns
                .iter()
                .map(|c| ld(&c.connects).saturating_sub(1))
                .sum()
        },
    );
    per_feed(
        &mut o,
        "tickwire_feed_up",
        "gauge",
        "1 when every connection of the feed is open or shut for market hours.",
        &|i| {
            let st = feeds[i].status.feed_state();
            u64::from(st == feed_state::OPEN || st == feed_state::CLOSED)
        },
    );
    let name = "tickwire_upstream_symbols";
    o.family(
        name,
        "gauge",
        "Symbols subscribed upstream, by upstream state.",
    );
    for (i, fr) in feeds.iter().enumerate() {
        let mut n = [0u64; 4];
        for (id, st) in fr.status.symbols.iter().enumerate() {
            if shared.feed_of.get(id).is_none_or(|&x| x as usize == i) {
                n[usize::from(st.load(Ordering::Relaxed).min(3))] += 1;
            }
        }
        for (st, label) in [
            (upstream_state::PENDING, "pending"),
            (upstream_state::LIVE, "live"),
            (upstream_state::REJECTED, "rejected"),
        ] {
            o.sample(
                name,
                &[("broker", &fr.broker), ("state", label)],
                n[st as usize],
            );
        }
    }
    let name = "tickwire_symbols_health";
    o.family(
        name,
        "gauge",
        "Subscribed symbols by health (docs/health.md), as of the feed's last check.",
    );
    for fr in feeds {
        for st in 1..fr.status.by_health.len() {
            o.sample(
                name,
                &[
                    ("broker", &fr.broker),
                    ("state", health::state::name(st as u8)),
                ],
                ld(&fr.status.by_health[st]),
            );
        }
    }
    per_feed(
        &mut o,
        "tickwire_feed_stalls_total",
        "counter",
        "Connections found stalled (open, market open, no data far longer than usual) and redialed.",
        &|i| ld(&feeds[i].status.stalls),
    );
    let c = &shared.stats;
    o.single(
        "tickwire_clients",
        "gauge",
        "Client connections open (WebSocket and HTTP).",
        ld(&c.open),
    );
    let authed = shared.limit_state.clients.lock().map_or(0, |c| c.total());
    o.single(
        "tickwire_clients_authenticated",
        "gauge",
        "Authenticated WebSocket clients.",
        authed as u64,
    );
    o.single(
        "tickwire_messages_out_total",
        "counter",
        "Market-data messages sent to clients.",
        ld(&c.messages),
    );
    o.single(
        "tickwire_bytes_out_total",
        "counter",
        "WebSocket frame bytes of market data sent to clients.",
        ld(&c.bytes_out),
    );
    let by_mode = view.fanout.by_mode();
    let name = "tickwire_client_subscriptions";
    o.family(
        name,
        "gauge",
        "Client subscriptions (client, symbol, mode), by mode.",
    );
    for (m, n) in ["ltp", "quote", "depth"].iter().zip(by_mode) {
        o.sample(name, &[("mode", m)], n);
    }
    let classes = shared.classes.lock().map(|m| m.clone()).unwrap_or_default();
    let name = "tickwire_client_conflations_total";
    o.family(
        name,
        "counter",
        "Times a client started conflating (its backlog passed the high-water mark), by API key name.",
    );
    for (k, v) in &classes {
        o.sample(name, &[("class", k)], v.conflations);
    }
    let name = "tickwire_client_queue_drops_total";
    o.family(
        name,
        "counter",
        "Updates not queued to a conflating client (it got the latest value later), by API key name.",
    );
    for (k, v) in &classes {
        o.sample(name, &[("class", k)], v.queue_drops);
    }
    let r = &shared.router;
    o.single(
        "tickwire_router_ticks_total",
        "counter",
        "Ticks the router published to shared memory.",
        ld(&r.ticks),
    );
    o.single(
        "tickwire_router_delivery_retries_total",
        "counter",
        "Times a client IO thread's delivery ring was full (the symbol is sent as its latest value).",
        ld(&r.delivery_retries),
    );
    if let Some(s) = &shared.shm {
        o.single(
            "tickwire_shm_write_position",
            "gauge",
            "Ring position of the newest tick in the shm file.",
            (s.write_pos)(),
        );
    }
    if let Some(k) = &shared.sink {
        sink(
            &mut o,
            k,
            shared.shm.as_ref().map_or(0, |s| (s.write_pos)()),
        );
    }
    o.histogram(
        "tickwire_router_pass_seconds",
        "Time of each non-empty router pass.",
        &r.router_pass.snapshot(),
    );
    o.histogram(
        "tickwire_wire_to_shm_seconds",
        "From a tick's receive time to the end of the router pass that published it to shm.",
        &r.wire_to_shm.snapshot(),
    );
    o.histogram(
        "tickwire_wire_to_client_seconds",
        "From a tick's receive time to the end of the client IO pass that wrote it to clients.",
        &c.wire_to_client.snapshot(),
    );
    o.0
}

/// The tick sink's families (`serve --sink`).
fn sink(o: &mut Out, k: &super::SinkStats, write_pos: u64) {
    o.single(
        "tickwire_sink_rows_total",
        "counter",
        "Rows the sink committed to its database table.",
        ld(&k.rows),
    );
    o.single(
        "tickwire_sink_lag_ticks",
        "gauge",
        "Ticks published to shm and not yet committed by the sink.",
        k.lag_ticks(write_pos),
    );
    o.single(
        "tickwire_sink_gaps_total",
        "counter",
        "Times the shm ring overwrote ticks before the sink stored them.",
        ld(&k.gaps),
    );
    o.single(
        "tickwire_sink_lost_ticks_total",
        "counter",
        "Ticks in those gaps.",
        ld(&k.lost),
    );
    o.single(
        "tickwire_sink_backfilled_ticks_total",
        "counter",
        "Ticks of those gaps stored from the journal.",
        ld(&k.backfilled),
    );
    o.single(
        "tickwire_sink_unfilled_ticks_total",
        "counter",
        "Ticks of those gaps that could not be filled: missing from the table.",
        ld(&k.unfilled),
    );
    o.single(
        "tickwire_sink_backfill_pending_gaps",
        "gauge",
        "Gaps waiting to be filled from the journal.",
        ld(&k.backfill_pending),
    );
    o.single(
        "tickwire_sink_reconnects_total",
        "counter",
        "Database connections the sink made after a failure.",
        ld(&k.reconnects),
    );
    o.single(
        "tickwire_sink_connected",
        "gauge",
        "1 while the sink holds a working database connection.",
        k.connected.load(Ordering::Relaxed) as u64,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickwire_engine::hist::{Histogram, BUCKETS};

    #[test]
    fn the_whole_exposition() {
        use crate::feed::FeedStatus;
        use crate::gateway::fanout::Fanout;
        use crate::gateway::ClassCounts;
        use std::sync::Arc;
        use tickwire_engine::router::Mode;

        let f = Arc::new(FeedStatus::new(4));
        f.ticks.store(7, Ordering::Relaxed);
        f.state.store(feed_state::OPEN, Ordering::Relaxed);
        f.set_symbol_state(0, upstream_state::LIVE);
        let sh = crate::gateway::endpoints::tests::shared(&[("zerodha", f)]);
        sh.classes.lock().unwrap().insert(
            "desk-1".into(),
            ClassCounts {
                conflations: 2,
                queue_drops: 40,
            },
        );
        sh.stats.wire_to_client.record(3_000);
        let mut fanout = Fanout::new(4);
        fanout.set(0, 1, Mode::Quote.bit());
        struct NoLast;
        impl tickwire_engine::last::LastValues for NoLast {
            fn last_value(&self, _: u32) -> Option<tickwire_engine::Tick> {
                None
            }
        }
        let view = View {
            last: &NoLast,
            fanout: &fanout,
        };
        let text = exposition(&sh, &view);
        for line in [
            "tickwire_feed_ticks_total{broker=\"zerodha\"} 7",
            "tickwire_feed_up{broker=\"zerodha\"} 1",
            "tickwire_upstream_symbols{broker=\"zerodha\",state=\"live\"} 1",
            "tickwire_upstream_symbols{broker=\"zerodha\",state=\"pending\"} 0",
            "tickwire_client_subscriptions{mode=\"quote\"} 1",
            "tickwire_client_conflations_total{class=\"desk-1\"} 2",
            "tickwire_client_queue_drops_total{class=\"desk-1\"} 40",
            "tickwire_wire_to_client_seconds_count 1",
            "tickwire_wire_to_client_seconds_sum 0.000003",
            "tickwire_wire_to_shm_seconds_count 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        // Every sample follows its family's HELP and TYPE lines.
        let mut family = "";
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                family = rest.split(' ').next().unwrap();
            } else if !l.starts_with('#') {
                assert!(l.starts_with(family), "{l} outside {family}");
            }
        }
        assert_eq!(
            text.matches("# HELP ").count(),
            text.matches("# TYPE ").count()
        );
    }

    #[test]
    fn seconds_are_exact_decimals() {
        assert_eq!(seconds(128), "0.000000128");
        assert_eq!(seconds(1_000_000_000), "1");
        assert_eq!(seconds(17_179_869_184), "17.179869184");
        assert_eq!(seconds(1_500_000_000), "1.5");
        assert_eq!(seconds(0), "0");
    }

    #[test]
    fn samples_and_escaping() {
        let mut o = Out(String::new());
        o.family("tickwire_x_total", "counter", "X.");
        o.sample("tickwire_x_total", &[("class", "a\"b\\c\nd")], 3);
        assert_eq!(
            o.0,
            "# HELP tickwire_x_total X.\n# TYPE tickwire_x_total counter\n\
             tickwire_x_total{class=\"a\\\"b\\\\c\\nd\"} 3\n"
        );
    }

    #[test]
    fn histogram_lines() {
        let h = Histogram::default();
        h.record(100);
        h.record(1_000);
        let mut o = Out(String::new());
        o.histogram("tickwire_t_seconds", "T.", &h.snapshot());
        let lines: Vec<&str> = o.0.lines().collect();
        assert_eq!(lines[0], "# HELP tickwire_t_seconds T.");
        assert_eq!(lines[1], "# TYPE tickwire_t_seconds histogram");
        assert_eq!(lines[2], "tickwire_t_seconds_bucket{le=\"0.000000128\"} 1");
        assert_eq!(lines[5], "tickwire_t_seconds_bucket{le=\"0.000001024\"} 2");
        assert_eq!(
            lines[2 + BUCKETS],
            "tickwire_t_seconds_bucket{le=\"+Inf\"} 2"
        );
        assert_eq!(lines[3 + BUCKETS], "tickwire_t_seconds_sum 0.0000011");
        assert_eq!(lines[4 + BUCKETS], "tickwire_t_seconds_count 2");
        assert_eq!(lines.len(), 5 + BUCKETS);
    }
}
