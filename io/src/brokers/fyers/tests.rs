//! The codec against the golden frames of `golden.rs`: decoded and checked field by field, every
//! encoder compared byte for byte, truncated and garbage input, topic names. The access token, the
//! symbol master and the `symbol-token` call are tested in their own files; the protocol
//! (auth → subscribe → snapshot → update → ack) in `protocol_tests.rs`.

use tickwire_engine::price;

use super::golden::*;
use super::packet::{self, Record, ServerPacket, ABSENT};
use super::request;
use super::serve::{self, ClientPacket, DataWriter, SnapshotSpec};
use super::topic::{self, Kind};
use super::ParseError;

// ---- server packets

fn px(rupees: &str) -> i64 {
    price::parse(rupees).unwrap()
}

/// The records of a data packet, or the first error.
fn records(frame: &[u8]) -> (u32, Vec<Result<Record<'_>, ParseError>>) {
    let ServerPacket::Data(d) = packet::parse(frame).unwrap() else {
        panic!("not a data packet")
    };
    (d.msg_number, d.records().collect())
}

#[test]
fn the_golden_update_reads_as_the_sdk_reads_it() {
    let (msg, recs) = records(GOLDEN_UPDATE);
    assert_eq!(msg, 1002);
    let [Ok(Record::Update { topic_id, values })] = recs[..] else {
        panic!("{recs:?}")
    };
    assert_eq!(topic_id, [0, 1]);
    assert_eq!(values.iter().collect::<Vec<_>>(), vec![73150]);
}

#[test]
fn a_snapshot_reads_field_by_field() {
    let (msg, recs) = records(SNAP_SF);
    assert_eq!(msg, 1001);
    let [Ok(Record::Snapshot(s))] = recs[..] else {
        panic!("{recs:?}")
    };
    assert_eq!((s.topic_id, s.name), ([0, 1], "sf|nse_cm|3045"));
    assert_eq!((s.multiplier, s.precision), (1, 2));
    assert_eq!(
        (s.exchange, s.exchange_token, s.symbol),
        ("NSE", "3045", "SBIN-EQ")
    );
    assert_eq!(s.values.len(), 21);
    assert_eq!(s.values.raw(0), Some(73150));
    assert_eq!(s.values.raw(12), Some(ABSENT));
    assert_eq!(s.values.raw(20), Some(72900));
    assert_eq!(s.values.raw(21), None);
    let (_, recs) = records(SNAP_IF);
    let [Ok(Record::Snapshot(s))] = recs[..] else {
        panic!("{recs:?}")
    };
    assert_eq!(
        (s.name, s.values.len(), s.symbol),
        ("if|nse_cm|Nifty 50", 6, "Nifty 50")
    );
    let (_, recs) = records(SNAP_DP);
    let [Ok(Record::Snapshot(s))] = recs[..] else {
        panic!("{recs:?}")
    };
    assert_eq!(
        (s.name, s.values.len(), s.values.raw(29)),
        ("dp|nse_cm|3045", 30, Some(10))
    );
}

#[test]
fn several_records_follow_each_other_without_lengths() {
    let (msg, recs) = records(MULTI);
    assert_eq!(msg, 1006);
    let ids: Vec<_> = recs
        .iter()
        .map(|r| r.as_ref().unwrap().topic_id())
        .collect();
    assert_eq!(ids, vec![[0, 2], [0, 1], [0, 3]]);
    assert!(matches!(recs[1], Ok(Record::Lite { ltp: 73250, .. })));
    // an update for a topic no snapshot bound still has its own count: the next record is found
    let (_, recs) = records(UNKNOWN_THEN_GOOD);
    assert!(matches!(
        recs[..],
        [
            Ok(Record::Update {
                topic_id: [0, 9],
                ..
            }),
            Ok(Record::Lite {
                topic_id: [0, 1],
                ltp: 73300
            })
        ]
    ));
}

#[test]
fn control_replies() {
    assert_eq!(
        packet::parse(AUTH_REPLY),
        Ok(ServerPacket::Auth {
            ok: true,
            ack_every: 2
        })
    );
    assert_eq!(
        packet::parse(AUTH_REFUSED),
        Ok(ServerPacket::Auth {
            ok: false,
            ack_every: 0
        })
    );
    assert_eq!(
        packet::parse(SUB_OK),
        Ok(ServerPacket::Status {
            of: packet::resp::SUBSCRIBE,
            ok: true
        })
    );
    assert_eq!(
        packet::parse(LIMIT_51001),
        Ok(ServerPacket::Message {
            code: 51001,
            text: "Symbol limit exceeded",
            ref_type: 4
        })
    );
    assert_eq!(packet::parse(&[0, 1, 11]), Ok(ServerPacket::Other(11)));
    // an unknown field id in a custom message is skipped
    let mut m = LIMIT_51001.to_vec();
    m[3] = 4;
    m.extend_from_slice(&[9, 0, 2, 0xaa, 0xbb]);
    assert!(matches!(
        packet::parse(&m),
        Ok(ServerPacket::Message { code: 51001, .. })
    ));
}

#[test]
fn the_mocks_encoders_write_the_golden_bytes() {
    assert_eq!(serve::auth_reply(true, 2), AUTH_REPLY);
    assert_eq!(serve::auth_reply(false, 0), AUTH_REFUSED);
    assert_eq!(serve::status_reply(packet::resp::SUBSCRIBE, true), SUB_OK);
    assert_eq!(
        serve::message(51001, "Symbol limit exceeded", 4).unwrap(),
        LIMIT_51001
    );
    let mut w = DataWriter::new(1002);
    w.update([0, 1], &[73150]).unwrap();
    assert_eq!(w.finish().unwrap(), GOLDEN_UPDATE);
    let sf = [
        73150, 1234567, 1767225600, 1767225601, 500, 700, 73145, 73155, 25, 100000, 120000, 73080,
        ABSENT, 72500, 73500, 80000, 60000, 65000, 80000, 72800, 72900,
    ];
    let mut w = DataWriter::new(1001);
    w.snapshot(&SnapshotSpec {
        topic_id: [0, 1],
        name: "sf|nse_cm|3045",
        values: &sf,
        multiplier: 1,
        precision: 2,
        exchange: "NSE",
        exchange_token: "3045",
        symbol: "SBIN-EQ",
    })
    .unwrap();
    assert_eq!(w.finish().unwrap(), SNAP_SF);
    let mut w = DataWriter::new(1006);
    w.update([0, 2], &[2433000])
        .unwrap()
        .lite([0, 1], 73250)
        .unwrap()
        .update([0, 3], &[73150])
        .unwrap();
    assert_eq!(w.count(), 3);
    assert_eq!(w.finish().unwrap(), MULTI);
    // refused records leave nothing behind
    let mut w = DataWriter::new(1);
    let long = "x".repeat(256);
    let spec = SnapshotSpec {
        topic_id: [0, 1],
        name: &long,
        values: &[],
        multiplier: 1,
        precision: 2,
        exchange: "",
        exchange_token: "",
        symbol: "",
    };
    assert!(w.snapshot(&spec).is_err());
    assert!(w.update([0, 1], &[0; 256]).is_err());
    assert_eq!(w.finish().unwrap(), [0, 7, 6, 0, 0, 0, 1, 0, 0]);
}

/// Every truncation of every golden frame, and garbage: never a panic, never a record from bytes
/// that are not there.
#[test]
fn truncated_and_garbage_frames_are_errors_never_panics() {
    let all: [&[u8]; 15] = [
        GOLDEN_SUBSCRIBE,
        GOLDEN_UPDATE,
        SDK_SUBSCRIBE_TWO,
        SDK_MODE,
        AUTH_REPLY,
        AUTH_REFUSED,
        SUB_OK,
        SNAP_SF,
        SNAP_IF,
        SNAP_DP,
        UPDATE_HOLES,
        LITE,
        MULTI,
        UNKNOWN_THEN_GOOD,
        LIMIT_51001,
    ];
    for g in all {
        for n in 0..g.len() {
            let cut = &g[..n];
            if let Ok(ServerPacket::Data(d)) = packet::parse(cut) {
                let recs: Vec<_> = d.records().collect();
                // a cut packet never yields all its declared records, and stops at an error
                assert!(
                    recs.iter().filter(|r| r.is_ok()).count() < d.count as usize,
                    "{n}"
                );
                assert!(
                    matches!(recs.last(), Some(Err(ParseError::Truncated { .. }))),
                    "{n}"
                );
            }
            let _ = serve::parse_client(cut);
        }
    }
    // an unknown record type ends the packet
    let mut bad = GOLDEN_UPDATE.to_vec();
    bad[9] = b'Z';
    let (_, recs) = records(&bad);
    assert_eq!(recs, vec![Err(ParseError::UnknownRecord(b'Z'))]);
    // more records declared than present
    let mut more = GOLDEN_UPDATE.to_vec();
    more[8] = 2;
    let (_, recs) = records(&more);
    assert!(recs[0].is_ok() && recs[1] == Err(ParseError::Truncated { index: 1, count: 2 }));
    // pseudo-random garbage
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        let mut f = Vec::new();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = (x % 64) as usize;
        for i in 0..n {
            f.push((x >> (i % 8 * 8)) as u8 ^ i as u8);
        }
        if f.len() > 2 {
            f[2] = [1, 4, 6, 51, 6, 6][(x % 6) as usize];
        }
        if let Ok(ServerPacket::Data(d)) = packet::parse(&f) {
            let _ = d.records().count();
        }
        let _ = serve::parse_client(&f);
    }
}

// ---- client packets

#[test]
fn the_client_encoders_write_the_golden_bytes() {
    assert_eq!(
        request::subscribe(&["sf|nse_cm|3045"], 11),
        vec![GOLDEN_SUBSCRIBE.to_vec()]
    );
    let mut unsub = GOLDEN_SUBSCRIBE.to_vec();
    unsub[2] = 5;
    assert_eq!(request::unsubscribe(&["sf|nse_cm|3045"], 11), vec![unsub]);
    // the SDK's two-topic subscribe, with the true length instead of 0xbb
    let mut two = SDK_SUBSCRIBE_TWO.to_vec();
    two[1] = 0x2d;
    assert_eq!(
        request::subscribe(&["sf|nse_cm|3045", "if|nse_cm|Nifty 50"], 11),
        vec![two]
    );
    // the SDK's mode packet, with the true length instead of 0
    let mut mode = SDK_MODE.to_vec();
    mode[1] = 0x11;
    assert_eq!(request::mode(11, request::FULL), mode);
    #[rustfmt::skip]
    let auth: &[u8] = &[
        0x00, 0x21, 0x01, 0x04, 0x01, 0x00, 0x09, 0x48, 0x53, 0x4d, 0x4b, 0x45, 0x59, 0x31, 0x32, 0x33,
        0x02, 0x00, 0x01, 0x50, 0x03, 0x00, 0x01, 0x01, 0x04, 0x00, 0x08, 0x74, 0x69, 0x63, 0x6b, 0x77,
        0x69, 0x72, 0x65,
    ];
    assert_eq!(request::auth("HSMKEY123"), auth);
    assert_eq!(
        request::ack(3),
        [0x00, 0x09, 0x03, 0x01, 0x01, 0x00, 0x04, 0, 0, 0, 3]
    );
    assert_eq!(request::PING, [0x00, 0x01, 0x0b]);
}

#[test]
fn subscribe_packets_are_cut_to_1500_topics() {
    let topics: Vec<String> = (0..3001).map(|i| format!("sf|nse_fo|{i}")).collect();
    let packets = request::subscribe(&topics, 11);
    assert_eq!(packets.len(), 3);
    let mut seen = Vec::new();
    for p in &packets {
        assert_eq!(
            u16::from_be_bytes([p[0], p[1]]) as usize,
            p.len() - 2,
            "true length"
        );
        let Ok(ClientPacket::Topics {
            subscribe: true,
            channel: 11,
            topics,
        }) = serve::parse_client(p)
        else {
            panic!()
        };
        assert!(topics.count <= 1500);
        seen.extend(topics.iter().map(|t| t.unwrap().to_owned()));
    }
    assert_eq!(seen, topics);
    assert!(request::subscribe::<&str>(&[], 11).is_empty());
}

#[test]
fn the_mock_reads_what_the_sdk_and_tickwire_send() {
    let Ok(ClientPacket::Topics {
        subscribe: true,
        channel: 11,
        topics,
    }) = serve::parse_client(SDK_SUBSCRIBE_TWO)
    else {
        panic!()
    };
    let names: Vec<_> = topics.iter().map(Result::unwrap).collect();
    assert_eq!(names, vec!["sf|nse_cm|3045", "if|nse_cm|Nifty 50"]);
    assert_eq!(
        serve::parse_client(SDK_MODE),
        Ok(ClientPacket::Mode {
            channel_bits: 1 << 11,
            mode: b'F'
        })
    );
    assert_eq!(
        serve::parse_client(&request::auth("k")),
        Ok(ClientPacket::Auth {
            hsm_key: "k",
            source: "tickwire"
        })
    );
    assert_eq!(
        serve::parse_client(&request::ack(7)),
        Ok(ClientPacket::Ack { msg_number: 7 })
    );
    assert_eq!(serve::parse_client(&request::PING), Ok(ClientPacket::Ping));
}

// ---- topics

#[test]
fn topics_are_built_as_the_sdk_builds_them() {
    let t = topic::topics("NSE:SBIN-EQ", "10100000003045").unwrap();
    assert_eq!(
        (&*t.main, t.main_kind, t.depth.as_deref()),
        ("sf|nse_cm|3045", Kind::Sf, Some("dp|nse_cm|3045"))
    );
    let t = topic::topics("NSE:NIFTY50-INDEX", "101000000026000").unwrap();
    assert_eq!(
        (&*t.main, t.main_kind, t.depth.as_deref()),
        ("if|nse_cm|Nifty 50", Kind::If, None)
    );
    let modes: Vec<_> = t.for_depth(true).collect();
    assert_eq!(
        modes,
        vec![("if|nse_cm|Nifty 50", Kind::If)],
        "no index depth"
    );
    let t = topic::topics("BSE:SENSEX-INDEX", "12100000001").unwrap();
    assert_eq!(&*t.main, "if|bse_cm|SENSEX");
    let t = topic::topics("NSE:NIFTYAUTO-INDEX", "101000000026029").unwrap();
    assert_eq!(
        &*t.main, "if|nse_cm|NIFTYAUTO",
        "fallback: between ':' and '-'"
    );
    for (fytoken, topic) in [
        ("101126082535011", "sf|nse_fo|35011"),
        ("1120250905439488", "sf|mcx_fo|439488"),
        ("1210000000500112", "sf|bse_cm|500112"),
    ] {
        assert_eq!(&*topic::topics("X:Y", fytoken).unwrap().main, topic);
    }
    assert!(matches!(
        topic::topics("X:Y", "9999000000123"),
        Err(ParseError::BadFytoken(_))
    ));
    assert!(
        topic::topics("X:Y", "1010000000").is_err(),
        "no exchange token"
    );
    assert!(topic::topics("X:Y", "10").is_err());
    assert!(
        topic::topics("X:Y", "10é0000000001").is_err(),
        "not a char boundary: no panic"
    );
    assert_eq!(Kind::of_topic("dp|nse_cm|1"), Some(Kind::Dp));
}

#[test]
fn prices_follow_the_snapshots_scale() {
    // 731.50 at precision 2, multiplier 1
    assert_eq!(
        super::state::Scale::new(1, 2).unwrap().price(73150),
        px("731.5")
    );
}
