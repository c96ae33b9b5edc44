// One socket.io-client socket over WebSocket, as the benchmark's clients open them:
// a new connection each time, no automatic reconnection.
import { io } from "socket.io-client";

export function connect(url, token, timeoutMs = 15000) {
  return new Promise((resolve, reject) => {
    const socket = io(url, {
      transports: ["websocket"],
      auth: { token },
      forceNew: true,
      reconnection: false,
      timeout: timeoutMs,
    });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => {
      socket.close();
      reject(new Error(`${err.message} ${JSON.stringify(err.data ?? null)}`));
    });
  });
}
