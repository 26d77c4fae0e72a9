"""Topic and broker configs, and growing topics, through real admin clients:
confluent-kafka's AdminClient (librdkafka) and kafka-python's KafkaAdminClient."""

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                   NewPartitions, NewTopic)
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource as KpConfigResource
from kafka.admin import ConfigResourceType as KpType
from kafka.admin import NewPartitions as KpNewPartitions

from clients import (Deliveries, admin, admin_results, create_topic, flush, metadata, producer,
                     wait_until)
from conftest import fresh_topic

ADMIN_TIMEOUT_S = 15


def describe_topic(broker, name):
    """{config name: ConfigEntry} of a topic, as confluent-kafka describes it."""
    resource = ConfigResource(ConfigResource.Type.TOPIC, name)
    client = admin(broker)  # kept alive until the future resolves
    futures = client.describe_configs([resource], request_timeout=ADMIN_TIMEOUT_S)
    return futures[resource].result(timeout=ADMIN_TIMEOUT_S)


def incremental(broker, resource, entries):
    client = admin(broker)  # kept alive until the futures resolve
    futures = client.incremental_alter_configs([ConfigResource(resource[0], resource[1],
                                                               incremental_configs=entries)],
                                               request_timeout=ADMIN_TIMEOUT_S)
    return [f.result(timeout=ADMIN_TIMEOUT_S) for f in futures.values()]


def produce_one(broker, topic, size):
    """Produces one record of `size` bytes; returns the delivery error or None."""
    deliveries = Deliveries()
    prod = producer(broker, {"message.max.bytes": 4_000_000, "retries": 0})
    prod.produce(topic, value=b"x" * size, on_delivery=deliveries)
    flush(prod)
    assert deliveries.count() == 1
    return deliveries.errors[0][0] if deliveries.errors else None


def test_describe_shows_defaults_sources_and_types(broker):
    name = create_topic(broker, fresh_topic("cfgdesc"), 1)
    configs = describe_topic(broker, name)
    assert configs["retention.ms"].value == "604800000"
    assert configs["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert configs["cleanup.policy"].value == "delete"
    assert configs["max.message.bytes"].value == "1048588"
    assert configs["compression.type"].value == "producer"
    assert configs["message.timestamp.type"].value == "CreateTime"
    assert not configs["retention.ms"].is_read_only
    assert not configs["retention.ms"].is_sensitive


def test_override_set_then_deleted_brings_default_back_and_takes_effect_live(broker):
    name = create_topic(broker, fresh_topic("cfgmax"), 1)
    assert produce_one(broker, name, 200_000) is None
    incremental(broker, (ConfigResource.Type.TOPIC, name),
                [ConfigEntry("max.message.bytes", "128000", incremental_operation=AlterConfigOpType.SET)])
    entry = describe_topic(broker, name)["max.message.bytes"]
    assert (entry.value, entry.source) == ("128000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    synonyms = [(s.name, s.value, s.source) for s in entry.synonyms.values()]
    assert synonyms[0] == ("max.message.bytes", "128000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    err = produce_one(broker, name, 200_000)
    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err
    incremental(broker, (ConfigResource.Type.TOPIC, name),
                [ConfigEntry("max.message.bytes", None, incremental_operation=AlterConfigOpType.DELETE)])
    entry = describe_topic(broker, name)["max.message.bytes"]
    assert (entry.value, entry.source) == ("1048588", ConfigSource.DEFAULT_CONFIG.value)
    assert produce_one(broker, name, 200_000) is None


def test_append_and_subtract_on_a_list_config(broker):
    name = create_topic(broker, fresh_topic("cfglist"), 1)
    resource = (ConfigResource.Type.TOPIC, name)
    incremental(broker, resource, [ConfigEntry("cleanup.policy", "compact",
                                               incremental_operation=AlterConfigOpType.APPEND)])
    assert describe_topic(broker, name)["cleanup.policy"].value == "delete,compact"
    incremental(broker, resource, [ConfigEntry("cleanup.policy", "delete",
                                               incremental_operation=AlterConfigOpType.SUBTRACT)])
    assert describe_topic(broker, name)["cleanup.policy"].value == "compact"
    # APPEND on a non-list config is refused.
    try:
        incremental(broker, resource, [ConfigEntry("retention.ms", "5",
                                                   incremental_operation=AlterConfigOpType.APPEND)])
        raise AssertionError("APPEND on retention.ms was accepted")
    except KafkaException as e:
        assert e.args[0].code() == KafkaError.INVALID_CONFIG, e


def test_invalid_value_is_refused_with_the_key_and_range(broker):
    name = create_topic(broker, fresh_topic("cfgbad"), 1)
    try:
        incremental(broker, (ConfigResource.Type.TOPIC, name),
                    [ConfigEntry("retention.ms", "-7", incremental_operation=AlterConfigOpType.SET)])
        raise AssertionError("retention.ms=-7 was accepted")
    except KafkaException as e:
        err = e.args[0]
        assert err.code() == KafkaError.INVALID_CONFIG, err
        assert "retention.ms" in err.str() and "at least -1" in err.str(), err.str()
    assert describe_topic(broker, name)["retention.ms"].value == "604800000"


def test_create_with_configs_and_invalid_config(broker):
    good, bad = fresh_topic("cfgnew"), fresh_topic("cfgnewbad")
    results = admin_results(broker, "create_topics", [
        NewTopic(good, num_partitions=2, replication_factor=1,
                 config={"retention.ms": "3600000", "cleanup.policy": "compact"}),
        NewTopic(bad, num_partitions=1, replication_factor=1, config={"compression.type": "brotli"}),
    ])
    assert results[good] is None, results
    assert isinstance(results[bad], KafkaError) and results[bad].code() == KafkaError.INVALID_CONFIG
    assert bad not in metadata(broker).topics
    configs = describe_topic(broker, good)
    assert configs["retention.ms"].value == "3600000"
    assert configs["cleanup.policy"].value == "compact"


def test_overrides_persist_across_restart(broker):
    name = create_topic(broker, fresh_topic("cfgkeep"), 1)
    incremental(broker, (ConfigResource.Type.TOPIC, name),
                [ConfigEntry("retention.bytes", "1048576", incremental_operation=AlterConfigOpType.SET)])
    broker.restart()
    entry = describe_topic(broker, name)["retention.bytes"]
    assert (entry.value, entry.source) == ("1048576", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)


def test_broker_configs_described_and_dynamic_default_applies_to_topics(broker):
    name = create_topic(broker, fresh_topic("cfgbroker"), 1)
    resource = ConfigResource(ConfigResource.Type.BROKER, "0")
    client = admin(broker)
    configs = client.describe_configs([resource])[resource].result(timeout=ADMIN_TIMEOUT_S)
    assert configs["log.retention.ms"].value == "604800000"
    assert not configs["log.retention.ms"].is_read_only
    assert configs["node.id"].value == "0" and configs["node.id"].is_read_only
    # A dynamic broker config reaches every topic without an override, and persists.
    incremental(broker, (ConfigResource.Type.BROKER, "0"),
                [ConfigEntry("log.retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET)])
    entry = describe_topic(broker, name)["retention.ms"]
    assert (entry.value, entry.source) == ("7200000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    broker.restart()
    entry = describe_topic(broker, name)["retention.ms"]
    assert (entry.value, entry.source) == ("7200000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    # A read-only broker config cannot change at run time.
    try:
        incremental(broker, (ConfigResource.Type.BROKER, "0"),
                    [ConfigEntry("num.partitions", "4", incremental_operation=AlterConfigOpType.SET)])
        raise AssertionError("num.partitions was altered")
    except KafkaException as e:
        assert e.args[0].code() == KafkaError.INVALID_REQUEST, e


def test_grow_partitions_and_refuse_shrinking(broker):
    name = create_topic(broker, fresh_topic("grow"), 1)
    results = admin_results(broker, "create_partitions", [NewPartitions(name, 11)])
    assert results[name] is None, results
    wait_until(lambda: len(metadata(broker).topics[name].partitions) == 11, ADMIN_TIMEOUT_S, "11 partitions")
    results = admin_results(broker, "create_partitions", [NewPartitions(name, 5)])
    assert isinstance(results[name], KafkaError) and results[name].code() == KafkaError.INVALID_PARTITIONS
    # Every new partition takes writes.
    deliveries = Deliveries()
    prod = producer(broker)
    for p in range(11):
        prod.produce(name, value=b"v", partition=p, on_delivery=deliveries)
    flush(prod)
    assert deliveries.errors == [] and sorted(p for p, *_ in deliveries.ok) == list(range(11))
    broker.restart()
    assert len(metadata(broker).topics[name].partitions) == 11


def test_kafka_python_admin_alter_describe_and_grow(broker):
    name = create_topic(broker, fresh_topic("kpcfg"), 1)
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=ADMIN_TIMEOUT_S * 1000)
    try:
        client.alter_configs([KpConfigResource(KpType.TOPIC, name, configs={"retention.ms": "86400000"})])
        described = client.describe_configs([KpConfigResource(KpType.TOPIC, name)])
        entries = {}
        for response in described:
            for result in response.resources:
                for entry in result[4]:
                    entries[entry[0]] = entry[1]
        assert entries["retention.ms"] == "86400000"
        client.create_partitions({name: KpNewPartitions(total_count=3)})
        wait_until(lambda: len(metadata(broker).topics[name].partitions) == 3, ADMIN_TIMEOUT_S, "3 partitions")
        # AlterConfigs replaces the whole set: retention.ms goes back to its default.
        client.alter_configs([KpConfigResource(KpType.TOPIC, name, configs={"segment.ms": "3600000"})])
        configs = describe_topic(broker, name)
        assert configs["retention.ms"].value == "604800000"
        assert configs["segment.ms"].value == "3600000"
    finally:
        client.close()


def test_consumer_offsets_is_compacted_as_in_kafka(broker):
    configs = describe_topic(broker, "__consumer_offsets")
    assert configs["cleanup.policy"].value == "compact"
    assert configs["segment.bytes"].value == "104857600"
