//! A few bytes of bad input, kept inline in a parser's error.

use std::fmt;

/// Up to 40 bytes of input a parser could not use (a topic name, a message), kept inline so that
/// the parser's error stays `Copy` and the data path never allocates to report it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Excerpt {
    bytes: [u8; 40],
    len: u8,
}

impl Excerpt {
    /// The first 40 bytes of `b`.
    pub fn of(b: &[u8]) -> Self {
        let mut bytes = [0; 40];
        let n = b.len().min(40);
        bytes[..n].copy_from_slice(&b[..n]);
        Self {
            bytes,
            len: n as u8,
        }
    }

    /// The bytes kept.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl fmt::Display for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

impl fmt::Debug for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
