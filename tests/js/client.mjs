// A socket.io-client (the JavaScript one browsers use) driven over stdin/stdout,
// so the Python tests can check interop with the real client, not only python-socketio.
//
//   node client.mjs <url> [options-json]
//
// options-json is passed to io(url, options) (e.g. {"auth": {"token": "..."},
// "transports": ["websocket"], "extraHeaders": {...}}); reconnection is always off.
//
// stdout: one JSON object per line, in the order things happened:
//   {"type": "connect", "id": <socket id>}
//   {"type": "connect_error", "message": err.message, "data": err.data}
//   {"type": "event", "event": <name>, "args": [...]}        every server event
//   {"type": "ack", "ref": <ref>, "args": [...]}             an acknowledgement
//   {"type": "disconnect", "reason": <reason>}
// stdin: one JSON command per line:
//   {"op": "emit", "event": <name>, "args": [...], "ref": <any>}  emit with an ack callback
//   {"op": "close"}                                              disconnect and exit
// The process also ends after a connect_error, or when stdin closes. It never calls
// process.exit(): Node ends once the socket's last request (a polling client's
// "close" POST) is done, so the server learns about the disconnect at once.
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const [url, rawOptions] = process.argv.slice(2);
if (!url) {
  process.stderr.write("usage: node client.mjs <url> [options-json]\n");
  process.exit(2);
}
const options = { ...(rawOptions ? JSON.parse(rawOptions) : {}), reconnection: false };

const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

const socket = io(url, options);

socket.on("connect", () => out({ type: "connect", id: socket.id }));
const lines = createInterface({ input: process.stdin });
const finish = () => {
  socket.close();
  lines.close();
  process.stdin.destroy(); // an open stdin would keep Node running
};

socket.on("connect_error", (err) => {
  out({ type: "connect_error", message: err.message, data: err.data ?? null });
  finish();
});
socket.on("disconnect", (reason) => out({ type: "disconnect", reason }));
socket.onAny((event, ...args) => out({ type: "event", event, args }));

lines.on("line", (line) => {
  if (!line.trim()) return;
  const command = JSON.parse(line);
  if (command.op === "emit") {
    socket.emit(command.event, ...(command.args ?? []), (...args) =>
      out({ type: "ack", ref: command.ref ?? null, args }),
    );
  } else if (command.op === "close") {
    finish();
  } else {
    process.stderr.write(`unknown op: ${command.op}\n`);
  }
});
lines.on("close", finish);
