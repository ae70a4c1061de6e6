#!/usr/bin/env python3
"""Userspace latency proxy: makes a loopback server look far away.

    rtt_proxy.py --rtt MS --map LISTEN_HOST:PORT=TARGET_HOST:PORT [--map ...] [--log FILE]

Listens on each LISTEN address (loopback only) and forwards every accepted
connection to its TARGET, adding a one-way delay of RTT/2 to everything that
crosses it, in both directions, so that a client sees a server RTT away:

  * the kernel completes the client's connect() at once, so the proxy keeps a
    virtual clock: the connection counts as established at accept + RTT
    (SYN out, SYN-ACK back). Client bytes read at time t are treated as sent at
    max(t, accept + RTT) and handed to the server RTT/2 later. A client that
    writes first (TLS) therefore gets its first answer after 2 RTT, as on a
    real path.
  * the upstream connect starts at accept + RTT/2 (the SYN's flight), so a
    server that speaks first (an SMTP banner) is heard at accept + RTT.
  * server bytes read at time t reach the client at t + RTT/2 (never before
    accept + RTT).
  * order is kept per direction (one FIFO per direction, monotonic due times);
    a FIN is forwarded (half-close) and a reset is forwarded as a reset
    (SO_LINGER 0), each RTT/2 after it was seen, behind the data before it.

Bandwidth is not limited; only latency is added. asyncio timers fire about
0.7 ms late on average (epoll's millisecond timeout); --slack-ms wakes that much
early so that the mean added delay is RTT/2 (RTT 0 adds no timer at all). Every accepted connection is
logged as one JSON line to --log (default stderr): "open" when accepted and
"close" with byte counts and the times (seconds after the accept) at which
the upstream connect completed, the client's close was read and handed on,
and the server's close was read. SIGTERM/SIGINT stop the proxy; it prints a
one-line summary (connections per listener) on stderr and, with --summary
FILE, writes it as JSON: connections, and the most open at once as each
side sees it:

  * "proxy": from accept until both directions are done;
  * "client": from accept until the client's close (FIN or reset) is read,
    i.e. the connections the client held at once;
  * "server": from the upstream connect until the server has seen the
    client's close or has closed itself, i.e. what a server counting its
    connections per client (Postfix anvil) sees.

Only the Python standard library is used.
"""
import argparse
import asyncio
import json
import signal
import socket
import struct
import sys
import time


def hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def loopback(host):
    return host.startswith("127.") or host in ("::1", "localhost")


class Pipe:
    """One direction: read chunks, deliver each at its due time, in order."""

    def __init__(self, loop, reader, writer, delay, not_before, slack):
        self.loop = loop
        self.slack = slack  # wake this much early: asyncio's timers fire ~0.7 ms late on average
        self.reader = reader
        self.writer = writer
        self.delay = delay
        self.not_before = not_before  # loop time before which nothing counts as sent
        self.queue = asyncio.Queue()
        self.bytes = 0
        self.ended = None  # "fin" | "reset" | "error"
        self.end_read = None  # loop time the end (FIN, reset, error) was read
        self.end_sent = None  # loop time the end was handed on
        self.on_end_read = None  # callbacks, called once each
        self.on_end_sent = None

    async def pump_in(self):
        while True:
            try:
                data = await self.reader.read(65536)
            except (ConnectionResetError, BrokenPipeError):
                self.ended = "reset"
                break
            except OSError:
                self.ended = "error"
                break
            now = self.loop.time()
            if not data:
                self.ended = "fin"
                break
            self.queue.put_nowait((max(now, self.not_before) + self.delay, data))
        self.end_read = self.loop.time()
        if self.on_end_read:
            self.on_end_read()
        self.queue.put_nowait((max(self.loop.time(), self.not_before) + self.delay, None))

    async def pump_out(self):
        while True:
            due, data = await self.queue.get()
            wait = due - self.loop.time() - self.slack
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                break
            try:
                self.writer.write(data)
                await self.writer.drain()
                self.bytes += len(data)
            except OSError:
                # The other side is gone: drain the rest of this direction unsent.
                while True:
                    _, d = await self.queue.get()
                    if d is None:
                        break
                self.ended = self.ended or "error"
                self.sent_end()
                return
        try:
            if self.ended == "reset":
                abort(self.writer)
            elif self.writer.can_write_eof():
                self.writer.write_eof()
        except OSError:
            pass
        self.sent_end()

    def sent_end(self):
        self.end_sent = self.loop.time()
        if self.on_end_sent:
            self.on_end_sent()


def abort(writer):
    """Close with a RST (SO_LINGER 0)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


class Proxy:
    def __init__(self, rtt_ms, maps, log, slack_ms=0.7, summary=None):
        self.summary = summary
        self.ready = None
        self.slack = slack_ms / 1000.0
        self.half = rtt_ms / 2000.0
        self.rtt = rtt_ms / 1000.0
        self.maps = maps
        self.log = log
        self.seq = 0
        self.counts = {f"{h}:{p}": 0 for (h, p), _ in maps}
        self.open_now = 0
        self.max_open = 0
        self.client_now = 0  # accepted, client's close not yet read
        self.max_client = 0
        self.server_now = 0  # upstream connected, neither side's close seen by the server
        self.max_server = 0
        self.tasks = set()  # every connection's handler, held until it is done

    def emit(self, **kw):
        kw["t"] = round(time.time(), 6)
        self.log.write(json.dumps(kw) + "\n")
        self.log.flush()

    async def handle(self, creader, cwriter, listen, target):
        loop = asyncio.get_running_loop()
        accepted = loop.time()
        self.seq += 1
        cid = self.seq
        self.counts[listen] += 1
        self.open_now += 1
        self.max_open = max(self.max_open, self.open_now)
        peer = cwriter.get_extra_info("peername")
        self.client_now += 1
        self.max_client = max(self.max_client, self.client_now)
        self.emit(ev="open", id=cid, listen=listen, client=f"{peer[0]}:{peer[1]}", open_now=self.open_now)
        held = {"client": True, "server": False}

        def release(side):
            if held[side]:
                held[side] = False
                if side == "client":
                    self.client_now -= 1
                else:
                    self.server_now -= 1

        csock = cwriter.get_extra_info("socket")
        if csock is not None:
            csock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Client -> server: nothing counts as sent before the virtual connect completes.
        established = accepted + self.rtt
        up = None
        connected = None
        try:
            if self.half > self.slack:
                await asyncio.sleep(self.half - self.slack)  # the SYN's flight
            try:
                sreader, swriter = await asyncio.open_connection(*target)
            except OSError as e:
                # Refused upstream: the client sees a reset one RTT after its SYN.
                await asyncio.sleep(max(0.0, established - loop.time()))
                abort(cwriter)
                self.emit(ev="close", id=cid, listen=listen, upstream_error=str(e))
                return
            connected = loop.time()
            held["server"] = True
            self.server_now += 1
            self.max_server = max(self.max_server, self.server_now)
            ssock = swriter.get_extra_info("socket")
            if ssock is not None:
                ssock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            up = Pipe(loop, creader, swriter, self.half, established, self.slack)
            down = Pipe(loop, sreader, cwriter, self.half, established - self.half, self.slack)
            up.on_end_read = lambda: release("client")
            up.on_end_sent = lambda: release("server")  # the server has the client's close
            down.on_end_read = lambda: release("server")  # the server closed
            await asyncio.gather(up.pump_in(), up.pump_out(), down.pump_in(), down.pump_out())

            def rel(t):
                return None if t is None else round(t - accepted, 4)

            for w in (swriter, cwriter):
                try:
                    w.close()
                except OSError:
                    pass
            self.emit(ev="close", id=cid, listen=listen, up_bytes=up.bytes, down_bytes=down.bytes,
                      client_end=up.ended, server_end=down.ended,
                      secs=round(loop.time() - accepted, 4), connected=rel(connected),
                      client_end_read=rel(up.end_read), client_end_sent=rel(up.end_sent),
                      server_end_read=rel(down.end_read))
        finally:
            self.open_now -= 1
            release("client")
            release("server")

    async def serve(self, stop):
        servers = []
        for (lh, lp), target in self.maps:
            listen = f"{lh}:{lp}"

            def cb(r, w, listen=listen, target=target):
                # A task of our own, held until done: the one asyncio's
                # StreamReaderProtocol makes is dropped when the client's
                # transport is lost, and a pending task nobody holds may be
                # collected mid-connection ("Task was destroyed but it is
                # pending"), as seen with clients that half-close early.
                t = asyncio.ensure_future(self.handle(r, w, listen, target))
                self.tasks.add(t)
                t.add_done_callback(self.tasks.discard)

            servers.append(await asyncio.start_server(cb, lh, lp, reuse_address=True, backlog=1024))
        if self.ready:
            open(self.ready, "w").close()
        print(f"rtt_proxy: rtt {self.rtt * 1000:g} ms, " +
              ", ".join(f"{lh}:{lp} -> {th}:{tp}" for (lh, lp), (th, tp) in self.maps),
              file=sys.stderr, flush=True)
        await stop.wait()
        for s in servers:
            s.close()
        print("rtt_proxy: connections " + " ".join(f"{k}={v}" for k, v in self.counts.items()) +
              f" max_open={self.max_open} max_client={self.max_client} max_server={self.max_server}",
              file=sys.stderr, flush=True)
        if self.summary:
            with open(self.summary, "w") as f:
                json.dump({"rtt_ms": self.rtt * 1000, "connections": sum(self.counts.values()),
                           "per_listener": self.counts, "max_open_proxy": self.max_open,
                           "max_open_client": self.max_client, "max_open_server": self.max_server,
                           "still_open": self.open_now}, f)
                f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rtt", type=float, required=True, help="round-trip time to add, in ms")
    ap.add_argument("--map", action="append", required=True, metavar="LISTEN=TARGET",
                    help="LISTEN_HOST:PORT=TARGET_HOST:PORT (repeatable)")
    ap.add_argument("--log", help="connection log, JSON lines (default: stderr)")
    ap.add_argument("--ready", help="create this file once listening")
    ap.add_argument("--summary", help="write the connection counts here as JSON when stopped")
    ap.add_argument("--slack-ms", type=float, default=0.7,
                    help="wake timers this much early to cancel asyncio's mean lateness (default 0.7)")
    a = ap.parse_args()
    maps = []
    for m in a.map:
        l, _, t = m.partition("=")
        l, t = hostport(l), hostport(t)
        if not (loopback(l[0]) and loopback(t[0])):
            sys.exit(f"rtt_proxy: loopback addresses only: {m}")
        maps.append((l, t))
    log = open(a.log, "a", buffering=1) if a.log else sys.stderr

    async def run():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for s in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(s, stop.set)
        proxy = Proxy(a.rtt, maps, log, a.slack_ms, a.summary)
        proxy.ready = a.ready
        await proxy.serve(stop)

    asyncio.run(run())


if __name__ == "__main__":
    main()
