//! What a connection sends the broker: demand changes encoded as the broker's requests, written and
//! flushed without blocking.

use std::io;

use tungstenite::{Message, WebSocket};

use super::demand::Changes;
use super::protocol::BrokerProtocol;
use super::stream::Stream;

/// Encodes `changes` as the broker's requests, cut to its per-message limit.
pub(super) fn encode(p: &mut dyn BrokerProtocol, changes: &Changes, out: &mut Vec<Message>) {
    let per_message = p.limits().per_message;
    changes.for_each_request(per_message, |r| p.encode(r, out));
}

/// Writes and flushes `out` (emptying it); a full socket buffer is not an error (tungstenite keeps
/// the rest and the next flush sends it).
pub(super) fn send_all(ws: &mut WebSocket<Stream>, out: &mut Vec<Message>) -> Result<(), String> {
    for msg in out.drain(..) {
        match ws.write(msg) {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(format!("send: {e}")),
        }
    }
    match ws.flush() {
        Ok(()) => Ok(()),
        Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(format!("flush: {e}")),
    }
}
