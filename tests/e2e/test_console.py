"""`corelog console` against a real broker holding topics, records and a live consumer
group: the JSON API with urllib (exact figures, clear 4xx errors on bad input) and the
pages in a real headless Chromium from Debian (chromium + chromium-driver) driven by
Selenium, with a screenshot of each page kept under the test's tmp_path."""

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import NewTopic

from clients import admin_results, base_config, flush, producer, wait_until
from conftest import corelog_bin, free_port, fresh_topic, stop_process

HTTP_TIMEOUT_S = 30
CONSOLE_READY_TIMEOUT_S = 15
GROUP_READY_TIMEOUT_S = 30
PAGE_TIMEOUT_S = 20
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# What the module's broker holds: topic ORDERS with 3 partitions; partition 0 gets
# P0_BEFORE records, all consumed and committed by GROUP, then P0_AFTER more (the lag);
# partition 1 holds the known record at offset 1; partition 2 stays empty.
P0_BEFORE = 5
P0_AFTER = 2
KNOWN_VALUE = '{"id":7,"item":"seven"}'
KNOWN_KEY = "k-7"
KNOWN_HEADER = ("trace", "abc-123")
RETENTION_MS = "3600000"
IDLE_COMMITTED = 3


class Cluster:
    pass


def http(console, method, path, body=None, content_type="application/json"):
    """(status, decoded JSON) of one API call."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://{console}/api/{path}", data=data, method=method)
    if data is not None and content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def start_console(bootstrap, log_path, admin=None):
    listen = f"127.0.0.1:{free_port()}"
    log = open(log_path, "ab")
    extra = ["--admin", admin] if admin else []
    proc = subprocess.Popen([str(corelog_bin()), "console", "--bootstrap-server", bootstrap,
                             "--listen", listen, *extra], stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)

    def up():
        assert proc.poll() is None, f"console exited: {Path(log_path).read_text()}"
        try:
            with urllib.request.urlopen(f"http://{listen}/", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    wait_until(up, CONSOLE_READY_TIMEOUT_S, "the console to answer")
    return proc, listen, log


@pytest.fixture(scope="module")
def cluster(module_broker_factory, tmp_path_factory):
    broker = module_broker_factory()
    c = Cluster()
    c.broker = broker
    c.topic = fresh_topic("orders")
    c.group = fresh_topic("billing")
    results = admin_results(broker, "create_topics",
                            [NewTopic(c.topic, num_partitions=3, replication_factor=1,
                                      config={"retention.ms": RETENTION_MS})],
                            operation_timeout=HTTP_TIMEOUT_S, timeout_s=HTTP_TIMEOUT_S)
    assert results == {c.topic: None}, results
    prod = producer(broker)
    for i in range(P0_BEFORE):
        prod.produce(c.topic, value=f"p0-{i}".encode(), key=f"key-{i}".encode(), partition=0)
    prod.produce(c.topic, value=b"first", partition=1)
    prod.produce(c.topic, value=KNOWN_VALUE.encode(), key=KNOWN_KEY.encode(), partition=1,
                 headers=[(KNOWN_HEADER[0], KNOWN_HEADER[1].encode())])
    flush(prod)

    # A live member of GROUP: consumes everything there is, commits, and stays joined.
    member = Consumer({**base_config(broker), "group.id": c.group, "enable.auto.commit": False,
                       "auto.offset.reset": "earliest", "client.id": "console-e2e"})
    member.subscribe([c.topic])
    seen = []
    deadline = time.monotonic() + GROUP_READY_TIMEOUT_S
    while len(seen) < P0_BEFORE + 2 and time.monotonic() < deadline:
        m = member.poll(0.2)
        if m is not None and m.error() is None:
            seen.append(m)
    assert len(seen) == P0_BEFORE + 2, f"the group member read {len(seen)} records"
    member.commit(asynchronous=False)
    for i in range(P0_AFTER):
        prod.produce(c.topic, value=f"late-{i}".encode(), partition=0)
    flush(prod)
    c.member = member

    # IDLE_GROUP has no members, only committed offsets: the one a reset may change.
    c.idle_group = fresh_topic("idle")
    idle = Consumer({**base_config(broker), "group.id": c.idle_group, "enable.auto.commit": False})
    idle.commit(offsets=[TopicPartition(c.topic, 0, IDLE_COMMITTED)], asynchronous=False)
    idle.close()

    proc, c.console, log = start_console(broker.bootstrap, tmp_path_factory.mktemp("console") / "console.log",
                                         admin=broker.admin)
    yield c
    member.close()
    stop_process(proc)
    log.close()


def test_cluster_api(cluster):
    status, body = http(cluster.console, "GET", "cluster")
    assert status == 200, body
    port = cluster.broker.port
    assert body["brokers"] == [{"node_id": 0, "host": "127.0.0.1", "port": port, "rack": None,
                                "controller": True}]
    assert body["controller_id"] == 0
    assert isinstance(body["cluster_id"], str) and len(body["cluster_id"]) == 22
    [d] = body["log_dirs"]
    assert (d["broker"], d["path"], d["state"]) == (0, str(cluster.broker.log_dirs[0]), "online")
    assert d["total_bytes"] > d["usable_bytes"] > 0
    assert d["size_bytes"] > 0


def test_metrics_api(cluster, tmp_path):
    status, before = http(cluster.console, "GET", "metrics")
    assert status == 200, before
    assert set(before) == {"requests", "received_bytes", "sent_bytes", "appended_bytes", "fetched_bytes",
                           "produce_latency_seconds_sum", "produce_latency_count",
                           "fetch_latency_seconds_sum", "fetch_latency_count"}
    prod = producer(cluster.broker)
    prod.produce(fresh_topic("metrics"), value=b"x" * 1000)
    flush(prod)
    _, after = http(cluster.console, "GET", "metrics")
    assert after["requests"] > before["requests"]
    assert after["appended_bytes"] >= before["appended_bytes"] + 1000
    assert after["produce_latency_count"] >= before["produce_latency_count"] + 1
    # Without --admin (say, against Kafka) the charts are off, and the API says why.
    proc, console, log = start_console(cluster.broker.bootstrap, tmp_path / "console.log")
    try:
        status, body = http(console, "GET", "metrics")
        assert status == 404 and "--admin" in body["error"], body
    finally:
        stop_process(proc)
        log.close()


def test_topics_api_pages(cluster):
    status, body = http(cluster.console, "GET", f"topics?filter={cluster.topic}")
    assert status == 200, body
    [t] = body["topics"]
    assert (body["total"], body["pages"]) == (1, 1)
    assert (t["name"], t["partitions"], t["replication"], t["internal"]) == (cluster.topic, 3, 1, False)
    assert (t["retention_ms"], t["retention_bytes"]) == (int(RETENTION_MS), -1)
    _, detail = http(cluster.console, "GET", f"topics/{cluster.topic}")
    assert t["size_bytes"] == detail["size_bytes"] > 0
    # Paging: one topic per page walks every topic exactly once, in name order.
    _, first = http(cluster.console, "GET", "topics?per_page=1")
    names = [x["name"] for p in range(1, first["pages"] + 1)
             for x in http(cluster.console, "GET", f"topics?per_page=1&page={p}")[1]["topics"]]
    assert len(names) == first["total"] == first["pages"]
    assert names == sorted(names) and cluster.topic in names


def test_topic_api(cluster):
    status, body = http(cluster.console, "GET", f"topics/{cluster.topic}")
    assert status == 200, body
    rows = [(p["partition"], p["leader"], p["replicas"], p["isr"], p["earliest"], p["latest"])
            for p in body["partitions"]]
    assert rows == [(0, 0, [0], [0], 0, P0_BEFORE + P0_AFTER), (1, 0, [0], [0], 0, 2),
                    (2, 0, [0], [0], 0, 0)]
    log_dir = str(cluster.broker.log_dirs[0])
    assert [p["log_dir"] for p in body["partitions"]] == [log_dir] * 3
    assert body["partitions"][2]["size_bytes"] == 0
    assert body["partitions"][0]["size_bytes"] > body["partitions"][1]["size_bytes"] > 0
    assert body["size_bytes"] == sum(p["size_bytes"] for p in body["partitions"])
    configs = {c["name"]: (c["value"], c["source"]) for c in body["configs"]}
    assert configs["retention.ms"] == (RETENTION_MS, "DYNAMIC_TOPIC_CONFIG")
    assert configs["cleanup.policy"] == ("delete", "DEFAULT_CONFIG")


def test_messages_api(cluster):
    base = f"topics/{cluster.topic}/partitions"
    status, body = http(cluster.console, "GET", f"{base}/0/messages?order=newest&limit=3")
    assert status == 200, body
    assert [(m["offset"], m["value"]["text"]) for m in body["messages"]] == [
        (6, "late-1"), (5, "late-0"), (4, "p0-4")]
    assert (body["earliest"], body["latest"]) == (0, P0_BEFORE + P0_AFTER)
    _, body = http(cluster.console, "GET", f"{base}/0/messages?order=oldest&offset=3&limit=2")
    assert [(m["offset"], m["key"]["text"]) for m in body["messages"]] == [(3, "key-3"), (4, "key-4")]
    _, body = http(cluster.console, "GET", f"{base}/1/messages?order=oldest&offset=1")
    [m] = body["messages"]
    assert m["offset"] == 1
    assert m["key"] == {"text": KNOWN_KEY, "utf8": True, "hex": KNOWN_KEY.encode().hex()}
    assert m["value"]["text"] == KNOWN_VALUE
    assert m["headers"] == [{"key": KNOWN_HEADER[0], "value": {
        "text": KNOWN_HEADER[1], "utf8": True, "hex": KNOWN_HEADER[1].encode().hex()}}]
    # By time: a timestamp before everything starts at the first record.
    _, body = http(cluster.console, "GET", f"{base}/1/messages?order=oldest&timestamp=0")
    assert [x["offset"] for x in body["messages"]] == [0, 1]
    _, body = http(cluster.console, "GET", f"{base}/2/messages")
    assert body["messages"] == []


def test_bad_input_is_a_clear_4xx(cluster):
    base = f"topics/{cluster.topic}/partitions"
    status, body = http(cluster.console, "GET", "topics/no-such-topic")
    assert status == 404 and body["error"].startswith("no-such-topic: UnknownTopicOrPartition"), body
    status, body = http(cluster.console, "GET", f"{base}/0/messages?offset=99")
    assert (status, body) == (400, {"error": f"{cluster.topic}-0: offset 99 is outside the partition's "
                                    "offsets 0..7 (earliest to latest); pick one in that range"})
    status, body = http(cluster.console, "GET", f"{base}/0/messages?offset=abc")
    assert (status, body) == (400, {"error": 'offset="abc" is not a valid offset'})
    status, body = http(cluster.console, "GET", f"{base}/9/messages")
    assert (status, body) == (404, {"error": f"{cluster.topic} has no partition 9 (it has 3)"})
    status, body = http(cluster.console, "GET", f"{base}/0/messages?order=sideways")
    assert (status, body) == (400, {"error": 'order="sideways": use oldest or newest'})
    status, body = http(cluster.console, "GET", "groups/no-such-group")
    assert status == 404, body
    status, body = http(cluster.console, "POST", "topics", {"name": "x"}, content_type="text/plain")
    assert status == 415, body
    status, body = http(cluster.console, "POST", "topics", {"partitions": 1})
    assert (status, body) == (400, {"error": "name: the topic needs a name"})
    status, body = http(cluster.console, "GET", "nothing-here")
    assert status == 404, body
    # DNS rebinding: a foreign name in Host is refused even on the right address.
    req = urllib.request.Request(f"http://{cluster.console}/api/cluster", headers={"Host": "evil.example"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S)
    assert refused.value.code == 403


def test_group_api(cluster):
    status, body = http(cluster.console, "GET", "groups")
    assert status == 200, body
    assert {"group": cluster.group, "state": "Stable", "protocol_type": "consumer"} in body["groups"]
    status, body = http(cluster.console, "GET", f"groups/{cluster.group}")
    assert status == 200, body
    assert (body["group"], body["state"], body["total_lag"]) == (cluster.group, "Stable", P0_AFTER)
    assert body["protocol"] == "range"  # librdkafka's default first choice, range,roundrobin
    [m] = body["members"]
    assert m["client_id"] == "console-e2e"
    assert m["assignment"] == [{"topic": cluster.topic, "partitions": [0, 1, 2]}]
    assert [(o["topic"], o["partition"], o["committed"], o["log_end"], o["lag"]) for o in body["offsets"]] == [
        (cluster.topic, 0, P0_BEFORE, P0_BEFORE + P0_AFTER, P0_AFTER), (cluster.topic, 1, 2, 2, 0)]


def test_kip848_group_assignments(cluster):
    group = fresh_topic("kip848")
    member = Consumer({**base_config(cluster.broker), "group.id": group, "group.protocol": "consumer",
                       "group.remote.assignor": "uniform", "auto.offset.reset": "earliest",
                       "enable.auto.commit": False})
    try:
        member.subscribe([cluster.topic])

        def assigned():
            member.poll(0.1)
            return len(member.assignment()) == 3
        wait_until(assigned, GROUP_READY_TIMEOUT_S, "the KIP-848 member's assignment")
        status, body = http(cluster.console, "GET", f"groups/{group}")
        assert status == 200, body
        assert (body["state"], body["protocol"]) == ("Stable", "uniform")
        [m] = body["members"]
        assert m["assignment"] == [{"topic": cluster.topic, "partitions": [0, 1, 2]}]
    finally:
        member.close()


def test_api_actions(cluster):
    name = fresh_topic("api-made")
    status, body = http(cluster.console, "POST", "topics", {"name": name, "partitions": 2,
                                                            "configs": {"retention.ms": "60000"}})
    assert (status, body) == (200, {"created": name})
    status, body = http(cluster.console, "POST", "topics", {"name": name})
    assert status == 409, body
    status, body = http(cluster.console, "POST", f"topics/{name}/partitions", {"count": 4})
    assert (status, body) == (200, {"topic": name, "partitions": 4})
    status, body = http(cluster.console, "POST", f"topics/{name}/configs", {"set": {"retention.ms": "x"}})
    assert status == 400 and "InvalidConfig" in body["error"], body
    status, body = http(cluster.console, "POST", f"topics/{name}/configs", {"set": {"retention.ms": "120000"}})
    assert status == 200, body
    _, detail = http(cluster.console, "GET", f"topics/{name}")
    assert len(detail["partitions"]) == 4
    assert {c["name"]: c["value"] for c in detail["configs"]}["retention.ms"] == "120000"
    prod = producer(cluster.broker)
    for i in range(4):
        prod.produce(name, value=f"r{i}".encode(), partition=3)
    flush(prod)
    status, body = http(cluster.console, "POST", f"topics/{name}/partitions/3/delete-records", {"offset": 3})
    assert (status, body) == (200, {"topic": name, "partition": 3, "low_watermark": 3})
    _, detail = http(cluster.console, "GET", f"topics/{name}")
    assert (detail["partitions"][3]["earliest"], detail["partitions"][3]["latest"]) == (3, 4)
    status, body = http(cluster.console, "POST", f"topics/{name}/partitions/3/delete-records", {"offset": 9})
    assert status == 400 and "OffsetOutOfRange" in body["error"], body
    status, body = http(cluster.console, "DELETE", f"topics/{name}", {})
    assert (status, body) == (200, {"deleted": name})
    assert http(cluster.console, "GET", f"topics/{name}")[0] == 404


def committed(console, group):
    _, body = http(console, "GET", f"groups/{group}")
    return [(o["partition"], o["committed"]) for o in body["offsets"]]


def test_reset_offsets_api(cluster):
    path = f"groups/{cluster.group}/reset-offsets"
    status, body = http(cluster.console, "POST", path, {"topic": cluster.topic, "to": "earliest"})
    assert status == 409 and "member" in body["error"], body
    path = f"groups/{cluster.idle_group}/reset-offsets"
    status, body = http(cluster.console, "POST", path, {"topic": cluster.topic, "to": "nowhere"})
    assert (status, body) == (400, {"error": "to: use earliest, latest, offset, datetime or shift-by"})
    status, body = http(cluster.console, "POST", path, {"topic": f"{cluster.topic}:0", "to": "shift-by",
                                                        "value": -2})
    assert (status, body) == (200, {"group": cluster.idle_group, "executed": False, "partitions": [
        {"topic": cluster.topic, "partition": 0, "current": IDLE_COMMITTED, "new": IDLE_COMMITTED - 2}]})
    assert committed(cluster.console, cluster.idle_group) == [(0, IDLE_COMMITTED)]  # a dry run
    status, body = http(cluster.console, "POST", path, {"topic": f"{cluster.topic}:0", "to": "offset",
                                                        "value": 2, "execute": True})
    assert (status, body["executed"]) == (200, True), body
    assert committed(cluster.console, cluster.idle_group) == [(0, 2)]
    http(cluster.console, "POST", path, {"topic": f"{cluster.topic}:0", "to": "offset",
                                         "value": IDLE_COMMITTED, "execute": True})
    assert committed(cluster.console, cluster.idle_group) == [(0, IDLE_COMMITTED)]


# ---- the pages, in a real browser ----

@pytest.fixture
def browser(tmp_path):
    # Imported here, not skipped when missing: scripts/test.sh installs selenium and
    # Debian's chromium, so their absence is a failure to see.
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT_S)
    yield driver
    driver.quit()


def open_page(driver, console, hash_route, page, tmp_path, shot):
    """Loads a route, waits for the page to be drawn, saves a screenshot."""
    from selenium.webdriver.support.ui import WebDriverWait
    driver.get(f"http://{console}/#{hash_route}")
    driver.refresh()  # a new hash alone may not reload; the page draws from the hash on load
    WebDriverWait(driver, PAGE_TIMEOUT_S).until(
        lambda d: d.find_element("id", "view").get_attribute("data-page") in (page, "error"))
    error = driver.find_elements("id", "page-error")
    assert not error, error[0].text
    path = tmp_path / f"console-{shot}.png"
    assert driver.save_screenshot(str(path))
    print(f"screenshot: {path}")


def cells(driver, table_id):
    rows = driver.find_elements("css selector", f"#{table_id} tbody tr")
    return [[td.text for td in r.find_elements("tag name", "td")] for r in rows]


def text(driver, element_id):
    return driver.find_element("id", element_id).text


def wait_notice(driver):
    """The action's outcome line, read in one script run: the page redraws itself after
    an action, so an element found a moment earlier may already be gone."""
    from selenium.webdriver.support.ui import WebDriverWait
    script = "const n = document.getElementById('notice'); return n && !n.hidden ? n.textContent : '';"
    return WebDriverWait(driver, PAGE_TIMEOUT_S).until(lambda d: d.execute_script(script))


def test_pages_in_chromium(cluster, browser, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait
    d, c = browser, cluster.console
    open_page(d, c, "/cluster", "cluster", tmp_path, "cluster")
    assert text(d, "controller") == "0" and text(d, "broker-count") == "1"
    assert cells(d, "brokers") == [["0", "127.0.0.1", str(cluster.broker.port), "", "yes"]]
    [row] = cells(d, "log-dirs")
    assert row[:3] == ["0", str(cluster.broker.log_dirs[0]), "online"]
    WebDriverWait(d, PAGE_TIMEOUT_S).until(
        lambda d: d.find_element("id", "chart-throughput").get_attribute("data-points") == "2")
    d.save_screenshot(str(tmp_path / "console-cluster-charts.png"))
    print(f"screenshot: {tmp_path / 'console-cluster-charts.png'}")

    open_page(d, c, f"/topics?filter={cluster.topic}", "topics", tmp_path, "topics")
    row = cells(d, "topics")[0]
    assert row[:3] + row[4:] == [cluster.topic, "3", "1", "1 h", "unlimited"]
    assert text(d, "topic-total") == "1"

    open_page(d, c, f"/topic/{cluster.topic}", "topic", tmp_path, "topic")
    assert [r[:6] for r in cells(d, "partitions")] == [
        ["0", "0", "0", "0", "0", str(P0_BEFORE + P0_AFTER)], ["1", "0", "0", "0", "0", "2"],
        ["2", "0", "0", "0", "0", "0"]]
    configs = {r[0]: r[1:] for r in cells(d, "configs")}
    assert configs["retention.ms"] == [RETENTION_MS, "DYNAMIC_TOPIC_CONFIG"]

    open_page(d, c, f"/messages/{cluster.topic}/1?order=oldest&format=json", "messages", tmp_path, "messages")
    rows = cells(d, "messages")
    assert [r[0] for r in rows] == ["0", "1"]
    assert rows[1][2] == KNOWN_KEY
    assert json.loads(rows[1][3]) == json.loads(KNOWN_VALUE)
    assert rows[1][3] == json.dumps(json.loads(KNOWN_VALUE), indent=2)  # pretty-printed
    assert rows[1][4] == f"{KNOWN_HEADER[0]}: {KNOWN_HEADER[1]}"
    open_page(d, c, f"/messages/{cluster.topic}/1?order=newest&format=hex", "messages", tmp_path, "messages-hex")
    assert cells(d, "messages")[0][3] == KNOWN_VALUE.encode().hex()

    open_page(d, c, "/groups", "groups", tmp_path, "groups")
    assert [cluster.group, "Stable", "consumer"] in cells(d, "groups")
    open_page(d, c, f"/group/{cluster.group}", "group", tmp_path, "group")
    assert (text(d, "group-state"), text(d, "group-protocol"), text(d, "member-count"), text(d, "total-lag")) == (
        "Stable", "range", "1", str(P0_AFTER))
    assert [r[3] for r in cells(d, "members")] == [f"{cluster.topic}: 0,1,2"]
    assert d.find_element("id", "chart-lag").get_attribute("data-points") == "1"
    assert cells(d, "offsets") == [[cluster.topic, "0", str(P0_BEFORE), str(P0_BEFORE + P0_AFTER), str(P0_AFTER)],
                                   [cluster.topic, "1", "2", "2", "0"]]


def test_topic_created_in_the_page(cluster, browser, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait
    d, name = browser, fresh_topic("ui-made")
    open_page(d, cluster.console, "/topics", "topics", tmp_path, "topics-before-create")
    d.find_element("id", "create-name").send_keys(name)
    partitions = d.find_element("id", "create-partitions")
    partitions.clear()
    partitions.send_keys("2")
    d.find_element("id", "create-btn").click()
    # Nothing happens before the confirmation.
    WebDriverWait(d, PAGE_TIMEOUT_S).until(lambda d: d.find_element("id", "confirm").is_displayed())
    assert text(d, "confirm-text") == f"Create topic {name} with 2 partition(s), replication 1?"
    assert http(cluster.console, "GET", f"topics/{name}")[0] == 404
    d.save_screenshot(str(tmp_path / "console-confirm.png"))
    print(f"screenshot: {tmp_path / 'console-confirm.png'}")
    d.find_element("id", "confirm-yes").click()
    assert wait_notice(d) == f"Create topic {name}: done"
    listed = subprocess.run([str(corelog_bin()), "topic", "list", "-b", cluster.broker.bootstrap],
                            capture_output=True, text=True, timeout=HTTP_TIMEOUT_S)
    assert listed.returncode == 0, listed.stderr
    assert f"{name}\tpartitions=2\treplication=1\n" in listed.stdout


def test_reset_offsets_in_the_page(cluster, browser, tmp_path):
    from selenium.webdriver.support.ui import Select, WebDriverWait
    d = browser
    open_page(d, cluster.console, f"/group/{cluster.idle_group}", "group", tmp_path, "group-idle")
    d.find_element("id", "reset-topic").send_keys(f"{cluster.topic}:0")
    Select(d.find_element("id", "reset-to")).select_by_visible_text("earliest")
    d.find_element("id", "reset-preview").click()
    WebDriverWait(d, PAGE_TIMEOUT_S).until(lambda d: d.find_elements("id", "reset-plan"))
    assert cells(d, "reset-plan") == [[cluster.topic, "0", str(IDLE_COMMITTED), "0"]]
    assert committed(cluster.console, cluster.idle_group) == [(0, IDLE_COMMITTED)]
    d.save_screenshot(str(tmp_path / "console-reset-dry-run.png"))
    print(f"screenshot: {tmp_path / 'console-reset-dry-run.png'}")
    d.find_element("id", "reset-execute").click()
    WebDriverWait(d, PAGE_TIMEOUT_S).until(lambda d: d.find_element("id", "confirm").is_displayed())
    d.find_element("id", "confirm-yes").click()
    assert wait_notice(d) == "Reset offsets: done"
    assert cells(d, "offsets")[0][:3] == [cluster.topic, "0", "0"]
    assert committed(cluster.console, cluster.idle_group) == [(0, 0)]
