"""TLS and SASL listeners (issue 12), driven by confluent-kafka, kafka-python and kcat.

Certificates are made here with the openssl command (EC P-256 keys: fast to generate):
a test CA, a server certificate for localhost / 127.0.0.1, a client certificate
(CN=alice,O=corp,C=US) and a second, unrelated CA. Every broker keeps its PLAINTEXT
listener (the harness probes it) and adds the listeners under test.
"""

import json
import os
import socket
import ssl
import subprocess
import time
import urllib.request

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
    assert b.wait_for_log("TLS handshake failed")
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
    assert b.wait_for_log("TLS handshake failed")


def test_certificate_reload_without_restart(broker_factory, pki, tmp_path):
    keystore = tmp_path / "live-keystore.pem"
    keystore.write_bytes((pki / "keystore.pem").read_bytes())
    b, ports = tls_broker(broker_factory, pki, {"ssl.keystore.location": str(keystore)})
    port = ports["SSL"]
    other = ssl.create_default_context(cafile=str(pki / "other-ca.pem"))
    with socket.create_connection(("127.0.0.1", port), timeout=CLOSE_TIMEOUT_S) as s:
        with pytest.raises(ssl.SSLCertVerificationError):
            other.wrap_socket(s, server_hostname="localhost")
    # A renewed certificate from the other CA replaces the file (as certbot does: rename).
    for ext in ("pem", "key"):
        (tmp_path / f"other-ca-copy.{ext}").write_bytes((pki / f"other-ca.{ext}").read_bytes())
    make_cert(tmp_path, "renewed", "other-ca-copy", "/CN=localhost",
              "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth")
    staged = tmp_path / "staged.pem"
    staged.write_bytes((tmp_path / "renewed.key").read_bytes() + (tmp_path / "renewed.pem").read_bytes())
    os.replace(staged, keystore)
    assert b.wait_for_log("TLS certificates reloaded", timeout_s=15)
    with socket.create_connection(("127.0.0.1", port), timeout=CLOSE_TIMEOUT_S) as s:
        with other.wrap_socket(s, server_hostname="localhost") as t:
            t.sendall(kwire.request_frame(18, 0, 3, b""))
            assert t.recv(8)[4:8] == (3).to_bytes(4, "big")


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


# --- SASL ----------------------------------------------------------------------------

USERS = {"alice": "alice-secret", "bob": "bob-secret"}
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def format_with_users(tmp_path, users=USERS):
    """`corelog storage format --add-scram` for every user and both SCRAM mechanisms."""
    d = tmp_path / "sasl-d0"
    cmd = [str(__import__("conftest").corelog_bin()), "storage", "format", "--override", f"log.dirs={d}"]
    for name, pw in users.items():
        for m in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            cmd += ["--add-scram", f"{m}=[name={name},password={pw}]"]
    out = subprocess.run(cmd, capture_output=True, timeout=CLIENT_TIMEOUT_S, check=True).stdout.decode()
    assert f"{len(users)} SCRAM user" in out, out
    return d


def sasl_broker(broker_factory, pki, tmp_path, overrides=None):
    d = format_with_users(tmp_path)
    return tls_broker(broker_factory, pki, {
        "log.dirs": str(d), "sasl.enabled.mechanisms": ",".join(MECHANISMS), **(overrides or {})},
        names=("SASL_PLAINTEXT", "SASL_SSL"))


def sasl_conf(pki, ports, protocol, mechanism, user="alice", password=None):
    conf = {"bootstrap.servers": f"127.0.0.1:{ports[protocol]}", "broker.address.family": "v4",
            "security.protocol": protocol, "sasl.mechanism": mechanism, "sasl.username": user,
            "sasl.password": USERS.get(user, "x") if password is None else password}
    if protocol == "SASL_SSL":
        conf["ssl.ca.location"] = str(pki / "ca.pem")
    return conf


def test_sasl_mechanisms_with_all_clients(broker_factory, pki, tmp_path):
    b, ports = sasl_broker(broker_factory, pki, tmp_path)
    for protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        for m in MECHANISMS:
            confluent_roundtrip(sasl_conf(pki, ports, protocol, m), fresh_topic(f"{m}-{protocol}"))
    for protocol, m in (("SASL_SSL", "PLAIN"), ("SASL_PLAINTEXT", "SCRAM-SHA-256"), ("SASL_SSL", "SCRAM-SHA-512")):
        topic = fresh_topic(f"kp-{m}")
        create_topic(sasl_conf(pki, ports, protocol, m), topic)
        security = {"security_protocol": protocol, "sasl_mechanism": m,
                    "sasl_plain_username": "bob", "sasl_plain_password": USERS["bob"]}
        if protocol == "SASL_SSL":
            security["ssl_cafile"] = str(pki / "ca.pem")
        kafka_python_roundtrip(ports[protocol], topic, **security)
    topic = fresh_topic("kcat-sasl")
    create_topic(sasl_conf(pki, ports, "SASL_SSL", "SCRAM-SHA-512"), topic)
    kcat_roundtrip(ports["SASL_SSL"], topic, "security.protocol=sasl_ssl", f"ssl.ca.location={pki / 'ca.pem'}",
                   "sasl.mechanisms=SCRAM-SHA-512", "sasl.username=alice", f"sasl.password={USERS['alice']}")


# Raw SASL over the wire, for exact error codes.
API_SASL_HANDSHAKE = 17
API_SASL_AUTHENTICATE = 36
SASL_AUTHENTICATION_FAILED = 58
UNSUPPORTED_SASL_MECHANISM = 33


def handshake(conn, mechanism):
    r = kwire.Reader(conn.request(API_SASL_HANDSHAKE, 1, kwire.string(mechanism)))
    return r.int16(), r.array(r.string)


def authenticate(conn, token):
    r = kwire.Reader(conn.request(API_SASL_AUTHENTICATE, 1, kwire.int32(len(token)) + token))
    return r.int16(), r.string(), r.bytes()


def scram_login(port, user, password, mechanism="SCRAM-SHA-256"):
    """A whole SCRAM login over the wire (RFC 5802, written out here); returns
    (error code of the last step, server-first). A refused login must close the connection."""
    import base64
    import hashlib
    import hmac
    h = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}[mechanism]
    with kwire.Conn(port) as c:
        assert handshake(c, mechanism)[0] == 0
        bare = f"n={user},r=nonce123"
        code, message, server_first = authenticate(c, ("n,," + bare).encode())
        assert code == 0, message
        attrs = dict(kv.split("=", 1) for kv in server_first.decode().split(","))
        salted = hashlib.pbkdf2_hmac(h, password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", h).digest()
        stored_key = hashlib.new(h, client_key).digest()
        without_proof = f"c=biws,r={attrs['r']}"
        auth_message = f"{bare},{server_first.decode()},{without_proof}".encode()
        signature = hmac.new(stored_key, auth_message, h).digest()
        proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature))).decode()
        code, message, _ = authenticate(c, f"{without_proof},p={proof}".encode())
        if code != 0:
            assert_closed(c)
        return code, attrs


def assert_closed(conn):
    conn.sock.settimeout(CLOSE_TIMEOUT_S)
    try:
        assert conn.sock.recv(1) == b""
    except ConnectionResetError:
        pass


def test_wrong_password_and_unknown_user_are_refused_and_counted(broker_factory, pki, tmp_path):
    b, ports = sasl_broker(broker_factory, pki, tmp_path, {"connection.failed.authentication.delay.ms": "10"})
    port = ports["SASL_PLAINTEXT"]
    for token in (b"\0alice\0wrong", b"\0mallory\0alice-secret"):
        with kwire.Conn(port) as c:
            assert handshake(c, "PLAIN") == (0, list(MECHANISMS))
            code, message, _ = authenticate(c, token)
            assert code == SASL_AUTHENTICATION_FAILED, message
            assert_closed(c)
    # SCRAM: a wrong password and an unknown user fail alike, at client-final; the
    # unknown user even gets a salt of its own that stays the same (no user listing).
    assert scram_login(port, "alice", USERS["alice"])[0] == 0
    code, real = scram_login(port, "alice", "wrong")
    assert code == SASL_AUTHENTICATION_FAILED
    code, decoy = scram_login(port, "mallory", USERS["alice"])
    assert code == SASL_AUTHENTICATION_FAILED
    assert decoy["i"] == real["i"] == "8192" and len(decoy["s"]) == len(real["s"])
    assert scram_login(port, "mallory", "x")[1]["s"] == decoy["s"]
    # An unknown mechanism, and a request before login: refused, connection closed.
    with kwire.Conn(port) as c:
        assert handshake(c, "GSSAPI") == (UNSUPPORTED_SASL_MECHANISM, list(MECHANISMS))
        assert_closed(c)
    with kwire.Conn(port) as c:
        c.send(kwire.request_frame(3, 1, 9, kwire.int32(0)))
        assert_closed(c)
    # Every refusal is logged with its address's growing delay, and counted.
    for ms in (10, 20, 40, 80, 160):
        assert b.wait_for_log(f"failed SASL login: .*delay_ms={ms}$")
    import urllib.request
    with urllib.request.urlopen(f"http://{b.admin}/metrics", timeout=CLIENT_TIMEOUT_S) as r:
        text = r.read().decode()
    failures = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("corelog_sasl_authentication_failures_total{"))
    assert failures >= 6, text
    # confluent-kafka with a wrong password fails; with the right one it is served.
    errors = []
    conf = sasl_conf(pki, ports, "SASL_SSL", "SCRAM-SHA-512", password="nope")
    p = Producer({**conf, "error_cb": lambda e: errors.append(str(e))})
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    while not errors and time.monotonic() < deadline:
        p.poll(0.2)
    assert any("Authentication failed" in e for e in errors), errors
    AdminClient(sasl_conf(pki, ports, "SASL_SSL", "SCRAM-SHA-512")).list_topics(timeout=CLIENT_TIMEOUT_S)


def test_bad_input_during_sasl_closes_only_that_connection(broker_factory, pki, tmp_path):
    b, ports = sasl_broker(broker_factory, pki, tmp_path)
    port = ports["SASL_PLAINTEXT"]
    # A truncated exchange: a SaslAuthenticate frame cut short, then the client leaves.
    with kwire.Conn(port) as c:
        assert handshake(c, "SCRAM-SHA-512")[0] == 0
        frame = kwire.request_frame(API_SASL_AUTHENTICATE, 1, 5, kwire.int32(30) + b"n,,n=alice,r=xyz")
        c.send(frame[: len(frame) - 5])
    assert b.wait_for_log("SASL frame truncated")
    # An oversized auth frame (2 MiB announced; the limit before login is 512 KiB).
    with kwire.Conn(port) as c:
        assert handshake(c, "PLAIN")[0] == 0
        c.send(kwire.int32(2 << 20) + b"\0" * 1024)
        assert_closed(c)
    assert b.wait_for_log("limit 524288 bytes")
    # Garbage instead of a request header.
    with kwire.Conn(port) as c:
        c.send(kwire.int32(6) + b"\xff\xff\xff\xff\xff\xff")
        assert_closed(c)
    confluent_roundtrip(sasl_conf(pki, ports, "SASL_PLAINTEXT", "SCRAM-SHA-256"), fresh_topic("after-bad-sasl"))


# --- users ----------------------------------------------------------------------------

def corelog_user(b, *args, password=None, check=True):
    env = dict(os.environ, CORELOG_USER_PASSWORD=password) if password else dict(os.environ)
    env.pop("CORELOG_USER_PASSWORD", None) if password is None else None
    proc = subprocess.run([str(__import__("conftest").corelog_bin()), "user", "-b", b.bootstrap, *args],
                          capture_output=True, timeout=CLIENT_TIMEOUT_S, env=env)
    if check:
        assert proc.returncode == 0, proc.stderr.decode()
    return proc


def test_user_added_over_the_wire_logs_in_until_deleted_and_survives_restart(broker_factory, pki, tmp_path):
    b, ports = sasl_broker(broker_factory, pki, tmp_path)
    port = ports["SASL_PLAINTEXT"]
    assert scram_login(port, "carol", "carol-pw")[0] == SASL_AUTHENTICATION_FAILED
    out = corelog_user(b, "add", "carol", "--mechanism", "SCRAM-SHA-256", password="carol-pw").stdout.decode()
    assert out == "set SCRAM credential of user carol\n"
    listed = corelog_user(b, "list").stdout.decode()
    assert listed == ("alice\tSCRAM-SHA-256 (8192 iterations), SCRAM-SHA-512 (8192 iterations)\n"
                      "bob\tSCRAM-SHA-256 (8192 iterations), SCRAM-SHA-512 (8192 iterations)\n"
                      "carol\tSCRAM-SHA-256 (8192 iterations)\n")
    conf = sasl_conf(pki, ports, "SASL_PLAINTEXT", "SCRAM-SHA-256", user="carol", password="carol-pw")
    confluent_roundtrip(conf, fresh_topic("carol"))
    # The credentials file holds no password.
    creds = (b.log_dirs[0] / "corelog-scram-credentials").read_text()
    assert "carol-pw" not in creds and "carol" in creds
    assert oct((b.log_dirs[0] / "corelog-scram-credentials").stat().st_mode & 0o777) == "0o600"
    b.restart()
    AdminClient(conf).list_topics(timeout=CLIENT_TIMEOUT_S)
    assert scram_login(port, "carol", "carol-pw")[0] == 0
    corelog_user(b, "delete", "carol", "--mechanism", "SCRAM-SHA-256")
    assert scram_login(port, "carol", "carol-pw")[0] == SASL_AUTHENTICATION_FAILED
    b.restart()
    assert scram_login(port, "carol", "carol-pw")[0] == SASL_AUTHENTICATION_FAILED
    assert scram_login(port, "alice", USERS["alice"])[0] == 0
    assert "carol" not in corelog_user(b, "list").stdout.decode()
    # Kafka's error codes: deleting what is not there, describing an unknown user,
    # too few iterations.
    p = corelog_user(b, "delete", "carol", "--mechanism", "SCRAM-SHA-256", check=False)
    assert p.returncode == 1 and "error 91" in p.stderr.decode(), p.stderr
    p = corelog_user(b, "list", "nobody", check=False)
    assert p.returncode == 1 and "nobody: error 91" in p.stderr.decode(), p.stderr
    p = corelog_user(b, "add", "dave", "--iterations", "4095", password="x", check=False)
    assert p.returncode == 1 and "error 93" in p.stderr.decode(), p.stderr


# --- the toolbox with --command-config -------------------------------------------------

def tool(port, config_path, *args, input=None):
    cmd = [str(__import__("conftest").corelog_bin()), *args, "-b", f"127.0.0.1:{port}",
           "--command-config", str(config_path)]
    return subprocess.run(cmd, capture_output=True, timeout=CLIENT_TIMEOUT_S * 2, input=input)


def test_toolbox_with_command_config_on_secured_listeners(broker_factory, pki, tmp_path):
    b, ports = sasl_broker(broker_factory, pki, tmp_path)
    cfg = tmp_path / "client.properties"
    cfg.write_text("security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
                   "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
                   f"username=\"alice\" password=\"{USERS['alice']}\";\nssl.ca.location={pki / 'ca.pem'}\n")
    port = ports["SASL_SSL"]
    topic = fresh_topic("tool")
    r = tool(port, cfg, "topic", "create", topic, "--partitions", "1")
    assert r.returncode == 0, r.stderr
    lines = [f"k{i}\tv{i}" for i in range(10)]
    r = tool(port, cfg, "produce", topic, "--key-separator", "\t", input=("\n".join(lines) + "\n").encode())
    assert r.returncode == 0, r.stderr
    r = tool(port, cfg, "consume", topic, "--from-beginning", "--max-messages", "10", "--format", "kv",
             "--key-separator", "\t")
    assert (r.returncode, r.stdout.decode()) == (0, "".join(f"{line}\n" for line in lines)), r.stderr
    r = tool(port, cfg, "user", "list", "alice")
    assert r.stdout.decode().startswith("alice\t"), r.stderr
    # PLAIN over SASL_PLAINTEXT with sasl.username/sasl.password.
    plain = tmp_path / "plain.properties"
    plain.write_text(f"security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.username=bob\n"
                     f"sasl.password={USERS['bob']}\n")
    r = tool(ports["SASL_PLAINTEXT"], plain, "topic", "list")
    assert r.returncode == 0 and topic in r.stdout.decode(), r.stderr
    # A wrong password is a clear error, not a hang.
    plain.write_text("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\nsasl.username=bob\n"
                     "sasl.password=wrong\n")
    r = tool(ports["SASL_PLAINTEXT"], plain, "topic", "list")
    assert r.returncode != 0 and "refused the login" in r.stderr.decode(), r.stderr


def test_console_reaches_a_secured_broker_through_command_config(broker_factory, pki, tmp_path):
    """`corelog console --command-config` logs in with SCRAM over TLS like every tool."""
    b, ports = sasl_broker(broker_factory, pki, tmp_path)
    cfg = tmp_path / "console.properties"
    cfg.write_text(f"security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-256\nsasl.username=alice\n"
                   f"sasl.password={USERS['alice']}\nssl.ca.location={pki / 'ca.pem'}\n")
    topic = fresh_topic("console")
    assert tool(ports["SASL_SSL"], cfg, "topic", "create", topic, "--partitions", "2").returncode == 0
    listen = f"127.0.0.1:{free_port()}"
    log = open(tmp_path / "console.log", "wb")
    proc = subprocess.Popen([str(__import__("conftest").corelog_bin()), "console", "--bootstrap-server",
                             f"127.0.0.1:{ports['SASL_SSL']}", "--listen", listen, "--command-config", str(cfg)],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        body = None
        while body is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://{listen}/api/topics/{topic}", timeout=5) as r:
                    body = json.loads(r.read())
            except OSError:
                time.sleep(0.2)
        assert body is not None, (tmp_path / "console.log").read_text()
        assert [p["partition"] for p in body["partitions"]] == [0, 1], body
    finally:
        proc.terminate()
        assert proc.wait(timeout=CLIENT_TIMEOUT_S) == 0


def test_toolbox_over_ssl_checks_the_broker_certificate(broker_factory, pki, tmp_path):
    b, ports = tls_broker(broker_factory, pki)
    good = tmp_path / "ssl.properties"
    good.write_text(f"security.protocol=SSL\nssl.ca.location={pki / 'ca.pem'}\n")
    r = tool(ports["SSL"], good, "topic", "list")
    assert r.returncode == 0, r.stderr
    bad = tmp_path / "other.properties"
    bad.write_text(f"security.protocol=SSL\nssl.ca.location={pki / 'other-ca.pem'}\n")
    r = tool(ports["SSL"], bad, "topic", "list")
    assert r.returncode != 0 and "certificate" in r.stderr.decode().lower(), r.stderr


def test_sasl_handshake_v0_bare_tokens(broker_factory, pki, tmp_path):
    """Kafka 0.10 clients: after SaslHandshake v0 the tokens travel as bare frames."""
    b, ports = sasl_broker(broker_factory, pki, tmp_path)
    with kwire.Conn(ports["SASL_PLAINTEXT"]) as c:
        r = kwire.Reader(c.request(API_SASL_HANDSHAKE, 0, kwire.string("PLAIN")))
        assert r.int16() == 0
        token = f"\0alice\0{USERS['alice']}".encode()
        c.send(kwire.int32(len(token)) + token)
        assert c._recv_exact(4, time.monotonic() + CLOSE_TIMEOUT_S) == kwire.int32(0)
        # Logged in: ordinary requests are served.
        error_code, apis = kwire.api_versions(c)
        assert error_code == 0 and kwire.API_METADATA in apis
        # A second handshake after login: ILLEGAL_SASL_STATE (34).
        r = kwire.Reader(c.request(API_SASL_HANDSHAKE, 1, kwire.string("PLAIN")))
        assert r.int16() == 34
    with kwire.Conn(ports["SASL_PLAINTEXT"]) as c:
        assert kwire.Reader(c.request(API_SASL_HANDSHAKE, 0, kwire.string("PLAIN"))).int16() == 0
        c.send(kwire.int32(12) + b"\0alice\0wrong")
        assert_closed(c)
