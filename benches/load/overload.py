#!/usr/bin/env python3
"""Load generator for the issue-11 scripts (slow_bodies.sh, password_checks.sh): Python 3.8+
standard library only (asyncio). Probes PROVISIONCMD_SERVER_TIME on fresh connections while
an attack runs, samples the server's RSS, and prints `key: value` lines.

  overload.py slow      HOST PORT SERVER_PID  [CONNECTIONS SECONDS]
  overload.py passwords HOST PORT SERVER_PID  [CALLS ADDRESSES SECONDS [RETRY_AT_ONCE]]
  overload.py probe     HOST PORT INTERVAL_MS SECONDS DELAY_MS LABEL

The probe runs in a process of its own (started by the other modes), so that its latencies
are not those of the load generator's busy event loop.
"""
import asyncio
import subprocess
import sys
import time

ENVELOPE = (
    '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:PROV-TYPES="http://www.vasco.com/IdentikeyServer/IdentikeyTypes/Provisioning">'
    "<SOAP-ENV:Body>{}</SOAP-ENV:Body></SOAP-ENV:Envelope>"
)
SERVER_TIME = ENVELOPE.format(
    "<PROV-TYPES:provisioningExecute><cmd>PROVISIONCMD_SERVER_TIME</cmd>"
    "<attributeSet/></PROV-TYPES:provisioningExecute>"
).encode()


def register(n):
    """A dsappSRPRegister for an unknown user: one Argon2 check (the timing equaliser)."""
    return ENVELOPE.format(
        "<PROV-TYPES:dsappSRPRegister><componentType>load</componentType><user>"
        f"<userID>nobody{n}</userID><domain>master</domain></user><credential>"
        "<staticPassword>not-the-password</staticPassword></credential>"
        "</PROV-TYPES:dsappSRPRegister>"
    ).encode()


def request(host, port, body, close=False):
    head = (
        f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: text/xml; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n" + ("Connection: close\r\n" if close else "") + "\r\n"
    )
    return head.encode() + body


async def read_response(reader):
    """(status, headers, body) of one HTTP/1.1 response with a Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


class Probe:
    """SERVER_TIME every `interval` seconds on a fresh connection; a probe not answered
    within 10 s counts as 10 s and a failure."""

    def __init__(self, host, port, interval):
        self.host, self.port, self.interval = host, port, interval
        self.latencies, self.failures, self.tasks = [], 0, []

    async def one(self):
        start = time.monotonic()
        try:
            async def go():
                r, w = await asyncio.open_connection(self.host, self.port)
                w.write(request(self.host, self.port, SERVER_TIME, close=True))
                await w.drain()
                status, _, body = await read_response(r)
                w.close()
                return status == 200 and b"STAT_SUCCESS" in body
            ok = await asyncio.wait_for(go(), 10)
        except Exception:
            ok = False
        self.latencies.append(time.monotonic() - start if ok else 10.0)
        if not ok:
            self.failures += 1

    async def run(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.tasks.append(asyncio.ensure_future(self.one()))
            await asyncio.sleep(self.interval)
        await asyncio.gather(*self.tasks)

    def report(self, prefix="probe"):
        ms = [x * 1000 for x in self.latencies]
        print(f"{prefix} count: {len(ms)} (every {self.interval * 1000:.0f} ms), failed: {self.failures}")
        print(f"{prefix} latency ms p50 / p95 / p99 / max: {pct(ms, 50):.1f} / {pct(ms, 95):.1f} / "
              f"{pct(ms, 99):.1f} / {max(ms) if ms else float('nan'):.1f}")


def start_probe(host, port, interval_ms, seconds, delay_ms, label):
    """The probe, in its own process; `finish_probe` prints its report."""
    return subprocess.Popen(
        [sys.executable, __file__, "probe", host, str(port), str(interval_ms), str(seconds),
         str(delay_ms), label],
        stdout=subprocess.PIPE, text=True)


def finish_probe(proc):
    out, _ = proc.communicate(timeout=120)
    print(out, end="")


async def probe_only(host, port, interval_ms, seconds, delay_ms, label):
    await asyncio.sleep(delay_ms / 1000)
    probe = Probe(host, port, interval_ms / 1000)
    await probe.run(seconds)
    probe.report(label)


async def sample_rss(pid, stop, out):
    while not stop.is_set():
        out.append(rss_kb(pid))
        await asyncio.sleep(0.5)


async def slow(host, port, pid, connections=1500, seconds=25):
    """`connections` connections send complete headers (Content-Length 100000) and then one
    body byte a second for `seconds`; records when the server closes each."""
    closed_after = []
    opened = 0
    refused = 0
    head = (f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: text/xml\r\n"
            "Content-Length: 100000\r\n\r\n").encode()

    async def slow_client():
        nonlocal opened, refused
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
        except Exception:
            refused += 1
            return
        start = time.monotonic()
        opened += 1
        w.write(head)
        eof = asyncio.ensure_future(r.read())  # the answer, then EOF when the server closes
        for _ in range(seconds):
            if eof.done():
                break
            try:
                w.write(b"<")
                await w.drain()
            except Exception:
                break
            await asyncio.wait([eof], timeout=1)
        await asyncio.wait([eof], timeout=0.5)
        if eof.done():
            # EOF or a reset: the server closed it.
            eof.exception()
            closed_after.append(time.monotonic() - start)
        else:
            eof.cancel()
        w.close()

    stop = asyncio.Event()
    rss = []
    sampler = asyncio.ensure_future(sample_rss(pid, stop, rss))
    rss_before = rss_kb(pid)
    probe = start_probe(host, port, 250, seconds, 0, "probe")
    clients = []
    for i in range(connections):
        clients.append(asyncio.ensure_future(slow_client()))
        if i % 100 == 99:
            await asyncio.sleep(0.05)
    await asyncio.gather(*clients)
    stop.set()
    await sampler
    within = sum(1 for t in closed_after if t <= 20)
    print(f"slow connections: {connections} attempted, {opened} opened, {refused} not opened")
    print(f"closed by the server within 20 s: {within} ({100 * within / max(1, connections):.1f}%); "
          f"close after ms p50 / max: {pct([t * 1000 for t in closed_after], 50):.0f} / "
          f"{max(closed_after, default=float('nan')) * 1000:.0f}")
    finish_probe(probe)
    print(f"server RSS MiB before / max / after: {rss_before / 1024:.1f} / {max(rss, default=0) / 1024:.1f} / "
          f"{rss_kb(pid) / 1024:.1f}")


async def passwords(host, port, pid, calls=200, addresses=100, seconds=20, retry_at_once=1):
    """`calls` clients, spread over `addresses` loopback source addresses (127.0.0.2 ...),
    each sending password-checking calls back to back on a kept-alive connection for
    `seconds`; a refused call (503) is sent again at once, or (`retry_at_once` 0) after
    the `Retry-After` it was given."""
    statuses = {}
    end = time.monotonic() + seconds

    async def client(n):
        src = f"127.0.0.{2 + n % addresses}"
        r = w = None
        body = request(host, port, register(n))
        while time.monotonic() < end:
            try:
                if w is None:
                    r, w = await asyncio.open_connection(host, port, local_addr=(src, 0))
                w.write(body)
                await w.drain()
                status, headers, text = await asyncio.wait_for(read_response(r), 30)
                key = str(status)
                if status == 200:
                    key += " STAT_RATE_LIMITED" if b"STAT_RATE_LIMITED" in text else " checked"
                statuses[key] = statuses.get(key, 0) + 1
                if status == 503 and not retry_at_once:
                    await asyncio.sleep(float(headers.get("retry-after", "1")))
                if headers.get("connection", "").lower() == "close":
                    w.close()
                    r = w = None
            except Exception as e:
                statuses[f"error {type(e).__name__}"] = statuses.get(f"error {type(e).__name__}", 0) + 1
                if w is not None:
                    w.close()
                r = w = None
                await asyncio.sleep(0.05)
        if w is not None:
            w.close()

    stop = asyncio.Event()
    rss = []
    sampler = asyncio.ensure_future(sample_rss(pid, stop, rss))
    # Probing starts once the load has built up (1 s) and ends before it does.
    probe = start_probe(host, port, 50, seconds - 2, 1000, "SERVER_TIME probe")
    workers = [asyncio.ensure_future(client(n)) for n in range(calls)]
    await asyncio.gather(*workers)
    stop.set()
    await sampler
    total = sum(statuses.values())
    print(f"password-checking calls: {calls} concurrent from {addresses} addresses for {seconds} s, "
          f"a refused call sent again {'at once' if retry_at_once else 'after Retry-After'}; "
          f"answers: {total} ({total / seconds:.0f}/s)")
    for k in sorted(statuses):
        print(f"  {k}: {statuses[k]}")
    finish_probe(probe)
    print(f"server RSS MiB max: {max(rss, default=0) / 1024:.1f}")


def main():
    mode, host, port, pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    extra = [int(a) for a in sys.argv[5:7 if mode == "probe" else None]]
    if mode == "slow":
        asyncio.run(slow(host, port, pid, *extra))
    elif mode == "passwords":
        asyncio.run(passwords(host, port, pid, *extra))
    elif mode == "probe":
        asyncio.run(probe_only(host, port, pid, extra[0], extra[1], sys.argv[7]))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
