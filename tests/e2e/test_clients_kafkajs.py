"""KafkaJS (npm, the version pinned in tests/e2e/kafkajs/package.json): admin create,
produce uncompressed and gzip (its built-in codecs), group consumption with explicit
commits, and a broker restart after which the group resumes from its commit."""

import os
import shutil
import subprocess

import pytest

from clients import consume, watermarks
from conftest import fresh_topic
from test_clients_go import committed

KAFKAJS_DIR = os.path.join(os.path.dirname(__file__), "kafkajs")
CLIENT_TIMEOUT_S = 90


@pytest.fixture(scope="module")
def node():
    path = shutil.which("node")
    assert path, "node is missing: scripts/test.sh --install-only installs nodejs"
    assert os.path.isdir(os.path.join(KAFKAJS_DIR, "node_modules", "kafkajs")), \
        "KafkaJS is missing: scripts/test.sh --install-only runs npm ci in tests/e2e/kafkajs"
    return path


def kafkajs(node, *args):
    out = subprocess.run([node, os.path.join(KAFKAJS_DIR, "client.js"), *[str(a) for a in args]],
                         capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S)
    assert out.returncode == 0, f"{args} exited {out.returncode}\nstderr:\n{out.stderr}"
    return out.stdout.splitlines()


def test_kafkajs_creates_produces_and_resumes_its_group_after_restart(broker, node):
    topic = fresh_topic("kafkajs")
    group = fresh_topic("kafkajs-group")
    kafkajs(node, "create", broker.bootstrap, topic, 1)
    kafkajs(node, "produce", broker.bootstrap, topic, 0, 5, "none")
    kafkajs(node, "produce", broker.bootstrap, topic, 5, 5, "gzip")
    assert watermarks(broker, topic, 0) == (0, 10)
    got = consume(broker, topic, {0: 0}, 10)
    assert [(m.key(), m.value()) for m in got] == [(b"k%d" % i, b"kafkajs-%d" % i) for i in range(10)]

    first = kafkajs(node, "consume", broker.bootstrap, topic, group, 7)
    assert first == ["0 %d k%d kafkajs-%d" % (i, i, i) for i in range(7)]
    assert committed(broker, group, topic) == 7
    broker.restart()
    kafkajs(node, "produce", broker.bootstrap, topic, 10, 2, "gzip")
    second = kafkajs(node, "consume", broker.bootstrap, topic, group, 5)
    assert second == ["0 %d k%d kafkajs-%d" % (i, i, i) for i in range(7, 12)]
    assert committed(broker, group, topic) == 12
