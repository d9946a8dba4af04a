//! A connection's output: what rooms and users send one WebSocket, written
//! into its socket by whoever sends it.
//!
//! **Why.** Until this design, a delivery was queued for the connection's
//! session task, which woke up, took it off the queue and wrote it: a task
//! wake-up, a scheduler pass, a `select!` poll and a second lock per
//! delivery, which a profile of 50,000 deliveries/s put at a good part of
//! the server's CPU (docs/BENCHMARKS.md, issue #34). The fastest servers do
//! it the other way round (uWebSockets under Bun writes every subscriber's
//! socket from the publish itself, corked, with the frame built once):
//!
//! - **Written where it is sent.** The sender (a room's fan-out, a user's
//!   badge flush, the session itself) takes the link's lock, applies the
//!   connection's ordering rules, appends the WebSocket frame (the payload
//!   is the shared, once-encoded [`Frame`]) and writes it to the socket
//!   with a non-blocking `try_write`: no task wakes up for a delivery.
//! - **Corked.** Inside [`corked`] (a room's fan-out pass), appends only
//!   collect; each link touched writes once at the end of the pass, so a
//!   batch of messages to one member leaves in one system call.
//! - **The queue is only for what does not fit.** When the kernel refuses
//!   (its send buffer is full), the bytes stay in the link, the link is
//!   marked blocked, and the session task is woken to wait until the
//!   socket is writable and write the rest; senders meanwhile only append.
//!   Bounded: more than `capacity` frames waiting is a slow consumer (the
//!   connection closes with 4008 and the client resumes); the sender never
//!   waits.
//!
//! The connection's ordering rules live here too, under the same lock, so
//! that every path that writes sees them: live messages are held at the
//! start until the client's first frame (or the sync window); a room being
//! replayed from the store buffers its live messages until the replay is
//! done; per room a seq is never sent twice nor after a higher one (see
//! `http::ws` for the protocol side).
//!
//! An idle connection holds no buffer: the write buffer comes from this
//! thread's spares when a frame is appended and goes back once the kernel
//! has taken everything.

use std::cell::RefCell;
use std::io;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::BufMut;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::{IdMap, Outbound};
use crate::error::Code;
use crate::protocol::frames::{self, Frame};

/// WebSocket opcodes of the frames a server sends (RFC 6455, 5.2).
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;
/// Longest payload of a control frame (RFC 6455, 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

const OVERFLOWED: u8 = 1;
const ENDED: u8 = 2;

/// A raised signal: either ends the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// More than the queue's capacity waits: the client cannot keep up.
    Overflowed,
    /// The connection's login ended.
    Ended,
}

/// What a session's own attempt to write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Everything is with the kernel.
    Done,
    /// The kernel's buffer is full: wait until the socket is writable.
    Blocked,
    /// The socket failed or is gone.
    Gone,
}

/// Append one unmasked (server) frame to `buf`.
pub fn put_frame(buf: &mut Vec<u8>, op: u8, payload: &[u8]) {
    let len = payload.len();
    buf.reserve(len + 10);
    buf.put_u8(0x80 | op);
    if len < 126 {
        buf.put_u8(len as u8);
    } else if len <= usize::from(u16::MAX) {
        buf.put_u8(126);
        buf.put_u16(len as u16);
    } else {
        buf.put_u8(127);
        buf.put_u64(len as u64);
    }
    buf.put_slice(payload);
}

/// Length of the server frame that starts at `buf[0]`.
fn frame_len(buf: &[u8]) -> usize {
    match buf.get(1).map(|b| b & 0x7f) {
        Some(126) => {
            4 + buf
                .get(2..4)
                .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        }
        Some(127) => {
            10 + buf.get(2..10).map_or(0, |b| {
                let mut n = [0u8; 8];
                n.copy_from_slice(b);
                usize::try_from(u64::from_be_bytes(n)).unwrap_or(usize::MAX / 2)
            })
        }
        Some(n) => 2 + usize::from(n),
        None => buf.len(),
    }
}

/// Spare write buffers, per thread. A link takes one when a frame is
/// appended and gives it back when the kernel has taken everything, so at
/// 100,000 frames/s the writes reuse a few buffers instead of allocating
/// and freeing one each, while an idle connection holds none. Bounded in
/// count and in the size of what is kept: at most `KEEP_COUNT x KEEP_BYTES`
/// (2 MiB) per thread.
mod spare {
    use std::cell::RefCell;

    const KEEP_COUNT: usize = 512;
    const KEEP_BYTES: usize = 4 * 1024;

    thread_local! {
        static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn take() -> Vec<u8> {
        SPARE.with(|s| s.borrow_mut().pop()).unwrap_or_default()
    }

    pub(super) fn give_back(mut buf: Vec<u8>) {
        if buf.capacity() == 0 || buf.capacity() > KEEP_BYTES {
            return;
        }
        buf.clear();
        SPARE.with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < KEEP_COUNT {
                s.push(buf);
            }
        });
    }

    #[cfg(test)]
    pub(super) fn count() -> usize {
        SPARE.with(|s| s.borrow().len())
    }
}

/// A thread's cork: the links appended to during the current one (`None`:
/// not corked), and a spare list to reuse for the next one.
struct Cork {
    open: Option<Vec<Arc<Link>>>,
    spare: Vec<Arc<Link>>,
}

thread_local! {
    static CORK: RefCell<Cork> = const {
        RefCell::new(Cork {
            open: None,
            spare: Vec::new(),
        })
    };
}

/// Run `f` with this thread's writes corked: frames appended to links
/// during `f` are written when it returns, one write per link. Nested
/// calls join the outer cork.
pub fn corked<R>(f: impl FnOnce() -> R) -> R {
    let outer = CORK.with(|c| {
        let mut c = c.borrow_mut();
        if c.open.is_some() {
            true
        } else {
            let list = std::mem::take(&mut c.spare);
            c.open = Some(list);
            false
        }
    });
    // Uncorked when `f` returns or unwinds: a cork left open would keep
    // this thread's later writes from ever leaving.
    let _uncork = (!outer).then_some(Uncork);
    f()
}

/// Ends the thread's cork when dropped.
struct Uncork;

impl Drop for Uncork {
    fn drop(&mut self) {
        let mut links = CORK
            .with(|c| c.borrow_mut().open.take())
            .unwrap_or_default();
        for link in links.drain(..) {
            link.uncork();
        }
        CORK.with(|c| c.borrow_mut().spare = links);
    }
}

/// What a connection has sent of one room.
#[derive(Default)]
struct Sent {
    /// Range of seqs sent live (first, last).
    live: Option<(i64, i64)>,
    /// Highest seq sent by any path.
    through: i64,
}

/// Rooms kept inline in a link before the map is used.
const INLINE_ROOMS: usize = 3;

/// What a connection has sent per room: the first few rooms inline in the
/// link, the rest in a map. Most connections receive from one or two busy
/// rooms at a time, and a delivery then touches no memory but the link's
/// own; a map lookup was two more cache misses per delivery (its control
/// bytes and its bucket).
#[derive(Default)]
struct SentRooms {
    inline: [Option<(i64, Sent)>; INLINE_ROOMS],
    more: IdMap<Sent>,
}

impl SentRooms {
    fn entry(&mut self, room: i64) -> &mut Sent {
        let slot = self
            .inline
            .iter()
            .position(|e| e.as_ref().is_some_and(|(r, _)| *r == room))
            .or_else(|| {
                if self.more.contains_key(&room) {
                    None
                } else {
                    self.inline.iter().position(Option::is_none)
                }
            });
        match slot.and_then(|i| self.inline.get_mut(i)) {
            Some(entry) => &mut entry.get_or_insert_with(|| (room, Sent::default())).1,
            None => self.more.entry(room).or_default(),
        }
    }
}

struct State {
    /// The socket, until the session takes it back to close it.
    io: Option<Arc<TcpStream>>,
    /// Frames not yet taken by the kernel, from `written` on; always starts
    /// at a frame boundary.
    out: Vec<u8>,
    written: usize,
    /// Frames in `out` not yet wholly written.
    frames: usize,
    /// The kernel refused the last write: the session waits for the socket
    /// and writes; senders only append.
    blocked: bool,
    /// In this thread's cork list.
    corked: bool,
    /// Live messages are held until the client's first frame.
    holding: bool,
    held: Vec<Outbound>,
    rooms: SentRooms,
    /// Rooms replaying from the store, with live messages buffered.
    replaying: IdMap<Vec<(i64, Frame)>>,
    /// Nothing more is written (overflowed, or the session ended).
    closed: bool,
}

/// One connection's output, shared by its senders and its session.
pub struct Link {
    state: Mutex<State>,
    /// Frames that may wait (in `out`, held, or buffered per replaying
    /// room) before the connection counts as a slow consumer.
    capacity: usize,
    /// Wakes the session: a signal was raised, or the link is blocked.
    wake: Notify,
    signals: AtomicU8,
}

impl Link {
    /// A link writing to `io` (`None`: frames only collect, for tests).
    pub fn new(io: Option<Arc<TcpStream>>, capacity: usize) -> Arc<Link> {
        Arc::new(Link {
            state: Mutex::new(State {
                io,
                out: Vec::new(),
                written: 0,
                frames: 0,
                blocked: false,
                corked: false,
                holding: true,
                held: Vec::new(),
                rooms: SentRooms::default(),
                replaying: IdMap::default(),
                closed: false,
            }),
            capacity: capacity.max(1),
            wake: Notify::new(),
            signals: AtomicU8::new(0),
        })
    }

    // Every step under this lock leaves the state whole, so a poisoned
    // lock is used as is.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Deliver `out` following the connection's ordering rules, and write
    /// it (at once, or at the end of this thread's cork).
    pub fn push(self: &Arc<Self>, out: Outbound) {
        let mut s = self.lock();
        if s.closed {
            return;
        }
        if s.holding {
            if s.held.len() >= self.capacity {
                self.overflow(&mut s);
            } else {
                s.held.push(out);
            }
            return;
        }
        self.route(&mut s, out);
        self.written_later(s);
    }

    /// A room's message, by reference: copied into the socket's buffer,
    /// and cloned only when it must wait (held or replaying).
    pub fn push_message(self: &Arc<Self>, room: i64, seq: i64, frame: &Frame) {
        let mut s = self.lock();
        if s.closed {
            return;
        }
        if s.holding || (!s.replaying.is_empty() && s.replaying.contains_key(&room)) {
            drop(s);
            self.push(Outbound::Message {
                room,
                seq,
                frame: frame.clone(),
            });
            return;
        }
        self.send_live(&mut s, room, seq, frame);
        self.written_later(s);
    }

    /// A frame outside any room's order (acks, errors, events).
    pub fn frame(self: &Arc<Self>, frame: Frame) {
        self.push(Outbound::Frame(frame));
    }

    /// One of the session's own text frames (answers to the client):
    /// ahead of live messages still held at the start.
    pub fn reply(self: &Arc<Self>, payload: &[u8]) {
        let mut s = self.lock();
        self.append(&mut s, OP_TEXT, payload);
        self.written_later(s);
    }

    /// A control frame (ping, pong) from the session itself.
    pub fn control(self: &Arc<Self>, op: u8, payload: &[u8]) {
        let mut s = self.lock();
        let payload = payload
            .get(..payload.len().min(MAX_CONTROL_PAYLOAD))
            .unwrap_or_default();
        self.append(&mut s, op, payload);
        self.written_later(s);
    }

    /// Queue the close frame: after the frame being written (if one is
    /// half-way out), instead of anything else still waiting, which a
    /// client that is being closed does not need.
    pub fn close(self: &Arc<Self>, code: u16, reason: &str) {
        let mut s = self.lock();
        s.closed = true;
        let keep = boundary_after(&s.out, s.written);
        s.out.truncate(keep);
        s.frames = usize::from(keep > s.written);
        let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let mut payload = Vec::with_capacity(2 + end);
        payload.extend_from_slice(&code.to_be_bytes());
        payload.extend_from_slice(reason.as_bytes().get(..end).unwrap_or_default());
        append_raw(&mut s, OP_CLOSE, &payload);
    }

    /// End the hold at the start: what was held is delivered now, in order.
    pub fn release(self: &Arc<Self>) {
        let mut s = self.lock();
        if !s.holding {
            return;
        }
        s.holding = false;
        for out in std::mem::take(&mut s.held) {
            self.route(&mut s, out);
        }
        self.written_later(s);
    }

    /// Start replaying `room` (its live messages wait); false if it is
    /// replaying already.
    pub fn begin_replay(&self, room: i64) -> bool {
        let mut s = self.lock();
        if s.replaying.contains_key(&room) {
            return false;
        }
        s.replaying.insert(room, Vec::new());
        true
    }

    /// A page of a room's replay: what was not sent live goes out.
    pub fn replay_page(self: &Arc<Self>, room: i64, page: Vec<(i64, Frame)>) {
        let mut s = self.lock();
        if s.closed {
            return;
        }
        for (seq, frame) in page {
            let sent = s.rooms.entry(room);
            if sent
                .live
                .is_some_and(|(first, last)| seq >= first && seq <= last)
            {
                continue;
            }
            sent.through = sent.through.max(seq);
            // Not held to the queue's bound: the session waits for the
            // socket before it takes the next page, so a replay is paced
            // by the client and cannot overflow the queue by itself.
            append_raw(&mut s, OP_TEXT, frame.as_bytes());
        }
        self.written_later(s);
    }

    /// A room's replay ended: `resumed` (through the highest seq sent),
    /// then the live messages that waited.
    pub fn replay_done(self: &Arc<Self>, room: i64, through: i64) {
        let mut s = self.lock();
        let through = {
            let sent = s.rooms.entry(room);
            sent.through = sent.through.max(through);
            sent.through
        };
        let buffered = s.replaying.remove(&room).unwrap_or_default();
        if s.closed {
            return;
        }
        self.append(&mut s, OP_TEXT, frames::resumed(room, through).as_bytes());
        for (seq, frame) in buffered {
            self.route(&mut s, Outbound::Message { room, seq, frame });
        }
        self.written_later(s);
    }

    /// A room's replay failed: the error, then the live messages that
    /// waited.
    pub fn replay_failed(self: &Arc<Self>, room: i64, code: Code, message: &str) {
        let mut s = self.lock();
        let buffered = s.replaying.remove(&room).unwrap_or_default();
        if s.closed {
            return;
        }
        let error = frames::error(code, message, Some(room), None);
        self.append(&mut s, OP_TEXT, error.as_bytes());
        for (seq, frame) in buffered {
            self.route(&mut s, Outbound::Message { room, seq, frame });
        }
        self.written_later(s);
    }

    /// Where an outbound item goes once the hold is over.
    fn route(&self, s: &mut State, out: Outbound) {
        match out {
            Outbound::Frame(frame) => self.append(s, OP_TEXT, frame.as_bytes()),
            Outbound::Message { room, seq, frame } => {
                if let Some(buffer) = s.replaying.get_mut(&room) {
                    // Live traffic waiting for a replay is bounded like
                    // the rest.
                    if buffer.len() >= self.capacity {
                        self.overflow(s);
                    } else {
                        buffer.push((seq, frame));
                    }
                    return;
                }
                self.send_live(s, room, seq, &frame);
            }
        }
    }

    /// A room's message that need not wait: written unless sent already.
    fn send_live(&self, s: &mut State, room: i64, seq: i64, frame: &Frame) {
        let sent = s.rooms.entry(room);
        if seq <= sent.through {
            return;
        }
        sent.through = seq;
        sent.live = Some(match sent.live {
            Some((first, _)) => (first, seq),
            None => (seq, seq),
        });
        self.append(s, OP_TEXT, frame.as_bytes());
    }

    fn append(&self, s: &mut State, op: u8, payload: &[u8]) {
        if s.closed {
            return;
        }
        if s.frames >= self.capacity {
            self.overflow(s);
            return;
        }
        append_raw(s, op, payload);
    }

    /// The queue is full: stop writing anything but the frame half-way
    /// out, and tell the session (it closes with 4008).
    fn overflow(&self, s: &mut State) {
        s.closed = true;
        let keep = boundary_after(&s.out, s.written);
        s.out.truncate(keep);
        s.held = Vec::new();
        s.replaying.clear();
        self.raise(OVERFLOWED);
    }

    /// After an append: write now, or at the end of this thread's cork,
    /// or leave it to the session when the socket is blocked.
    fn written_later(self: &Arc<Self>, mut s: MutexGuard<'_, State>) {
        if s.blocked || s.written == s.out.len() {
            return;
        }
        if !s.corked {
            let corking = CORK.with(|c| match &mut c.borrow_mut().open {
                Some(list) => {
                    list.push(self.clone());
                    true
                }
                None => false,
            });
            if corking {
                s.corked = true;
                return;
            }
        } else {
            return;
        }
        self.write_now(&mut s);
    }

    /// This thread's cork ends: write what collected.
    fn uncork(&self) {
        let mut s = self.lock();
        s.corked = false;
        if !s.blocked {
            self.write_now(&mut s);
        }
    }

    /// Write what waits without waiting; a refusal marks the link blocked
    /// and wakes the session to wait for the socket.
    fn write_now(&self, s: &mut State) {
        if try_write(s, Path::Direct) == Flushed::Blocked {
            s.blocked = true;
            self.wake.notify_one();
        }
    }

    /// The session's write: everything it can without waiting.
    pub fn flush(&self) -> Flushed {
        let mut s = self.lock();
        let result = try_write(&mut s, Path::Tokio);
        s.blocked = result == Flushed::Blocked;
        result
    }

    /// Bytes waiting for the socket (tests).
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        let s = self.lock();
        s.out.len() - s.written
    }

    /// Whether the session must wait for the socket and write.
    pub fn blocked(&self) -> bool {
        self.lock().blocked
    }

    /// The socket, for the session's final close: taken out of the link,
    /// after which nothing more is written.
    pub fn take_io(&self) -> Option<Arc<TcpStream>> {
        let mut s = self.lock();
        s.closed = true;
        s.io.take()
    }

    fn raise(&self, signal: u8) {
        if self.signals.fetch_or(signal, Ordering::AcqRel) & signal == 0 {
            self.wake.notify_one();
        }
    }

    /// The login of this connection ended: close it.
    pub fn end(&self) {
        self.raise(ENDED);
    }

    /// A raised signal, if any: the login's end first, then an overflow.
    pub fn signal(&self) -> Option<Signal> {
        let raised = self.signals.load(Ordering::Acquire);
        if raised & ENDED != 0 {
            Some(Signal::Ended)
        } else if raised & OVERFLOWED != 0 {
            Some(Signal::Overflowed)
        } else {
            None
        }
    }

    /// Resolves when the session has something to do: a signal was raised
    /// or the link is blocked (spurious wake-ups are possible).
    pub async fn attention(&self) {
        self.wake.notified().await;
    }

    /// Resolves once the queue overflowed.
    pub async fn overflowed(&self) {
        while self.signals.load(Ordering::Acquire) & OVERFLOWED == 0 {
            self.wake.notified().await;
        }
    }

    /// The frames waiting, as text (tests: a link without a socket).
    #[cfg(test)]
    pub fn texts(&self) -> Vec<String> {
        let s = self.lock();
        let mut out = Vec::new();
        let mut at = s.written;
        while at < s.out.len() {
            let buf = s.out.get(at..).unwrap_or_default();
            let len = frame_len(buf);
            let header = len - payload_len(buf);
            out.push(
                String::from_utf8_lossy(buf.get(header..len).unwrap_or_default()).into_owned(),
            );
            at += len;
        }
        out
    }
}

#[cfg(test)]
fn payload_len(buf: &[u8]) -> usize {
    let len = frame_len(buf);
    match buf.get(1).map(|b| b & 0x7f) {
        Some(126) => len - 4,
        Some(127) => len - 10,
        _ => len - 2,
    }
}

fn append_raw(s: &mut State, op: u8, payload: &[u8]) {
    if s.out.capacity() == 0 {
        s.out = spare::take();
    }
    put_frame(&mut s.out, op, payload);
    s.frames += 1;
}

/// The end of the frame that holds `written` (where `out` may be cut
/// without breaking a frame that is partly sent); `written` itself when it
/// is at a boundary.
fn boundary_after(out: &[u8], written: usize) -> usize {
    let mut at = 0;
    while at < written && at < out.len() {
        at += frame_len(out.get(at..).unwrap_or_default());
    }
    at.min(out.len())
}

/// Frames in `out` that end after `written`.
fn frames_left(out: &[u8], written: usize) -> usize {
    let mut at = 0;
    let mut n = 0;
    while at < out.len() {
        at += frame_len(out.get(at..).unwrap_or_default());
        if at > written {
            n += 1;
        }
    }
    n
}

/// How a write reaches the socket.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    /// A `send(2)` on the socket's descriptor, for the senders (a room's
    /// fan-out, a badge flush). tokio's `try_write` first checks the
    /// socket's readiness in its own registration, a separate allocation
    /// per socket: a cache miss per delivery that a profile put at a fifth
    /// of the fan-out's user time (docs/BENCHMARKS.md, fourth stop). The
    /// kernel's answer is what matters; tokio's cached readiness is left
    /// as it is, so after a refusal the session's wait for the socket may
    /// wake once at once, find it still full through the tokio path
    /// (which clears the readiness) and wait again.
    Direct,
    /// tokio's `try_write`, for the session, which waits on the socket's
    /// readiness and so must keep it current.
    Tokio,
}

/// Write what waits in `s` without blocking.
fn try_write(s: &mut State, path: Path) -> Flushed {
    // Borrowed field by field (no clone of the socket's `Arc` per write).
    let State {
        io,
        out,
        written,
        frames,
        closed,
        ..
    } = s;
    let Some(io) = io.as_deref() else {
        // No socket (tests) or taken for closing: it stays.
        return if *written == out.len() {
            Flushed::Done
        } else {
            Flushed::Blocked
        };
    };
    while *written < out.len() {
        let rest = out.get(*written..).unwrap_or_default();
        let sent = match path {
            Path::Direct => socket2::SockRef::from(io).send(rest),
            Path::Tokio => io.try_write(rest),
        };
        match sent {
            Ok(0) => return Flushed::Gone,
            Ok(n) => *written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                *frames = frames_left(out, *written);
                return Flushed::Blocked;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                *closed = true;
                return Flushed::Gone;
            }
        }
    }
    s.written = 0;
    s.frames = 0;
    spare::give_back(std::mem::take(&mut s.out));
    Flushed::Done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_rooms_keep_each_room_apart_inline_and_in_the_map() {
        let mut rooms = SentRooms::default();
        for room in 1..=8 {
            rooms.entry(room).through = room * 10;
        }
        assert_eq!(rooms.more.len(), 8 - INLINE_ROOMS);
        for room in (1..=8).rev() {
            assert_eq!(rooms.entry(room).through, room * 10);
        }
        rooms.entry(2).through = 99;
        rooms.entry(7).through = 77;
        assert_eq!((rooms.entry(2).through, rooms.entry(7).through), (99, 77));
        assert_eq!(rooms.more.len(), 8 - INLINE_ROOMS);
    }

    fn message(link: &Arc<Link>, room: i64, seq: i64) {
        link.push(Outbound::Message {
            room,
            seq,
            frame: Frame::from(format!("{room}:{seq}")),
        });
    }

    #[test]
    fn server_frames_are_unmasked_with_the_shortest_length() {
        let mut buf = Vec::new();
        put_frame(&mut buf, OP_TEXT, b"abc");
        assert_eq!(&buf[..], &[0x81, 3, b'a', b'b', b'c']);
        assert_eq!(frame_len(&buf), 5);
        let mut buf = Vec::new();
        put_frame(&mut buf, OP_TEXT, &[0u8; 300]);
        assert_eq!(&buf[..4], &[0x81, 126, 1, 44]);
        assert_eq!(frame_len(&buf), 304);
        let mut buf = Vec::new();
        put_frame(&mut buf, OP_BINARY, &vec![0u8; 70_000]);
        assert_eq!(buf[1], 127);
        assert_eq!(buf.len(), 10 + 70_000);
        assert_eq!(frame_len(&buf), 70_010);
    }

    #[test]
    fn held_until_released_then_in_order_without_repeats() {
        let link = Link::new(None, 100);
        message(&link, 1, 1);
        link.frame(Frame::from("event"));
        assert!(link.texts().is_empty(), "held at the start");
        link.release();
        message(&link, 1, 2);
        message(&link, 1, 2);
        message(&link, 1, 1);
        message(&link, 2, 7);
        assert_eq!(link.texts(), ["1:1", "event", "1:2", "2:7"]);
    }

    #[test]
    fn a_replay_fills_in_and_live_messages_wait_for_it() {
        let link = Link::new(None, 100);
        link.release();
        message(&link, 1, 5);
        assert!(link.begin_replay(1));
        assert!(!link.begin_replay(1));
        message(&link, 1, 8);
        link.replay_page(
            1,
            (3..=7)
                .map(|s| (s, Frame::from(format!("1:{s}"))))
                .collect(),
        );
        link.replay_done(1, 7);
        message(&link, 1, 9);
        assert_eq!(
            link.texts(),
            [
                "1:5",
                "1:3",
                "1:4",
                "1:6",
                "1:7",
                r#"{"type":"resumed","room":1,"through":7}"#,
                "1:8",
                "1:9"
            ]
        );
    }

    #[tokio::test]
    async fn too_much_waiting_overflows_and_the_close_goes_first() {
        let link = Link::new(None, 3);
        link.release();
        for seq in 1..=3 {
            message(&link, 1, seq);
        }
        assert!(link.signal().is_none());
        message(&link, 1, 4);
        tokio::time::timeout(std::time::Duration::from_secs(1), link.overflowed())
            .await
            .expect("overflowed");
        assert_eq!(link.signal(), Some(Signal::Overflowed));
        message(&link, 1, 5);
        link.close(4008, "slow");
        // Nothing was half-way out: only the close frame waits.
        let s = link.lock();
        assert_eq!(s.out[0], 0x80 | OP_CLOSE);
        assert_eq!(frame_len(&s.out), s.out.len());
    }

    #[test]
    fn ending_the_login_is_a_signal() {
        let link = Link::new(None, 3);
        link.end();
        link.end();
        assert_eq!(link.signal(), Some(Signal::Ended));
    }

    /// A connected pair: our side's socket, the client's.
    async fn pair() -> (Arc<TcpStream>, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = TcpStream::connect(addr).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        (Arc::new(server), client)
    }

    #[tokio::test]
    async fn corked_frames_leave_in_one_write_and_the_buffer_goes_back() {
        use tokio::io::AsyncReadExt as _;
        let (io, mut client) = pair().await;
        let link = Link::new(Some(io), 100);
        link.release();
        let spares = spare::count();
        corked(|| {
            message(&link, 1, 1);
            message(&link, 1, 2);
            assert_eq!(link.pending(), 10, "collected while corked");
        });
        assert_eq!(link.pending(), 0, "written when the cork ended");
        assert_eq!(spare::count(), spares + 1, "the buffer went back");
        let mut got = [0u8; 8];
        client.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, &[0x81, 3, b'1', b':', b'1', 0x81, 3, b'1']);
    }

    #[tokio::test]
    async fn a_full_socket_blocks_the_link_and_the_session_finishes_the_write() {
        use tokio::io::AsyncReadExt as _;
        let (io, mut client) = pair().await;
        let link = Link::new(Some(io.clone()), 100_000);
        link.release();
        let big = Frame::from("x".repeat(60_000));
        let mut n = 0;
        while !link.blocked() {
            link.frame(big.clone());
            n += 1;
            assert!(n < 1000, "the kernel buffer never filled");
        }
        // The session's part: wait for the socket, write, until done.
        let session = tokio::spawn(async move {
            loop {
                match link.flush() {
                    Flushed::Done => return,
                    Flushed::Blocked => io.writable().await.expect("writable"),
                    Flushed::Gone => panic!("gone"),
                }
            }
        });
        let mut got = vec![0u8; n * (60_000 + 4)];
        client.read_exact(&mut got).await.expect("read all");
        session.await.expect("session");
        assert!(got.chunks(60_004).all(|f| f[0] == 0x81 && f[1] == 126));
    }
}
