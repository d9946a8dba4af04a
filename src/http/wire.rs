//! WebSocket framing (RFC 6455) on the upgraded TCP stream: the reading
//! side, owned by the connection's session task, and the close. Writes go
//! through the connection's [`Link`] (`actors::link`), which the senders
//! write into the socket themselves.
//!
//! Why our own and not actix-ws: with actix-ws the HTTP/1 dispatcher keeps
//! serving the connection after the upgrade, with its two 8 KiB buffers for
//! the connection's whole life (16 of the ~23 KiB of heap an idle
//! connection cost), and every outbound frame crosses a channel into it and
//! becomes a write of its own. Here:
//! - An idle connection holds no buffer at all. Reads go through a stack
//!   chunk; only a partial frame is kept, and output is kept only until the
//!   kernel takes it.
//! - A frame header that announces more than the limit closes the
//!   connection (1009) before its payload arrives.
//!
//! Only what the server side needs: client frames must be masked, server
//! frames are not; no extensions (reserved bits set is a protocol error).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use actix_web::rt::net::TcpStream;
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::actors::link::{
    Flushed, Link, MAX_CONTROL_PAYLOAD, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT,
};

/// Most bytes one read takes from the socket.
const READ_CHUNK: usize = 8 * 1024;
/// After our close frame, how long to read (and drop) what the peer still
/// sends before the socket is closed. Closing with unread input makes the
/// kernel send a reset, which can destroy our close frame in the peer's
/// receive queue before it was read.
const LINGER: Duration = Duration::from_secs(2);

const OP_CONTINUATION: u8 = 0x0;

/// A whole message from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Text(String),
    /// Binary messages are refused by the protocol; their content is not kept.
    Binary,
    Ping(Vec<u8>),
    Pong,
    Close,
}

/// Why reading stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum WireError {
    /// A frame or message over the size limit (close 1009).
    TooLarge,
    /// A frame that breaks RFC 6455 (close 1002).
    Protocol(&'static str),
    /// A text message that is not UTF-8 (close 1007).
    NotUtf8,
    /// The peer is gone or the socket failed: nothing more can be sent.
    Gone,
}

/// The reading side of one WebSocket connection (writes go through the
/// connection's [`Link`]).
pub struct Wire {
    io: Arc<TcpStream>,
    /// Bytes read but not yet a whole frame. Empty, and without capacity,
    /// whenever the connection is between frames.
    read: BytesMut,
    /// Largest message (and frame) accepted, in bytes.
    max_message: usize,
    /// A fragmented message being collected: whether it is text, and its
    /// payload so far.
    partial: Option<(bool, Vec<u8>)>,
}

/// One parsed frame: (fin, opcode, unmasked payload).
type RawFrame = (bool, u8, BytesMut);

/// Take one complete client frame off the front of `buf`, if it holds one.
/// A header announcing more than `max` is refused as soon as the header is
/// complete, whatever of the payload has arrived.
fn parse_frame(buf: &mut BytesMut, max: usize) -> Result<Option<RawFrame>, WireError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (first, second) = (buf[0], buf[1]);
    if first & 0x70 != 0 {
        return Err(WireError::Protocol(
            "reserved bits set without an extension",
        ));
    }
    let fin = first & 0x80 != 0;
    let op = first & 0x0F;
    if !matches!(
        op,
        OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
    ) {
        return Err(WireError::Protocol("unknown opcode"));
    }
    if second & 0x80 == 0 {
        return Err(WireError::Protocol("client frames must be masked"));
    }
    let (len, header) = match second & 0x7F {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut be = [0u8; 8];
            be.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(be), 10)
        }
        short => (u64::from(short), 2),
    };
    if op >= OP_CLOSE && (!fin || len > MAX_CONTROL_PAYLOAD as u64) {
        return Err(WireError::Protocol(
            "control frames carry at most 125 bytes and are never fragmented",
        ));
    }
    if len > max as u64 {
        return Err(WireError::TooLarge);
    }
    // Fits in usize: at most `max`.
    let len = len as usize;
    let total = header + 4 + len;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let mask = [
        buf[header],
        buf[header + 1],
        buf[header + 2],
        buf[header + 3],
    ];
    buf.advance(header + 4);
    let mut payload = buf.split_to(len);
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
    Ok(Some((fin, op, payload)))
}

impl Wire {
    /// Serve `io`, whose upgrade is done; `already` is what the HTTP layer
    /// read past the request head (frames a client sent at once).
    pub fn new(io: Arc<TcpStream>, already: BytesMut, max_message: usize) -> Wire {
        let mut wire = Wire {
            io,
            read: already,
            max_message,
            partial: None,
        };
        wire.release_read_buffer();
        wire
    }

    fn release_read_buffer(&mut self) {
        if self.read.is_empty() && self.read.capacity() > 0 {
            self.read = BytesMut::new();
        }
    }

    /// The next whole message among the bytes already read, if any.
    fn next_message(&mut self) -> Result<Option<Incoming>, WireError> {
        while let Some((fin, op, payload)) = parse_frame(&mut self.read, self.max_message)? {
            match op {
                OP_CLOSE => return Ok(Some(Incoming::Close)),
                OP_PING => return Ok(Some(Incoming::Ping(payload.to_vec()))),
                OP_PONG => return Ok(Some(Incoming::Pong)),
                OP_TEXT | OP_BINARY => {
                    if self.partial.is_some() {
                        return Err(WireError::Protocol(
                            "a new message began inside a fragmented one",
                        ));
                    }
                    let text = op == OP_TEXT;
                    if fin {
                        return message(text, payload.to_vec()).map(Some);
                    }
                    self.partial = Some((text, payload.to_vec()));
                }
                _ => {
                    let Some((text, mut data)) = self.partial.take() else {
                        return Err(WireError::Protocol("continuation frame without a message"));
                    };
                    if data.len() + payload.len() > self.max_message {
                        return Err(WireError::TooLarge);
                    }
                    data.extend_from_slice(&payload);
                    if fin {
                        return message(text, data).map(Some);
                    }
                    self.partial = Some((text, data));
                }
            }
        }
        Ok(None)
    }

    /// The next message from the client. Cancel-safe: dropping the future
    /// loses nothing (bytes read stay buffered for the next call).
    pub async fn recv(&mut self) -> Result<Incoming, WireError> {
        loop {
            let next = self.next_message();
            self.release_read_buffer();
            if let Some(message) = next? {
                return Ok(message);
            }
            self.io.readable().await.map_err(|_| WireError::Gone)?;
            let mut chunk = [0u8; READ_CHUNK];
            match self.io.try_read(&mut chunk) {
                Ok(0) => return Err(WireError::Gone),
                Ok(n) => self.read.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Err(WireError::Gone),
            }
        }
    }

    /// The socket (the link writes to it; the session waits on it).
    pub fn io(&self) -> &Arc<TcpStream> {
        &self.io
    }

    pub fn into_io(self) -> Arc<TcpStream> {
        self.io
    }
}

/// End the connection: write what the link holds (its close frame,
/// normally) within `grace`, close our side, and read until the peer
/// closes its side too (at most [`LINGER`]).
pub async fn finish(link: &Link, io: Arc<TcpStream>, grace: Duration) {
    let written = async {
        loop {
            match link.flush() {
                Flushed::Done => return true,
                Flushed::Gone => return false,
                Flushed::Blocked => {
                    if io.writable().await.is_err() {
                        return false;
                    }
                }
            }
        }
    };
    let written = tokio::time::timeout(grace, written).await.unwrap_or(false);
    // Nobody writes from now on (senders find the link closed), so the
    // socket is ours alone.
    drop(link.take_io());
    if !written {
        return;
    }
    let Ok(mut io) = Arc::try_unwrap(io) else {
        return;
    };
    if io.shutdown().await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(LINGER, async {
        let mut sink = [0u8; 1024];
        while let Ok(n) = io.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

fn message(text: bool, data: Vec<u8>) -> Result<Incoming, WireError> {
    if !text {
        return Ok(Incoming::Binary);
    }
    String::from_utf8(data)
        .map(Incoming::Text)
        .map_err(|_| WireError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame: masked with a fixed key.
    fn client(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = vec![if fin { 0x80 } else { 0 } | op];
        let len = payload.len();
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if len <= 0xFFFF {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        out
    }

    fn parse_all(bytes: &[u8], max: usize) -> Result<Vec<RawFrame>, WireError> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(f) = parse_frame(&mut buf, max)? {
            out.push(f);
        }
        Ok(out)
    }

    #[test]
    fn frames_of_every_length_encoding_parse_back() {
        for len in [0usize, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let frames = parse_all(&client(true, OP_TEXT, &payload), 1 << 20).expect("parses");
            assert_eq!(frames.len(), 1, "len {len}");
            assert_eq!(&frames[0].2[..], &payload[..], "len {len}");
        }
    }

    #[test]
    fn a_frame_split_anywhere_waits_for_the_rest() {
        let bytes = client(true, OP_TEXT, b"hello, world");
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert_eq!(parse_frame(&mut buf, 1024), Ok(None), "cut at {cut}");
            buf.extend_from_slice(&bytes[cut..]);
            let (fin, op, payload) = parse_frame(&mut buf, 1024).expect("ok").expect("frame");
            assert!(fin);
            assert_eq!(op, OP_TEXT);
            assert_eq!(&payload[..], b"hello, world");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn an_oversized_header_is_refused_before_its_payload() {
        let bytes = client(true, OP_TEXT, &vec![b'x'; 2000]);
        // Only the header and mask have arrived.
        let mut buf = BytesMut::from(&bytes[..8]);
        assert_eq!(parse_frame(&mut buf, 1000), Err(WireError::TooLarge));
        // A 64-bit length far beyond any limit.
        let mut huge = vec![0x81, 0x80 | 127];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        let mut buf = BytesMut::from(&huge[..]);
        assert_eq!(parse_frame(&mut buf, 1000), Err(WireError::TooLarge));
    }

    #[test]
    fn broken_frames_are_protocol_errors() {
        let unmasked = [0x81u8, 0x02, b'h', b'i'];
        assert!(matches!(
            parse_all(&unmasked, 100),
            Err(WireError::Protocol(_))
        ));
        let mut reserved = client(true, OP_TEXT, b"hi");
        reserved[0] |= 0x40;
        assert!(matches!(
            parse_all(&reserved, 100),
            Err(WireError::Protocol(_))
        ));
        let unknown = client(true, 0x3, b"hi");
        assert!(matches!(
            parse_all(&unknown, 100),
            Err(WireError::Protocol(_))
        ));
        let fragmented_ping = client(false, OP_PING, b"hi");
        assert!(matches!(
            parse_all(&fragmented_ping, 100),
            Err(WireError::Protocol(_))
        ));
        let long_ping = client(true, OP_PING, &[0u8; 126]);
        assert!(matches!(
            parse_all(&long_ping, 1000),
            Err(WireError::Protocol(_))
        ));
    }

    /// A connected pair: our side as a `Wire`, the client as a raw stream.
    async fn pair(max: usize) -> (Wire, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        (Wire::new(Arc::new(server), BytesMut::new(), max), client)
    }

    #[tokio::test]
    async fn fragments_and_interleaved_control_frames_make_messages() {
        let (mut wire, mut client_io) = pair(64).await;
        let mut bytes = client(false, OP_TEXT, "안녕".as_bytes());
        bytes.extend(client(true, OP_PING, b"p"));
        bytes.extend(client(true, OP_CONTINUATION, "하세요".as_bytes()));
        bytes.extend(client(true, OP_BINARY, b"\x00\x01"));
        bytes.extend(client(true, OP_CLOSE, &1000u16.to_be_bytes()));
        client_io.write_all(&bytes).await.expect("write");
        assert_eq!(wire.recv().await, Ok(Incoming::Ping(b"p".to_vec())));
        assert_eq!(wire.recv().await, Ok(Incoming::Text("안녕하세요".into())));
        assert_eq!(wire.recv().await, Ok(Incoming::Binary));
        assert_eq!(wire.recv().await, Ok(Incoming::Close));
        // Between messages nothing is held.
        assert_eq!(wire.read.capacity(), 0);
    }

    #[tokio::test]
    async fn bad_text_and_oversized_messages_are_refused() {
        let (mut wire, mut client_io) = pair(8).await;
        client_io
            .write_all(&client(true, OP_TEXT, &[0xff, 0xfe]))
            .await
            .expect("write");
        assert_eq!(wire.recv().await, Err(WireError::NotUtf8));
        let (mut wire, mut client_io) = pair(8).await;
        let mut bytes = client(false, OP_TEXT, b"12345");
        bytes.extend(client(true, OP_CONTINUATION, b"6789"));
        client_io.write_all(&bytes).await.expect("write");
        assert_eq!(wire.recv().await, Err(WireError::TooLarge));
        let (mut wire, client_io) = pair(8).await;
        drop(client_io);
        assert_eq!(wire.recv().await, Err(WireError::Gone));
    }

    #[tokio::test]
    async fn the_close_follows_what_was_sent_and_ends_the_stream() {
        let (wire, mut client_io) = pair(64).await;
        let link = Link::new(Some(wire.io().clone()), 100);
        link.release();
        link.frame("one".into());
        link.frame("two".into());
        link.close(4008, &"가".repeat(100));
        // The client reads to the end and then closes its side, which ends
        // the server's linger.
        let io = wire.into_io();
        let ((), got) = tokio::join!(finish(&link, io, Duration::from_secs(5)), async move {
            let mut got = Vec::new();
            client_io.read_to_end(&mut got).await.expect("read");
            got
        });
        assert_eq!(
            &got[..10],
            &[0x81, 3, b'o', b'n', b'e', 0x81, 3, b't', b'w', b'o']
        );
        let close = &got[10..];
        assert_eq!(close[0], 0x88);
        let len = usize::from(close[1]);
        assert!(len <= 125);
        assert_eq!(&close[2..4], &4008u16.to_be_bytes());
        assert!(std::str::from_utf8(&close[4..2 + len]).is_ok());
    }
}
