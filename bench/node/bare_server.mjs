// The bare Node.js socket.io 4.8 server of `make bench`: what users would pick instead of chatcore.
//
// Same fan-out as bench/bare_socketio_server.py, no storage, no auth check:
// handshake auth {token: <userId>} joins room user:<userId>; sendMessage
// {conversationId, receiverId, body, clientMsgId?} gets a per-conversation
// seq, an ack {ok: true, message} and a newMessage emit to both users' rooms.
//
// Usage: node bare_server.mjs <port>   (GET /healthz answers once listening)
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import { Server } from "socket.io";

const port = Number(process.argv[2] ?? 0);
const httpServer = createServer((req, res) => {
  // socket.io answers its own path; everything else is the health check.
  res.writeHead(req.url === "/healthz" ? 200 : 404, { "content-type": "text/plain" });
  res.end(req.url === "/healthz" ? "ok" : "not found");
});
const io = new Server(httpServer);
const seqs = new Map();

io.use((socket, next) => {
  const token = socket.handshake.auth?.token;
  if (typeof token !== "string" || !token) {
    const err = new Error("unauthorized");
    err.data = { code: "unauthorized", message: "missing token" };
    return next(err);
  }
  socket.data.userId = token;
  next();
});

io.on("connection", (socket) => {
  const userId = socket.data.userId;
  socket.join(`user:${userId}`);
  socket.on("sendMessage", (payload, ack) => {
    const { conversationId, receiverId, body, clientMsgId = null } = payload ?? {};
    if (typeof ack !== "function") return;
    if (typeof conversationId !== "string" || typeof body !== "string" || !body.trim()) {
      ack({ ok: false, error: { code: "validation_error", message: "bad payload" } });
      return;
    }
    const seq = (seqs.get(conversationId) ?? 0) + 1;
    seqs.set(conversationId, seq);
    const message = {
      id: randomUUID(),
      conversationId,
      seq,
      senderId: userId,
      body: body.trim(),
      clientMsgId,
      createdAt: new Date().toISOString(),
      editedAt: null,
      deletedAt: null,
    };
    io.to([`user:${userId}`, `user:${receiverId}`]).emit("newMessage", message);
    ack({ ok: true, message });
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`bare node socket.io listening on 127.0.0.1:${httpServer.address().port}`);
});
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    io.close();
    process.exit(0);
  });
}
