//! Zerodha Kite Connect ticker: the binary packet format, frame splitting, control messages and the
//! instrument master. Parsing writes straight into [`Tick`]s; nothing here allocates per packet.
//!
//! `docs/brokers.md` describes the format; `tests.rs` holds golden frames written out as bytes.

pub mod frame;
pub mod instruments;
pub mod packet;
mod protocol;
#[cfg(test)]
mod tests;

use tickwire_engine::router::Mode;
use tickwire_engine::symbols::SymbolId;
use tickwire_engine::Tick;

pub use frame::{split, Frame};
pub use packet::{Kind, Packet, Repr};
pub use protocol::{Kite, KiteConfig};

/// Why a frame or packet was rejected. Small and `Copy`: it is counted and logged by the feed,
/// and the rest of the frame (where it can be found) is still used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A packet length that is none of 8, 28, 32, 44, 184.
    #[error("unknown packet length {0}")]
    UnknownPacketLength(u16),
    /// A packet length longer than the bytes left in the frame.
    #[error("packet length {length} but only {remaining} bytes left in the frame")]
    LyingLength {
        /// Declared.
        length: u16,
        /// Present.
        remaining: u16,
    },
    /// The frame ended before its declared packet count.
    #[error("frame ended with {declared} packets still declared ({remaining} bytes left)")]
    Truncated {
        /// Packets still expected.
        declared: u16,
        /// Bytes left.
        remaining: u16,
    },
    /// Bytes after the last declared packet.
    #[error("{0} bytes after the last declared packet")]
    TrailingBytes(u16),
    /// A price that does not fit or a negative depth entry.
    #[error("price out of range")]
    BadPrice,
    /// A token not in the instrument master.
    #[error("unknown instrument token {0}")]
    UnknownToken(u32),
}

/// Instrument token → symbol id.
pub type TokenMap = super::keymap::KeyMap<u32>;

/// Counts from one frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameStats {
    /// Ticks produced.
    pub ticks: u32,
    /// Packets rejected.
    pub errors: u32,
}

/// Parses a binary frame, calling `emit` with one tick per good packet and `on_error` per bad one.
/// `recv_ts_ns` is the frame's receive time. A heartbeat produces nothing. Use
/// [`parse_frame_marked`] to learn which tick is the frame's last.
pub fn parse_frame(
    frame: &[u8],
    recv_ts_ns: i64,
    tokens: &TokenMap,
    mut emit: impl FnMut(Tick),
    on_error: impl FnMut(ParseError),
) -> FrameStats {
    parse_frame_marked(frame, recv_ts_ns, tokens, |t, _| emit(t), on_error)
}

/// [`parse_frame`], with `emit(tick, last)`: `last` is true for the frame's final packet (by the
/// frame's count), so a consumer can tell when no more ticks are at hand.
pub fn parse_frame_marked(
    frame: &[u8],
    recv_ts_ns: i64,
    tokens: &TokenMap,
    mut emit: impl FnMut(Tick, bool),
    mut on_error: impl FnMut(ParseError),
) -> FrameStats {
    parse_packets(frame, recv_ts_ns, tokens, |r| match r {
        Ok((t, last)) => emit(t, last),
        Err(e) => on_error(e),
    })
}

/// The parser under [`parse_frame_marked`], with one callback for ticks and errors alike (so a
/// caller can hand both to one `&mut` sink).
#[inline]
pub fn parse_packets(
    frame: &[u8],
    recv_ts_ns: i64,
    tokens: &TokenMap,
    mut on: impl FnMut(Result<(Tick, bool), ParseError>),
) -> FrameStats {
    let mut st = FrameStats::default();
    let Frame::Packets(mut packets) = split(frame) else {
        return st;
    };
    while let Some(body) = packets.next() {
        let last = packets.remaining() == 0;
        let res = body.and_then(Packet::new_checked).and_then(|p| {
            let token = p.token();
            let id = *tokens.get(&token).ok_or(ParseError::UnknownToken(token))?;
            let mut t = Tick::new(id);
            t.recv_ts_ns = recv_ts_ns;
            p.fill(&mut t)?;
            Ok(t)
        });
        match res {
            Ok(t) => {
                st.ticks += 1;
                on(Ok((t, last)));
            }
            Err(e) => {
                st.errors += 1;
                on(Err(e));
            }
        }
    }
    st
}

/// Kite's name for a mode.
pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Ltp => "ltp",
        Mode::Quote => "quote",
        Mode::Depth => "full",
    }
}

/// Kite's mode name back to ours.
pub fn mode_from_name(name: &str) -> Option<Mode> {
    match name {
        "ltp" => Some(Mode::Ltp),
        "quote" => Some(Mode::Quote),
        "full" => Some(Mode::Depth),
        _ => None,
    }
}

/// `{"a":"subscribe","v":[…]}` and friends.
pub fn control(action: &str, tokens: &[u32]) -> String {
    let list: Vec<String> = tokens.iter().map(u32::to_string).collect();
    format!("{{\"a\":\"{action}\",\"v\":[{}]}}", list.join(","))
}

/// `{"a":"mode","v":["full",[…]]}`.
pub fn mode_message(mode: Mode, tokens: &[u32]) -> String {
    let list: Vec<String> = tokens.iter().map(u32::to_string).collect();
    format!(
        "{{\"a\":\"mode\",\"v\":[\"{}\",[{}]]}}",
        mode_name(mode),
        list.join(",")
    )
}

/// Loads Kite's instrument master (URL or file) as OpenAlgo listings (key: the instrument token).
pub fn listings(source: &str) -> Result<Vec<super::Listing>, String> {
    Ok(instruments::load(source)
        .map_err(|e| e.to_string())?
        .iter()
        .map(|r| {
            let (exchange, symbol) = instruments::openalgo_name(r);
            super::Listing {
                exchange,
                symbol,
                key: r.token.to_string(),
            }
        })
        .collect())
}

/// One [`Kite`] per connection over the instrument tokens by symbol id (built once, shared).
pub fn factory(
    cfg: &KiteConfig,
    keys: std::sync::Arc<Vec<Box<str>>>,
) -> crate::feed::ProtocolFactory {
    let mut tokens = TokenMap::default();
    let mut token_of = vec![0u32; keys.len()];
    for (id, key) in keys.iter().enumerate() {
        if let Ok(t) = key.parse::<u32>() {
            token_of[id] = t;
            tokens.insert(t, id as SymbolId);
        }
    }
    let (cfg, tokens, token_of) = (
        cfg.clone(),
        std::sync::Arc::new(tokens),
        std::sync::Arc::new(token_of),
    );
    Box::new(move || {
        Box::new(Kite::new(cfg.clone(), tokens.clone(), token_of.clone()))
            as Box<dyn crate::feed::BrokerProtocol>
    })
}
