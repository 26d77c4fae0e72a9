"""kcat, linked against Debian's librdkafka 2.0.2: the oldest client in the matrix."""

import json

import kwire
from clients import kcat, partition_counts
from conftest import fresh_topic

LINES = 1000


def weblog_lines(n):
    paths = ["/", "/index.html", "/api/v1/items?page=2", "/static/app.js", "/login"]
    return [f"127.0.0.{i % 7 + 1} - - [{i:06d}] \"GET {paths[i % len(paths)]} HTTP/1.1\" "
            f"{200 + (i % 3) * 100} {i * 37 % 5000}" for i in range(n)]


def test_list_shows_one_broker_at_advertised_address(broker):
    meta = json.loads(kcat(broker, "-L", "-J").stdout)
    assert meta["brokers"] == [{"id": 0, "name": f"127.0.0.1:{broker.port}"}]
    assert meta["controllerid"] == 0


def test_list_uses_configured_node_id_and_advertised_host(broker_factory):
    b = broker_factory(node_id=7, advertised_host="localhost")
    meta = json.loads(kcat(b, "-L", "-J").stdout)
    assert meta["brokers"] == [{"id": 7, "name": f"localhost:{b.port}"}]
    assert meta["controllerid"] == 7


def test_produce_then_consume_lines_in_order(broker):
    topic = fresh_topic("weblogs")
    lines = weblog_lines(LINES)
    kcat(broker, "-P", "-t", topic, input=("\n".join(lines) + "\n").encode())
    # Auto-created with Kafka's default num.partitions=1, so one order for all lines.
    assert partition_counts(broker)[topic] == 1
    out = kcat(broker, "-C", "-t", topic, "-o", "beginning", "-e", "-q").stdout.decode()
    assert out.splitlines() == lines


def test_keys_and_offsets(broker):
    topic = fresh_topic("keyed")
    n = 300
    rows = [f"user-{i % 17}:event {i} payload {'x' * (i % 50)}" for i in range(n)]
    kcat(broker, "-P", "-t", topic, "-K:", input=("\n".join(rows) + "\n").encode())
    out = kcat(broker, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k|%s|%o\\n").stdout.decode()
    expected = [f"user-{i % 17}|event {i} payload {'x' * (i % 50)}|{i}" for i in range(n)]
    assert out.splitlines() == expected


def test_compressed_batches_are_stored_as_sent(broker):
    """librdkafka 2.0.2 silently stops compressing when Produce v0 is not advertised
    (KAFKA-18659): the stored batches must carry the codec kcat was asked for."""
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        topic = fresh_topic(f"kcat-{codec}")
        lines = [f"{codec} line {i} " + "abc" * (i % 40) for i in range(500)]
        kcat(broker, "-P", "-t", topic, "-z", codec, input=("\n".join(lines) + "\n").encode())
        out = kcat(broker, "-C", "-t", topic, "-o", "beginning", "-e", "-q").stdout.decode()
        assert out.splitlines() == lines, codec
        with kwire.Conn(broker.port) as conn:
            error_code, high_watermark, records = kwire.fetch(conn, topic, 0, 0)
        assert (error_code, high_watermark) == (0, len(lines)), codec
        batches = kwire.batch_headers(records)
        assert batches, f"{codec}: Fetch from offset 0 returned no whole batch"
        assert batches[0][0] == 0, codec
        # librdkafka sends a batch uncompressed when compressing would not shrink it (a
        # lone short line, say), so a batch may carry codec 0 -- but never another codec,
        # and the compressed ones must hold most of the records.
        compressed = 0
        for base_offset, attributes, count, crc_ok in batches:
            assert attributes & 0x7 in (0, kwire.COMPRESSION_CODECS[codec]), (codec, base_offset, attributes)
            assert crc_ok, (codec, base_offset)
            if attributes & 0x7:
                compressed += count
        assert compressed >= 0.9 * sum(b[2] for b in batches), (codec, batches)
