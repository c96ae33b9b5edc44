// The load generator of `make bench`: real socket.io-client sockets (and keep-alive HTTP),
// identical for every server measured.
//
// Usage: node loadgen.mjs <config.json>
// The config's "mode" is "delivery", "idle" or "http" (see the functions below).
// Stdout carries JSON lines only: {"event": "mark", "name"} at phase boundaries (the
// orchestrator samples CPU time there) and {"event": "wait", ...} when it must act,
// both answered with one line on stdin before the generator goes on, and a final
// {"event": "result", ...}. Every phase reports the generator's event loop delay, so a
// saturated generator shows up in the results.
import { readFileSync } from "node:fs";
import http from "node:http";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { connect as connectTo } from "./connect.mjs";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

// A hard stop, whatever happens: the orchestrator kills us too, this is the backstop.
setTimeout(() => fail(`loadgen exceeded ${config.maxSeconds}s`), config.maxSeconds * 1000).unref();

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function fail(message) {
  emit({ event: "error", message });
  process.exit(2);
}

const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function waitFor(name, data) {
  emit({ event: "wait", name, ...data });
  const { done } = await stdinLines.next();
  if (done) fail("stdin closed");
}

// A phase boundary: the orchestrator samples CPU time, then answers. Run by hand
// (no "orchestrated" in the config), the generator does not wait for an answer.
async function mark(name) {
  emit({ event: "mark", name });
  if (!config.orchestrated) return;
  const { done } = await stdinLines.next();
  if (done) fail("stdin closed");
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function percentiles(values) {
  const sorted = Float64Array.from(values).sort();
  const at = (q) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] : null);
  const round = (v) => (v === null ? null : Math.round(v * 100) / 100);
  return { p50: round(at(0.5)), p95: round(at(0.95)), p99: round(at(0.99)), max: round(at(1)) };
}

// The generator's own health over a phase: its event loop delay p99 (its CPU% is read
// from /proc by the orchestrator).
function selfMeter() {
  loopDelay.reset();
  return () => ({ genLoopDelayP99Ms: Math.round(loopDelay.percentile(99) / 1e4) / 100 });
}

const connect = (token, timeoutMs) => connectTo(config.url, token, timeoutMs);

async function connectMany(tokens, count, concurrency) {
  const sockets = [];
  const errors = {};
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const token = tokens[next++ % tokens.length];
      try {
        sockets.push(await connect(token));
      } catch (err) {
        errors[err.message] = (errors[err.message] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { sockets, errors };
}

// ---- delivery: P sender -> receiver pairs, closed loop then open loop at a fixed rate ----

async function delivery() {
  const { pairs: pairConfigs, bodyBytes, ackTimeoutMs, drainMs } = config;
  const pending = new Map(); // message key -> record
  let disconnects = 0;
  const pairs = [];
  for (const [idx, p] of pairConfigs.entries()) {
    const [sender, receiver] = await Promise.all([connect(p.senderToken), connect(p.receiverToken)]);
    const pair = { idx, n: 0, sender, receiver, conversationId: p.conversationId, lastSeq: 0 };
    pair.payload = { conversationId: p.conversationId };
    if (config.includeReceiverId) pair.payload.receiverId = p.receiverId;
    receiver.on("newMessage", (m) => onDelivery(pair, m));
    sender.on("newMessage", (m) => {
      const rec = pending.get(keyOf(m));
      if (rec) rec.phase.echoes++;
    });
    for (const s of [sender, receiver]) s.on("disconnect", () => disconnects++);
    pairs.push(pair);
  }
  const padding = "x".repeat(bodyBytes);
  const keyOf = (m) => {
    const body = typeof m?.body === "string" ? m.body : "";
    return body.slice(0, body.indexOf("|"));
  };

  function onDelivery(pair, m) {
    const now = performance.now();
    const rec = pending.get(keyOf(m));
    if (!rec) return;
    const phase = rec.phase;
    if (m.conversationId !== pair.conversationId) phase.misrouted++;
    if (m.seq <= pair.lastSeq) phase.outOfOrder++;
    pair.lastSeq = Math.max(pair.lastSeq, m.seq);
    if (rec.deliveredAt !== undefined) {
      phase.duplicates++;
      return;
    }
    rec.deliveredAt = now;
    phase.delivered++;
    phase.deliveryMs.push(now - rec.t0);
  }

  function send(pair, phase) {
    const key = `${phase.idx}.${pair.idx}.${pair.n++}`;
    const body = `${key}|${padding}`.slice(0, Math.max(bodyBytes, key.length + 1));
    const rec = { t0: performance.now(), phase, ackedAt: undefined, deliveredAt: undefined };
    pending.set(key, rec);
    phase.keys.push(key);
    phase.sent++;
    return new Promise((resolve) => {
      pair.sender.timeout(ackTimeoutMs).emit("sendMessage", { ...pair.payload, body }, (err, resp) => {
        const now = performance.now();
        if (err) phase.ackTimeouts++;
        else if (!resp?.ok) {
          phase.ackErrors++;
          phase.lastError = resp?.error ?? resp;
        } else {
          rec.ackedAt = now;
          phase.acked++;
          phase.ackMs.push(now - rec.t0);
        }
        resolve();
      });
    });
  }

  const phases = [];
  async function startPhase(name, extra = {}) {
    const phase = {
      idx: phases.length, name, ...extra, sent: 0, acked: 0, ackErrors: 0, ackTimeouts: 0,
      delivered: 0, duplicates: 0, outOfOrder: 0, misrouted: 0, echoes: 0,
      keys: [], ackMs: [], deliveryMs: [], lagMs: [],
    };
    phases.push(phase);
    await mark(`${name}:start`);
    phase.meter = selfMeter();
    phase.t0 = performance.now();
    return phase;
  }

  async function endPhase(phase) {
    phase.seconds = (performance.now() - phase.t0) / 1000;
    Object.assign(phase, phase.meter());
    await mark(`${phase.name}:end`);
    // Wait for the deliveries still in flight, up to drainMs.
    const deadline = performance.now() + drainMs;
    const undelivered = () => phase.keys.filter((k) => pending.get(k).ackedAt !== undefined && pending.get(k).deliveredAt === undefined);
    while (undelivered().length && performance.now() < deadline) await sleep(20);
    phase.lost = undelivered().length;
    for (const k of phase.keys) pending.delete(k);
    const { keys, ackMs, deliveryMs, lagMs, meter, t0, idx, ...rest } = phase;
    return {
      ...rest,
      seconds: Math.round(phase.seconds * 100) / 100,
      deliveredPerSec: Math.round(phase.delivered / phase.seconds),
      ackMs: percentiles(ackMs),
      deliveryMs: percentiles(deliveryMs),
      ...(lagMs.length ? { sendLagMs: percentiles(lagMs) } : {}),
    };
  }

  async function closedLoop(name, seconds) {
    const phase = await startPhase(name);
    const end = performance.now() + seconds * 1000;
    await Promise.all(pairs.map(async (pair) => {
      while (performance.now() < end) await send(pair, phase);
    }));
    return endPhase(phase);
  }

  // Open loop: each sender on its own fixed schedule, whatever the acks do.
  async function openLoop(name, rate, seconds) {
    const phase = await startPhase(name, { offeredPerSec: rate });
    const interval = (1000 * pairs.length) / rate;
    const start = performance.now() + 2;
    const end = start + seconds * 1000;
    const nextAt = pairs.map((_, i) => start + (i * interval) / pairs.length);
    const inflight = [];
    await new Promise((resolve) => {
      const tick = () => {
        const now = performance.now();
        for (const [i, pair] of pairs.entries()) {
          while (nextAt[i] <= now && nextAt[i] < end) {
            phase.lagMs.push(now - nextAt[i]);
            inflight.push(send(pair, phase));
            nextAt[i] += interval;
          }
        }
        if (now >= end) resolve();
        else setTimeout(tick, 1);
      };
      tick();
    });
    await Promise.all(inflight);
    return endPhase(phase);
  }

  const results = [];
  if (config.warmupSeconds > 0) await closedLoop("warmup", config.warmupSeconds);
  if (config.closedSeconds > 0) results.push(await closedLoop("closed", config.closedSeconds));
  for (const rate of config.openRates ?? []) {
    results.push(await openLoop(`open@${rate}`, rate, config.openSeconds));
  }
  const unexpectedDisconnects = disconnects;
  for (const pair of pairs) {
    pair.sender.close();
    pair.receiver.close();
  }
  emit({ event: "result", mode: "delivery", pairs: pairs.length, unexpectedDisconnects, phases: results });
}

// ---- idle: K authenticated sockets that do nothing, in stages (e.g. 1,000 then 10,000) ----

async function idle() {
  const { tokens, counts, concurrency } = config;
  const sockets = [];
  const stages = [];
  let disconnects = 0;
  for (const count of counts) {
    await mark(`connect${count}:start`);
    const meter = selfMeter();
    const t0 = performance.now();
    const { sockets: more, errors } = await connectMany(tokens, count - sockets.length, concurrency);
    const seconds = (performance.now() - t0) / 1000;
    const gen = meter();
    await mark(`connect${count}:end`);
    for (const s of more) s.on("disconnect", () => disconnects++);
    sockets.push(...more);
    await sleep(config.settleMs);
    await waitFor("connected", { count, connected: sockets.length });
    stages.push({
      requested: count,
      connected: sockets.length,
      failed: count - sockets.length,
      errors,
      connectSeconds: Math.round(seconds * 100) / 100,
      connectsPerSec: Math.round(more.length / seconds),
      droppedWhileIdle: disconnects,
      ...gen,
    });
  }
  for (const s of sockets) s.close();
  emit({ event: "result", mode: "idle", stages });
}

// ---- http: keep-alive requests from a few concurrent connections ----

function request(agent, method, path, token, body) {
  const data = body === undefined ? undefined : JSON.stringify(body);
  const url = new URL(path, config.baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method,
      agent,
      timeout: 10000,
      headers: {
        authorization: `Bearer ${token}`,
        ...(data ? { "content-type": "application/json", "content-length": Buffer.byteLength(data) } : {}),
      },
    }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    if (data) req.write(data);
    req.end();
  });
}

async function httpBench() {
  const { workers, concurrency, seconds, history } = config;
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const check = await request(agent, "GET", history.path, history.token);
  const page = JSON.parse(check.body);
  if (check.status !== 200 || page.messages?.length !== 50) fail(`history check failed: ${check.status} ${check.body.slice(0, 200)}`);
  const padding = "y".repeat(config.bodyBytes);
  const scenarios = {
    history: () => ["GET", history.path, history.token, undefined],
    send: (w, n) => ["POST", `/api/conversations/${w.conversationId}/messages`, w.token, { body: `h${n}|${padding}` }],
  };
  const results = [];
  for (const [name, make] of Object.entries(scenarios)) {
    for (const [phaseName, secs] of [[`${name}:warmup`, config.warmupSeconds], [name, seconds]]) {
      await mark(`${phaseName}:start`);
      const meter = selfMeter();
      const latencies = [];
      const statuses = {};
      let n = 0;
      const t0 = performance.now();
      const end = t0 + secs * 1000;
      await Promise.all(Array.from({ length: concurrency }, async (_, i) => {
        const w = workers[i % workers.length];
        while (performance.now() < end) {
          const start = performance.now();
          let status;
          try {
            ({ status } = await request(agent, ...make(w, n++)));
          } catch (err) {
            status = err.message;
          }
          statuses[status] = (statuses[status] ?? 0) + 1;
          latencies.push(performance.now() - start);
        }
      }));
      const elapsed = (performance.now() - t0) / 1000;
      await mark(`${phaseName}:end`);
      if (phaseName.endsWith(":warmup")) continue;
      const ok = Object.entries(statuses).filter(([s]) => s.startsWith("2")).reduce((a, [, c]) => a + c, 0);
      results.push({ name, seconds: Math.round(elapsed * 100) / 100, requests: latencies.length, ok, statuses, requestsPerSec: Math.round(ok / elapsed), latencyMs: percentiles(latencies), ...meter() });
    }
  }
  agent.destroy();
  emit({ event: "result", mode: "http", concurrency, phases: results });
}

const modes = { delivery, idle, http: httpBench };
modes[config.mode]().then(
  () => process.exit(0),
  (err) => fail(err?.stack ?? String(err)),
);
