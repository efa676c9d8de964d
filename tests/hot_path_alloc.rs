//! The tick path allocates nothing once warm: WebSocket frames read by tungstenite (client side,
//! as the feed reads them), parsed by the Kite codec, handed to the router inline, published to a
//! real shm file and delivered to a subscriber. A counting global allocator watches it all.
//!
//! The client IO thread's writer likewise: JSON formatted into a reused buffer, handed to
//! tungstenite as a message sharing that buffer's allocation, written and flushed.
//!
//! Then every broker's parse path the way the feed thread runs it: a WebSocket frame read by
//! tungstenite, handed to the broker's `BrokerProtocol::on_message` with a `TickSink` into the inline
//! router (Kite's binary packets, Upstox's protobuf `FeedResponse`).
//!
//! One test in this binary on purpose: the counter is process-wide, and a second test running in
//! parallel would allocate into it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tickwire_engine::router::{
    Control, Inline, Mode, RingEnds, RingSizes, Router, RouterConfig, RouterRings,
};
use tickwire_engine::symbols::SymbolRegistry;
use tickwire_engine::Tick;
use tickwire_io::brokers::upstox::{self, pb};
use tickwire_io::feed::protocol::Incoming;
use tickwire_io::feed::{BrokerProtocol, FeedStatus, TickSink};
use tickwire_io::gateway::{market_data, OutBuf};
use tickwire_io::kite::packet::{Kind, RawLevel, Repr};
use tickwire_io::kite::{self, TokenMap};
use tickwire_shm::{Writer, WriterConfig};
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `System.alloc` above with layout `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `realloc` is passed on as is.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

const TOKENS: [u32; 3] = [779_521, 738_561, 408_065];

/// `frames` WebSocket binary frames (server → client, unmasked), each a Kite frame of three full
/// packets whose prices move.
fn wire(frames: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut bodies = Vec::new();
    for f in 0..frames {
        bodies.clear();
        let mut spans = Vec::new();
        for (i, &token) in TOKENS.iter().enumerate() {
            let ltp = 50_000 + f * 5 + i as u32;
            let level = RawLevel {
                qty: 10 + f,
                price: ltp - 5,
                orders: 3,
            };
            let r = Repr {
                token,
                ltp,
                last_qty: 1,
                volume: 1000 + f,
                exchange_ts: 1_700_000_000 + f,
                bids: [level; 5],
                asks: [level; 5],
                ..Repr::default()
            };
            let a = bodies.len();
            r.emit(Kind::Full, &mut bodies);
            spans.push((a, bodies.len()));
        }
        let refs: Vec<&[u8]> = spans.iter().map(|&(a, b)| &bodies[a..b]).collect();
        let mut frame = Vec::new();
        kite::frame::emit(&refs, &mut frame);
        out.push(0x82); // FIN + binary
        out.push(126); // 16-bit length follows
        out.extend_from_slice(&(frame.len() as u16).to_be_bytes());
        out.extend_from_slice(&frame);
    }
    out
}

#[test]
fn the_tick_path_allocates_nothing_once_warm() {
    // Warm-up covers tungstenite's read buffer growing to its steady size (it doubled once, to
    // 512 KiB, after ~260 KiB of input); after that it reuses the buffer frame after frame.
    const WARM: u32 = 2_000;
    const MEASURED: u32 = 30_000;
    let mut reg = SymbolRegistry::with_capacity(8);
    let mut tokens = TokenMap::default();
    for (i, &t) in TOKENS.iter().enumerate() {
        let id = reg
            .register("NSE", &format!("S{i}"), &t.to_string())
            .unwrap();
        tokens.insert(t, id);
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = WriterConfig {
        ring_capacity: 1024,
        symbol_capacity: 8,
    };
    let writer = Writer::create(&dir.path().join("ticks"), &cfg, &reg).unwrap();

    let (rings, ends) = RouterRings::one_each(RingSizes {
        feed: 16,
        upstream: 64,
        control: 64,
        deliveries: 4096,
    });
    let RingEnds {
        upstream: mut up_rx,
        control: mut ctl,
        deliveries: mut del_rx,
        ..
    } = ends;
    // Interval zero: every tick is also a delivery, the most work per tick.
    let rcfg = RouterConfig {
        symbols: 8,
        flush_interval: Duration::ZERO,
        consumers_per_io: 16,
        ..RouterConfig::default()
    };
    let mut router: Box<dyn Inline> = Box::new(Router::new(rcfg, rings, writer, vec![]));
    for id in 0..TOKENS.len() as u32 {
        ctl.push(Control::Subscribe {
            consumer: 1,
            symbol: id,
            mode: Mode::Depth,
        })
        .unwrap();
    }
    router.pass();
    while up_rx.pop().is_ok() {}

    let mut ws = WebSocket::from_raw_socket(Cursor::new(wire(WARM + MEASURED)), Role::Client, None);
    let (mut ticks, mut errors, mut delivered) = (0u64, 0u64, 0u64);
    let mut step = |ws: &mut WebSocket<Cursor<Vec<u8>>>, router: &mut Box<dyn Inline>| {
        let Ok(Message::Binary(frame)) = ws.read() else {
            panic!("expected a binary frame");
        };
        let st = kite::parse_frame_marked(
            &frame,
            1,
            &tokens,
            |t, last| router.tick(t, last),
            |_| errors += 1,
        );
        ticks += st.ticks as u64;
        router.pass();
        while del_rx.pop().is_ok() {
            delivered += 1;
        }
    };
    let allocs = allocs_once_warm(WARM, MEASURED, || step(&mut ws, &mut router));
    assert_eq!(errors, 0);
    assert_eq!(ticks, 3 * u64::from(WARM + MEASURED));
    assert_eq!(delivered, ticks, "interval 0: one delivery per tick");
    assert_eq!(
        allocs,
        0,
        "{allocs} allocations over {MEASURED} frames ({} ticks)",
        3 * MEASURED
    );
    router.finish();

    // The client side: format and write market data the way a client session does.
    let mut out = OutBuf::with_capacity(4096);
    let mut client = WebSocket::from_raw_socket(Discard, Role::Server, None);
    let tick = {
        let mut t = Tick::new(0);
        t.valid = tickwire_engine::tick::valid::ALL;
        t.ltp = 50_123_450_000; // 5012.345 at the 1e7 scale
        t
    };
    let allocs = allocs_once_warm(WARM, MEASURED, || {
        for mode in Mode::ALL {
            out.json.clear();
            market_data(&mut out.json, &tick, mode, "NSE", "SBIN", "zerodha");
            client.write(out.message()).expect("write");
        }
        client.flush().expect("flush");
    });
    assert_eq!(
        allocs,
        0,
        "{allocs} allocations over {} client messages",
        3 * MEASURED
    );

    every_broker_parses_without_allocating();
}

/// An unmasked server → client binary WebSocket frame around `payload`.
fn ws_frame(payload: &[u8], out: &mut Vec<u8>) {
    ws_frame_op(0x82, payload, out); // FIN + binary
}

/// The same, with first byte `op` (0x81: FIN + text).
fn ws_frame_op(op: u8, payload: &[u8], out: &mut Vec<u8>) {
    out.push(op);
    if payload.len() < 126 {
        out.push(payload.len() as u8);
    } else {
        out.push(126); // 16-bit length follows
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// `frames` Upstox frames, each a `FeedResponse` with a full market feed (5 levels, OHLC) for
/// every key, prices moving.
fn upstox_wire(keys: &[&str], frames: u32) -> Vec<u8> {
    use prost::Message as _;
    let mut out = Vec::new();
    for f in 0..frames {
        let feeds = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let ltp = 500.0 + f as f64 * 0.05 + i as f64;
                let q = pb::Quote {
                    bid_q: 10,
                    bid_p: ltp - 0.05,
                    ask_q: 12,
                    ask_p: ltp + 0.05,
                };
                let ff = pb::MarketFullFeed {
                    ltpc: Some(pb::Ltpc {
                        ltp,
                        ltt: 1_700_000_000_000 + f as i64,
                        ltq: 5,
                        cp: 499.0,
                    }),
                    market_level: Some(pb::MarketLevel {
                        bid_ask_quote: vec![q; 5],
                    }),
                    option_greeks: Some(pb::OptionGreeks::default()),
                    market_ohlc: Some(pb::MarketOhlc {
                        ohlc: vec![pb::Ohlc {
                            interval: "1d".into(),
                            open: 498.0,
                            high: ltp,
                            low: 497.0,
                            close: ltp,
                            vol: 9,
                            ts: 0,
                        }],
                    }),
                    atp: ltp,
                    vtt: 1000 + f as i64,
                    oi: 0.0,
                    iv: 0.0,
                    tbq: 100.0,
                    tsq: 120.0,
                };
                let feed = pb::Feed {
                    request_mode: pb::RequestMode::FullD5 as i32,
                    feed_union: Some(pb::feed::FeedUnion::FullFeed(pb::FullFeed {
                        full_feed_union: Some(pb::full_feed::FullFeedUnion::MarketFf(ff)),
                    })),
                };
                (k.to_string(), feed)
            })
            .collect();
        let r = pb::FeedResponse {
            r#type: pb::Type::LiveFeed as i32,
            feeds,
            current_ts: 1,
            market_info: None,
        };
        ws_frame(&r.encode_to_vec(), &mut out);
    }
    out
}

/// A router inline (interval zero, one subscriber for each of `n` symbols) over a fresh shm file,
/// and the end of its delivery ring.
fn inline_router(
    dir: &std::path::Path,
    n: u32,
) -> (
    Box<dyn Inline>,
    rtrb::Consumer<tickwire_engine::router::Delivery>,
) {
    let mut reg = SymbolRegistry::with_capacity(8);
    for i in 0..n {
        reg.register("NSE", &format!("S{i}"), "t").unwrap();
    }
    let cfg = WriterConfig {
        ring_capacity: 1024,
        symbol_capacity: 8,
    };
    let writer = Writer::create(&dir.join("ticks"), &cfg, &reg).unwrap();
    let (rings, ends) = RouterRings::one_each(RingSizes {
        feed: 16,
        upstream: 64,
        control: 64,
        deliveries: 4096,
    });
    let RingEnds {
        upstream: mut up_rx,
        control: mut ctl,
        deliveries,
        ..
    } = ends;
    let rcfg = RouterConfig {
        symbols: 8,
        flush_interval: Duration::ZERO,
        consumers_per_io: 16,
        ..RouterConfig::default()
    };
    let mut router: Box<dyn Inline> = Box::new(Router::new(rcfg, rings, writer, vec![]));
    for id in 0..n {
        ctl.push(Control::Subscribe {
            consumer: 1,
            symbol: id,
            mode: Mode::Depth,
        })
        .unwrap();
    }
    router.pass();
    while up_rx.pop().is_ok() {}
    (router, deliveries)
}

/// Frames in `wire` through `protocol.on_message` into the inline router, as the feed thread does.
fn broker_path_allocs(
    name: &str,
    mut protocol: Box<dyn BrokerProtocol>,
    wire: Vec<u8>,
    frames: (u32, u32),
    per_frame: u64,
) {
    let dir = tempfile::tempdir().unwrap();
    let (mut router, mut del_rx) = inline_router(dir.path(), 3);
    let status = FeedStatus::new(8);
    let mut ws = WebSocket::from_raw_socket(Cursor::new(wire), Role::Client, None);
    let mut out = Vec::new();
    let (mut ticks, mut delivered) = (0u64, 0u64);
    let mut step = || {
        let msg = ws.read();
        let mut sink = TickSink::inline(&mut *router, &status);
        let incoming = match &msg {
            Ok(Message::Binary(frame)) => Incoming::Binary(frame),
            Ok(Message::Text(text)) => Incoming::Text(text.as_str()),
            other => panic!("expected a data frame, got {other:?}"),
        };
        protocol
            .on_message(incoming, 1, &mut sink, &mut out)
            .unwrap();
        ticks += u64::from(sink.ticks());
        router.pass();
        while del_rx.pop().is_ok() {
            delivered += 1;
        }
    };
    let allocs = allocs_once_warm(frames.0, frames.1, &mut step);
    assert_eq!(status.parse_errors.load(Ordering::Relaxed), 0, "{name}");
    assert_eq!(ticks, per_frame * u64::from(frames.0 + frames.1), "{name}");
    assert_eq!(delivered, ticks, "{name}: one delivery per tick");
    assert_eq!(
        allocs, 0,
        "{name}: {allocs} allocations over {} frames",
        frames.1
    );
    router.finish();
}

/// Every broker's protocol, on the feed thread's path.
fn every_broker_parses_without_allocating() {
    const WARM: u32 = 2_000;
    const MEASURED: u32 = 20_000;
    let mut tokens = TokenMap::default();
    for (i, &t) in TOKENS.iter().enumerate() {
        tokens.insert(t, i as u32);
    }
    let kite = tickwire_io::kite::Kite::new(
        tickwire_io::kite::KiteConfig::default(),
        std::sync::Arc::new(tokens),
        std::sync::Arc::new(TOKENS.to_vec()),
    );
    broker_path_allocs(
        "kite",
        Box::new(kite),
        wire(WARM + MEASURED),
        (WARM, MEASURED),
        3,
    );

    let keys = ["NSE_EQ|INE062A01020", "NSE_EQ|INE002A01018", "NSE_FO|35005"];
    let mut k = upstox::Keys::default();
    for (i, key) in keys.iter().enumerate() {
        k.insert(i as u32, key);
    }
    let up = upstox::Upstox::new(upstox::UpstoxConfig::default(), std::sync::Arc::new(k));
    broker_path_allocs(
        "upstox",
        Box::new(up),
        upstox_wire(&keys, WARM + MEASURED),
        (WARM, MEASURED),
        3,
    );

    // Fyers: authenticated, 3 symbols subscribed in Depth (sf + dp topics), snapshots bound; then
    // data packets of `U` updates for every topic.
    use tickwire_io::brokers::fyers::{self, serve, DataWriter, SnapshotSpec};
    use tickwire_io::feed::protocol::Request;
    let tickers: Vec<Box<str>> = (0..3).map(|i| format!("NSE:S{i}-EQ").into()).collect();
    let cfg = fyers::FyersConfig {
        access_token: fyers::auth::mock_token("k", 4_102_444_800),
        ..fyers::FyersConfig::default()
    };
    let mut fy = fyers::Fyers::new(cfg, std::sync::Arc::new(tickers));
    for i in 0..3u32 {
        fy.seed(i, &format!("101000000030{i:02}")).unwrap();
    }
    let (mut out, mut sink_ticks) = (Vec::new(), Vec::new());
    fy.encode(
        Request::Subscribe {
            mode: Mode::Depth,
            symbols: &[0, 1, 2],
        },
        &mut out,
    );
    let mut feed = |fy: &mut fyers::Fyers, b: &[u8]| {
        fy.on_message(
            Incoming::Binary(b),
            1,
            &mut TickSink::collect(&mut sink_ticks),
            &mut out,
        )
        .unwrap();
    };
    feed(&mut fy, &serve::auth_reply(true, 0));
    let mut snap = DataWriter::new(1);
    let (sf, dp) = ([80_000i32; 21], [80_000i32; 30]);
    let names: Vec<(String, u16, bool)> = (0..3u16)
        .flat_map(|i| {
            [
                (format!("sf|nse_cm|30{i:02}"), 2 * i + 1, true),
                (format!("dp|nse_cm|30{i:02}"), 2 * i + 2, false),
            ]
        })
        .collect();
    for (name, id, is_sf) in &names {
        snap.snapshot(&SnapshotSpec {
            topic_id: id.to_be_bytes(),
            name,
            values: if *is_sf { &sf } else { &dp },
            multiplier: 1,
            precision: 2,
            exchange: "NSE",
            exchange_token: "30",
            symbol: "S",
        })
        .unwrap();
    }
    feed(&mut fy, &snap.finish().unwrap());
    assert_eq!(sink_ticks.len(), 6, "snapshots bound");
    let mut fy_wire = Vec::new();
    for f in 0..(4 * WARM + MEASURED) as i32 {
        let mut w = DataWriter::new(2 + f as u32);
        for (_, id, is_sf) in &names {
            let n = if *is_sf { 21 } else { 30 };
            let mut v = vec![fyers::packet::ABSENT; n];
            v[0] = 80_000 + f % 100;
            v[1] = 1_000 + f;
            w.update(id.to_be_bytes(), &v).unwrap();
        }
        ws_frame(&w.finish().unwrap(), &mut fy_wire);
    }
    // A longer warm-up: with 2,000 frames of ~700 bytes one allocation (tungstenite's read buffer
    // growing once more) still fell inside the measured window; after it, none.
    broker_path_allocs("fyers", Box::new(fy), fy_wire, (4 * WARM, MEASURED), 6);

    // Noren: acked, 3 symbols subscribed in Depth, `dk` snapshots merged; then text frames of
    // `df` and `tf` updates carrying only changed fields (simd-json parses each in the protocol's
    // reused buffer and tape).
    use tickwire_io::brokers::noren;
    let keys: Vec<Box<str>> = ["NSE|22", "NSE|2885", "NFO|35001"]
        .iter()
        .map(|&k| k.into())
        .collect();
    let cfg = noren::NorenConfig {
        user: "U".into(),
        token: "T".into(),
        ..noren::NorenConfig::default()
    };
    let mut nr = noren::Noren::new(cfg, std::sync::Arc::new(noren::Keys::new(&keys)));
    let (mut out, mut sink_ticks) = (Vec::new(), Vec::new());
    nr.encode(
        Request::Subscribe {
            mode: Mode::Depth,
            symbols: &[0, 1, 2],
        },
        &mut out,
    );
    let mut feed = |nr: &mut noren::Noren, t: &str| {
        nr.on_message(
            Incoming::Text(t),
            1,
            &mut TickSink::collect(&mut sink_ticks),
            &mut out,
        )
        .unwrap();
    };
    feed(&mut nr, r#"{"t":"ck","s":"OK","uid":"U"}"#);
    for k in &keys {
        let (e, tk) = k.split_once('|').unwrap();
        feed(
            &mut nr,
            &format!(
                r#"{{"t":"dk","e":"{e}","tk":"{tk}","lp":"800.05","v":"10","o":"799.00","h":"801.00","l":"798.50","c":"799.95","ap":"800.01","ltq":"5","tbq":"100","tsq":"120","bp1":"800.00","bq1":"10","bo1":"2","sp1":"800.10","sq1":"12","so1":"3","ft":"1700000000"}}"#
            ),
        );
    }
    assert_eq!(sink_ticks.len(), 3, "snapshots merged");
    let mut nr_wire = Vec::new();
    for f in 0..(4 * WARM + MEASURED) {
        let (e, tk) = keys[f as usize % 3].split_once('|').unwrap();
        let t = if f % 2 == 0 { "df" } else { "tf" };
        let msg = format!(
            r#"{{"t":"{t}","e":"{e}","tk":"{tk}","lp":"{}.{:02}","v":"{}","bq1":"{}","ft":"{}"}}"#,
            800 + f % 7,
            f % 100,
            10 + f,
            1 + f % 50,
            1_700_000_000 + f
        );
        ws_frame_op(0x81, msg.as_bytes(), &mut nr_wire);
    }
    // The same longer warm-up as Fyers' (tungstenite's read buffer grows once more late).
    broker_path_allocs("noren", Box::new(nr), nr_wire, (4 * WARM, MEASURED), 1);
    // Angel: one packet per binary message, the three modes in turn over three symbols.
    use tickwire_io::brokers::angel;
    let keys: Vec<Box<str>> = vec!["1|3045".into(), "1|2885".into(), "2|35003".into()];
    let an = angel::factory(&angel::AngelConfig::default(), std::sync::Arc::new(keys))();
    let mut an_wire = Vec::new();
    for f in 0..(WARM + MEASURED) as i64 {
        let (exchange, token) = [(1, 3045), (1, 2885), (2, 35003)][f as usize % 3];
        let mut best5 = [(0u16, 0i64, 0i64, 0u16); 10];
        for (k, e) in best5.iter_mut().enumerate() {
            *e = ((k % 2 == 0) as u16, 10 + k as i64, 80_000 + k as i64, 1);
        }
        let mut p = Vec::new();
        angel::packet::Fields {
            mode: (f % 3 + 1) as u8,
            exchange,
            token,
            sequence: f,
            exchange_ts_ms: 1_735_000_000_000 + f,
            ltp: 80_000 + f % 100,
            last_qty: 1,
            avg_price: 80_000,
            volume: 1_000 + f,
            buy_qty: 5.0,
            sell_qty: 6.0,
            open: 80_000,
            high: 80_100,
            low: 79_900,
            close: 80_000,
            oi: 7,
            best5,
            ..Default::default()
        }
        .emit(&mut p);
        ws_frame(&p, &mut an_wire);
    }
    broker_path_allocs("angel", an, an_wire, (WARM, MEASURED), 1);
    // Dhan: one packet per message, rotating ticker, quote and full over three NSE equities.
    use tickwire_io::brokers::dhan::{self, packet::emit};
    let keys: Vec<Box<str>> = (0..3)
        .map(|i| format!("NSE_EQ|{}|500000", 3045 + i).into())
        .collect();
    let dh = dhan::Dhan::new(
        dhan::DhanConfig::default(),
        std::sync::Arc::new(dhan::table(&keys)),
    );
    let mut dh_wire = Vec::new();
    let mut p = Vec::new();
    for f in 0..4 * WARM + MEASURED {
        let (id, ltp) = (3045 + f % 3, 500.0 + (f % 100) as f32 * 0.05);
        let q = emit::Quote {
            ltp,
            ltq: 5,
            ltt: 1_700_000_000 + f,
            avg: ltp,
            volume: 1000 + f,
            sell_qty: 10,
            buy_qty: 12,
            open: 498.0,
            close: 499.0,
            high: 510.0,
            low: 490.0,
        };
        let level = emit::Level {
            bid_qty: 10,
            ask_qty: 12,
            bid_orders: 1,
            ask_orders: 2,
            bid: ltp - 0.05,
            ask: ltp + 0.05,
        };
        p.clear();
        match f % 3 {
            0 => emit::ticker(&mut p, 1, id, ltp, q.ltt),
            1 => emit::quote(&mut p, 1, id, &q),
            _ => emit::full(&mut p, 1, id, &q, [0; 3], &[level; 5]),
        }
        ws_frame(&p, &mut dh_wire);
    }
    // The longer warm-up, as for Fyers: tungstenite's read buffer grows once more after 2,000.
    broker_path_allocs("dhan", Box::new(dh), dh_wire, (4 * WARM, MEASURED), 1);
}

/// Runs `step` `warm` times, then counts the allocations of `measured` more runs.
fn allocs_once_warm(warm: u32, measured: u32, mut step: impl FnMut()) -> u64 {
    for _ in 0..warm {
        step();
    }
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..measured {
        step();
    }
    ALLOCS.load(Ordering::Relaxed) - before
}

/// A socket that takes every byte and never has any to read.
struct Discard;

impl std::io::Write for Discard {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::io::Read for Discard {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::WouldBlock.into())
    }
}
