//! Client → server packets: the encoders tickwire sends with (the mock's parser for them is in
//! [`super::serve`]).
//!
//! Every packet is `u16 BE length, u8 type, u8 field count`, then TLV fields (`u8 id, u16 BE
//! length, value`), except the ping, which is the three bytes `00 01 0B`. The SDK writes garbage
//! length prefixes on some of these (0 on the mode packet, a sum including the access token's
//! length on subscribe); tickwire always writes the true one.

use super::packet::put_field;

/// Request types.
pub mod req {
    /// Auth.
    pub const AUTH: u8 = 1;
    /// Ack.
    pub const ACK: u8 = 3;
    /// Subscribe.
    pub const SUBSCRIBE: u8 = 4;
    /// Unsubscribe.
    pub const UNSUBSCRIBE: u8 = 5;
    /// Channel pause.
    pub const PAUSE: u8 = 7;
    /// Channel resume.
    pub const RESUME: u8 = 8;
    /// Ping.
    pub const PING: u8 = 11;
    /// Lite / full mode.
    pub const MODE: u8 = 12;
}

/// The channel tickwire subscribes on (the SDK's default).
pub const CHANNEL: u8 = 11;

/// What the auth packet names as the client.
pub const SOURCE: &str = "tickwire";

/// The ping the SDK sends every 10 s.
pub const PING: [u8; 3] = [0x00, 0x01, req::PING];

/// Full mode (`S`/`U` records with every field) in the mode packet.
pub const FULL: u8 = b'F';

/// Lite mode (`L` records, LTP only).
pub const LITE: u8 = b'L';

/// The most topics the SDK puts in one subscribe packet.
pub const TOPICS_PER_PACKET: usize = 1500;

fn begin(ty: u8, fields: u8) -> Vec<u8> {
    vec![0, 0, ty, fields]
}

/// Writes the true length; every caller keeps its packet under 64 KiB.
fn seal(mut p: Vec<u8>) -> Vec<u8> {
    let n = (p.len() - 2).min(u16::MAX as usize) as u16;
    p[..2].copy_from_slice(&n.to_be_bytes());
    p
}

/// Auth: field 1 the `hsm_key` from the access token, 2 the mode `P`, 3 `0x01`, 4 the source.
pub fn auth(hsm_key: &str) -> Vec<u8> {
    let mut p = begin(req::AUTH, 4);
    put_field(&mut p, 1, hsm_key.as_bytes());
    put_field(&mut p, 2, b"P");
    put_field(&mut p, 3, &[1]);
    put_field(&mut p, 4, SOURCE.as_bytes());
    seal(p)
}

/// Mode: field 1 the channel bitmask (`1 << channel`, u64), field 2 [`FULL`] or [`LITE`].
pub fn mode(channel: u8, mode: u8) -> Vec<u8> {
    let mut p = begin(req::MODE, 2);
    put_field(&mut p, 1, &(1u64 << (channel % 64)).to_be_bytes());
    put_field(&mut p, 2, &[mode]);
    seal(p)
}

/// Ack of data packet `msg_number`: `00 09 03 01 01 00 04` + the number.
pub fn ack(msg_number: u32) -> Vec<u8> {
    let mut p = begin(req::ACK, 1);
    put_field(&mut p, 1, &msg_number.to_be_bytes());
    seal(p)
}

/// Subscribe packets for `topics` on `channel`: as many as needed to keep each under
/// [`TOPICS_PER_PACKET`] topics and 64 KiB. A topic over 255 bytes is skipped (topic names come
/// from [`super::topic::topics`], which refuses those).
pub fn subscribe<T: AsRef<str>>(topics: &[T], channel: u8) -> Vec<Vec<u8>> {
    topic_packets(req::SUBSCRIBE, topics, channel)
}

/// Unsubscribe packets, as [`subscribe`].
pub fn unsubscribe<T: AsRef<str>>(topics: &[T], channel: u8) -> Vec<Vec<u8>> {
    topic_packets(req::UNSUBSCRIBE, topics, channel)
}

/// `len u16, type, 2, 01, u16 scrips length, scrips (u16 count, count × (u8 len, name)),
/// 02 00 01 channel`: 9 bytes after the prefix besides the scrips.
fn topic_packets<T: AsRef<str>>(ty: u8, topics: &[T], channel: u8) -> Vec<Vec<u8>> {
    // The scrips field's own u16 length bounds it; the packet's length is 9 more.
    const MAX_SCRIPS: usize = u16::MAX as usize - 9;
    let mut packets = Vec::new();
    let mut scrips = Vec::new();
    let mut n: u16 = 0;
    let mut flush = |scrips: &mut Vec<u8>, n: &mut u16| {
        if *n > 0 {
            scrips[..2].copy_from_slice(&n.to_be_bytes());
            let mut p = begin(ty, 2);
            put_field(&mut p, 1, scrips);
            put_field(&mut p, 2, &[channel]);
            packets.push(seal(p));
        }
        scrips.clear();
        *n = 0;
    };
    for t in topics {
        let t = t.as_ref().as_bytes();
        let Ok(len) = u8::try_from(t.len()) else {
            continue;
        };
        if n as usize == TOPICS_PER_PACKET || scrips.len() + 1 + t.len() > MAX_SCRIPS {
            flush(&mut scrips, &mut n);
        }
        if scrips.is_empty() {
            scrips.extend_from_slice(&[0, 0]);
        }
        scrips.push(len);
        scrips.extend_from_slice(t);
        n += 1;
    }
    flush(&mut scrips, &mut n);
    packets
}
