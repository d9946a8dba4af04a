// Bun's built-in WebSocket pub/sub (uWebSockets inside): the raw fan-out
// upper bound. Same JSON protocol as the Rust broadcast peer. No
// persistence, no auth. Usage: bun bun.ts [port]
const port = Number(process.argv[2] || 9002);

const server = Bun.serve({
  hostname: "127.0.0.1",
  port,
  fetch(req, server) {
    if (server.upgrade(req)) return;
    return new Response("websocket only", { status: 400 });
  },
  websocket: {
    perMessageDeflate: false,
    message(ws, data) {
      let msg;
      try {
        msg = JSON.parse(String(data));
      } catch {
        return;
      }
      if (msg.type === "join") {
        for (const room of msg.rooms) ws.subscribe(room);
        ws.send(JSON.stringify({ type: "joined" }));
      } else if (msg.type === "send") {
        ws.send(JSON.stringify({ type: "ack", cid: msg.cid }));
        server.publish(msg.room, JSON.stringify({ type: "message", room: msg.room, cid: msg.cid, body: msg.body }));
      }
    },
  },
});
console.log(`bun peer listening on 127.0.0.1:${server.port}`);
