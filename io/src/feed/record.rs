//! What a connection tells the journal (`crate::journal`) besides its frames: that it connected or
//! disconnected, and each change of what it subscribes, with symbol names, so a replay knows what
//! each stretch of frames was asked for. Control path only: these allocate (names), frames do not.

use tickwire_engine::clock::now_ns;
use tickwire_engine::symbols::{SymbolId, SymbolRegistry};

use super::demand::Changes;
use crate::journal::{Appender, Event};

/// `EXCHANGE:SYMBOL` for each id the registry knows.
fn names(reg: &SymbolRegistry, ids: &[SymbolId]) -> Vec<String> {
    ids.iter()
        .filter_map(|&s| reg.info(s).map(|i| format!("{}:{}", i.exchange, i.symbol)))
        .collect()
}

/// Records `changes` sent on connection `conn`: a subscribe per mode (new symbols and mode
/// changes alike: the mode is what is asked for from now on), then the unsubscribes.
pub(super) fn changes(j: &mut Appender, conn: usize, reg: &SymbolRegistry, changes: &Changes) {
    let now = now_ns();
    for (mode, ids) in changes.subscribe.iter().chain(&changes.change_mode) {
        let n = names(reg, ids);
        let refs: Vec<&str> = n.iter().map(String::as_str).collect();
        let mode = *mode as u8;
        j.event(
            conn as u8,
            now,
            Event::Subscribe {
                mode,
                symbols: &refs,
            },
        );
    }
    if !changes.unsubscribe.is_empty() {
        let n = names(reg, &changes.unsubscribe);
        let refs: Vec<&str> = n.iter().map(String::as_str).collect();
        j.event(conn as u8, now, Event::Unsubscribe { symbols: &refs });
    }
}

/// Records what the protocol learned while running (`BrokerProtocol::learned`), if anything.
pub(super) fn learned(
    j: &mut Appender,
    conn: usize,
    reg: &SymbolRegistry,
    protocol: &mut dyn crate::feed::BrokerProtocol,
) {
    let mut pairs = Vec::new();
    protocol.learned(&mut pairs);
    for (id, value) in pairs {
        if let Some(i) = reg.info(id) {
            let symbol = format!("{}:{}", i.exchange, i.symbol);
            let event = Event::Learned {
                symbol: &symbol,
                value: &value,
            };
            j.event(conn as u8, now_ns(), event);
        }
    }
}

/// Records that connection `conn` opened.
pub(super) fn connect(j: &mut Appender, conn: usize) {
    j.event(conn as u8, now_ns(), Event::Connect);
}

/// Records that connection `conn` closed, and why.
pub(super) fn disconnect(j: &mut Appender, conn: usize, reason: &str) {
    j.event(conn as u8, now_ns(), Event::Disconnect { reason });
}
