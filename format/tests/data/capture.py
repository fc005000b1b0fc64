#!/usr/bin/env python3
"""Captures real chunks from Fluent Bit for the format crate's tests (see README.md).

    FLUENT_BIT=/path/to/fluent-bit format/tests/data/capture.py

Runs the agent with metrics inputs (fluentbit_metrics, node_exporter_metrics), the
opentelemetry input (sent one trace, one metrics and one logs request over loopback) and a
dummy logs input, and two outputs for every input: `forward` to a listener here, which keeps
the first chunk of each tag exactly as the agent flushed it (forward mode carries metrics and
traces chunks as a binary, logs chunks as their records), and `stdout` with `format otlp_json`,
whose lines are the agent's own OTLP/JSON rendering of the same chunks (agent-otlp.jsonl).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
WANTED = {"fluentbit_metrics", "node_exporter_metrics", "v1_traces", "v1_metrics", "v1_logs", "dummy"}


def skip(buf, i):
    """Offset just past the msgpack value at buf[i] (raises IndexError if incomplete)."""
    b = buf[i]
    if b <= 0x7F or b >= 0xE0 or b in (0xC0, 0xC2, 0xC3):
        return i + 1
    if 0xA0 <= b <= 0xBF:
        return i + 1 + (b & 0x1F)
    if 0x90 <= b <= 0x9F:
        return skip_n(buf, i + 1, b & 0x0F)
    if 0x80 <= b <= 0x8F:
        return skip_n(buf, i + 1, 2 * (b & 0x0F))
    fixed = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8, 0xCA: 4, 0xCB: 8,
             0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9, 0xD8: 17}
    if b in fixed:
        return i + 1 + fixed[b]
    sized = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4, 0xC7: 1, 0xC8: 2, 0xC9: 4}
    if b in sized:
        width = sized[b]
        n = int.from_bytes(buf[i + 1:i + 1 + width], "big")
        if i + 1 + width > len(buf):
            raise IndexError
        ext = 1 if b in (0xC7, 0xC8, 0xC9) else 0
        return i + 1 + width + ext + n
    if b in (0xDC, 0xDD, 0xDE, 0xDF):
        width = 2 if b in (0xDC, 0xDE) else 4
        n = int.from_bytes(buf[i + 1:i + 1 + width], "big")
        return skip_n(buf, i + 1 + width, n * (2 if b >= 0xDE else 1))
    raise ValueError(f"marker {b:#x}")


def skip_n(buf, i, n):
    for _ in range(n):
        i = skip(buf, i)
    return i


def header_len(buf, i):
    """(count, offset after header) of the array or bin header at buf[i]."""
    b = buf[i]
    if 0x90 <= b <= 0x9F:
        return b & 0x0F, i + 1
    width = {0xDC: 2, 0xDD: 4, 0xC4: 1, 0xC5: 2, 0xC6: 4}[b]
    return int.from_bytes(buf[i + 1:i + 1 + width], "big"), i + 1 + width


def listen(server, chunks):
    while True:
        conn, _ = server.accept()
        threading.Thread(target=receive, args=(conn, chunks), daemon=True).start()


def receive(conn, chunks):
    buf = b""
    while True:
        data = conn.recv(1 << 16)
        if not data:
            return
        buf += data
        while buf:
            try:
                end = skip(buf, 0)
            except IndexError:
                break
            # [tag, entries, options?]
            tag_end = skip(buf, 1)
            tag = buf[1:tag_end]
            tag = tag[1 + {0xD9: 1, 0xDA: 2, 0xDB: 4}.get(tag[0], 0):].decode()
            count, start = header_len(buf, tag_end)
            if buf[tag_end] in (0xC4, 0xC5, 0xC6):
                payload = buf[start:start + count]
            else:
                payload = buf[start:skip_n(buf, start, count)]
            if tag not in chunks:
                chunks[tag] = payload
            buf = buf[end:]


def post(port, path, body):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).read()


def main():
    agent = os.environ.get("FLUENT_BIT")
    if not agent:
        sys.exit("set FLUENT_BIT to the agent binary")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    forward_port = server.getsockname()[1]
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    otel_port = probe.getsockname()[1]
    probe.close()
    chunks = {}
    threading.Thread(target=listen, args=(server, chunks), daemon=True).start()

    work = tempfile.mkdtemp()
    config = os.path.join(work, "fluent-bit.conf")
    with open(config, "w") as f:
        f.write(f"""[SERVICE]
    flush 1
    log_level info
[INPUT]
    name fluentbit_metrics
    tag fluentbit_metrics
    scrape_interval 1
[INPUT]
    name node_exporter_metrics
    tag node_exporter_metrics
    scrape_interval 1
    metrics cpu,meminfo,loadavg,uname
[INPUT]
    name opentelemetry
    listen 127.0.0.1
    port {otel_port}
[INPUT]
    name dummy
    tag dummy
    dummy {{"log":"hello from dummy","n":1,"nested":{{"a":[1,2.5,true,null]}}}}
    samples 1
[OUTPUT]
    name forward
    match *
    host 127.0.0.1
    port {forward_port}
[OUTPUT]
    name stdout
    match *
    format otlp_json
""")
    stdout_path = os.path.join(work, "stdout")
    with open(stdout_path, "wb") as out:
        proc = subprocess.Popen([agent, "-c", config], stdout=out, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", otel_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        with open(os.path.join(HERE, "otlp-requests.json")) as f:
            requests = json.load(f)
        for path, body in requests.items():
            post(otel_port, path, body)
        deadline = time.time() + 30
        while not WANTED <= set(chunks) and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    missing = WANTED - set(chunks)
    if missing:
        sys.exit(f"no chunk captured for {sorted(missing)}")
    for tag in sorted(WANTED):
        with open(os.path.join(HERE, f"{tag}.msgpack"), "wb") as f:
            f.write(chunks[tag])
    with open(stdout_path, "rb") as f:
        lines = [line for line in f.read().splitlines() if line.startswith(b"{\"resource")]
    with open(os.path.join(HERE, "agent-otlp.jsonl"), "wb") as f:
        f.write(b"\n".join(lines) + b"\n")
    print(f"captured {sorted(WANTED)} and {len(lines)} agent renderings")


if __name__ == "__main__":
    main()
