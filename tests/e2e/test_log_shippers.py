"""Log shippers users put in front of Kafka, from Debian's packages: rsyslog's omkafka
(rsyslog-kafka) and syslog-ng's kafka-c() destination (syslog-ng-mod-rdkafka), both over
Debian's librdkafka 2.0.2. Each tails a log file and writes each line to a topic,
gzip-compressed; the topic is then read back and must hold exactly the file's lines, in
order. The two packages conflict (both are the system logger), so scripts/test.sh
installs rsyslog and unpacks syslog-ng's packages into .syslog-ng/ (SYSLOG_NG_ROOT)."""

import os
import shutil
import subprocess
import time

import pytest

from clients import consume, create_topic, watermarks
from conftest import fresh_topic, stop_process

LINES = 200
SHIP_TIMEOUT_S = 30
RSYSLOG_MODULES = "/usr/lib/x86_64-linux-gnu/rsyslog"
SYSLOG_NG_VERSION = "3.38"
SYSLOG_NG_ROOT = os.environ.get("SYSLOG_NG_ROOT",
                                os.path.join(os.path.dirname(__file__), "..", "..", ".syslog-ng"))


def wait_for_offsets(broker, topic, count, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if watermarks(broker, topic, 0)[1] >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"{topic} holds {watermarks(broker, topic, 0)[1]} of {count} lines after {timeout_s} s")


def rsyslog_config(workdir, log_file, broker, topic):
    return f'''
global(workDirectory="{workdir}")
module(load="imfile")
module(load="omkafka")
template(name="line" type="string" string="%msg%")
ruleset(name="tokafka") {{
  action(type="omkafka" broker=["{broker.bootstrap}"] topic="{topic}" template="line"
         partitions.number="1"
         confParam=["compression.codec=gzip", "broker.address.family=v4", "queue.buffering.max.ms=50"])
}}
input(type="imfile" File="{log_file}" Tag="app" ruleset="tokafka" freshStartTail="off")
'''


@pytest.fixture
def rsyslogd():
    path = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    assert os.path.exists(path) and os.path.exists(os.path.join(RSYSLOG_MODULES, "omkafka.so")), \
        "rsyslog's omkafka is missing: scripts/test.sh --install-only installs rsyslog-kafka"
    return path


def write_log(path):
    lines = [f"line {i} of the application log: status=ok id={i:05d}" for i in range(LINES)]
    path.write_text("".join(line + "\n" for line in lines))
    return lines


def ship(cmd, env, out_path, broker, topic):
    """Runs the shipper until the topic holds LINES records, then stops it (SIGTERM)."""
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for_offsets(broker, topic, LINES, SHIP_TIMEOUT_S)
        finally:
            stop_process(proc)


def test_rsyslog_omkafka_ships_a_files_lines_exactly(broker, rsyslogd, tmp_path):
    topic = create_topic(broker, fresh_topic("rsyslog"), 1)
    log_file = tmp_path / "app.log"
    lines = write_log(log_file)
    conf = tmp_path / "rsyslog.conf"
    conf.write_text(rsyslog_config(tmp_path, log_file, broker, topic))
    ship([rsyslogd, "-n", "-f", str(conf), "-i", str(tmp_path / "rsyslogd.pid")], None,
         tmp_path / "rsyslogd.out", broker, topic)
    got = consume(broker, topic, {0: 0}, LINES)
    assert [m.value().decode() for m in got] == lines
    assert watermarks(broker, topic, 0) == (0, LINES)


def syslog_ng_config(log_file, broker, topic):
    return f'''@version: {SYSLOG_NG_VERSION}
source s_file {{ file("{log_file}" flags(no-parse) follow-freq(0.2)); }};
destination d_kafka {{
  kafka-c(bootstrap-servers("{broker.bootstrap}")
          config("broker.address.family" => "v4" "compression.codec" => "gzip" "linger.ms" => "50")
          topic("{topic}") message("$MSG"));
}};
log {{ source(s_file); destination(d_kafka); }};
'''


@pytest.fixture
def syslog_ng():
    """(binary, environment): the system's syslog-ng, or the one unpacked in SYSLOG_NG_ROOT."""
    for root in ("/", os.path.abspath(SYSLOG_NG_ROOT)):
        binary = os.path.join(root, "usr/sbin/syslog-ng")
        modules = os.path.join(root, "usr/lib/syslog-ng", SYSLOG_NG_VERSION)
        if os.path.exists(binary) and os.path.exists(os.path.join(modules, "libkafka.so")):
            libs = [os.path.join(root, d) for d in ("usr/lib/syslog-ng", "usr/lib/x86_64-linux-gnu",
                                                    "lib/x86_64-linux-gnu")]
            env = {**os.environ, "LD_LIBRARY_PATH": ":".join(libs)}
            return [binary, f"--module-path={modules}"], env
    raise AssertionError("syslog-ng's kafka module is missing: scripts/test.sh --install-only unpacks "
                         "syslog-ng-mod-rdkafka into .syslog-ng/")


def test_syslog_ng_kafka_destination_ships_a_files_lines_exactly(broker, syslog_ng, tmp_path):
    topic = create_topic(broker, fresh_topic("syslog-ng"), 1)
    log_file = tmp_path / "app.log"
    lines = write_log(log_file)
    conf = tmp_path / "syslog-ng.conf"
    conf.write_text(syslog_ng_config(log_file, broker, topic))
    cmd, env = syslog_ng
    ship([*cmd, "-F", "-f", str(conf), f"--persist-file={tmp_path / 'persist'}",
          f"--pidfile={tmp_path / 'pid'}", f"--control={tmp_path / 'ctl'}"], env,
         tmp_path / "syslog-ng.out", broker, topic)
    got = consume(broker, topic, {0: 0}, LINES)
    assert [m.value().decode() for m in got] == lines
    assert watermarks(broker, topic, 0) == (0, LINES)
