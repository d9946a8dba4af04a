// socket.io 4 peer for jangteo-load: rooms, an ack to the sender, a
// broadcast to the room (sender included). No persistence, no auth.
// Usage: node socketio.js [port]
const { createServer } = require("http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 9001);
const http = createServer();
const io = new Server(http, { transports: ["websocket"], perMessageDeflate: false });

io.on("connection", (socket) => {
  socket.on("join", (rooms) => {
    for (const room of rooms) socket.join(room);
    socket.emit("joined");
  });
  socket.on("send", (msg, ack) => {
    if (typeof ack === "function") ack({ cid: msg.cid });
    io.to(msg.room).emit("message", { room: msg.room, cid: msg.cid, body: msg.body });
  });
});

http.listen(port, "127.0.0.1", () => console.log(`socket.io peer listening on 127.0.0.1:${port}`));
