//! Kite binary frame framing: `u16` packet count, then per packet a `u16` length and the body.
//! A frame shorter than 2 bytes is a heartbeat.

use super::ParseError;

/// What a binary frame holds.
#[derive(Debug)]
pub enum Frame<'a> {
    /// A heartbeat (1 byte); counts as data for dead-connection detection.
    Heartbeat,
    /// Packets, split lazily.
    Packets(Packets<'a>),
}

/// Splits a binary frame. The count is read here; each packet's length is checked against the bytes
/// that remain as the iterator goes, so a lying length ends the frame with an error, never a panic.
pub fn split(frame: &[u8]) -> Frame<'_> {
    if frame.len() < 2 {
        return Frame::Heartbeat;
    }
    let count = u16::from_be_bytes([frame[0], frame[1]]);
    Frame::Packets(Packets {
        rest: &frame[2..],
        left: count,
        failed: false,
    })
}

/// Iterator over the packet bodies of a frame.
#[derive(Debug)]
pub struct Packets<'a> {
    rest: &'a [u8],
    left: u16,
    failed: bool,
}

impl Packets<'_> {
    /// Packets the frame's count says are still to come.
    pub fn remaining(&self) -> u16 {
        self.left
    }
}

impl<'a> Iterator for Packets<'a> {
    type Item = Result<&'a [u8], ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.left == 0 {
            if !self.rest.is_empty() {
                self.failed = true;
                return Some(Err(ParseError::TrailingBytes(self.rest.len() as u16)));
            }
            return None;
        }
        if self.rest.len() < 2 {
            self.failed = true;
            return Some(Err(ParseError::Truncated {
                declared: self.left,
                remaining: self.rest.len() as u16,
            }));
        }
        let len = u16::from_be_bytes([self.rest[0], self.rest[1]]) as usize;
        if self.rest.len() - 2 < len {
            self.failed = true;
            return Some(Err(ParseError::LyingLength {
                length: len as u16,
                remaining: (self.rest.len() - 2) as u16,
            }));
        }
        let body = &self.rest[2..2 + len];
        self.rest = &self.rest[2 + len..];
        self.left -= 1;
        Some(Ok(body))
    }
}

/// Builds a frame from packet bodies (the mock broker's side).
pub fn emit(packets: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(&(packets.len() as u16).to_be_bytes());
    for p in packets {
        out.extend_from_slice(&(p.len() as u16).to_be_bytes());
        out.extend_from_slice(p);
    }
}
