"""The suite's own machinery, checked without a broker: the hand-written wire codec
against kafka-python's encoder and parser, and the harness's process handling."""

import struct
import subprocess
import sys

import pytest
from kafka.protocol.api_versions import ApiVersionsResponse
from kafka.protocol.fetch import FetchRequest, FetchResponse
from kafka.protocol.produce import ProduceRequest, ProduceResponse
from kafka.record.default_records import DefaultRecordBatch

import conftest
import kwire


def encode(struct_obj):
    # kafka-python binds encode() through a weak reference: keep the object alive.
    return struct_obj.encode()


def test_crc32c_check_value():
    assert kwire.crc32c(b"") == 0
    assert kwire.crc32c(b"123456789") == 0xE3069283


@pytest.mark.parametrize("v", [0, 1, -1, 63, -64, 64, 300, -300, 2**31 - 1, -2**31, 2**62])
def test_varint_matches_kafka_python(v):
    from kafka.record.util import encode_varint
    out = bytearray()
    encode_varint(v, out.append)
    assert kwire.varint(v) == bytes(out)


def test_record_batch_is_read_back_by_kafka_python():
    records = [(b"k1", b"v1", [("h", b"x")], 0), (None, b"", [], 5), (b"k3", None, [("a", None), ("b", b"")], 2)]
    batch = kwire.record_batch(records, base_timestamp_ms=1_700_000_000_000, base_offset=42)
    parsed = DefaultRecordBatch(bytearray(batch))
    assert parsed.validate_crc()
    assert (parsed.base_offset, parsed.magic, parsed.compression_type) == (42, 2, 0)
    got = [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in parsed]
    assert got == [(42, 1_700_000_000_000, b"k1", b"v1", [("h", b"x")]),
                   (43, 1_700_000_000_005, None, b"", []),
                   (44, 1_700_000_000_002, b"k3", None, [("a", None), ("b", b"")])]


def test_flipped_value_byte_breaks_crc():
    batch = bytearray(kwire.record_batch([(b"k", b"value", [], 0)], 1))
    batch[batch.index(b"value")] ^= 1
    assert not DefaultRecordBatch(batch).validate_crc()
    assert kwire.batch_headers(bytes(batch)) == [(0, 0, 1, False)]


def test_batch_headers_skips_partial_tail():
    a = kwire.record_batch([(None, b"a", [], 0)] * 3, 1, base_offset=0)
    b = kwire.record_batch([(None, b"b", [], 0)], 1, base_offset=3)
    assert kwire.batch_headers(a + b + b[:-1]) == [(0, 0, 3, True), (3, 0, 1, True)]


def test_produce_request_matches_kafka_python():
    records = kwire.record_batch([(b"k", b"v", [], 0)], 1)
    ours = kwire.produce_request_body("topic-a", 3, records, acks=-1, timeout_ms=1234)
    theirs = encode(ProduceRequest[7](transactional_id=None, required_acks=-1, timeout=1234,
                               topics=[("topic-a", [(3, records)])]))
    assert ours == theirs


def test_fetch_request_matches_kafka_python():
    ours = kwire.fetch_request_body("topic-b", 2, 77, max_wait_ms=5000, min_bytes=1, max_bytes=1 << 20)
    theirs = encode(FetchRequest[11](replica_id=-1, max_wait_time=5000, min_bytes=1, max_bytes=1 << 20,
                              isolation_level=0, session_id=0, session_epoch=-1,
                              topics=[("topic-b", [(2, -1, 77, -1, 1 << 20)])],
                              forgotten_topics_data=[], rack_id=""))
    assert ours == theirs


@pytest.mark.parametrize("version", [3, 5, 7, 8])
def test_produce_response_parse(version):
    if version >= 8:
        partition = (1, 2, -1, -1, -1, [], None)
    elif version >= 5:
        partition = (1, 2, -1, -1, -1)
    else:
        partition = (1, 2, -1, -1)
    ok = (0, 0, 17, -1, 0, [], None)[:len(partition)]
    body = encode(ProduceResponse[version](topics=[("t", [partition, ok])], throttle_time_ms=0))
    assert kwire.parse_produce_response(version, body) == {("t", 1): (2, -1), ("t", 0): (0, 17)}


def test_fetch_response_parse():
    records = kwire.record_batch([(None, b"x", [], 0)], 1)
    body = encode(FetchResponse[11](throttle_time_ms=0, error_code=0, session_id=0,
                             topics=[("t", [(0, 0, 1, 1, 0, None, -1, records)])]))
    assert kwire.parse_fetch_response_v11(body) == (0, {("t", 0): (0, 1, records)})


def test_api_versions_v0_parse_is_exact():
    body = encode(ApiVersionsResponse[0](error_code=35, api_versions=[(18, 0, 4), (0, 0, 11)]))
    assert kwire.parse_api_versions_v0(body) == (35, {18: (0, 4), 0: (0, 11)})
    with pytest.raises(ValueError):
        kwire.parse_api_versions_v0(body + b"\0")


def test_request_frame_layout():
    frame = kwire.request_frame(18, 99, 5, b"BODY", client_id="c", flexible_header=True)
    assert frame == struct.pack(">ihhih", 16, 18, 99, 5, 1) + b"c" + b"\0" + b"BODY"


# --- process handling ------------------------------------------------------------------

def python_process(code):
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"ready\n"
    return proc


TRAPS_TERM = "import signal,sys,time; signal.signal(signal.SIGTERM, lambda *a: sys.exit({rc})); print('ready', flush=True); time.sleep(60)"
IGNORES_TERM = "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
DIES_ON_TERM = "import time; print('ready', flush=True); time.sleep(60)"


def test_stop_accepts_clean_exit():
    assert conftest.stop_process(python_process(TRAPS_TERM.format(rc=0)), timeout_s=5) == 0


def test_stop_fails_on_nonzero_exit():
    with pytest.raises(conftest.BrokerError, match="code 3"):
        conftest.stop_process(python_process(TRAPS_TERM.format(rc=3)), timeout_s=5)


def test_stop_fails_on_death_by_sigterm():
    with pytest.raises(conftest.BrokerError, match="SIGTERM"):
        conftest.stop_process(python_process(DIES_ON_TERM), timeout_s=5)


def test_stop_kills_and_fails_when_sigterm_is_ignored():
    proc = python_process(IGNORES_TERM)
    with pytest.raises(conftest.BrokerError, match="still running"):
        conftest.stop_process(proc, timeout_s=0.5)
    assert proc.returncode == -9


def test_stop_fails_when_already_dead():
    proc = python_process(TRAPS_TERM.format(rc=0))
    proc.kill()
    proc.wait(timeout=5)
    with pytest.raises(conftest.BrokerError, match="had already exited with signal SIGKILL"):
        conftest.stop_process(proc, timeout_s=5)


def fake_binary(tmp_path, script):
    path = tmp_path / "fake-corelog"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return path


def test_start_reports_early_exit_and_logs_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("CORELOG_BIN", str(fake_binary(tmp_path, 'echo "args: $*"\nexit 3\n')))
    broker = conftest.Broker(tmp_path / "b", overrides={"message.max.bytes": "10000"})
    with pytest.raises(conftest.BrokerError, match="exited with code 3 during start-up"):
        broker.start()
    log = broker.log_text()
    assert (f"args: serve --smp 2 --override listeners=PLAINTEXT://127.0.0.1:{broker.port} "
            f"--override advertised.listeners=PLAINTEXT://127.0.0.1:{broker.port} "
            f"--override log.dirs={tmp_path / 'b' / 'd0'} "
            f"--override admin.listener=127.0.0.1:{broker.admin_port} "
            f"--override message.max.bytes=10000") in log


def test_start_times_out_when_nothing_listens(tmp_path, monkeypatch):
    monkeypatch.setenv("CORELOG_BIN", str(fake_binary(tmp_path, "exec sleep 30\n")))
    monkeypatch.setattr(conftest, "READY_TIMEOUT_S", 1.0)
    broker = conftest.Broker(tmp_path / "b")
    try:
        with pytest.raises(conftest.BrokerError, match="not ready within 1 s"):
            broker.start()
    finally:
        broker.kill9()


def test_missing_binary_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CORELOG_BIN", str(tmp_path / "nope"))
    with pytest.raises(conftest.BrokerError, match="no corelog binary"):
        conftest.Broker(tmp_path / "b").start()


def test_relative_bin_resolves_against_repo_root(monkeypatch):
    monkeypatch.setenv("CORELOG_BIN", "target/release/corelog")
    assert conftest.corelog_bin() == conftest.REPO_ROOT / "target/release/corelog"
    assert (conftest.REPO_ROOT / "Cargo.toml").is_file()
