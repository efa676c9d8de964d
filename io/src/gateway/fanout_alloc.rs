//! The fan-out allocates nothing per update once warm: a tick delivered to a session on a real
//! loopback socket (format once, shared bytes, tungstenite write, one flush a pass), counted by a
//! per-thread counting allocator so other tests' threads and the socket reader do not count.
//! The allocator is this test binary's only `unsafe`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tickwire_engine::last::LastValues;
use tickwire_engine::router::{Delivery, Mode};
use tickwire_engine::Tick;

use super::fanout::Fanout;
use super::protocol::OutBuf;
use super::session::Session;
use crate::feed::FeedStatus;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: forwards to the system allocator; the counter is a thread-local `Cell` (no allocation).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct NoLast;

impl LastValues for NoLast {
    fn last_value(&self, _symbol: u32) -> Option<Tick> {
        None
    }
}

#[test]
fn fanning_out_a_tick_allocates_nothing_once_warm() {
    let shared = super::endpoints::tests::shared(&[("zerodha", Arc::new(FeedStatus::new(4)))]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    client
        .write_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
    let mut session = Session::new(mio::net::TcpStream::from_std(server), 1, &shared.cfg);
    let mut outbox = VecDeque::new();
    let mut auth = crate::gateway::keys::Auth::new(&[], None, 3, 20);
    let handshake_fanout = Fanout::new(4);
    let view = super::View {
        last: &NoLast,
        fanout: &handshake_fanout,
    };
    while !session.is_open() {
        session.on_event(&shared, &view, &mut outbox, &mut auth, true);
    }
    // The client side drains everything, on its own thread (not counted).
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        client
            .set_read_timeout(Some(std::time::Duration::from_millis(50)))
            .unwrap();
        while !s2.load(Ordering::Relaxed) {
            let _ = client.read(&mut buf);
        }
    });
    let mut sessions = vec![Some(session)];
    let mut fanout = Fanout::new(4);
    fanout.set(
        0,
        0,
        Mode::Ltp.bit() | Mode::Quote.bit() | Mode::Depth.bit(),
    );
    let mut buf = OutBuf::with_capacity(4096);
    let mut seq = 0u64;
    let mut step = |n: u64| {
        for _ in 0..n {
            seq += 1;
            let mut t = Tick::new(0);
            t.valid = tickwire_engine::tick::valid::ALL;
            t.seq = seq;
            t.ltp = 8_000_000_000 + seq as i64 * 500_000;
            let f = fanout.deliver(
                &Delivery::Tick(t),
                &mut sessions,
                &shared,
                &NoLast,
                &mut buf,
            );
            assert_eq!(f.written, 3, "one message per mode");
            if let Some(s) = sessions[0].as_mut() {
                s.drain(&shared);
            }
        }
    };
    step(20_000);
    // A reader descheduled for long lets the socket fill, and the session's buffers grow once
    // more, to their bound; a per-message allocation would show in every window, so one window
    // of zero out of three proves there is none.
    let mut allocs = u64::MAX;
    for _ in 0..3 {
        let before = ALLOCS.with(Cell::get);
        step(30_000);
        allocs = ALLOCS.with(Cell::get) - before;
        if allocs == 0 {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    assert_eq!(
        allocs, 0,
        "{allocs} allocations over 30,000 ticks (90,000 messages)"
    );
}
