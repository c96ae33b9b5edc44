// One sender and one receiver over real socket.io-client sockets, sending one message at
// a time: the next send only once the previous one is acked and delivered to both
// sockets (the receiver's newMessage and the sender's echo), so the server is idle
// between sends and everything a send costs it is done before the next one.
//
// Usage: node send_cost.mjs <config.json> (driven by bench/send_cost.py)
// Stdout: {"event": "ready"} after the warm-up, then {"event": "done"} after the measured
// sends; each is answered with one line on stdin (the driver starts and stops counting).
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { connect } from "./connect.mjs";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

function say(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function fail(message) {
  say({ event: "error", message });
  process.exit(2);
}

setTimeout(() => fail(`send_cost exceeded ${config.maxSeconds}s`), config.maxSeconds * 1000).unref();

async function handshake(name) {
  say({ event: name });
  const { done } = await stdinLines.next();
  if (done) fail("stdin closed");
}

const timeoutMs = config.maxSeconds * 1000;
const [sender, receiver] = await Promise.all([
  connect(config.url, config.senderToken, timeoutMs),
  connect(config.url, config.receiverToken, timeoutMs),
]);
let waiting = null; // {body, left, resolve}: the send in flight and the deliveries it still needs
const arrived = (m) => {
  if (waiting && m?.body === waiting.body && --waiting.left === 0) waiting.resolve();
};
receiver.on("newMessage", arrived);
sender.on("newMessage", arrived);

let n = 0;
async function sendOne() {
  // No clientMsgId, as in make bench's delivery scenario.
  const body = `${config.body} ${n++}`;
  const delivered = new Promise((resolve) => {
    waiting = { body, left: 2, resolve };
  });
  const ack = await sender.timeout(config.maxSeconds * 1000).emitWithAck("sendMessage", {
    conversationId: config.conversationId,
    body,
  });
  if (!ack?.ok) fail(`send refused: ${JSON.stringify(ack)}`);
  await delivered;
}

for (let i = 0; i < config.warmup; i++) await sendOne();
await handshake("ready");
for (let i = 0; i < config.sends; i++) await sendOne();
await handshake("done");
sender.close();
receiver.close();
process.exit(0);
