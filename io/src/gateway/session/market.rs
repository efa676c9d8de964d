//! A session's market data: fresh while it keeps up, conflated while it does not.
//!
//! While the session's send backlog (frame bytes handed to the WebSocket minus bytes the kernel
//! took) is under the high-water mark, each update is written as it comes ([`Session::offer`];
//! the gateway flushes every written session once per loop pass, so whatever a pass produced leaves
//! in one write). Past the mark the session *conflates*: an update only marks its symbol, and once
//! the backlog is under the low-water mark the latest value of every marked symbol goes out
//! ([`Session::drain`]) and updates flow directly again. A client that reads nothing holds at most
//! about the high-water mark of messages plus one mark per subscribed symbol.

use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;

use mio::net::TcpStream;
use tickwire_engine::last::LastValues;
use tickwire_engine::router::Mode;
use tickwire_engine::symbols::SymbolId;
use tungstenite::{Message, Utf8Bytes};

use super::{would_block, Session, Ws};
use crate::gateway::protocol::{market_data, OutBuf};
use crate::gateway::Shared;

/// The client socket, counting the bytes the kernel took: the backlog is what was handed to the
/// WebSocket minus this.
#[derive(Debug)]
pub struct Counted {
    /// The socket.
    pub tcp: TcpStream,
    sent: u64,
}

impl Counted {
    /// Wraps `tcp`.
    pub fn new(tcp: TcpStream) -> Self {
        Self { tcp, sent: 0 }
    }
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp.read(buf)
    }
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tcp.write(buf)?;
        self.sent += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

/// Bytes of an unmasked server frame carrying `payload` bytes.
pub(super) fn frame_len(payload: usize) -> u64 {
    let header = match payload {
        0..=125 => 2,
        126..=65_535 => 4,
        _ => 10,
    };
    (payload + header) as u64
}

impl Session {
    /// Frame bytes not yet taken by the kernel.
    pub fn backlog(&self) -> u64 {
        match &self.ws {
            Ws::Open(ws) => self.written.saturating_sub(ws.get_ref().sent),
            _ => 0,
        }
    }

    /// True when something was written since the last flush, or a conflating session's socket
    /// may have drained.
    pub fn wants_flush(&self) -> bool {
        self.unflushed || (self.conflating && self.poked)
    }

    /// A new value of `symbol` (sequence `seq`) for the modes in `modes`; `format(mode)` gives the
    /// message, formatted once for every session. Returns the messages written, or `None` when the
    /// session is conflating and only marked the symbol.
    pub fn offer(
        &mut self,
        symbol: SymbolId,
        seq: u64,
        modes: u8,
        format: &mut dyn FnMut(Mode) -> Utf8Bytes,
    ) -> Option<u64> {
        let Some(sub) = self.subs.get_mut(&symbol) else {
            return Some(0);
        };
        if seq <= sub.last_seq {
            return Some(0); // already sent (a repeated `Latest`)
        }
        if self.conflating {
            if !sub.dirty {
                sub.dirty = true;
                self.dirty.push(symbol);
            }
            return None;
        }
        sub.last_seq = seq;
        let Ws::Open(ws) = &mut self.ws else {
            return Some(0);
        };
        let mut n = 0;
        for m in Mode::ALL {
            if modes & sub.modes & m.bit() == 0 {
                continue;
            }
            let text = format(m);
            self.written += frame_len(text.len());
            match ws.write(Message::Text(text)) {
                Ok(()) => n += 1,
                Err(e) if would_block(&e) => n += 1,
                Err(_) => {
                    self.ws = Ws::Closed;
                    return Some(n);
                }
            }
        }
        self.unflushed = true;
        Some(n)
    }

    /// Flushes what this pass wrote (one `write` for all of it). Past the high-water mark the
    /// session starts conflating; under the low-water mark a conflating session sends the latest
    /// value of every symbol it marked meanwhile, then takes updates directly again.
    pub fn drain(&mut self, shared: &Shared, last: &dyn LastValues, buf: &mut OutBuf) {
        self.poked = false;
        self.flush_socket();
        let cfg = &shared.cfg;
        let backlog = self.backlog();
        if !self.conflating {
            if backlog >= cfg.high_water as u64 {
                self.conflating = true;
                shared.stats.slow_skips.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        if backlog >= cfg.low_water as u64 {
            return;
        }
        let sent = self.send_dirty(shared, last, buf);
        shared.stats.messages.fetch_add(sent, Ordering::Relaxed);
        self.flush_socket();
        if self.dirty.is_empty() {
            self.conflating = false;
        }
    }

    /// The latest value of each marked symbol, formatted for this session alone (a session that
    /// fell behind is the exception), until the backlog reaches the high-water mark again.
    fn send_dirty(&mut self, shared: &Shared, last: &dyn LastValues, buf: &mut OutBuf) -> u64 {
        let mut sent = 0;
        let mut k = 0;
        while k < self.dirty.len() {
            if self.backlog() >= shared.cfg.high_water as u64 {
                break;
            }
            let sym = self.dirty[k];
            k += 1;
            let Some(sub) = self.subs.get_mut(&sym) else {
                continue;
            };
            sub.dirty = false;
            let Some(t) = last.last_value(sym) else {
                continue;
            };
            if t.seq <= sub.last_seq {
                continue;
            }
            sub.last_seq = t.seq;
            let Some(info) = shared.registry.info(sym) else {
                continue;
            };
            let b = &shared.feed(sym).broker;
            for m in Mode::ALL {
                if sub.modes & m.bit() == 0 {
                    continue;
                }
                buf.json.clear();
                market_data(&mut buf.json, &t, m, &info.exchange, &info.symbol, b);
                let Ws::Open(ws) = &mut self.ws else {
                    return sent;
                };
                self.written += frame_len(buf.json.len());
                match ws.write(buf.message()) {
                    Ok(()) => sent += 1,
                    Err(e) if would_block(&e) => sent += 1,
                    Err(_) => {
                        self.ws = Ws::Closed;
                        return sent;
                    }
                }
            }
        }
        self.dirty.drain(..k);
        sent
    }

    pub(super) fn flush_socket(&mut self) {
        let Ws::Open(ws) = &mut self.ws else { return };
        match ws.flush() {
            Ok(()) => self.unflushed = false,
            Err(e) if would_block(&e) => self.unflushed = false,
            Err(_) => self.ws = Ws::Closed,
        }
    }
}
