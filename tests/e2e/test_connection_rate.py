"""Connection creation rates (KIP-612) with real sockets: an `ip` entity's
connection_creation_rate set and described through AlterClientQuotas /
DescribeClientQuotas (what kafka-configs --entity-type ips drives), and the broker's
max.connection.creation.rate. A connection over a rate is closed at accept, with a log
line; other addresses are not affected. Rates are measured over 2 windows of 1 s.
"""

import time

import kwire
from test_quotas import conn_from, quota

WINDOWS = {"quota.window.num": "2", "quota.window.size.seconds": "1"}
API_ALTER_CLIENT_QUOTAS = 49
API_DESCRIBE_CLIENT_QUOTAS = 48
INVALID_REQUEST = 42
LIMITED_IP = "127.0.0.7"
OTHER_IP = "127.0.0.8"


def alter_ip_quota(conn, ip, key, value):
    """AlterClientQuotas v0 of one ip entity; (error code, message)."""
    entity = kwire.array([kwire.string("ip") + kwire.nullable_string(ip)])
    ops = kwire.array([kwire.string(key) + struct_double(value) + kwire.int8(0)])
    body = kwire.array([entity + ops]) + kwire.int8(0)
    r = kwire.Reader(conn.request(API_ALTER_CLIENT_QUOTAS, 0, body))
    r.int32()
    entries = r.array(lambda: (r.int16(), r.string(), r.array(lambda: (r.string(), r.string()))))
    assert len(entries) == 1
    return entries[0][0], entries[0][1]


def struct_double(v):
    import struct
    return struct.pack(">d", v)


def describe_ips(conn):
    """DescribeClientQuotas v0 of every ip entity: {ip: {key: value}}."""
    body = kwire.array([kwire.string("ip") + kwire.int8(2) + kwire.nullable_string(None)]) + kwire.int8(0)
    r = kwire.Reader(conn.request(API_DESCRIBE_CLIENT_QUOTAS, 0, body))
    r.int32()
    assert r.int16() == 0, r.string()
    r.string()
    import struct
    out = {}
    for entity, values in r.array(lambda: (r.array(lambda: (r.string(), r.string())),
                                           r.array(lambda: (r.string(), struct.unpack(">d", r._take(8))[0])))):
        assert [t for t, _ in entity] == ["ip"]
        out[entity[0][1]] = dict(values)
    return out


def outcomes(ip, port, count):
    """Opens `count` connections from `ip` at once (well within one window), then asks
    each for ApiVersions: how many were served and how many were closed at accept."""
    conns = [conn_from(ip, port) for _ in range(count)]
    served = refused = 0
    for c in conns:
        try:
            kwire.api_versions(c)
            served += 1
        except (ConnectionError, OSError):
            refused += 1
        finally:
            c.close()
    return served, refused


def test_ip_connection_creation_rate(broker_factory):
    broker = broker_factory(WINDOWS)
    with kwire.Conn(broker.port) as admin:
        assert alter_ip_quota(admin, LIMITED_IP, "connection_creation_rate", 5)[0] == 0
        # As in Kafka: ip entities take connection_creation_rate only, and a real address.
        assert alter_ip_quota(admin, LIMITED_IP, "producer_byte_rate", 5)[0] == INVALID_REQUEST
        assert alter_ip_quota(admin, "not-an-ip", "connection_creation_rate", 5)[0] == INVALID_REQUEST
        assert describe_ips(admin) == {LIMITED_IP: {"connection_creation_rate": 5.0}}
    # 5 per second, measured as Kafka's Rate over the current window and the one before:
    # 5 connections at least, 10 at most (a window's worth on top), then refusals.
    served, refused = outcomes(LIMITED_IP, broker.port, 15)
    assert 5 <= served <= 10 and refused == 15 - served, (served, refused)
    assert broker.wait_for_log(f"refusing connection: {LIMITED_IP} is over its connection_creation_rate quota"), \
        broker.log_tail()
    # Another address has no quota (no default ip is set).
    assert outcomes(OTHER_IP, broker.port, 15) == (15, 0)
    # Once the windows have passed the limited address gets in again.
    time.sleep(2.2)
    assert outcomes(LIMITED_IP, broker.port, 3) == (3, 0)
    # The toolbox (kafka-configs --entity-type ips): a default ip now limits every other
    # address (127.0.0.1 too: the three tool runs stay under it); the limited address's
    # own entity still wins.
    quota(broker, "set", "--ip-defaults", "--add-config", "connection_creation_rate=4")
    assert quota(broker, "describe", "--ip-defaults") == (
        "Quota configs for the default ip are connection_creation_rate=4.0\n")
    assert quota(broker, "describe", "--ip", LIMITED_IP) == (
        f"Quota configs for ip '{LIMITED_IP}' are connection_creation_rate=5.0\n")
    time.sleep(2.2)
    served, refused = outcomes(OTHER_IP, broker.port, 15)
    assert 4 <= served <= 8 and refused == 15 - served, (served, refused)


def test_broker_max_connection_creation_rate(broker_factory):
    broker = broker_factory({**WINDOWS, "max.connection.creation.rate": "20"})
    time.sleep(2.2)  # the harness's own connections leave the windows
    served, refused = outcomes(OTHER_IP, broker.port, 60)
    assert 20 <= served <= 40 and refused == 60 - served, (served, refused)
    assert broker.wait_for_log("refusing connection: over the broker's max.connection.creation.rate"), \
        broker.log_tail()
