"""TLS and SASL listeners (issue 12), driven by confluent-kafka, kafka-python and kcat.

Certificates are made here with the openssl command (EC P-256 keys: fast to generate):
a test CA, a server certificate for localhost / 127.0.0.1, a client certificate
(CN=alice,O=corp,C=US) and a second, unrelated CA. Every broker keeps its PLAINTEXT
listener (the harness probes it) and adds the listeners under test.
"""

import os
import socket
import ssl
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer

import kwire
from clients import kcat_bin
from conftest import free_port, fresh_topic

OPENSSL_TIMEOUT_S = 30
CLIENT_TIMEOUT_S = 20
CLOSE_TIMEOUT_S = 5
RECORDS = 20


def openssl(cwd, *args):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=OPENSSL_TIMEOUT_S)


def make_ca(d, name, subject):
    openssl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", subject)


def make_cert(d, name, ca, subject, ext):
    openssl(d, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject)
    (d / f"{name}.ext").write_text(ext + "\n")
    openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    make_ca(d, "ca", "/CN=corelog-test-ca")
    make_ca(d, "other-ca", "/CN=other-ca")
    make_cert(d, "server", "ca", "/CN=localhost",
              "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth")
    make_cert(d, "client", "ca", "/C=US/O=corp/CN=alice", "extendedKeyUsage=clientAuth")
    # Kafka's ssl.keystore.location for PEM: the private key and the chain in one file.
    (d / "keystore.pem").write_bytes((d / "server.key").read_bytes() + (d / "server.pem").read_bytes())
    return d


def tls_broker(broker_factory, pki, overrides=None, names=("SSL",)):
    ports = {name: free_port() for name in names}
    settings = {"ssl.keystore.type": "PEM", "ssl.keystore.location": str(pki / "keystore.pem"), **(overrides or {})}
    return broker_factory(settings, extra_listeners=ports), ports


# --- the three clients: produce exact records and read them back ----------------------

def records(tag):
    return [(f"k{i}".encode(), f"{tag}-value-{i}".encode()) for i in range(RECORDS)]


def create_topic(conf, topic):
    admin = AdminClient(conf)
    fs = admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=CLIENT_TIMEOUT_S)
    fs[topic].result(timeout=CLIENT_TIMEOUT_S)


def confluent_roundtrip(conf, topic, tag="ck"):
    want = records(tag)
    create_topic(conf, topic)
    p = Producer({**conf, "message.timeout.ms": CLIENT_TIMEOUT_S * 1000})
    for k, v in want:
        p.produce(topic, v, key=k)
    assert p.flush(CLIENT_TIMEOUT_S) == 0
    c = Consumer({**conf, "group.id": fresh_topic("g"), "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    while len(got) < len(want) and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None:
            assert m.error() is None, m.error()
            got.append((m.key(), m.value()))
    c.close()
    assert got == want


def kafka_python_roundtrip(port, topic, **security):
    want = records("kp")
    p = KafkaProducer(bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=CLIENT_TIMEOUT_S * 1000, **security)
    for k, v in want:
        p.send(topic, value=v, key=k, partition=0)
    p.flush(timeout=CLIENT_TIMEOUT_S)
    p.close()
    c = KafkaConsumer(bootstrap_servers=f"127.0.0.1:{port}", auto_offset_reset="earliest",
                      consumer_timeout_ms=CLIENT_TIMEOUT_S * 1000, enable_auto_commit=False, **security)
    from kafka import TopicPartition as KTP
    c.assign([KTP(topic, 0)])
    got = []
    for m in c:
        got.append((m.key, m.value))
        if len(got) == len(want):
            break
    c.close()
    assert got == want


def kcat_roundtrip(port, topic, *xs):
    want = records("kcat")
    base = [kcat_bin(), "-b", f"127.0.0.1:{port}", "-X", "broker.address.family=v4"]
    for x in xs:
        base += ["-X", x]
    lines = "".join(f"{k.decode()}:{v.decode()}\n" for k, v in want)
    subprocess.run(base + ["-P", "-t", topic, "-K:", "-p", "0"], input=lines.encode(), check=True,
                   capture_output=True, timeout=CLIENT_TIMEOUT_S * 2)
    out = subprocess.run(base + ["-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-f", "%k:%s\\n"],
                         check=True, capture_output=True, timeout=CLIENT_TIMEOUT_S * 2).stdout
    assert out.decode() == lines


def ssl_conf(pki, port, **more):
    return {"bootstrap.servers": f"127.0.0.1:{port}", "broker.address.family": "v4",
            "security.protocol": "SSL", "ssl.ca.location": str(pki / "ca.pem"), **more}


# --- TLS -----------------------------------------------------------------------------

def test_ssl_listener_serves_all_three_clients_beside_plaintext(broker_factory, pki):
    b, ports = tls_broker(broker_factory, pki)
    port = ports["SSL"]
    conf = ssl_conf(pki, port)
    # Metadata on the SSL listener names the SSL port (clients reconnect there).
    md = AdminClient(conf).list_topics(timeout=CLIENT_TIMEOUT_S)
    assert [(x.host, x.port) for x in md.brokers.values()] == [("127.0.0.1", port)]
    confluent_roundtrip(conf, fresh_topic("ssl-ck"))
    topic = fresh_topic("ssl-kp")
    create_topic(conf, topic)
    kafka_python_roundtrip(port, topic, security_protocol="SSL", ssl_cafile=str(pki / "ca.pem"))
    topic = fresh_topic("ssl-kcat")
    create_topic(conf, topic)
    kcat_roundtrip(port, topic, "security.protocol=ssl", f"ssl.ca.location={pki / 'ca.pem'}")
    # The PLAINTEXT listener still serves, and names its own port.
    md = AdminClient({"bootstrap.servers": b.bootstrap, "broker.address.family": "v4"}).list_topics(timeout=10)
    assert [(x.host, x.port) for x in md.brokers.values()] == [("127.0.0.1", b.port)]


def closed_without_answer(sock):
    """Reads until the peer closes; True if no Kafka response (only TLS alerts at most)."""
    sock.settimeout(CLOSE_TIMEOUT_S)
    data = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    # A TLS record starts with a content type of 20-23; a Kafka response with its size.
    return data == b"" or data[0] in (0x15, 0x16)


def test_plaintext_client_and_garbage_on_tls_port_close_only_that_connection(broker_factory, pki):
    b, ports = tls_broker(broker_factory, pki)
    port = ports["SSL"]
    api_versions = kwire.request_frame(18, 0, 1, b"")
    for payload in (api_versions, os.urandom(70000), b"\x16\x03\x01\xff\xff" + b"\x00" * 100):
        with socket.create_connection(("127.0.0.1", port), timeout=CLOSE_TIMEOUT_S) as s:
            try:
                s.sendall(payload)
            except (BrokenPipeError, ConnectionResetError):
                continue
            assert closed_without_answer(s)
    b.wait_for_log("TLS handshake failed")
    # librdkafka speaking plaintext to the TLS port fails instead of hanging...
    with pytest.raises(KafkaException):
        AdminClient({"bootstrap.servers": f"127.0.0.1:{port}", "broker.address.family": "v4"}).list_topics(timeout=3)
    # ...and TLS clients are served all along.
    confluent_roundtrip(ssl_conf(pki, port), fresh_topic("after-garbage"))


def test_client_trusting_another_ca_refuses_the_broker(broker_factory, pki):
    b, ports = tls_broker(broker_factory, pki)
    port = ports["SSL"]
    ctx = ssl.create_default_context(cafile=str(pki / "other-ca.pem"))
    with socket.create_connection(("127.0.0.1", port), timeout=CLOSE_TIMEOUT_S) as s:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(s, server_hostname="localhost")
    with pytest.raises(KafkaException):
        AdminClient(ssl_conf(pki, port, **{"ssl.ca.location": str(pki / "other-ca.pem")})).list_topics(timeout=3)
    # The right CA is accepted by the same broker.
    AdminClient(ssl_conf(pki, port)).list_topics(timeout=CLIENT_TIMEOUT_S)


def tls_api_versions(port, ctx):
    with socket.create_connection(("127.0.0.1", port), timeout=CLOSE_TIMEOUT_S) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(kwire.request_frame(18, 0, 7, b""))
            head = s.recv(8)
            return head


def test_mutual_tls_required_refuses_a_client_without_certificate(broker_factory, pki):
    b, ports = tls_broker(broker_factory, pki, {
        "ssl.client.auth": "required", "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki / "ca.pem")})
    port = ports["SSL"]
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        head = tls_api_versions(port, ctx)
        # TLS 1.3: the refusal arrives as an alert on the first read.
        assert head[4:8] == (7).to_bytes(4, "big"), head
    ctx.load_cert_chain(str(pki / "client.pem"), str(pki / "client.key"))
    head = tls_api_versions(port, ctx)
    assert head[4:8] == (7).to_bytes(4, "big")
    conf = ssl_conf(pki, port, **{"ssl.certificate.location": str(pki / "client.pem"),
                                  "ssl.key.location": str(pki / "client.key")})
    confluent_roundtrip(conf, fresh_topic("mtls"))
    with pytest.raises(KafkaException):
        AdminClient(ssl_conf(pki, port)).list_topics(timeout=3)
    b.wait_for_log("TLS handshake failed")


def test_tls_settings_are_checked_at_start_up(broker_factory, pki, tmp_path):
    bad = tmp_path / "not-a-cert.pem"
    bad.write_text("hello\n")
    for settings, why in [
        ({"ssl.keystore.location": str(bad)}, "no CERTIFICATE block"),
        ({"ssl.keystore.location": str(pki / "keystore.pem"), "ssl.keystore.type": "JKS"}, "PEM only"),
        ({"ssl.keystore.location": str(pki / "keystore.pem"), "ssl.client.auth": "required"}, "truststore"),
    ]:
        cmd = [str(__import__("conftest").corelog_bin()), "serve", "--override", f"log.dirs={tmp_path / 'd'}",
               "--override", f"listeners=SSL://127.0.0.1:{free_port()}", "--override", "admin.listener="]
        for k, v in settings.items():
            cmd += ["--override", f"{k}={v}"]
        proc = subprocess.run(cmd, capture_output=True, timeout=CLIENT_TIMEOUT_S)
        assert proc.returncode != 0
        assert why in proc.stderr.decode() + proc.stdout.decode(), (settings, proc.stderr)
