#!/usr/bin/env python3
"""Time `corelog connect standalone` moving N access-log lines file -> topic -> file with
Kafka's stock property files (JsonConverter with schemas) against a fresh local broker.

    CORELOG_BIN=target/release/corelog /work/main/.venv/bin/python scripts/bench_connect.py 500000

The time counts from the worker's start to the sink file holding every line, so it
includes the worker's start and the sink's group join (the broker's initial rebalance
delay, 3 s by default). A measurement, not a test: it asserts only that the copy is exact.
"""

import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))

from conftest import Broker  # noqa: E402
from test_connect import Connect  # noqa: E402

LINE = '127.0.0.1 - - [07/Dec/2026:02:59:28 +0000] "GET /index.html HTTP/1.1" 200 5120 "-" "curl/8"'
POLL_INTERVAL_S = 0.05


def main(lines):
    base = Path(tempfile.mkdtemp(prefix="bench-connect-"))
    broker = Broker(base / "broker")
    broker.start()
    try:
        c = Connect(base, broker.bootstrap, "bench")
        with open(c.source_file, "w") as f:
            for i in range(lines):
                f.write(f"{i} {LINE}\n")
        size = c.source_file.stat().st_size
        start = time.monotonic()
        c.start()
        while not (c.sink_file.exists() and c.sink_file.stat().st_size >= size):
            time.sleep(POLL_INTERVAL_S)
        took = time.monotonic() - start
        c.stop()
        assert c.sink_file.read_bytes() == c.source_file.read_bytes(), "the copy differs"
        print(f"{lines} lines ({size / 1e6:.1f} MB) file -> topic -> file in {took:.2f} s: "
              f"{lines / took:.0f} lines/s (worker start and group join included)")
    finally:
        broker.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
