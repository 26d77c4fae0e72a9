"""`corelog connect standalone` with Kafka's stock property files (only bootstrap.servers,
file paths, offset file and REST port changed): lines of a file flow through a topic into
another file with the JsonConverter's exact envelope, appended lines follow, a SIGTERM and
restart with lines written meanwhile neither loses nor repeats a line, the REST API
answers as Kafka's, and a missing source file or a broker that is not up yet only delays
the data."""

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request

from clients import consume, flush, producer, watermarks, wait_until
from conftest import Broker, corelog_bin, free_port, fresh_topic, stop_process

FLOW_TIMEOUT_S = 20
EXIT_TIMEOUT_S = 15
HTTP_TIMEOUT_S = 5

# Kafka's stock config/connect-standalone.properties, the settings without comments;
# {placeholders} are what the seed's walkthrough changes.
WORKER_PROPERTIES = """\
bootstrap.servers={bootstrap}
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=true
value.converter.schemas.enable=true
offset.storage.file.filename={offsets}
offset.flush.interval.ms=10000
listeners=http://127.0.0.1:{rest_port}
"""

# config/connect-file-source.properties and config/connect-file-sink.properties.
SOURCE_PROPERTIES = """\
name=local-file-source
connector.class=FileStreamSource
tasks.max=1
file={file}
topic={topic}
"""

SINK_PROPERTIES = """\
name=local-file-sink
connector.class=FileStreamSink
tasks.max=1
file={file}
topics={topic}
"""


def envelope(line):
    # Jackson writes non-ASCII as UTF-8; the test lines hold no control characters
    # other than \t, which both escape alike.
    return ('{"schema":{"type":"string","optional":false},"payload":' + json.dumps(line, ensure_ascii=False)
            + "}").encode()


class Connect:
    """One `corelog connect standalone` process over property files in `dir`."""

    def __init__(self, tmp_path, bootstrap, topic, source=True, sink=True, source_extra="", sink_extra=""):
        self.dir = tmp_path
        self.rest_port = free_port()
        self.source_file = tmp_path / "test.txt"
        self.sink_file = tmp_path / "test.sink.txt"
        self.log_path = tmp_path / "connect.log"
        worker = tmp_path / "connect-standalone.properties"
        worker.write_text(WORKER_PROPERTIES.format(bootstrap=bootstrap, offsets=tmp_path / "connect.offsets",
                                                   rest_port=self.rest_port))
        self.files = [worker]
        if source:
            f = tmp_path / "connect-file-source.properties"
            f.write_text(SOURCE_PROPERTIES.format(file=self.source_file, topic=topic) + source_extra)
            self.files.append(f)
        if sink:
            f = tmp_path / "connect-file-sink.properties"
            f.write_text(SINK_PROPERTIES.format(file=self.sink_file, topic=topic) + sink_extra)
            self.files.append(f)
        self.proc = None

    def start(self):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([str(corelog_bin()), "connect", "standalone", *map(str, self.files)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.dir, env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
                                         start_new_session=True)
        wait_until(lambda: self._rest_up(), FLOW_TIMEOUT_S, "the REST API to answer")
        return self

    def _rest_up(self):
        assert self.proc.poll() is None, f"connect exited with {self.proc.returncode}:\n{self.log()}"
        try:
            return self.get("/connectors")[0] == 200
        except OSError:
            return False

    def stop(self):
        stop_process(self.proc, EXIT_TIMEOUT_S)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=EXIT_TIMEOUT_S)

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.rest_port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, (json.loads(raw) if raw else None)

    def get(self, path):
        return self.request("GET", path)

    def sink_lines(self):
        return self.sink_file.read_text().splitlines() if self.sink_file.exists() else []

    def wait_sink(self, expected):
        wait_until(lambda: len(self.sink_lines()) >= len(expected), FLOW_TIMEOUT_S,
                   f"{len(expected)} lines in {self.sink_file}; log:\n{self.log()[-3000:]}")
        assert self.sink_lines() == expected


def append(path, lines):
    with open(path, "a") as f:
        f.write("".join(line + "\n" for line in lines))


def test_walkthrough_follows_appends_and_resumes_exactly(broker, tmp_path):
    topic = fresh_topic("connect-test")
    c = Connect(tmp_path, broker.bootstrap, topic)
    first = ['127.0.0.1 - - "GET / HTTP/1.1" 200', "line two \\ with a backslash", "tab\there é"]
    append(c.source_file, first)
    c.start()
    try:
        c.wait_sink(first)
        more = ["appended 1", "appended 2"]
        append(c.source_file, more)
        c.wait_sink(first + more)
        c.stop()
        assert "corelog connect: stopped" in c.log()

        # Written while the worker is down: picked up after the restart, nothing twice.
        meanwhile = ["while stopped 1", "while stopped 2"]
        append(c.source_file, meanwhile)
        c.start()
        c.wait_sink(first + more + meanwhile)
        after = ["after restart"]
        append(c.source_file, after)
        everything = first + more + meanwhile + after
        c.wait_sink(everything)
        c.stop()
    finally:
        c.kill()
    assert c.sink_lines() == everything
    # The topic holds each line once, as the JsonConverter's envelope with a null key.
    assert watermarks(broker, topic, 0) == (0, len(everything))
    got = consume(broker, topic, {0: 0}, len(everything))
    assert [m.value() for m in got] == [envelope(line) for line in everything]
    assert all(m.key() is None for m in got)
    offsets = json.loads((tmp_path / "connect.offsets").read_text())
    size = c.source_file.stat().st_size
    assert offsets == {json.dumps(["local-file-source", {"filename": str(c.source_file)}],
                                  separators=(",", ":")): {"position": size}}


def test_rest_api(broker, tmp_path):
    topic = fresh_topic("connect-rest")
    c = Connect(tmp_path, broker.bootstrap, topic)
    append(c.source_file, ["one"])
    c.start()
    worker_id = f"127.0.0.1:{c.rest_port}"
    try:
        c.wait_sink(["one"])
        status, root = c.get("/")
        assert status == 200 and set(root) == {"version", "commit", "kafka_cluster_id"}
        assert isinstance(root["kafka_cluster_id"], str) and root["kafka_cluster_id"]
        assert c.get("/connectors") == (200, ["local-file-sink", "local-file-source"])
        assert c.get("/connectors/local-file-source/config") == (200, {
            "name": "local-file-source", "connector.class": "FileStreamSource", "tasks.max": "1",
            "file": str(c.source_file), "topic": topic})
        assert c.get("/connectors/local-file-sink/status") == (200, {
            "name": "local-file-sink", "connector": {"state": "RUNNING", "worker_id": worker_id},
            "tasks": [{"id": 0, "state": "RUNNING", "worker_id": worker_id}], "type": "sink"})
        assert c.get("/connectors/local-file-sink/tasks/0/status") == (200, {
            "id": 0, "state": "RUNNING", "worker_id": worker_id})
        status, expanded = c.get("/connectors?expand=status&expand=info")
        assert status == 200 and sorted(expanded) == ["local-file-sink", "local-file-source"]
        assert expanded["local-file-source"]["status"]["type"] == "source"
        assert expanded["local-file-source"]["info"]["config"]["topic"] == topic
        assert c.get("/connectors/nope/status") == (404, {"error_code": 404, "message": "Connector nope not found"})
        assert c.request("PUT", "/connectors/nope/pause") == (404, {"error_code": 404,
                                                                   "message": "Connector nope not found"})

        # Paused: lines wait; resumed: they flow.
        assert c.request("PUT", "/connectors/local-file-source/pause") == (202, None)
        wait_until(lambda: c.get("/connectors/local-file-source/status")[1]["tasks"][0]["state"] == "PAUSED",
                   FLOW_TIMEOUT_S, "the source task to pause")
        assert c.get("/connectors/local-file-source/status")[1]["connector"]["state"] == "PAUSED"
        append(c.source_file, ["two"])
        time.sleep(1.0)
        assert c.sink_lines() == ["one"]
        assert c.request("PUT", "/connectors/local-file-source/resume") == (202, None)
        c.wait_sink(["one", "two"])
        assert c.get("/connectors/local-file-source/status")[1]["tasks"][0]["state"] == "RUNNING"

        assert c.request("POST", "/connectors/local-file-sink/restart") == (204, None)
        append(c.source_file, ["three"])
        c.wait_sink(["one", "two", "three"])

        # A second sink through PUT config, reading two topics by topics.regex: created
        # (201), then updated (200).
        other = fresh_topic("connect-rest-b")
        prod = producer(broker)
        prod.produce(other, value=envelope("from the other topic"))
        flush(prod)
        copy = tmp_path / "copy.txt"
        config = {"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector", "tasks.max": "1",
                  "file": str(copy), "topics.regex": "connect-rest-.*"}
        status, info = c.request("PUT", "/connectors/copy-sink/config", config)
        assert (status, info) == (201, {"name": "copy-sink", "config": {**config, "name": "copy-sink"},
                                        "tasks": [{"connector": "copy-sink", "task": 0}], "type": "sink"})
        wait_until(lambda: copy.exists() and len(copy.read_text().splitlines()) >= 4, FLOW_TIMEOUT_S,
                   "the new sink to copy both topics")
        copied = copy.read_text().splitlines()
        assert sorted(copied) == sorted(["one", "two", "three", "from the other topic"])
        assert [line for line in copied if line != "from the other topic"] == ["one", "two", "three"]
        assert c.request("PUT", "/connectors/copy-sink/config", config)[0] == 200
        assert c.request("PUT", "/connectors/copy-sink/config", {**config, "name": "other"}) == (400, {
            "error_code": 400,
            "message": "Connector name configuration (other) doesn't match connector name in the URL (copy-sink)"})
        assert c.request("DELETE", "/connectors/copy-sink") == (204, None)
        assert c.get("/connectors") == (200, ["local-file-sink", "local-file-source"])
        assert c.request("DELETE", "/connectors/copy-sink") == (404, {"error_code": 404,
                                                                      "message": "Connector copy-sink not found"})
        c.stop()
    finally:
        c.kill()


def test_missing_source_file_waits_for_it(broker, tmp_path):
    topic = fresh_topic("connect-missing")
    c = Connect(tmp_path, broker.bootstrap, topic)
    c.start()
    try:
        wait_until(lambda: f"source file {c.source_file} does not exist; waiting for it to be created" in c.log(),
                   FLOW_TIMEOUT_S, "the missing-file warning")
        assert c.get("/connectors/local-file-source/status")[1]["tasks"][0]["state"] == "RUNNING"
        append(c.source_file, ["created later"])
        c.wait_sink(["created later"])
        assert f"{c.source_file} exists now" in c.log()
        c.stop()
    finally:
        c.kill()


def test_broker_down_at_start_and_while_running(tmp_path):
    broker = Broker(tmp_path / "broker")
    topic = fresh_topic("connect-late")
    c = Connect(tmp_path, broker.bootstrap, topic)
    append(c.source_file, ["before the broker"])
    c.start()
    try:
        wait_until(lambda: "not yet delivered" in c.log() and "cannot consume yet" in c.log(), FLOW_TIMEOUT_S,
                   "retry warnings while the broker is down")
        assert f"cannot connect to {broker.bootstrap}: Connection refused" in c.log()
        broker.start()
        append(c.source_file, ["after the broker"])
        c.wait_sink(["before the broker", "after the broker"])
        assert "connected to " + broker.bootstrap + "; sending the 1 lines that waited" in c.log()

        # The broker goes away while lines are written, and comes back: nothing is lost
        # (a line the sink wrote after its last commit may come again: at-least-once).
        retries_before = c.log().count("not yet delivered")
        broker.stop()
        append(c.source_file, ["during the outage"])
        wait_until(lambda: c.log().count("not yet delivered") > retries_before + 1, FLOW_TIMEOUT_S,
                   "the source to retry during the outage")
        broker.start()
        expected = ["before the broker", "after the broker", "during the outage"]
        wait_until(lambda: list(dict.fromkeys(c.sink_lines())) == expected, FLOW_TIMEOUT_S * 2,
                   f"the sink to catch up after the outage; log:\n{c.log()[-3000:]}")
        c.stop()
    finally:
        c.kill()
        if broker.is_running():
            broker.stop()


def test_record_the_converter_refuses_fails_the_sink_task(broker, tmp_path):
    topic = fresh_topic("connect-bad")
    c = Connect(tmp_path, broker.bootstrap, topic, source=False)
    prod = producer(broker)
    prod.produce(topic, value=envelope("good"))
    prod.produce(topic, value=b'"plain JSON, no envelope"')
    flush(prod)
    c.start()
    try:
        def task():
            return c.get("/connectors/local-file-sink/status")[1]["tasks"][0]
        wait_until(lambda: task()["state"] == "FAILED", FLOW_TIMEOUT_S, "the sink task to fail")
        assert "set schemas.enable=false in your converter configuration" in task()["trace"]
        assert c.get("/connectors/local-file-sink/status")[1]["connector"]["state"] == "RUNNING"
        assert c.sink_lines() == ["good"]
        assert "local-file-sink: task failed" in c.log()
        # A restart runs it again (and it fails again on the same record).
        assert c.request("POST", "/connectors/local-file-sink/restart") == (204, None)
        wait_until(lambda: c.log().count("local-file-sink: task failed") == 2, FLOW_TIMEOUT_S,
                   "the restarted task to meet the record again")
        c.stop()
    finally:
        c.kill()


def test_per_connector_converters(broker, tmp_path):
    """StringConverter on both ends (a connector's own value.converter overrides the
    worker's JsonConverter): the topic holds the raw line."""
    topic = fresh_topic("connect-string")
    string = "value.converter=org.apache.kafka.connect.storage.StringConverter\n"
    c = Connect(tmp_path, broker.bootstrap, topic, source_extra=string, sink_extra=string)
    lines = ["plain text", '{"looks": "like json"}']
    append(c.source_file, lines)
    c.start()
    try:
        c.wait_sink(lines)
        c.stop()
    finally:
        c.kill()
    got = consume(broker, topic, {0: 0}, len(lines))
    assert [m.value() for m in got] == [line.encode() for line in lines]


def test_json_without_schemas(broker, tmp_path):
    topic = fresh_topic("connect-plainjson")
    plain = "value.converter.schemas.enable=false\n"
    c = Connect(tmp_path, broker.bootstrap, topic, source_extra=plain, sink_extra=plain)
    lines = ['say "hi"', "back\\slash"]
    append(c.source_file, lines)
    c.start()
    try:
        c.wait_sink(lines)
        c.stop()
    finally:
        c.kill()
    got = consume(broker, topic, {0: 0}, len(lines))
    assert [m.value() for m in got] == [b'"say \\"hi\\""', b'"back\\\\slash"']
