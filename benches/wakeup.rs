//! The machine's floor for a hand-off between threads: one thread writes 8 bytes to a loopback TCP
//! socket (the mock broker's part) while the receiver sleeps in `read` (the feed's part), every
//! 100 µs; latency is the writer's clock before `write` to the receiver's clock after `read`.
//! Three placements: both threads on one CPU; on two CPUs with the receiver's CPU otherwise idle;
//! on two CPUs with a thread keeping the receiver's CPU busy (yielding).
//!
//! Why it is here: on the CI VM the second case costs tens of microseconds (a vCPU with nothing to
//! run halts and has to be woken by the host), which decides where `bench e2e` and a deployment
//! should put the feed, the mock and the readers (`docs/decisions.md`).
//!
//! Then the floor under the shared-memory ring: a thread on CPU 0 stores its clock into one cache
//! line every 10 µs, a thread on CPU 1 spins on that line and records how old each new value is,
//! and counts the values it never saw (it was away for the whole 10 µs: an interrupt, an exit to
//! the host). Those missed values are why the ring's p99 and p99.9 sit in microseconds here.
//!
//! cargo bench --bench wakeup            (`cargo test --benches` runs a short smoke pass)

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use tickwire_engine::affinity::{core_count, pin_current};
use tickwire_engine::clock::now_ns;

fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let tx = TcpStream::connect(l.local_addr().unwrap()).expect("connect");
    let (rx, _) = l.accept().expect("accept");
    tx.set_nodelay(true).unwrap();
    (tx, rx)
}

/// Sends `n` stamps from CPU `tx_cpu` to a receiver on `rx_cpu`; `busy` keeps `rx_cpu` occupied.
fn run(n: usize, tx_cpu: usize, rx_cpu: usize, busy: bool) -> Histogram<u64> {
    let stop = Arc::new(AtomicBool::new(false));
    let spinner = busy.then(|| {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let _ = pin_current(Some(rx_cpu));
            while !stop.load(Ordering::Relaxed) {
                std::thread::yield_now();
            }
        })
    });
    let (mut tx, mut rx) = pair();
    let receiver = std::thread::spawn(move || {
        let _ = pin_current(Some(rx_cpu));
        let mut h = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
        let mut buf = [0u8; 8];
        for _ in 0..n {
            rx.read_exact(&mut buf).expect("read");
            let sent = i64::from_le_bytes(buf);
            h.record((now_ns() - sent).max(1) as u64).unwrap();
        }
        h
    });
    let _ = pin_current(Some(tx_cpu));
    for _ in 0..n {
        std::thread::sleep(Duration::from_micros(100));
        tx.write_all(&now_ns().to_le_bytes()).expect("write");
    }
    let h = receiver.join().expect("receiver");
    stop.store(true, Ordering::Relaxed);
    if let Some(s) = spinner {
        let _ = s.join();
    }
    h
}

/// One cache line, alone on its own pair of lines (the adjacent-line prefetcher works in pairs).
#[repr(align(128))]
struct Line(AtomicI64);

/// `n` stores 10 µs apart from CPU 0, watched from CPU 1: the histogram of how old each value was
/// when seen, and how many values were overwritten before the reader saw them.
fn cache_line(n: usize, other: usize) -> (Histogram<u64>, usize) {
    let line = Arc::new(Line(AtomicI64::new(0)));
    let done = Arc::new(AtomicBool::new(false));
    let (l, d) = (line.clone(), done.clone());
    let reader = std::thread::spawn(move || {
        let _ = pin_current(Some(other));
        let mut h = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).unwrap();
        let mut last = 0;
        while !d.load(Ordering::Relaxed) {
            let v = l.0.load(Ordering::Acquire);
            if v != last {
                last = v;
                h.record((now_ns() - v).max(1) as u64).unwrap();
            } else {
                std::hint::spin_loop();
            }
        }
        h
    });
    let _ = pin_current(Some(0));
    std::thread::sleep(Duration::from_millis(50));
    let mut next = now_ns();
    for _ in 0..n {
        next += 10_000;
        while now_ns() < next {
            std::hint::spin_loop();
        }
        line.0.store(now_ns(), Ordering::Release);
    }
    std::thread::sleep(Duration::from_millis(10));
    done.store(true, Ordering::Relaxed);
    let h = reader.join().expect("reader");
    let missed = n.saturating_sub(h.len() as usize);
    (h, missed)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n = if full { 20_000 } else { 500 };
    let other = usize::from(core_count() > 1);
    println!("loopback TCP write → woken reader, {n} messages 100 µs apart, µs");
    println!("| placement | p50 | p90 | p99 | p99.9 | max |");
    println!("|---|---|---|---|---|---|");
    for (name, rx_cpu, busy) in [
        ("same CPU", 0, false),
        ("other CPU, idle", other, false),
        ("other CPU, kept busy", other, true),
    ] {
        let h = run(n, 0, rx_cpu, busy);
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            us(0.5),
            us(0.9),
            us(0.99),
            us(0.999),
            h.max() as f64 / 1000.0
        );
    }
    let lines = if full { 500_000 } else { 5_000 };
    let (h, missed) = cache_line(lines, other);
    println!();
    println!("one cache line, CPU 0 → CPU {other}, a store every 10 µs, ns");
    println!("| samples | p50 | p90 | p99 | p99.9 | max | never seen |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} | {} | {} | {} | {} | {missed} ({:.2} %) |",
        h.len(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.9),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max(),
        100.0 * missed as f64 / lines as f64
    );
}
