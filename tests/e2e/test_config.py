"""`corelog serve --config server.properties`: Kafka's property names, a stock file's
extra keys accepted, unknown and not-yet-supported keys warned about, invalid values a
clear start-up error."""

import os
import signal
import socket
import subprocess
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from conftest import corelog_bin, free_port, fresh_topic, stop_process

START_TIMEOUT_S = 20
EXIT_TIMEOUT_S = 10
METADATA_TIMEOUT_S = 10


def serve_with_config(tmp_path, text):
    config = tmp_path / "server.properties"
    config.write_text(text)
    log = tmp_path / "corelog.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(corelog_bin()), "serve", "--smp", "2", "--config", str(config)],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    return proc, log


def wait_port(port, proc):
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"corelog exited with {proc.returncode}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listening on {port} after {START_TIMEOUT_S} s")


def test_stock_server_properties(tmp_path):
    port = free_port()
    proc, log = serve_with_config(tmp_path, f"""
# A Kafka-style server.properties
broker.id=3
listeners=PLAINTEXT://127.0.0.1:{port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
log.dirs={tmp_path / "kafka-logs"}
admin.listener=127.0.0.1:{free_port()}
num.partitions=3
num.network.threads=3
zookeeper.connect=localhost:2181
log.retention.hours=168
socket.send.buffer.bytes=102400
some.made.up.key=1
""")
    try:
        wait_port(port, proc)
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
        topic = fresh_topic("cfg")
        md = admin.list_topics(topic=topic, timeout=METADATA_TIMEOUT_S)  # auto-creates it
        assert [b.id for b in md.brokers.values()] == [3]
        assert md.controller_id == 3
        deadline = time.monotonic() + METADATA_TIMEOUT_S
        while len(md.topics[topic].partitions) != 3 and time.monotonic() < deadline:
            time.sleep(0.1)
            md = admin.list_topics(topic=topic, timeout=METADATA_TIMEOUT_S)
        assert len(md.topics[topic].partitions) == 3
        assert (tmp_path / "kafka-logs" / "meta.properties").is_file()
    finally:
        assert stop_process(proc) == 0
    text = log.read_text()
    assert "socket.send.buffer.bytes" in text and "not supported yet" in text, text
    assert "log.retention.hours" not in text, text
    assert "some.made.up.key" in text and "unknown configuration key" in text, text
    assert "zookeeper.connect" not in text and "num.network.threads" not in text, text


def test_kafka4_stock_kraft_server_properties(tmp_path):
    """Kafka 4's config/server.properties (a one-node KRaft quorum found through
    controller.quorum.bootstrap.servers, what `kafka-storage format --standalone`
    sets up), only the ports and log.dirs changed: a combined member that serves
    produce and fetch, is its own controller, and says who the quorum is."""
    port, cport = free_port(), free_port()
    proc, log = serve_with_config(tmp_path, f"""
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=localhost:{cport}
listeners=PLAINTEXT://:{port},CONTROLLER://:{cport}
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://localhost:{cport}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs={tmp_path / "kraft-combined-logs"}
admin.listener=127.0.0.1:{free_port()}
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
""")
    try:
        wait_port(port, proc)
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}", "broker.address.family": "v4"})
        deadline = time.monotonic() + START_TIMEOUT_S
        md = admin.list_topics(timeout=METADATA_TIMEOUT_S)
        while md.controller_id != 1 and time.monotonic() < deadline:
            time.sleep(0.2)
            md = admin.list_topics(timeout=METADATA_TIMEOUT_S)
        assert [b.id for b in md.brokers.values()] == [1]
        assert md.controller_id == 1
        topic = fresh_topic("kraft4")
        p = Producer({"bootstrap.servers": f"127.0.0.1:{port}", "broker.address.family": "v4", "acks": "all"})
        for i in range(10):
            p.produce(topic, f"v{i}".encode())
        assert p.flush(METADATA_TIMEOUT_S * 3) == 0
        c = Consumer({"bootstrap.servers": f"127.0.0.1:{port}", "broker.address.family": "v4",
                      "group.id": f"g-{topic}", "auto.offset.reset": "earliest"})
        c.subscribe([topic])
        got = []
        deadline = time.monotonic() + METADATA_TIMEOUT_S * 3
        while len(got) < 10 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.append(m.value().decode())
        c.close()
        assert got == [f"v{i}" for i in range(10)]
    finally:
        assert stop_process(proc) == 0
    text = log.read_text()
    assert "controller.quorum.bootstrap.servers" not in text, text
    # Share groups (KIP-932) are Kafka 4's; their keys are named as not supported yet.
    assert 'key "share.coordinator.state.topic.replication.factor" is not supported yet' in text, text
    assert "unknown configuration key" not in text, text


def test_invalid_value_is_a_clear_start_up_error(tmp_path):
    port = free_port()
    proc, log = serve_with_config(tmp_path, f"listeners=PLAINTEXT://127.0.0.1:{port}\n"
                                            f"log.dirs={tmp_path / 'd'}\nnum.partitions=0\n")
    try:
        code = proc.wait(timeout=EXIT_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=EXIT_TIMEOUT_S)
    assert code == 2
    text = log.read_text()
    assert "num.partitions" in text and "must be between 1 and" in text, text


def test_log_lines_are_plain_text_when_output_is_a_file(tmp_path):
    """No ANSI colour escapes in a log file or journal (only a terminal gets colour)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    log = tmp_path / "corelog.log"
    cmd = [str(corelog_bin()), "serve", "--smp", "1", "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}",
           "--override", f"log.dirs={tmp_path / 'd'}", "--override", f"admin.listener=127.0.0.1:{free_port()}"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_port(port, proc)
    finally:
        assert stop_process(proc, EXIT_TIMEOUT_S) == 0
    text = log.read_text()
    assert "corelog is serving" in text, text
    assert "\x1b[" not in text, text[:500]
