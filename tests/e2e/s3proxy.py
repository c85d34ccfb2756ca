#!/usr/bin/env python3
"""s3proxy: a TCP proxy on 127.0.0.1 in front of an S3 server that misbehaves mid-body.

  s3proxy.py --upstream PORT --port-file F --log F [--timeout S]
             [--reset-at N [--hold-file F]] [--times K] [--min-length N]

It forwards bytes unchanged both ways, so the client's Host header and its Signature
Version 4 reach the server as they were signed (an HTTP proxy such as regproxy.py
rewrites Host, which a signature covers). Faults apply to the first K responses (--times,
default 1) whose Content-Length is at least --min-length (default 1 MiB, so a re-read of
a few bytes is spared), at body byte N:

  --reset-at N      reset the connection (TCP RST) after N body bytes
  --hold-file F     first wait (at most 60 s) until file F exists, having written
                    "held" to the log: the test changes the object meanwhile

--log appends one JSON object per request: the request line, whether Range, If-Match
and Authorization came (never their values), and the response status.
The server exits by itself after --timeout seconds (default 900).
"""
import argparse
import json
import os
import socket
import struct
import sys
import threading
import time

LOCK = threading.Lock()


def log(path, obj):
    with LOCK, open(path, "a") as f:
        f.write(json.dumps(obj) + "\n")


def head_of(buf):
    end = buf.find(b"\r\n\r\n")
    return None if end < 0 else (buf[:end].decode("latin-1").split("\r\n"), end + 4)


class Fault:
    def __init__(self, args):
        self.args, self.left = args, args.times

    def take(self, length):
        with LOCK:
            if self.left > 0 and self.args.reset_at is not None and length >= self.args.min_length:
                self.left -= 1
                return True
        return False


def pipe_requests(client, upstream, args):
    buf = b""
    try:
        while True:
            data = client.recv(65536)
            if not data:
                break
            upstream.sendall(data)
            buf += data
            while True:
                h = head_of(buf)
                if h is None:
                    break
                lines, end = h
                names = {l.split(":", 1)[0].strip().lower() for l in lines[1:]}
                log(args.log, {"request": lines[0], "range": "range" in names,
                               "if_match": "if-match" in names,
                               "authorization": "authorization" in names})
                buf = buf[end:]  # GET requests have no body
    except OSError:
        pass
    try:
        upstream.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def reset(sock):
    """A TCP RST: linger 0, then close. shutdown(SHUT_RD) first wakes the thread blocked in
    recv() on it, which otherwise keeps the socket open (and silent) past close()."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    try:
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    sock.close()


def pipe_responses(upstream, client, args, fault):
    """Forward responses; a faulted one is cut at body byte N."""
    buf, body_left, cut = b"", 0, None
    try:
        while True:
            data = upstream.recv(65536)
            if not data:
                break
            out = data
            if cut is None and body_left == 0:
                buf += data
                h = head_of(buf)
                if h is not None:
                    lines, end = h
                    length = 0
                    for l in lines[1:]:
                        if l.lower().startswith("content-length:"):
                            length = int(l.split(":", 1)[1])
                    log(args.log, {"status": lines[0]})
                    if fault.take(length):
                        cut = end + args.reset_at
                    body_left = max(0, length - (len(buf) - end))
                    buf = b""
            elif body_left:
                body_left = max(0, body_left - len(data))
            if cut is not None:
                if len(out) >= cut:
                    client.sendall(out[:cut])
                    if args.hold_file:
                        log(args.log, {"held": True})
                        deadline = time.time() + 60
                        while not os.path.exists(args.hold_file) and time.time() < deadline:
                            time.sleep(0.05)
                    log(args.log, {"reset": True})
                    reset(client)
                    upstream.close()
                    return
                cut -= len(out)
            client.sendall(out)
    except OSError:
        pass
    try:
        client.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def serve(conn, args, fault):
    try:
        up = socket.create_connection(("127.0.0.1", args.upstream), timeout=30)
        up.settimeout(None)
    except OSError:
        conn.close()
        return
    t = threading.Thread(target=pipe_requests, args=(conn, up, args), daemon=True)
    t.start()
    pipe_responses(up, conn, args, fault)
    t.join(5)
    for s in (conn, up):
        try:
            s.close()
        except OSError:
            pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", type=int, required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--reset-at", type=int)
    p.add_argument("--hold-file")
    p.add_argument("--times", type=int, default=1)
    p.add_argument("--min-length", type=int, default=1 << 20)
    args = p.parse_args()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(srv.getsockname()[1]))
    os.rename(args.port_file + ".tmp", args.port_file)
    threading.Timer(args.timeout, lambda: os._exit(0)).start()
    fault = Fault(args)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn, args, fault), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
