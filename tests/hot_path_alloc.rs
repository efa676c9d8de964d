//! The tick path allocates nothing once warm: WebSocket frames read by tungstenite (client side,
//! as the feed reads them), parsed by the Kite codec, handed to the router inline, published to a
//! real shm file and delivered to a subscriber. A counting global allocator watches it all.
//!
//! The client IO thread's writer likewise: JSON formatted into a reused buffer, handed to
//! tungstenite as a message sharing that buffer's allocation, written and flushed.
//!
//! Then every broker's parse path the way the feed thread runs it: a WebSocket frame read by
//! tungstenite, handed to the broker's `BrokerProtocol::on_message` with a `TickSink` into the inline
//! router (Kite's binary packets, Upstox's protobuf `FeedResponse`), each frame journaled first
//! (`tickwire_io::journal::Appender::frame`) with the journal's writer thread running.
//!
//! One test in this binary on purpose: the counter is process-wide, and a second test running in
//! parallel would allocate into it.

use std::io::Cursor;
use std::sync::atomic::Ordering;
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
use tickwire_io::journal::{Journal, JournalConfig};
use tickwire_io::kite::packet::{Kind, RawLevel, Repr};
use tickwire_io::kite::{self, TokenMap};
use tickwire_shm::{Writer, WriterConfig};
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

/// Every broker's parser on the feed thread's path (frames built per wire format).
#[path = "hot_path_alloc/brokers.rs"]
mod brokers;

#[path = "common/counting.rs"]
mod counting;
use counting::ALLOCS;

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

    brokers::every_broker_parses_without_allocating();
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
    // Every frame is journaled first, as the feed thread does (`serve`'s default).
    let mut journal = Journal::start(JournalConfig {
        dir: dir.path().join("journal"),
        ..JournalConfig::default()
    })
    .unwrap();
    let mut appender = journal.appender(0, name);
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
        match &incoming {
            Incoming::Binary(b) => appender.frame(0, 1, true, b),
            Incoming::Text(t) => appender.frame(0, 1, false, t.as_bytes()),
        }
        protocol
            .on_message(incoming, 1, &mut sink, &mut out)
            .unwrap();
        ticks += u64::from(sink.ticks());
        router.pass();
        while del_rx.pop().is_ok() {
            delivered += 1;
        }
    };
    for _ in 0..frames.0 {
        step();
    }
    // The journal's writer is a thread of its own (at nice 10) that the same allocator counts: it
    // adopts the appender and opens its segment on the first frames, which on a loaded host can
    // come late. Let it write the warm-up frames before counting.
    let stats = journal.stats();
    let waited = std::time::Instant::now();
    while stats.frames.load(Ordering::Relaxed) < u64::from(frames.0)
        && waited.elapsed() < std::time::Duration::from_secs(30)
    {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let allocs = allocs_once_warm(0, frames.1, &mut step);
    assert_eq!(status.parse_errors.load(Ordering::Relaxed), 0, "{name}");
    assert_eq!(ticks, per_frame * u64::from(frames.0 + frames.1), "{name}");
    assert_eq!(delivered, ticks, "{name}: one delivery per tick");
    assert_eq!(
        allocs, 0,
        "{name}: {allocs} allocations over {} frames",
        frames.1
    );
    router.finish();
    journal.stop().unwrap();
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
