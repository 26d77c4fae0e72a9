"""Just enough of the Kafka wire protocol, written by hand, to send what no client sends.

The bad-input tests need requests that real clients never produce (oversized or garbage
frames, unknown API keys, corrupt CRCs), and a few tests need exact wire-level answers
(a Produce error code, the timing of one Fetch). Everything here is non-flexible
(pre-KIP-482) encoding: request header v1, response header v0.

Every read on a socket has a timeout; every loop is bounded by a deadline.
"""

import socket
import struct
import time

API_PRODUCE = 0
API_FETCH = 1
API_METADATA = 3
API_API_VERSIONS = 18
API_INIT_PRODUCER_ID = 22
API_INCREMENTAL_ALTER_CONFIGS = 44
# IncrementalAlterConfigs ops by name.
CONFIG_OPS = {"set": 0, "delete": 1, "append": 2, "subtract": 3}

ERR_NONE = 0
ERR_CORRUPT_MESSAGE = 2
ERR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERR_MESSAGE_TOO_LARGE = 10
ERR_UNSUPPORTED_VERSION = 35
ERR_OUT_OF_ORDER_SEQUENCE_NUMBER = 45
ERR_INVALID_PRODUCER_EPOCH = 47
ERR_INVALID_TXN_STATE = 48
BATCH_ATTRIBUTE_TRANSACTIONAL = 0x10

CLIENT_ID = "corelog-e2e"
RECV_CHUNK_BYTES = 65536
# Responses in these tests are small; a bigger length prefix means we misparsed.
RESPONSE_FRAME_MAX_BYTES = 16 * 1024 * 1024

_CRC32C_POLY_REFLECTED = 0x82F63B78


def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _CRC32C_POLY_REFLECTED if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum of record batch v2."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC32C_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# --- primitive encoders ---------------------------------------------------------------

def int8(v):
    return struct.pack(">b", v)


def int16(v):
    return struct.pack(">h", v)


def int32(v):
    return struct.pack(">i", v)


def int64(v):
    return struct.pack(">q", v)


def string(s):
    raw = s.encode()
    return int16(len(raw)) + raw


def nullable_string(s):
    return int16(-1) if s is None else string(s)


def nullable_bytes(b):
    return int32(-1) if b is None else int32(len(b)) + b


def array(items):
    """items are already-encoded elements."""
    return int32(len(items)) + b"".join(items)


def varint(v):
    """Zig-zag varint/varlong as in record batch v2."""
    z = (v << 1) ^ (v >> 63)
    out = bytearray()
    while True:
        if z & ~0x7F:
            out.append((z & 0x7F) | 0x80)
            z >>= 7
        else:
            out.append(z)
            return bytes(out)


def _varint_bytes(b):
    return varint(-1) if b is None else varint(len(b)) + b


# --- decoding -------------------------------------------------------------------------

class Reader:
    """Reads big-endian fields from one response body; overruns raise."""

    def __init__(self, buf: bytes):
        self.buf = buf
        self.pos = 0

    def _take(self, n):
        if n < 0 or self.pos + n > len(self.buf):
            raise ValueError(f"read of {n} bytes at {self.pos} overruns a {len(self.buf)}-byte body")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def int8(self):
        return struct.unpack(">b", self._take(1))[0]

    def int16(self):
        return struct.unpack(">h", self._take(2))[0]

    def int32(self):
        return struct.unpack(">i", self._take(4))[0]

    def int64(self):
        return struct.unpack(">q", self._take(8))[0]

    def string(self):
        n = self.int16()
        return None if n < 0 else self._take(n).decode()

    def bytes(self):
        n = self.int32()
        return None if n < 0 else self._take(n)

    def array(self, read_one):
        n = self.int32()
        if n < 0:
            return None
        if n > len(self.buf) - self.pos:
            raise ValueError(f"array of {n} elements cannot fit in the rest of the body")
        return [read_one() for _ in range(n)]

    def remaining(self):
        return len(self.buf) - self.pos

    def expect_end(self):
        if self.remaining() != 0:
            raise ValueError(f"{self.remaining()} unparsed bytes at the end of the body")


# --- framing and connections ----------------------------------------------------------

def compact_string(s):
    raw = s.encode()
    return varint_unsigned(len(raw) + 1) + raw


def varint_unsigned(v):
    out = bytearray()
    while v & ~0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


EMPTY_TAGGED_FIELDS = b"\x00"


def request_frame(api_key, api_version, correlation_id, body, client_id=CLIENT_ID, flexible_header=False):
    """Length prefix + request header (v1, or v2 with its empty tagged fields) + body."""
    payload = int16(api_key) + int16(api_version) + int32(correlation_id) + nullable_string(client_id)
    if flexible_header:
        payload += EMPTY_TAGGED_FIELDS
    payload += body
    return int32(len(payload)) + payload


class Conn:
    """One blocking TCP connection with a timeout on every operation."""

    def __init__(self, port, timeout_s=10.0, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout_s)
        self.timeout_s = timeout_s
        self.local_port = self.sock.getsockname()[1]
        self.next_correlation_id = 1

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data: bytes):
        self.sock.sendall(data)

    def _recv_exact(self, n, deadline):
        chunks = []
        got = 0
        while got < n:
            left_s = deadline - time.monotonic()
            if left_s <= 0:
                raise TimeoutError(f"received {got} of {n} bytes before the deadline")
            self.sock.settimeout(left_s)
            chunk = self.sock.recv(min(n - got, RECV_CHUNK_BYTES))
            if not chunk:
                raise ConnectionError(f"connection closed after {got} of {n} bytes")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def recv_frame(self, timeout_s=None):
        """One response frame: (correlation_id, body)."""
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        (size,) = struct.unpack(">i", self._recv_exact(4, deadline))
        if not 4 <= size <= RESPONSE_FRAME_MAX_BYTES:
            raise ValueError(f"response length prefix {size} is out of range")
        frame = self._recv_exact(size, deadline)
        return struct.unpack(">i", frame[:4])[0], frame[4:]

    def request(self, api_key, api_version, body, timeout_s=None, flexible_header=False):
        """Send one request and return the body of its response (header v0 stripped)."""
        correlation_id = self.next_correlation_id
        self.next_correlation_id += 1
        self.send(request_frame(api_key, api_version, correlation_id, body, flexible_header=flexible_header))
        got_id, resp = self.recv_frame(timeout_s)
        if got_id != correlation_id:
            raise ValueError(f"response correlation id {got_id}, expected {correlation_id}")
        return resp

    def wait_closed(self, timeout_s=5.0):
        """True if the peer closes (EOF or reset) within timeout_s; bytes it sends meanwhile are dropped."""
        deadline = time.monotonic() + timeout_s
        while True:
            left_s = deadline - time.monotonic()
            if left_s <= 0:
                return False
            self.sock.settimeout(left_s)
            try:
                if not self.sock.recv(RECV_CHUNK_BYTES):
                    return True
            except (ConnectionResetError, BrokenPipeError):
                return True
            except socket.timeout:
                return False


# --- ApiVersions ----------------------------------------------------------------------

def parse_api_versions_v0(body):
    """(error_code, {api_key: (min_version, max_version)}); the body must be consumed exactly."""
    r = Reader(body)
    error_code = r.int16()
    entries = r.array(lambda: (r.int16(), r.int16(), r.int16()))
    r.expect_end()
    return error_code, {key: (lo, hi) for key, lo, hi in entries or []}


def api_versions(conn):
    return parse_api_versions_v0(conn.request(API_API_VERSIONS, 0, b""))


# --- record batch v2 ------------------------------------------------------------------

def record_batch(records, base_timestamp_ms, base_offset=0, producer_id=-1, producer_epoch=-1,
                 base_sequence=-1, attributes=0):
    """An uncompressed record batch (magic 2).

    records: list of (key, value, headers, timestamp_delta_ms); headers: list of (str, bytes|None).
    """
    body = bytearray()
    for i, (key, value, headers, ts_delta) in enumerate(records):
        rec = bytearray()
        rec += int8(0)  # record attributes
        rec += varint(ts_delta)
        rec += varint(i)  # offset delta
        rec += _varint_bytes(key)
        rec += _varint_bytes(value)
        rec += varint(len(headers))
        for h_key, h_value in headers:
            rec += _varint_bytes(h_key.encode()) + _varint_bytes(h_value)
        body += varint(len(rec)) + rec
    max_ts = base_timestamp_ms + max(r[3] for r in records)
    # attributes .. end is what the CRC covers.
    after_crc = (
        int16(attributes)  # batch attributes (0: no compression, create time, not transactional)
        + int32(len(records) - 1)  # last offset delta
        + int64(base_timestamp_ms)
        + int64(max_ts)
        + int64(producer_id)
        + int16(producer_epoch)
        + int32(base_sequence)
        + int32(len(records))
        + bytes(body)
    )
    partition_leader_epoch = -1
    magic = 2
    batch_length = 4 + 1 + 4 + len(after_crc)  # from partitionLeaderEpoch to the end
    return (
        int64(base_offset)
        + int32(batch_length)
        + int32(partition_leader_epoch)
        + int8(magic)
        + struct.pack(">I", crc32c(after_crc))
        + after_crc
    )


# Offset of the first byte the CRC covers (attributes), within a batch.
BATCH_CRC_OFFSET = 8 + 4 + 4 + 1
BATCH_CRC_COVERED_OFFSET = BATCH_CRC_OFFSET + 4


# --- Produce (v3 .. v8) ---------------------------------------------------------------

def produce_request_body(topic, partition, records, acks=-1, timeout_ms=10000, transactional_id=None):
    return (
        nullable_string(transactional_id)
        + int16(acks)
        + int32(timeout_ms)
        + array([string(topic) + array([int32(partition) + nullable_bytes(records)])])
    )


def parse_produce_response(version, body):
    """{(topic, partition): (error_code, base_offset)} for Produce v3..v8."""
    assert 3 <= version <= 8, version
    r = Reader(body)
    out = {}

    def partition_response(topic):
        index = r.int32()
        error_code = r.int16()
        base_offset = r.int64()
        r.int64()  # log append time
        if version >= 5:
            r.int64()  # log start offset
        if version >= 8:
            r.array(lambda: (r.int32(), r.string()))  # record errors
            r.string()  # error message
        out[(topic, index)] = (error_code, base_offset)

    def topic_response():
        name = r.string()
        r.array(lambda: partition_response(name))

    r.array(topic_response)
    r.int32()  # throttle time
    r.expect_end()
    return out


def produce(conn, version, topic, partition, records, acks=-1, timeout_s=15.0, transactional_id=None):
    body = conn.request(API_PRODUCE, version,
                        produce_request_body(topic, partition, records, acks, transactional_id=transactional_id),
                        timeout_s=timeout_s)
    return parse_produce_response(version, body)[(topic, partition)]


# --- InitProducerId v0 ----------------------------------------------------------------

def init_producer_id(conn, transaction_timeout_ms=60000, transactional_id=None):
    """(error_code, producer_id, producer_epoch): idempotent without a transactional id."""
    body = conn.request(API_INIT_PRODUCER_ID, 0,
                        nullable_string(transactional_id) + int32(transaction_timeout_ms))
    r = Reader(body)
    r.int32()  # throttle time
    out = (r.int16(), r.int64(), r.int16())
    r.expect_end()
    return out


# --- Fetch v11 ------------------------------------------------------------------------

FETCH_VERSION = 11


def fetch_request_body(topic, partition, offset, max_wait_ms, min_bytes=1, max_bytes=1 << 20):
    partition_data = (
        int32(partition)
        + int32(-1)  # current leader epoch: unknown
        + int64(offset)
        + int64(-1)  # log start offset: only followers send it
        + int32(max_bytes)
    )
    return (
        int32(-1)  # replica id: a consumer
        + int32(max_wait_ms)
        + int32(min_bytes)
        + int32(max_bytes)
        + int8(0)  # isolation level: read uncommitted
        + int32(0)  # session id: no fetch session
        + int32(-1)  # session epoch: full fetch, no session
        + array([string(topic) + array([partition_data])])
        + array([])  # forgotten topics
        + string("")  # rack id
    )


def parse_fetch_response_v11(body):
    """(top-level error, {(topic, partition): (error_code, high_watermark, records_bytes)})."""
    r = Reader(body)
    r.int32()  # throttle time
    error_code = r.int16()
    r.int32()  # session id
    out = {}

    def partition_response(topic):
        index = r.int32()
        p_error = r.int16()
        high_watermark = r.int64()
        r.int64()  # last stable offset
        r.int64()  # log start offset
        r.array(lambda: (r.int64(), r.int64()))  # aborted transactions
        r.int32()  # preferred read replica
        records = r.bytes()
        out[(topic, index)] = (p_error, high_watermark, records or b"")

    def topic_response():
        name = r.string()
        r.array(lambda: partition_response(name))

    r.array(topic_response)
    r.expect_end()
    return error_code, out


def fetch(conn, topic, partition, offset, max_wait_ms=0, min_bytes=1, timeout_s=15.0):
    """(error_code, high_watermark, records_bytes) of one partition."""
    body = conn.request(API_FETCH, FETCH_VERSION,
                        fetch_request_body(topic, partition, offset, max_wait_ms, min_bytes),
                        timeout_s=timeout_s)
    error_code, parts = parse_fetch_response_v11(body)
    if error_code != ERR_NONE:
        raise ValueError(f"Fetch answered top-level error {error_code}")
    return parts[(topic, partition)]


BATCH_HEADER_BYTES = 61
COMPRESSION_CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def batch_headers(data):
    """[(base_offset, attributes, record_count, crc_ok)] of the whole batches in data;
    a partial batch at the end (Fetch may cut one) is left out."""
    out = []
    pos = 0
    while pos + BATCH_HEADER_BYTES <= len(data):
        base_offset, batch_length = struct.unpack_from(">qi", data, pos)
        end = pos + 12 + batch_length
        if end > len(data):
            break
        (crc,) = struct.unpack_from(">I", data, pos + BATCH_CRC_OFFSET)
        (attributes,) = struct.unpack_from(">h", data, pos + BATCH_CRC_COVERED_OFFSET)
        (record_count,) = struct.unpack_from(">i", data, pos + 57)
        crc_ok = crc == crc32c(data[pos + BATCH_CRC_COVERED_OFFSET:end])
        out.append((base_offset, attributes, record_count, crc_ok))
        pos = end
    return out


def incremental_alter_configs(port, resource_type, name, changes, validate_only=False, timeout_s=10.0):
    """(error code, message) of one raw IncrementalAlterConfigs v0 of resource
    (`resource_type`, `name`) sent to the broker on `port`: `changes` are (op name, key,
    value). For what the clients cannot send to a chosen member."""
    configs = [string(k) + int8(CONFIG_OPS[op]) + nullable_string(v) for op, k, v in changes]
    body = array([int8(resource_type) + string(name) + array(configs)])
    body += int8(1 if validate_only else 0)
    with Conn(port) as conn:
        r = Reader(conn.request(API_INCREMENTAL_ALTER_CONFIGS, 0, body, timeout_s=timeout_s))
    r.int32()  # throttle time
    ((code, message),) = r.array(lambda: (r.int16(), r.string(), r.int8(), r.string())[:2])
    r.expect_end()
    return code, message
