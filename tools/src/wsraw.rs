//! Client-side WebSocket framing by hand, for the benchmarks' and the soak's many clients: one
//! thread reads hundreds of raw sockets, so what is measured is the gateway, not a client
//! library. Only what a client of the gateway needs: masked frames out (mask key zero, so the
//! payload goes as is), unmasked frames in, no fragmentation.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};

use tungstenite::Message;

/// Text frame opcode.
pub const TEXT: u8 = 0x1;
/// Close frame opcode.
pub const CLOSE: u8 = 0x8;
/// Ping frame opcode.
pub const PING: u8 = 0x9;
/// Pong frame opcode.
pub const PONG: u8 = 0xA;

/// A masked client frame with `opcode` (mask key zero: the payload is sent as is).
pub fn client_frame_op(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n @ 0..=125 => f.push(0x80 | n as u8),
        n @ 126..=65_535 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&[0; 4]);
    f.extend_from_slice(payload);
    f
}

/// A masked client text frame.
pub fn client_frame(payload: &[u8]) -> Vec<u8> {
    client_frame_op(TEXT, payload)
}

/// One complete server frame at the start of `buf`: `(opcode, header length, payload length)`,
/// or None while the frame is incomplete.
pub fn next_frame(buf: &[u8]) -> Option<(u8, usize, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let (b0, b1) = (buf[0], buf[1]);
    let (len, hdr) = match b1 & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b) as usize, 10)
        }
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    (buf.len() - hdr >= len).then_some((b0 & 0x0f, hdr, len))
}

/// The value of `"key":"…"` in a JSON text, without parsing the rest.
pub fn field<'a>(json: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let at = json.windows(key.len()).position(|w| w == key)? + key.len();
    let end = json[at..].iter().position(|&b| b == b'"')?;
    Some(&json[at..at + end])
}

/// Connects and authenticates one client with tungstenite, then hands back the raw socket
/// (nothing is buffered in tungstenite: the server sends nothing more until the next request),
/// after writing `first` (a request as a raw frame), if any.
pub fn authed_socket(
    addr: SocketAddr,
    key: &str,
    first: Option<&[u8]>,
) -> Result<TcpStream, String> {
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    let (mut ws, _) =
        tungstenite::client(format!("ws://{addr}"), tcp).map_err(|e| e.to_string())?;
    let auth = serde_json::json!({"action": "authenticate", "api_key": key});
    ws.send(Message::Text(auth.to_string().into()))
        .map_err(|e| e.to_string())?;
    match ws.read() {
        Ok(Message::Text(t)) if t.contains("success") => {}
        other => return Err(format!("auth: {other:?}")),
    }
    let mut tcp = ws.into_inner();
    if let Some(req) = first {
        tcp.write_all(&client_frame(req))
            .map_err(|e| e.to_string())?;
    }
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(tcp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_through_the_header_forms() {
        for n in [0usize, 125, 126, 65_535, 65_536] {
            let payload = vec![b'x'; n];
            let mut f = client_frame(&payload);
            // A server frame is the same without the mask bit and key.
            f[1] &= 0x7f;
            let hdr = f.len() - n - 4;
            f.drain(hdr..hdr + 4);
            assert_eq!(next_frame(&f), Some((TEXT, hdr, n)), "{n}");
            assert_eq!(next_frame(&f[..f.len() - 1]), None, "{n} incomplete");
        }
        assert_eq!(field(br#"{"a":"b","c":"d"}"#, b"\"c\":\""), Some(&b"d"[..]));
    }
}
