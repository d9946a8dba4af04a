// The live connection (docs/PROTOCOL.md): one WebSocket per tab, resumed
// after every drop. Sends are kept in an outbox until their `ack`, and sent
// again with the same client_msg_id after a reconnect, so a message typed
// while offline goes out once the network is back, exactly once.
//
// Events (EventTarget, detail = the frame): message, ack, receipt, badge,
// typing, presence, joined, removed, message_updated, notification,
// notification_badge, send_error, status ({online}), ended.
//
// Unread badges are kept here exactly (docs/PROTOCOL.md, "Badges"): the
// server sends no `badge` frame for a delivered message, because the count
// follows from it (unread = last seq - my read pointer, and my own message
// moves my pointer). `badge` events come from both: the server's frames
// (reads on any device, joins, removals) and this derivation.

const SEEN_KEY = 'jangteo.seen';
const OUTBOX_KEY = 'jangteo.outbox';

export class Live extends EventTarget {
  constructor(userId) {
    super();
    this.userId = userId;
    this.ws = null;
    this.online = false;
    this.stopped = false;
    this.attempt = 0;
    this.timer = null;
    // Highest seq seen per room: what `resume` starts from.
    this.seen = new Map(Object.entries(load(`${SEEN_KEY}.${userId}`, {})).map(([k, v]) => [Number(k), v]));
    // Unacknowledged sends, in the order they were typed (survives a reload).
    this.outbox = new Map(load(`${OUTBOX_KEY}.${userId}`, []).map((f) => [f.client_msg_id, f]));
    // Per room: { last, read } (last seq known, my read pointer).
    this.counts = new Map();
    // Unread of rooms not in `counts` (the rest of the server's total).
    this.rest = 0;
    this.seeding = null;
  }

  /** Take the counts from `GET /api/me/rooms` (its items and total). */
  seed(rooms) {
    this.counts.clear();
    let listed = 0;
    for (const r of rooms.items) {
      this.counts.set(r.id, { last: r.last_seq, read: r.last_read_seq });
      listed += r.unread;
    }
    this.rest = Math.max(0, rooms.total_unread - listed);
    this.emit('badge', { type: 'badge', total: this.total() });
  }

  /** Fetch the room list again (a room we do not know yet spoke). */
  reseed() {
    if (this.seeding || !this.fetchRooms) return;
    this.seeding = this.fetchRooms()
      .then((rooms) => this.seed(rooms))
      .catch(() => {})
      .finally(() => { this.seeding = null; });
  }

  total() {
    let n = this.rest;
    for (const c of this.counts.values()) n += Math.max(0, c.last - c.read);
    return n;
  }

  /** A delivered message moves the room's count (no frame says so). */
  derive(f) {
    const c = this.counts.get(f.room);
    if (!c) { this.reseed(); return; }
    c.last = Math.max(c.last, f.seq);
    if (f.sender === this.userId) c.read = Math.max(c.read, f.seq);
    this.emit('badge', { type: 'badge', room: f.room, unread: Math.max(0, c.last - c.read), total: this.total() });
  }

  /** The server's count for a room (and its total) wins. */
  counted(f) {
    if (f.room == null) return;
    const c = this.counts.get(f.room);
    if (c) c.read = c.last - f.unread;
    else this.reseed();
    if (typeof f.total === 'number') {
      let listed = 0;
      for (const x of this.counts.values()) listed += Math.max(0, x.last - x.read);
      this.rest = Math.max(0, f.total - listed);
    }
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
    this.ws = null;
  }

  connect() {
    if (this.stopped) return;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}/ws`);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      // Resume first (before any live traffic), then the outbox in order.
      const rooms = Object.fromEntries(this.seen);
      if (Object.keys(rooms).length) ws.send(JSON.stringify({ type: 'resume', rooms }));
      else ws.send(JSON.stringify({ type: 'ping' }));
      for (const f of this.outbox.values()) ws.send(JSON.stringify(f));
      this.setOnline(true);
    };
    ws.onmessage = (ev) => {
      let f;
      try { f = JSON.parse(ev.data); } catch { return; }
      this.handle(f);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.setOnline(false);
      if (ev.code === 4001) {
        this.emit('ended', { code: ev.code });
        return;
      }
      this.retry();
    };
  }

  retry() {
    if (this.stopped) return;
    // Exponential backoff with jitter: 0.5 s, 1 s, 2 s ... at most 10 s.
    const base = Math.min(10000, 500 * 2 ** this.attempt);
    this.attempt += 1;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), base / 2 + Math.random() * (base / 2));
  }

  /** Try now (the browser says the network is back). */
  kick() {
    if (!this.ws && !this.stopped) {
      clearTimeout(this.timer);
      this.attempt = 0;
      this.connect();
    }
  }

  setOnline(online) {
    if (this.online === online) return;
    this.online = online;
    this.emit('status', { online });
  }

  handle(f) {
    switch (f.type) {
      case 'message': {
        const last = this.seen.get(f.room) || 0;
        if (f.seq <= last) return; // seen already (replay seam, two tabs)
        this.seen.set(f.room, f.seq);
        this.saveSeen();
        this.emit(f.type, f);
        this.derive(f);
        return;
      }
      case 'badge':
        this.counted(f);
        break;
      case 'ack':
        this.outbox.delete(f.client_msg_id);
        this.saveOutbox();
        break;
      case 'error':
        if (f.client_msg_id && this.outbox.has(f.client_msg_id)) {
          if (f.code === 'rate_limited' || f.code === 'internal') {
            // Nothing was stored: the same id again in a moment.
            const frame = this.outbox.get(f.client_msg_id);
            setTimeout(() => this.raw(frame), 1000);
            return;
          }
          this.outbox.delete(f.client_msg_id);
          this.saveOutbox();
          this.emit('send_error', f);
          return;
        }
        if (f.code === 'not_member' && f.room) this.forget(f.room);
        break;
      case 'removed':
        this.forget(f.room);
        this.counts.delete(f.room);
        break;
      default:
        break;
    }
    this.emit(f.type, f);
  }

  /** Start following a room from `seq` (history was shown up to it). */
  follow(room, seq) {
    if ((this.seen.get(room) || 0) < seq) {
      this.seen.set(room, seq);
      this.saveSeen();
    }
  }

  forget(room) {
    this.seen.delete(room);
    this.saveSeen();
    for (const [id, f] of this.outbox) if (f.room === room) this.outbox.delete(id);
    this.saveOutbox();
  }

  /** Queue a text message; returns its client_msg_id. */
  send(room, body) {
    const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
    const frame = { type: 'send', room, client_msg_id: id, body };
    this.outbox.set(id, frame);
    this.saveOutbox();
    this.raw(frame);
    return id;
  }

  pending(room) {
    return [...this.outbox.values()].filter((f) => f.room === room);
  }

  read(room, seq) { this.raw({ type: 'read', room, seq }); }
  typing(room) { this.raw({ type: 'typing', room }); }

  raw(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  saveSeen() { save(`${SEEN_KEY}.${this.userId}`, Object.fromEntries(this.seen)); }
  saveOutbox() { save(`${OUTBOX_KEY}.${this.userId}`, [...this.outbox.values()]); }
}

function load(key, fallback) {
  try { return JSON.parse(localStorage.getItem(key)) ?? fallback; } catch { return fallback; }
}
function save(key, value) {
  try { localStorage.setItem(key, JSON.stringify(value)); } catch { /* private mode: memory only */ }
}
