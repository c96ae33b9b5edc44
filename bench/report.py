"""Tables, ratios and target checks of the benchmark's output (plain text and JSON lines)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

# The generator is suspect beyond this share of its one core, or this event loop delay.
GEN_CPU_LIMIT = 90.0
GEN_LOOP_DELAY_LIMIT_MS = 100.0


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "-" * len(line)]
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(out)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 10 else f"{value:.0f}"
    return str(value)


def pcts(stats: dict[str, Any] | None, *keys: str) -> str:
    """``"1.2/3.4/5.6"`` from a percentile dict."""
    if not stats:
        return "-"
    return "/".join(_cell(stats.get(k)) for k in keys)


def gen_flag(phase: dict[str, Any]) -> str:
    """The generator's CPU% and event loop delay, with ``!`` where it may be the bottleneck."""
    cpu = phase.get("cpu", {}).get("gen")
    delay = phase.get("genLoopDelayP99Ms")
    suspect = (cpu or 0) >= GEN_CPU_LIMIT or (delay or 0) >= GEN_LOOP_DELAY_LIMIT_MS
    return f"{_cell(cpu)}% {_cell(delay)}ms{' !' if suspect else ''}"


def ratio(a: float | None, b: float | None) -> float | None:
    if not a or not b:
        return None
    return round(a / b, 2)


def json_line(record: dict[str, Any]) -> str:
    return "JSON " + json.dumps(record, separators=(",", ":"), sort_keys=False)


DELIVERY_HEADERS = [
    "server",
    "msg/s",
    "ack p50/p99 ms",
    "delivery p50/p95/p99 ms",
    "lost",
    "errors",
    "srv CPU%",
    "srv CPU us/msg",
    "db CPU%",
    "db CPU us/msg",
    "db req/msg",
    "other/steal CPU%",
    "generator CPU, loop p99",
]


def per_item(phase: dict[str, Any], count: float | None, rate: float | None) -> list[Any]:
    """The database's CPU (us) and requests per message (or request) of a phase."""
    db_cpu = _cpu(phase, "db")
    requests = phase.get("dbRequests")
    return [
        db_cpu * 10_000 / rate if db_cpu and rate else None,
        round(requests / count, 3) if requests is not None and count else None,
    ]


def _delivery_row(name: str, phase: dict[str, Any], msgs: str) -> list[Any]:
    server_cpu = _cpu(phase, "server")
    rate = phase["deliveredPerSec"]
    per_msg = server_cpu * 10_000 / rate if server_cpu and rate else None
    return [
        name,
        msgs,
        pcts(phase["ackMs"], "p50", "p99"),
        pcts(phase["deliveryMs"], "p50", "p95", "p99"),
        phase["lost"],
        _errors(phase),
        server_cpu,
        per_msg,
        _cpu(phase, "db"),
        *per_item(phase, phase.get("acked"), rate),
        _other(phase),
        gen_flag(phase),
    ]


def delivery_tables(servers: dict[str, dict[str, Any]], rates: Sequence[int]) -> str:
    rows = [
        _delivery_row(name, rec["closed"], "/".join(str(r) for r in rec["closedRuns"]))
        for name, rec in servers.items()
    ]
    out = [
        "closed loop (next send after the ack); msg/s of each run, the best one detailed",
        table(DELIVERY_HEADERS, rows),
    ]
    for rate in rates:
        rows = []
        for name, rec in servers.items():
            phase = rec["open"].get(str(rate))
            if phase is None:
                rows.append([name, "above capacity", *[""] * (len(DELIVERY_HEADERS) - 2)])
            else:
                rows.append(_delivery_row(name, phase, str(phase["deliveredPerSec"])))
        out += [
            "",
            f"open loop at {rate} msg/s offered (the same for every server)",
            table(DELIVERY_HEADERS, rows),
        ]
    return "\n".join(out)


FAILURES = ("lost", "ackErrors", "ackTimeouts", "duplicates", "outOfOrder", "misrouted")


def failures(phase: dict[str, Any]) -> int:
    """Messages lost or failed in a delivery phase; non-2xx answers in an http phase."""
    count = sum(int(phase.get(k, 0)) for k in FAILURES)
    return count + int(phase.get("requests", 0)) - int(phase.get("ok", phase.get("requests", 0)))


def _errors(phase: dict[str, Any]) -> str:
    bad = {k: phase[k] for k in FAILURES[1:] if phase.get(k)}
    text = ",".join(f"{k}={v}" for k, v in bad.items()) or "0"
    others = int(phase.get("failuresAllRuns", 0)) - failures(phase)
    return f"{text} (+{others} in other runs)" if others else text


def _other(phase: dict[str, Any]) -> str:
    return f"{_cell(_cpu(phase, 'other'))}/{_cell(_cpu(phase, 'steal'))}"


def _cpu(phase: dict[str, Any], group: str) -> float | None:
    value: float | None = phase.get("cpu", {}).get(group)
    return value


def _failed_requests(row: dict[str, Any]) -> str:
    own = row["requests"] - row["ok"]
    others = int(row.get("failuresAllRuns", own)) - own
    return f"{own} (+{others} in other runs)" if others else str(own)


def idle_table(rows: Sequence[dict[str, Any]]) -> str:
    return table(
        [
            "server",
            "sockets",
            "connected",
            "connect/s",
            "RSS before MiB",
            "RSS after MiB",
            "KiB/socket",
            "srv CPU%",
            "other/steal CPU%",
            "generator CPU, loop p99",
        ],
        [
            [
                r["server"],
                r["requested"],
                r["connected"],
                r["connectsPerSec"],
                r["rssBeforeMiB"],
                r["rssAfterMiB"],
                r["kibPerSocket"],
                _cpu(r, "server"),
                _other(r),
                gen_flag(r),
            ]
            for r in rows
        ],
    )


def http_table(rows: Sequence[dict[str, Any]]) -> str:
    return table(
        [
            "server",
            "request",
            "req/s",
            "p50/p99 ms",
            "non-2xx",
            "srv CPU%",
            "db CPU%",
            "db CPU us/req",
            "db req/req",
            "other/steal CPU%",
            "generator CPU, loop p99",
        ],
        [
            [
                r["server"],
                r["name"],
                r["requestsPerSec"],
                pcts(r["latencyMs"], "p50", "p99"),
                _failed_requests(r),
                _cpu(r, "server"),
                _cpu(r, "db"),
                *per_item(r, r.get("requests"), r["requestsPerSec"]),
                _other(r),
                gen_flag(r),
            ]
            for r in rows
        ],
    )
