"""Fetch long-poll: a fetch waiting at the log end is answered when data arrives,
not when its max wait runs out."""

import threading
import time

from confluent_kafka import KafkaError, TopicPartition

import kwire
from clients import consumer, create_topic, flush, producer
from conftest import fresh_topic

MAX_WAIT_MS = 5000
PRODUCE_DELAY_S = 1.0
# Far below MAX_WAIT_MS: a broker that holds the fetch for its full wait answers after ~5 s.
LATENCY_LIMIT_S = 3.0
EOF_TIMEOUT_S = 15


def produce_one(broker, topic, value):
    prod = producer(broker, {"acks": "1", "linger.ms": 0})
    prod.produce(topic, value=value, partition=0)
    flush(prod)


def test_waiting_consumer_gets_new_message_quickly(broker):
    topic = create_topic(broker, fresh_topic("longpoll"), 1)
    produce_one(broker, topic, b"before")
    c = consumer(broker, {"fetch.wait.max.ms": MAX_WAIT_MS, "fetch.error.backoff.ms": 100})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        got = []
        deadline = time.monotonic() + EOF_TIMEOUT_S
        while True:  # read "before", then wait for EOF: the consumer now fetches at the log end
            assert time.monotonic() < deadline, f"no EOF within {EOF_TIMEOUT_S} s; got {got}"
            msg = c.poll(0.2)
            if msg is None:
                continue
            if msg.error() is None:
                got.append(msg.value())
            elif msg.error().code() == KafkaError._PARTITION_EOF:
                break
        assert got == [b"before"]

        time.sleep(PRODUCE_DELAY_S)  # the fetch sent at EOF is now parked on the broker
        sent_at = time.monotonic()
        producer_thread = threading.Thread(target=produce_one, args=(broker, topic, b"after"), daemon=True)
        producer_thread.start()
        deadline = sent_at + MAX_WAIT_MS / 1000 * 2
        received = None
        while received is None and time.monotonic() < deadline:
            msg = c.poll(0.05)
            if msg is not None and msg.error() is None:
                received = (msg.value(), msg.offset(), time.monotonic() - sent_at)
        producer_thread.join(timeout=15)
        assert received is not None, "message never arrived"
        value, offset, latency_s = received
        assert (value, offset) == (b"after", 1)
        assert latency_s < LATENCY_LIMIT_S, f"arrived {latency_s:.2f} s after produce"
    finally:
        c.close()


def test_raw_fetch_waits_then_wakes_on_append(broker):
    """One Fetch at the log end with max wait 5 s: it must be held (not answered empty at
    once) and answered soon after an append 1 s later."""
    topic = create_topic(broker, fresh_topic("rawpoll"), 1)
    with kwire.Conn(broker.port, timeout_s=15) as conn:
        timer = threading.Timer(PRODUCE_DELAY_S, produce_one, args=(broker, topic, b"wake"))
        started = time.monotonic()
        timer.start()
        try:
            error_code, high_watermark, records = kwire.fetch(conn, topic, 0, 0, max_wait_ms=MAX_WAIT_MS)
        finally:
            timer.join(timeout=15)
        elapsed_s = time.monotonic() - started
    assert error_code == kwire.ERR_NONE
    assert elapsed_s >= PRODUCE_DELAY_S * 0.8, f"answered after {elapsed_s:.2f} s, before any data existed"
    assert elapsed_s < LATENCY_LIMIT_S, f"answered after {elapsed_s:.2f} s"
    assert high_watermark == 1
    assert [(base, count) for base, _, count, _ in kwire.batch_headers(records)] == [(0, 1)]


def test_raw_fetch_with_no_data_waits_max_wait(broker):
    """No append: the fetch is answered empty after about max wait, not at once and not never."""
    topic = create_topic(broker, fresh_topic("idlepoll"), 1)
    wait_ms = 1500
    with kwire.Conn(broker.port, timeout_s=15) as conn:
        started = time.monotonic()
        error_code, high_watermark, records = kwire.fetch(conn, topic, 0, 0, max_wait_ms=wait_ms)
        elapsed_s = time.monotonic() - started
    assert (error_code, high_watermark, records) == (kwire.ERR_NONE, 0, b"")
    assert wait_ms / 1000 * 0.9 <= elapsed_s < wait_ms / 1000 + 2.0, f"answered after {elapsed_s:.2f} s"
