//! A session's market data: fresh while it keeps up, conflated while it does not.
//!
//! While the session's send backlog (frame bytes handed to the WebSocket minus bytes the kernel
//! took) is under the high-water mark, each update is written as it comes ([`Session::offer`];
//! the gateway flushes every written session once per loop pass, so whatever a pass produced leaves
//! in one write). Past the mark the session *conflates*: an update only marks its symbol, and once
//! the backlog is under the low-water mark the latest value of every marked symbol goes out
//! ([`Session::drain`], then the fan-out's `send_marked`) and updates flow directly again. A client that reads nothing holds at most
//! about the high-water mark of messages plus one mark per subscribed symbol.

use std::io::{self, Read, Write};

use mio::net::TcpStream;
use tickwire_engine::router::Mode;
use tickwire_engine::symbols::SymbolId;
use tungstenite::{Message, Utf8Bytes};

use std::sync::Arc;

use super::{would_block, Session, Ws};
use crate::gateway::{ClassCounts, Shared};

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

    /// True while updates only mark their symbol (see the module docs).
    pub fn is_conflating(&self) -> bool {
        self.conflating
    }

    /// Writes one message per mode in `modes` (`format(mode)` gives it, formatted once for every
    /// session); returns how many. The fan-out has checked the sequence and the conflation state.
    pub fn write_market(&mut self, modes: u8, format: &mut dyn FnMut(Mode) -> Utf8Bytes) -> u64 {
        let Ws::Open(ws) = &mut self.ws else {
            return 0;
        };
        let mut n = 0;
        for m in Mode::ALL {
            if modes & m.bit() == 0 {
                continue;
            }
            let text = format(m);
            self.written += frame_len(text.len());
            match ws.write(Message::Text(text)) {
                Ok(()) => n += 1,
                Err(e) if would_block(&e) => n += 1,
                // Four high-water marks queued: a client that reads nothing at all.
                Err(tungstenite::Error::WriteBufferFull(_)) => {
                    self.close(1008, "not reading");
                    return n;
                }
                Err(_) => {
                    self.ws = Ws::Closed;
                    return n;
                }
            }
        }
        self.unflushed = true;
        // Conflate from here on within this pass too: a pass can carry thousands of updates, and
        // a client whose socket is full must not collect them all.
        if self.backlog() >= self.high_water {
            self.start_conflating();
        }
        n
    }

    fn start_conflating(&mut self) {
        if !self.conflating {
            self.conflating = true;
            self.conflation_starts += 1;
            self.class_counts.conflations += 1;
        }
    }

    /// An update this conflating session only marked (a queue drop for its class's metrics).
    pub fn note_queue_drop(&mut self) {
        self.class_counts.queue_drops += 1;
    }

    /// Frame bytes handed to the WebSocket so far.
    pub fn written_bytes(&self) -> u64 {
        self.written
    }

    /// Its key's name and the class counts since the last call (folded into
    /// `Shared::classes` by the gateway every 100 ms and when the session ends); None when there
    /// is nothing to add.
    pub fn take_class_counts(&mut self) -> Option<(Arc<str>, ClassCounts)> {
        let c = std::mem::take(&mut self.class_counts);
        let name = self.key_name.clone()?;
        (c != ClassCounts::default()).then_some((name, c))
    }

    /// Times the session started conflating since the last call (for `slow_skips`).
    pub fn take_conflation_starts(&mut self) -> u64 {
        std::mem::take(&mut self.conflation_starts)
    }

    /// Notes that `symbol` changed while conflating (the fan-out marks it once).
    pub fn mark(&mut self, symbol: SymbolId) {
        self.dirty.push(symbol);
    }

    /// Flushes what this pass wrote (one `write` for all of it). Past the high-water mark the
    /// session starts conflating. Returns true when a conflating session has drained under the
    /// low-water mark: the fan-out then sends it the latest value of every symbol it marked
    /// ([`crate::gateway::fanout::Fanout::send_marked`]) and it takes updates directly again.
    pub fn drain(&mut self, shared: &Shared) -> bool {
        self.poked = false;
        self.flush_socket();
        let cfg = &shared.cfg;
        let backlog = self.backlog();
        if !self.conflating {
            if backlog >= cfg.high_water as u64 {
                self.start_conflating();
            }
            return false;
        }
        backlog < cfg.low_water as u64
    }

    /// After [`crate::gateway::fanout::Fanout::send_marked`]: flushes, and takes updates directly
    /// again once every marked symbol went out.
    pub fn marked_sent(&mut self) {
        self.flush_socket();
        if self.dirty.is_empty() {
            self.conflating = false;
        }
    }

    /// True when the backlog has reached the high-water mark.
    pub fn over_high_water(&self, shared: &Shared) -> bool {
        self.backlog() >= shared.cfg.high_water as u64
    }

    pub(super) fn flush_socket(&mut self) {
        let Ws::Open(ws) = &mut self.ws else { return };
        match ws.flush() {
            Ok(()) => self.unflushed = false,
            Err(e) if would_block(&e) => {
                self.unflushed = false;
                self.write_blocked = true;
            }
            Err(_) => self.ws = Ws::Closed,
        }
    }
}
