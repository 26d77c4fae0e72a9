"""Seeds the fuzz corpora from real client traffic and a real data dir.

Starts corelog (CORELOG_BIN, else target/release/corelog) on loopback behind a small
TCP proxy that records every request frame, drives librdkafka (confluent-kafka) and
kafka-python through it — every codec, idempotent producers, a consumer group that
commits, admin calls — stops the broker cleanly, and writes seeds to
fuzz/corpus/<target>/ from the frames and from the files the broker left.

    /work/main/.venv/bin/python fuzz/seeds/capture.py    (the e2e suite's venv)

Seeds are named by content hash, so a rerun adds only what is new. Each seed is kept
under SEED_BYTES_MAX, and each target gets at most SEEDS_PER_TARGET_MAX of them.
"""

import hashlib
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
import kwire  # noqa: E402  (the suite's wire helper: crc32c)

CORPUS = REPO / "fuzz" / "corpus"
SEED_BYTES_MAX = 64 * 1024
SEEDS_PER_TARGET_MAX = 200
READY_TIMEOUT_S = 20
API_PRODUCE = 0
# First flexible (header v2) version of each API key the clients send.
FLEXIBLE_FROM = {0: 9, 1: 12, 2: 6, 3: 9, 8: 8, 9: 6, 10: 3, 11: 6, 12: 4, 13: 4, 14: 4,
                 15: 5, 16: 3, 18: 3, 19: 5, 20: 4, 21: 2, 22: 2, 23: 4, 32: 4, 33: 2,
                 35: 2, 37: 2, 42: 2, 44: 1, 60: 0, 68: 0, 69: 0}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """A loopback proxy that keeps every whole request frame clients send."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.frames = []
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            client, _ = self.listener.accept()
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    def _requests(self, client, upstream):
        buf = b""
        while True:
            try:
                data = client.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                upstream.close()
                return
            buf += data
            while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">i", buf[:4])[0]:
                size = 4 + struct.unpack(">i", buf[:4])[0]
                with self.lock:
                    self.frames.append(buf[:size])
                buf = buf[size:]
            upstream.sendall(data)

    @staticmethod
    def _pipe(src, dst):
        while True:
            try:
                data = src.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                dst.close()
                return
            dst.sendall(data)


def drive_clients(bootstrap):
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = ["seed-plain", "seed-compact"]
    futures = admin.create_topics([
        NewTopic("seed-plain", num_partitions=2, replication_factor=1),
        NewTopic("seed-compact", num_partitions=1, replication_factor=1,
                 config={"cleanup.policy": "compact", "segment.bytes": "4096"}),
    ])
    for f in futures.values():
        f.result(10)
    for f in admin.describe_configs([ConfigResource("topic", "seed-plain")]).values():
        f.result(10)
    for f in admin.create_partitions([NewPartitions("seed-plain", 3)]).values():
        f.result(10)
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
        for idempotent in [False, True]:
            p = Producer({"bootstrap.servers": bootstrap, "compression.type": codec,
                          "enable.idempotence": idempotent, "linger.ms": 5})
            for i in range(40):
                value = (b"value %d " % i) * (1 + i % 7)
                p.produce(topics[i % 2], key=b"key-%d" % (i % 9), value=value,
                          headers=[("h", b"x")] if i % 3 == 0 else None)
            p.produce("seed-compact", key=b"key-1", value=None)
            p.flush(10)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "seed-group",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe(topics)
    got, deadline = 0, time.monotonic() + 20
    while got < 100 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            got += 1
    c.commit(asynchronous=False)
    c.close()
    admin.list_consumer_groups().result(10)
    admin.describe_consumer_groups(["seed-group"])["seed-group"].result(10)

    from kafka import KafkaConsumer, KafkaProducer
    kp = KafkaProducer(bootstrap_servers=bootstrap, compression_type="gzip")
    for i in range(20):
        kp.send("seed-plain", key=b"kp-%d" % i, value=b"kafka-python %d" % i)
    kp.flush(10)
    kp.close()
    kc = KafkaConsumer("seed-plain", bootstrap_servers=bootstrap, group_id="seed-kp",
                       auto_offset_reset="earliest", consumer_timeout_ms=3000)
    for _ in kc:
        pass
    kc.commit()
    kc.close()


def request_parts(frame):
    """(api_key, version, body after the header), or None."""
    body = frame[4:]
    if len(body) < 10:
        return None
    api_key, version, _ = struct.unpack(">hhi", body[:8])
    (client_len,) = struct.unpack(">h", body[8:10])
    pos = 10 + max(client_len, 0)
    if version >= FLEXIBLE_FROM.get(api_key, 99):
        pos += 1  # an empty tagged-field section (what these clients send)
    return api_key, version, body[pos:]


def batches(data):
    """Each whole record batch in a segment's bytes."""
    pos = 0
    while pos + 61 <= len(data):
        (length,) = struct.unpack(">i", data[pos + 8:pos + 12])
        if length < 49 or pos + 12 + length > len(data):
            return
        yield data[pos:pos + 12 + length]
        pos += 12 + length


class Seeds:
    def __init__(self):
        self.counts = {}

    def add(self, target, data):
        if len(data) > SEED_BYTES_MAX or self.counts.get(target, 0) >= SEEDS_PER_TARGET_MAX:
            return
        directory = CORPUS / target
        directory.mkdir(parents=True, exist_ok=True)
        (directory / hashlib.sha1(data).hexdigest()).write_bytes(data)
        self.counts[target] = self.counts.get(target, 0) + 1


def seed_from_frames(seeds, frames):
    for frame in frames:
        seeds.add("request_frame", frame)
        parts = request_parts(frame)
        if parts is None:
            continue
        api_key, version, body = parts
        if api_key == API_PRODUCE:
            # flags 1: repair CRCs (they are right already), codec picks vary.
            seeds.add("produce_request", bytes([1]) + struct.pack(">h", version) + body)
            seeds.add("produce_request", bytes([0x41]) + struct.pack(">h", version) + body)
        else:
            seeds.add("control_guard", struct.pack(">hh", api_key, version) + body)


def seed_from_data_dir(seeds, data_dir):
    for path in sorted(data_dir.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        name = path.name
        if name.endswith(".log"):
            offsets_topic = path.parent.name.startswith("__consumer_offsets")
            for batch in batches(data):
                seeds.add("record_batch", bytes([1]) + batch)
                seeds.add("record_batch", bytes([2 | ((batch[22] & 7) << 2)]) + batch[61:])
                if offsets_topic:
                    seeds.add("group_records", bytes([0]) + batch)
            if offsets_topic:
                seeds.add("group_records", bytes([0]) + data.rstrip(b"\0"))
            index = path.with_suffix(".index")
            times = path.with_suffix(".timeindex")
            index_bytes = index.read_bytes() if index.exists() else b""
            time_bytes = times.read_bytes() if times.exists() else b""
            segment = data.rstrip(b"\0")
            for flags in (0, 3):
                seeds.add("recovery", bytes([flags]) + struct.pack(">HH", len(index_bytes), len(time_bytes))
                          + index_bytes + time_bytes + segment)
            base = int(path.stem)
            for target in (base, base + 5, base + 1000):
                seeds.add("log_indexes", struct.pack(">qH", target, len(index_bytes)) + index_bytes + time_bytes)
        elif name.endswith("offset-checkpoint"):
            seeds.add("checkpoint_files", bytes([0]) + data)
        elif name == "leader-epoch-checkpoint":
            seeds.add("checkpoint_files", bytes([1]) + data)
        elif name.endswith(".snapshot"):
            seeds.add("checkpoint_files", bytes([2]) + data)


def main():
    binary = Path(os.environ.get("CORELOG_BIN", REPO / "target" / "release" / "corelog"))
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        port = free_port()
        cmd = [str(binary), "serve", "--smp", "1",
               "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}",
               "--override", f"log.dirs={work / 'd0'}",
               "--override", f"admin.listener=127.0.0.1:{free_port()}",
               "--override", "log.cleaner.backoff.ms=200"]
        recorder = Recorder(port)
        # Clients must reach the broker through the recorder: advertise its port.
        cmd += ["--override", f"advertised.listeners=PLAINTEXT://127.0.0.1:{recorder.port}"]
        with open(work / "corelog.log", "wb") as log:
            broker = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            drive_clients(f"127.0.0.1:{recorder.port}")
            time.sleep(1)  # let the cleaner pass over the compacted topic
        finally:
            broker.terminate()
            broker.wait(30)
        seeds = Seeds()
        seed_from_frames(seeds, recorder.frames)
        seed_from_data_dir(seeds, work / "d0")
        print(f"{len(recorder.frames)} frames captured; seeds per target: {seeds.counts}")


if __name__ == "__main__":
    main()
