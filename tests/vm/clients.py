#!/usr/bin/env python3
"""The host-side clients of the VM scenarios: each holds one connection to a
service of the guest (through qemu's port forward) and logs what it sees, one
line per reply, until STOPFILE exists.

    clients.py KIND PORT STOPFILE [ARGS...]

Lines: "TIME N" per reply (N: what the reply says, a counter for most), then
one final line: "DONE ...", "COMMITTED N" (postgres) or "ERROR ... at TIME". A client
never reconnects: a lost connection is an ERROR. Only the standard library:
the host has nothing else."""

import ftplib
import hashlib
import os
import socket
import struct
import sys
import time

# A TCG boot is in the middle of a switch's blackout: an established
# connection waits this long for its next reply.
BLACKOUT = 900
TICK = 0.2


def log(*words):
    print(" ".join(str(w) for w in words), flush=True)


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.settimeout(BLACKOUT)
    return s, s.makefile("rb")


def redis(port, stop):
    """INCR every tick: the counter goes n -> n+1 while the connection lives."""
    s, f = connect(port)
    while not os.path.exists(stop):
        s.sendall(b"*2\r\n$4\r\nINCR\r\n$7\r\ncounter\r\n")
        line = f.readline()
        if not line.startswith(b":"):
            raise RuntimeError("unexpected reply %r" % line)
        log("%.3f" % time.time(), int(line[1:]))
        time.sleep(TICK)
    log("DONE")


def subscriber(port, stop, channel):
    """SUBSCRIBE CHANNEL, then only listen: each message the server pushes is a line
    "TIME message PAYLOAD". The server speaks first on this connection, every time."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    name = channel.encode()
    s.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n" % (len(name), name))
    s.settimeout(1)
    buf = b""
    while True:
        # One push: an array of three, kind and channel, then the payload (a bulk string) or,
        # confirming the subscription, the number of channels (an integer).
        parts = buf.split(b"\r\n")
        if len(parts) >= 7 and parts[0] == b"*3" and parts[5].startswith(b":"):
            log("%.3f" % time.time(), parts[2].decode(), parts[5][1:].decode())
            buf = b"\r\n".join(parts[6:])
            continue
        if len(parts) >= 8 and parts[0] == b"*3" and parts[5].startswith(b"$"):
            log("%.3f" % time.time(), parts[2].decode(), parts[6].decode())
            buf = b"\r\n".join(parts[7:])
            continue
        if os.path.exists(stop):
            break
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            continue
        if not chunk:
            raise RuntimeError("connection closed")
        buf += chunk
    log("DONE")


def memcached(port, stop):
    """The text protocol's incr, every tick, on a key set once."""
    s, f = connect(port)
    s.sendall(b"set counter 0 0 1\r\n0\r\n")
    if f.readline() != b"STORED\r\n":
        raise RuntimeError("set refused")
    while not os.path.exists(stop):
        s.sendall(b"incr counter 1\r\n")
        line = f.readline()
        if not line.strip().isdigit():
            raise RuntimeError("unexpected reply %r" % line)
        log("%.3f" % time.time(), int(line))
        time.sleep(TICK)
    log("DONE")


def tor(port, stop, password, contact):
    """Tor's control port: a setting changed at the start (in memory only) and
    GETINFO uptime every tick; at the end the setting is read back. A fresh
    tor would have neither the setting nor the uptime."""
    s, f = connect(port)

    def command(line):
        s.sendall(line.encode() + b"\r\n")
        reply = []
        while True:
            r = f.readline().decode().rstrip("\r\n")
            if not r[:3].isdigit():
                raise RuntimeError("connection closed (%r)" % r)
            if r[:3] != "250":
                raise RuntimeError("%s: %s" % (line, r))
            reply.append(r[4:])
            if r[3] == " ":
                return reply

    command('AUTHENTICATE "%s"' % password)
    command("SETCONF ContactInfo=%s" % contact)
    while not os.path.exists(stop):
        uptime = [r for r in command("GETINFO uptime") if r.startswith("uptime=")]
        log("%.3f" % time.time(), uptime[0].split("=", 1)[1])
        time.sleep(TICK)
    log("DONE", command("GETCONF ContactInfo")[0])


def zebra(port, stop):
    """FRR zebra's vty (telnet, "no login"): the hidden echo command every tick,
    its answer awaited up to the next prompt. "TIME N" with N the ticks."""
    s, f = connect(port)
    out = b""

    def until_prompt():
        nonlocal out
        nudged = False
        deadline = time.time() + BLACKOUT
        s.settimeout(1)
        while not out.rstrip().endswith(b">"):
            # zebra is not carried: a kernel jump ends it without a FIN, and a client that
            # only waits never hears of it. Once told to stop, it sends an empty line: the
            # guest's kernel, which no longer knows the connection, answers with a reset.
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                if time.time() > deadline:
                    raise
                if os.path.exists(stop) and not nudged:
                    s.sendall(b"\r\n")
                    nudged = True
                continue
            if not chunk:
                raise RuntimeError("connection closed")
            out += chunk
        seen, out = out, b""
        return seen

    until_prompt()
    n = 0
    while not os.path.exists(stop):
        n += 1
        s.sendall(b"echo tick-%d\r\n" % n)
        lines = [l.strip() for l in until_prompt().split(b"\n")]
        if b"tick-%d" % n not in lines:
            raise RuntimeError("unexpected answer %r" % lines)
        log("%.3f" % time.time(), n)
        time.sleep(TICK)
    log("DONE")


def ftp(port, stop, name, rate):
    """An anonymous passive download read at RATE bytes/s until STOPFILE
    exists, then to its end: "TIME BYTES" as it goes, then "DONE SHA256 REPLY"
    with the server's reply on the control connection."""
    rate = int(rate)
    c = ftplib.FTP()
    c.connect("127.0.0.1", port, timeout=30)
    c.login()
    c.sock.settimeout(BLACKOUT)
    c.voidcmd("TYPE I")
    data = c.transfercmd("RETR " + name)
    data.settimeout(BLACKOUT)
    digest, total = hashlib.sha256(), 0
    while True:
        chunk = data.recv(int(rate * TICK) if not os.path.exists(stop) else 1 << 20)
        if not chunk:
            break
        digest.update(chunk)
        total += len(chunk)
        log("%.3f" % time.time(), total)
        if not os.path.exists(stop):
            time.sleep(TICK)
    data.close()
    log("DONE", digest.hexdigest(), c.voidresp().replace(" ", "_"))


def pg_message(f):
    head = f.read(5)
    if len(head) < 5:
        raise RuntimeError("connection closed")
    return head[:1], f.read(struct.unpack("!i", head[1:])[0] - 4)


def pg_query(s, f, sql):
    """Runs SQL (simple query protocol): the first column of the last row, if any."""
    body = sql.encode() + b"\0"
    s.sendall(b"Q" + struct.pack("!i", len(body) + 4) + body)
    value = None
    while True:
        kind, body = pg_message(f)
        if kind == b"E":
            raise RuntimeError("server error %r" % body)
        if kind == b"D":
            n = struct.unpack("!i", body[2:6])[0]
            value = body[6:6 + n].decode()
        if kind == b"Z":
            return value


def postgres(port, stop):
    """One transaction (v3 wire protocol, trust authentication): a row inserted
    every tick and the count it sees, then COMMIT."""
    s, f = connect(port)
    params = b"user\0postgres\0database\0postgres\0\0"
    s.sendall(struct.pack("!ii", len(params) + 8, 196608) + params)
    while True:
        kind, body = pg_message(f)
        if kind == b"E":
            raise RuntimeError("server error %r" % body)
        if kind == b"R" and struct.unpack("!i", body[:4])[0] != 0:
            raise RuntimeError("authentication asked for")
        if kind == b"Z":
            break
    pg_query(s, f, "BEGIN")
    count = None
    while not os.path.exists(stop):
        count = pg_query(s, f, "INSERT INTO dl_ticks VALUES (now()); SELECT count(*) FROM dl_ticks")
        log("%.3f" % time.time(), count)
        time.sleep(TICK)
    pg_query(s, f, "COMMIT")
    log("COMMITTED", count)


def probe(port, stop):
    """Like redis, but a lost connection is opened again (every tick until it
    works): what a client that retries sees of a restart. "TIME N CONN"."""
    conn, s, f = 0, None, None
    while not os.path.exists(stop):
        try:
            if s is None:
                # qemu's port forward accepts at once even while the guest is
                # down: a new connection gets 3 s to answer.
                s = socket.create_connection(("127.0.0.1", port), timeout=3)
                f = s.makefile("rb")
                fresh = True
            s.sendall(b"*2\r\n$4\r\nINCR\r\n$7\r\ncounter\r\n")
            line = f.readline()
            if fresh and line:
                conn, fresh = conn + 1, False
                s.settimeout(BLACKOUT)
            if not line.startswith(b":"):
                raise OSError("unexpected reply %r" % line)
            log("%.3f" % time.time(), int(line[1:]), conn)
        except OSError:
            if s is not None:
                s.close()
            s = None
        time.sleep(TICK)
    log("DONE")


KINDS = {"redis": redis, "memcached": memcached, "tor": tor, "zebra": zebra, "ftp": ftp, "postgres": postgres,
         "probe": probe, "subscriber": subscriber}

if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] not in KINDS:
        sys.exit("usage: clients.py %s PORT STOPFILE [ARGS...]" % "|".join(KINDS))
    try:
        KINDS[sys.argv[1]](int(sys.argv[2]), *sys.argv[3:])
    except Exception as e:
        # When: the last reply's time is not when the connection ended.
        log("ERROR", e, "at %.3f" % time.time())
