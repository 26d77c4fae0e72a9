"""Fetch long-poll: a fetch waiting at the log end is answered when data arrives,
not when its max wait runs out."""

import threading
import time

import pytest

from confluent_kafka import TopicPartition

import kwire
from clients import consumer, create_topic, flush, producer
from conftest import fresh_topic

# Long enough that "woken by the append" and "answered when the wait ran out" cannot be
# confused even on a loaded machine: the limit is half the wait, measured from the
# produce's acknowledgement (no client start-up inside it).
MAX_WAIT_MS = 30000
LATENCY_LIMIT_S = MAX_WAIT_MS / 1000 / 2
# Lets the consumer's fetch at the log end reach the broker and park. Too short on a
# loaded machine only makes the test easier, never makes it fail.
PARK_DELAY_S = 1.0
READ_TIMEOUT_S = 15


def connected_producer(broker):
    """A producer that has already fetched metadata, so producing is one round trip."""
    prod = producer(broker, {"acks": "1", "linger.ms": 0})
    prod.list_topics(timeout=READ_TIMEOUT_S)
    return prod


def produce_one(broker, topic, value, connected=None):
    prod = connected or producer(broker, {"acks": "1", "linger.ms": 0})
    prod.produce(topic, value=value, partition=0)
    flush(prod)


def test_waiting_consumer_gets_new_message_quickly(broker):
    topic = create_topic(broker, fresh_topic("longpoll"), 1)
    produce_one(broker, topic, b"before")
    c = consumer(broker, {"fetch.wait.max.ms": MAX_WAIT_MS, "fetch.error.backoff.ms": 100})
    prod = connected_producer(broker)
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        got = []
        deadline = time.monotonic() + READ_TIMEOUT_S
        # Read "before": the consumer's next fetch is at the log end. (librdkafka reports
        # EOF only when that fetch is answered, so it is not waited for here.)
        while not got:
            assert time.monotonic() < deadline, f"nothing read within {READ_TIMEOUT_S} s"
            msg = c.poll(0.2)
            if msg is not None and msg.error() is None:
                got.append(msg.value())
        assert got == [b"before"]

        time.sleep(PARK_DELAY_S)  # the fetch sent at EOF is now parked on the broker
        produced = threading.Event()
        acked_at = []

        def produce_after():
            produce_one(broker, topic, b"after", connected=prod)
            acked_at.append(time.monotonic())
            produced.set()

        producer_thread = threading.Thread(target=produce_after, daemon=True)
        producer_thread.start()
        deadline = time.monotonic() + MAX_WAIT_MS / 1000 * 2
        received = None
        while received is None and time.monotonic() < deadline:
            msg = c.poll(0.05)
            if msg is not None and msg.error() is None:
                received = (msg.value(), msg.offset(), time.monotonic())
        producer_thread.join(timeout=15)
        assert received is not None, "message never arrived"
        assert produced.is_set()
        value, offset, received_at = received
        assert (value, offset) == (b"after", 1)
        latency_s = received_at - acked_at[0]
        assert latency_s < LATENCY_LIMIT_S, f"arrived {latency_s:.2f} s after the produce was acknowledged"
    finally:
        c.close()


def test_raw_fetch_waits_then_wakes_on_append(broker):
    """One Fetch at the log end with a long max wait: it must be held (not answered empty
    at once) and answered soon after an append, with the appended batch."""
    topic = create_topic(broker, fresh_topic("rawpoll"), 1)
    with kwire.Conn(broker.port, timeout_s=MAX_WAIT_MS / 1000 * 2) as fetcher, kwire.Conn(broker.port) as writer:
        body = kwire.fetch_request_body(topic, 0, 0, MAX_WAIT_MS)
        fetcher.send(kwire.request_frame(kwire.API_FETCH, kwire.FETCH_VERSION, 1, body))
        # An answer now would be an empty one: the fetch has to be held.
        fetcher.sock.settimeout(PARK_DELAY_S)
        with pytest.raises(TimeoutError):
            fetcher.sock.recv(1)
        batch = kwire.record_batch([(None, b"wake", [], 0)], int(time.time() * 1000))
        assert kwire.produce(writer, 7, topic, 0, batch, acks=1) == (kwire.ERR_NONE, 0)
        acked_at = time.monotonic()
        correlation_id, answer = fetcher.recv_frame()
        latency_s = time.monotonic() - acked_at
    assert correlation_id == 1
    error_code, parts = kwire.parse_fetch_response_v11(answer)
    assert error_code == kwire.ERR_NONE
    p_error, high_watermark, records = parts[(topic, 0)]
    assert (p_error, high_watermark) == (kwire.ERR_NONE, 1)
    assert [(base, count) for base, _, count, _ in kwire.batch_headers(records)] == [(0, 1)]
    assert latency_s < LATENCY_LIMIT_S, f"answered {latency_s:.2f} s after the append was acknowledged"


def test_raw_fetch_with_no_data_waits_max_wait(broker):
    """No append: the fetch is answered empty after about max wait, not at once and not never."""
    topic = create_topic(broker, fresh_topic("idlepoll"), 1)
    wait_ms = 1500
    with kwire.Conn(broker.port, timeout_s=15) as conn:
        started = time.monotonic()
        error_code, high_watermark, records = kwire.fetch(conn, topic, 0, 0, max_wait_ms=wait_ms)
        elapsed_s = time.monotonic() - started
    assert (error_code, high_watermark, records) == (kwire.ERR_NONE, 0, b"")
    # Not early; the upper bound only says "not never" (load delays the answer).
    assert wait_ms / 1000 * 0.9 <= elapsed_s < wait_ms / 1000 + 10.0, f"answered after {elapsed_s:.2f} s"
