//! The bench's harness: time a batch of messages, print one row of percentiles; and the seam
//! floor, a protocol that does nothing but hand a fresh tick to the sink.

use std::time::Instant;

use hdrhistogram::Histogram;
use tickwire_engine::Tick;
use tickwire_io::feed::protocol::{ConnectJob, Incoming, Limits, Liveness, Request};
use tickwire_io::feed::{BrokerProtocol, FeedError, TickSink};

/// Messages per timed sample.
pub const BATCH: usize = 1000;

/// True unless the command line names words and `name` contains none of them
/// (`cargo bench --bench parse -- dhan`).
fn selected(name: &str) -> bool {
    let words: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    words.is_empty() || words.iter().any(|w| name.contains(w.as_str()))
}

/// Times `batch(sample)` (one batch of [`BATCH`] messages, returning the ticks it made, `None`
/// for a row without ticks) `samples` times after 10 warm-up batches, and prints the row.
fn measure(name: &str, samples: usize, mut batch: impl FnMut(usize) -> Option<u64>) {
    if !selected(name) {
        return;
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
    let mut ticks = None;
    for s in 0..samples + 10 {
        let t0 = Instant::now();
        ticks = batch(s);
        let dt = t0.elapsed().as_nanos() as u64;
        if s >= 10 {
            hist.record((dt * 10 / BATCH as u64).max(1)).unwrap(); // 0.1 ns units
        }
    }
    let p = |q: f64| hist.value_at_quantile(q) as f64 / 10.0;
    let per_msg = ticks.map(|t| t / BATCH as u64);
    println!(
        "| {name:<34} | {:>5} | {:>8.1} | {:>8.1} | {:>8.1} | {:>8.1} |",
        per_msg.map_or("-".to_string(), |n| n.to_string()),
        p(0.5),
        p(0.9),
        p(0.99),
        p(0.5) / per_msg.unwrap_or(1).max(1) as f64,
    );
}

/// Times `protocol.on_message` over binary `messages` (cycled) and prints one table row.
pub fn case(name: &str, protocol: &mut dyn BrokerProtocol, messages: &[Vec<u8>], samples: usize) {
    case_as(name, protocol, messages, samples, false)
}

/// [`case`] for binary messages, or for text ones (`text`: each message is UTF-8).
pub fn case_as(
    name: &str,
    protocol: &mut dyn BrokerProtocol,
    messages: &[Vec<u8>],
    samples: usize,
    text: bool,
) {
    let mut ticks: Vec<Tick> = Vec::with_capacity(1 << 16);
    let mut out = Vec::new();
    measure(name, samples, |s| {
        ticks.clear();
        for i in 0..BATCH {
            let m = &messages[(s * BATCH + i) % messages.len()];
            let mut sink = TickSink::collect(&mut ticks);
            let msg = match text {
                true => Incoming::Text(std::str::from_utf8(m).expect("text")),
                false => Incoming::Binary(m),
            };
            protocol
                .on_message(msg, 1, &mut sink, &mut out)
                .expect("clean input");
        }
        Some(ticks.len() as u64)
    });
}

/// Times `f` over `messages` (cycled) like [`case`], for a row with no protocol (a floor).
pub fn timed(name: &str, messages: &[Vec<u8>], samples: usize, mut f: impl FnMut(&[u8])) {
    measure(name, samples, |s| {
        for i in 0..BATCH {
            f(&messages[(s * BATCH + i) % messages.len()]);
        }
        None
    });
}

/// The cost of the seam itself: a protocol whose parse builds `Tick::new` and hands it to the sink,
/// nothing else. What a binary parser costs on top of this is its own work.
pub struct Floor;

impl BrokerProtocol for Floor {
    fn name(&self) -> &'static str {
        "floor"
    }
    fn limits(&self) -> Limits {
        Limits {
            per_message: 1,
            per_connection: 1,
            connections: 1,
            by_mode: None,
        }
    }
    fn liveness(&self) -> Liveness {
        Liveness {
            dead_after: std::time::Duration::from_secs(1),
            keepalive: None,
        }
    }
    fn connect_job(&self) -> ConnectJob {
        Box::new(|| Err(FeedError::stop("no connection")))
    }
    fn knows(&self, _: u32) -> bool {
        true
    }
    fn encode(&mut self, _: Request<'_>, _: &mut Vec<tungstenite::Message>) {}
    fn on_message(
        &mut self,
        msg: Incoming<'_>,
        recv_ts_ns: i64,
        sink: &mut TickSink<'_>,
        _out: &mut Vec<tungstenite::Message>,
    ) -> Result<(), FeedError> {
        if let Incoming::Binary(b) = msg {
            let mut t = Tick::new(b.len() as u32);
            t.recv_ts_ns = recv_ts_ns;
            sink.tick(t, true);
        }
        Ok(())
    }
}
