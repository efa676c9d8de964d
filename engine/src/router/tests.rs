//! Router behaviour through its real rings.

use std::time::{Duration, Instant};

use super::*;
use crate::tick::valid;

struct Rig {
    router: Router<MemoryPublisher>,
    feed: rtrb::Producer<Tick>,
    upstream: rtrb::Consumer<Upstream>,
    controls: Vec<rtrb::Producer<Control>>,
    deliveries: Vec<rtrb::Consumer<Delivery>>,
}

fn rig(interval: Duration, io_threads: usize, delivery_cap: usize) -> Rig {
    let cfg = RouterConfig {
        symbols: 64,
        flush_interval: interval,
        consumers_per_io: 16,
        ..RouterConfig::default()
    };
    let (feed, feed_rx) = rtrb::RingBuffer::new(16_384);
    let (up_tx, upstream) = rtrb::RingBuffer::new(64);
    let mut rings = RouterRings {
        feeds: vec![feed_rx],
        upstream: vec![up_tx],
        ..Default::default()
    };
    let (mut controls, mut deliveries) = (vec![], vec![]);
    for _ in 0..io_threads {
        let (c_tx, c_rx) = rtrb::RingBuffer::new(64);
        let (d_tx, d_rx) = rtrb::RingBuffer::new(delivery_cap);
        rings.controls.push(c_rx);
        rings.deliveries.push(d_tx);
        controls.push(c_tx);
        deliveries.push(d_rx);
    }
    let router = Router::new(cfg, rings, MemoryPublisher::new(64), vec![]);
    Rig {
        router,
        feed,
        upstream,
        controls,
        deliveries,
    }
}

fn ltp_tick(symbol: u32, ltp: i64) -> Tick {
    let mut t = Tick::new(symbol);
    t.valid = valid::LTP;
    t.ltp = ltp;
    t
}

fn drain<T>(rx: &mut rtrb::Consumer<T>) -> Vec<T> {
    std::iter::from_fn(|| rx.pop().ok()).collect()
}

#[test]
fn a_10_000_update_burst_delivers_its_final_value() {
    let mut r = rig(Duration::from_millis(50), 1, 64);
    r.controls[0]
        .push(Control::Subscribe {
            consumer: 3,
            symbol: 9,
            mode: Mode::Ltp,
        })
        .unwrap();
    let mut now = Instant::now();
    r.router.poll(now);
    // The burst arrives in pieces, with passes (but no flush) in between.
    let mut sent = 0;
    while sent < 10_000 {
        for _ in 0..500 {
            sent += 1;
            r.feed.push(ltp_tick(9, sent)).unwrap();
        }
        while r.router.poll(now) > 0 {}
    }
    assert!(
        drain(&mut r.deliveries[0]).is_empty(),
        "no flush yet, nothing delivered"
    );
    now += Duration::from_millis(60);
    r.router.poll(now);
    let got = drain(&mut r.deliveries[0]);
    assert_eq!(got, [Delivery::Latest(9)]);
    // What the IO thread reads for that delivery is the burst's last value.
    let last = r.router.publisher().last[9];
    assert_eq!(last.ltp, 10_000);
    assert_eq!(last.seq, 10_000, "every tick was published and sequenced");
    assert_eq!(r.router.publisher().published, 10_000);
}

#[test]
fn every_changed_symbol_arrives_once_per_interval() {
    let mut r = rig(Duration::from_millis(50), 1, 256);
    for s in 0..10 {
        r.controls[0]
            .push(Control::Subscribe {
                consumer: 1,
                symbol: s,
                mode: Mode::Quote,
            })
            .unwrap();
    }
    let mut now = Instant::now();
    r.router.poll(now);
    for round in 0..3u32 {
        for s in 0..10 {
            for k in 0..=s {
                r.feed.push(ltp_tick(s, (round * 100 + k) as i64)).unwrap();
            }
        }
        now += Duration::from_millis(51);
        r.router.poll(now);
        let mut syms: Vec<u32> = drain(&mut r.deliveries[0])
            .iter()
            .map(|d| d.symbol())
            .collect();
        syms.sort();
        assert_eq!(syms, (0..10).collect::<Vec<_>>(), "round {round}");
    }
}

#[test]
fn zero_interval_delivers_every_tick() {
    let mut r = rig(Duration::ZERO, 1, 1024);
    r.controls[0]
        .push(Control::Subscribe {
            consumer: 1,
            symbol: 2,
            mode: Mode::Ltp,
        })
        .unwrap();
    let now = Instant::now();
    r.router.poll(now);
    for i in 0..100 {
        r.feed.push(ltp_tick(2, i)).unwrap();
    }
    r.router.poll(now);
    let got = drain(&mut r.deliveries[0]);
    assert_eq!(got.len(), 100);
    assert!(got.iter().enumerate().all(
        |(i, d)| matches!(d, Delivery::Tick(t) if t.ltp == i as i64 && t.seq == i as u64 + 1)
    ));
}

/// One delivery per IO thread per tick, whatever the number of clients on it: the IO thread fans
/// out to its own clients.
#[test]
fn a_tick_is_one_delivery_per_io_thread_however_many_clients_hold_it() {
    let mut r = rig(Duration::ZERO, 2, 1024);
    for c in 1..16 {
        r.controls[0]
            .push(Control::Subscribe {
                consumer: c,
                symbol: 3,
                mode: Mode::Quote,
            })
            .unwrap();
    }
    r.controls[1]
        .push(Control::Subscribe {
            consumer: 17,
            symbol: 3,
            mode: Mode::Ltp,
        })
        .unwrap();
    let now = Instant::now();
    r.router.poll(now);
    r.feed.push(ltp_tick(3, 42)).unwrap();
    r.router.poll(now);
    for io in 0..2 {
        let got = drain(&mut r.deliveries[io]);
        assert!(
            matches!(got[..], [Delivery::Tick(t)] if t.ltp == 42),
            "{got:?}"
        );
    }
    // Every client of IO thread 1 leaves: its thread is no longer told.
    r.controls[1]
        .push(Control::UnsubscribeAll { consumer: 17 })
        .unwrap();
    r.router.poll(now);
    r.feed.push(ltp_tick(3, 43)).unwrap();
    r.router.poll(now);
    assert_eq!(drain(&mut r.deliveries[0]).len(), 1);
    assert!(drain(&mut r.deliveries[1]).is_empty());
}

#[test]
fn demand_is_counted_per_consumer() {
    let mut r = rig(Duration::from_millis(50), 2, 64);
    let now = Instant::now();
    // consumer 0 on IO thread 0, consumer 16 on IO thread 1
    r.controls[0]
        .push(Control::Subscribe {
            consumer: 1,
            symbol: 5,
            mode: Mode::Ltp,
        })
        .unwrap();
    r.controls[1]
        .push(Control::Subscribe {
            consumer: 17,
            symbol: 5,
            mode: Mode::Depth,
        })
        .unwrap();
    r.router.poll(now);
    // Both arrived in one pass: the feed sees only the merged result.
    assert_eq!(
        drain(&mut r.upstream),
        [Upstream::Subscribe {
            symbol: 5,
            mode: Mode::Depth
        }]
    );
    r.controls[1]
        .push(Control::Unsubscribe {
            consumer: 17,
            symbol: 5,
            modes: 0b111,
        })
        .unwrap();
    r.router.poll(now);
    assert_eq!(
        drain(&mut r.upstream),
        [Upstream::Subscribe {
            symbol: 5,
            mode: Mode::Ltp
        }],
        "downgrade, not unsubscribe: consumer 0 still wants it"
    );
    r.controls[0]
        .push(Control::UnsubscribeAll { consumer: 1 })
        .unwrap();
    r.router.poll(now);
    assert_eq!(
        drain(&mut r.upstream),
        [Upstream::Unsubscribe { symbol: 5 }]
    );
}

#[test]
fn a_subscriber_gets_the_last_value_at_once() {
    let mut r = rig(Duration::from_millis(50), 1, 64);
    let now = Instant::now();
    r.feed.push(ltp_tick(4, 77)).unwrap();
    r.router.poll(now);
    r.controls[0]
        .push(Control::Subscribe {
            consumer: 2,
            symbol: 4,
            mode: Mode::Quote,
        })
        .unwrap();
    r.router.poll(now);
    assert_eq!(drain(&mut r.deliveries[0]), [Delivery::Latest(4)]);
}

#[test]
fn a_full_delivery_ring_delays_but_loses_nothing_and_spares_other_threads() {
    let mut r = rig(Duration::from_millis(1), 2, 4);
    let mut now = Instant::now();
    for s in 0..20 {
        r.controls[0]
            .push(Control::Subscribe {
                consumer: 1,
                symbol: s,
                mode: Mode::Ltp,
            })
            .unwrap();
        r.controls[1]
            .push(Control::Subscribe {
                consumer: 17,
                symbol: s,
                mode: Mode::Ltp,
            })
            .unwrap();
    }
    r.router.poll(now);
    for s in 0..20 {
        r.feed.push(ltp_tick(s, 1)).unwrap();
    }
    now += Duration::from_millis(2);
    r.router.poll(now);
    // IO thread 1 reads promptly; IO thread 0 is slow and reads only later.
    let mut fast = vec![];
    let mut slow = vec![];
    for _ in 0..20 {
        fast.extend(drain(&mut r.deliveries[1]).into_iter().map(|d| d.symbol()));
        r.router.poll(now);
    }
    assert!(r.router.stats().delivery_retries.load(Ordering::Relaxed) > 0);
    for _ in 0..20 {
        slow.extend(drain(&mut r.deliveries[0]).into_iter().map(|d| d.symbol()));
        r.router.poll(now);
    }
    for v in [&mut fast, &mut slow] {
        v.sort();
        v.dedup();
        assert_eq!(*v, (0..20).collect::<Vec<_>>());
    }
}

#[test]
fn bad_ids_are_counted_not_published() {
    let mut r = rig(Duration::from_millis(50), 1, 64);
    let now = Instant::now();
    r.feed.push(ltp_tick(64, 1)).unwrap();
    r.controls[0]
        .push(Control::Subscribe {
            consumer: 1,
            symbol: 99,
            mode: Mode::Ltp,
        })
        .unwrap();
    // consumer 20 belongs to IO thread 1, not 0
    r.controls[0]
        .push(Control::Subscribe {
            consumer: 20,
            symbol: 1,
            mode: Mode::Ltp,
        })
        .unwrap();
    r.router.poll(now);
    let st = r.router.stats();
    assert_eq!(st.bad_symbol.load(Ordering::Relaxed), 1);
    assert_eq!(st.bad_control.load(Ordering::Relaxed), 2);
    assert_eq!(r.router.publisher().published, 0);
}

#[test]
fn run_drains_and_returns_the_publisher_on_stop() {
    let mut r = rig(Duration::from_millis(50), 1, 64);
    for i in 0..1000 {
        r.feed.push(ltp_tick(1, i)).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(true));
    let p = r.router.spawn(stop).unwrap().join().unwrap();
    assert_eq!(p.published, 1000);
    assert_eq!(p.last[1].ltp, 999);
}

#[test]
fn a_pin_holder_drives_demand_but_gets_no_deliveries() {
    // Consumer 0, the first id of IO thread 0's range, holds pinned subscriptions (symbols kept
    // flowing for shared-memory readers): the feed is asked for the symbol, nothing is delivered.
    let mut r = rig(Duration::ZERO, 1, 64);
    let now = Instant::now();
    r.feed.push(ltp_tick(3, 1)).unwrap();
    r.router.poll(now);
    r.controls[0]
        .push(Control::Subscribe {
            consumer: 0,
            symbol: 3,
            mode: Mode::Depth,
        })
        .unwrap();
    r.router.poll(now);
    assert_eq!(
        drain(&mut r.upstream),
        [Upstream::Subscribe {
            symbol: 3,
            mode: Mode::Depth
        }]
    );
    for i in 0..10 {
        r.feed.push(ltp_tick(3, i)).unwrap();
    }
    r.router.poll(now);
    assert!(
        drain(&mut r.deliveries[0]).is_empty(),
        "no snapshot, no deliveries for the pin holder"
    );
    assert_eq!(
        r.router.publisher().published,
        11,
        "but every tick is published"
    );
}

/// The router hosted on another thread's loop: ticks handed over directly are published and
/// delivered, the pass after them rings a sleeping IO thread's bell, and a control pushed while
/// the host sleeps wakes the host through the wake function it installed.
#[test]
fn inline_ticks_are_delivered_and_wake_who_waits() {
    use std::sync::atomic::AtomicU32;
    let (mut rings, ends) = RouterRings::one_each(RingSizes {
        feed: 16,
        upstream: 64,
        control: 64,
        deliveries: 1024,
    });
    let RingEnds {
        mut upstream,
        control: mut ctl,
        deliveries: mut del,
        ..
    } = ends;
    let io_wakes = Arc::new(AtomicU32::new(0));
    let w = io_wakes.clone();
    let io_bell = Arc::new(Doorbell::new(move || {
        w.fetch_add(1, Ordering::Relaxed);
    }));
    rings.delivery_bells.push(io_bell.clone());
    let cfg = RouterConfig {
        symbols: 64,
        flush_interval: Duration::ZERO,
        consumers_per_io: 16,
        ..RouterConfig::default()
    };
    let mut router: Box<dyn Inline> =
        Box::new(Router::new(cfg, rings, MemoryPublisher::new(64), vec![]));
    let host_wakes = Arc::new(AtomicU32::new(0));
    let h = host_wakes.clone();
    router.set_wake(Box::new(move || {
        h.fetch_add(1, Ordering::Relaxed);
    }));
    let bell = router.doorbell();

    // The host sleeps; a client IO thread subscribes and rings: the host is woken.
    bell.will_sleep();
    ctl.push(Control::Subscribe {
        consumer: 1,
        symbol: 5,
        mode: Mode::Ltp,
    })
    .unwrap();
    assert!(router.has_input());
    bell.ring();
    bell.awake();
    assert_eq!(host_wakes.load(Ordering::Relaxed), 1);
    router.pass();
    assert!(matches!(
        upstream.pop(),
        Ok(Upstream::Subscribe {
            symbol: 5,
            mode: Mode::Ltp
        })
    ));

    // The IO thread sleeps; ticks come in directly; the pass after them rings its bell once.
    io_bell.will_sleep();
    for i in 0..10 {
        router.tick(ltp_tick(5, i), i == 9);
    }
    assert_eq!(router.pass(), 0, "no ring work: the ticks came directly");
    assert_eq!(io_wakes.load(Ordering::Relaxed), 1);
    let got = drain(&mut del);
    assert_eq!(got.len(), 10);
    let ltps: Vec<i64> = got
        .iter()
        .map(|d| match d {
            Delivery::Tick(t) if t.symbol_id == 5 => t.ltp,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ltps, (0..10).collect::<Vec<_>>(), "every tick, in order");
    router.finish();
}

#[test]
fn latency_is_recorded_once_per_pass_for_every_stamped_tick() {
    let mut r = rig(Duration::ZERO, 1, 1024);
    let stats = r.router.stats();
    // Two broker messages' worth of ticks through the ring (two stamps), one unstamped tick.
    let recv = crate::clock::now_ns() - 5_000;
    for i in 0..5u32 {
        let mut t = ltp_tick(i % 3, 100 + i as i64);
        t.recv_ts_ns = if i < 3 { recv } else { recv + 1_000 };
        r.feed.push(t).unwrap();
    }
    r.feed.push(ltp_tick(4, 1)).unwrap(); // recv_ts_ns 0: not measured
    assert!(r.router.poll(Instant::now()) > 0);
    let s = stats.wire_to_shm.snapshot();
    assert_eq!(s.count(), 5, "every stamped tick, none unstamped");
    assert!(s.max >= 5_000, "measured after publishing: {s:?}");
    assert_eq!(
        stats.router_pass.snapshot().count(),
        1,
        "one value per pass"
    );
    // An empty pass records nothing.
    assert_eq!(r.router.poll(Instant::now()), 0);
    assert_eq!(stats.router_pass.snapshot().count(), 1);
    assert_eq!(stats.wire_to_shm.snapshot().count(), 5);
    // Inline: ticks handed over before the pass are measured by that pass.
    let mut t = ltp_tick(1, 7);
    t.recv_ts_ns = crate::clock::now_ns();
    Inline::tick(&mut r.router, t, true);
    Inline::pass(&mut r.router);
    assert_eq!(stats.wire_to_shm.snapshot().count(), 6);
    assert_eq!(stats.router_pass.snapshot().count(), 2);
}
