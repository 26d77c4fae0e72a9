//! Tests of `BrokerConfig` loading and validation.

use super::*;

fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_serve_on_9092_and_advertise_localhost() {
    let c = BrokerConfig::from_properties(&BTreeMap::new()).unwrap();
    assert_eq!(c.listener.port, 9092);
    assert_eq!(c.advertised.host, "localhost");
    assert_eq!(c.log_dirs, vec![PathBuf::from("data")]);
    assert!(c.auto_create_topics_enable);
}

#[test]
fn parses_server_properties_syntax() {
    let mut out = BTreeMap::new();
    let text = "# comment\n\nbroker.id=3\nlog.dirs=/a,\\\n /b\nnum.partitions : 4\n";
    parse_properties(text, "f", &mut out).unwrap();
    let c = BrokerConfig::from_properties(&out).unwrap();
    assert_eq!(c.node_id, 3);
    assert_eq!(c.log_dirs, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
    assert_eq!(c.num_partitions, 4);
}

#[test]
fn invalid_values_name_the_key() {
    let e = BrokerConfig::from_properties(&props(&[("num.partitions", "0")])).unwrap_err();
    assert!(e.to_string().contains("num.partitions"), "{e}");
    let e = BrokerConfig::from_properties(&props(&[("listeners", "SSL://:9093")])).unwrap_err();
    assert!(e.to_string().contains("ssl.keystore.location"), "{e}");
    let e = BrokerConfig::from_properties(&props(&[("listeners", "TLS://:9093")])).unwrap_err();
    assert!(e.to_string().contains("no security protocol"), "{e}");
    let e = BrokerConfig::from_properties(&props(&[("log.dirs", "/a,/a")])).unwrap_err();
    assert!(e.to_string().contains("twice"), "{e}");
}

#[test]
fn log_cleaner_keys_are_recognised_and_checked() {
    let c = BrokerConfig::default();
    assert!(c.log_cleaner_enable);
    assert_eq!(c.log_cleaner_io_max_bytes_per_second, 0, "unlimited");
    assert_eq!(c.log_cleaner_backoff_ms, 15_000);
    let c = BrokerConfig::from_properties(&props(&[
        ("log.cleaner.enable", "false"),
        ("log.cleaner.io.max.bytes.per.second", "5e7"),
        ("log.cleaner.backoff.ms", "100"),
        ("log.cleaner.dedupe.buffer.size", "1048576"),
    ]))
    .unwrap();
    assert!(!c.log_cleaner_enable);
    assert_eq!(c.log_cleaner_io_max_bytes_per_second, 50_000_000);
    assert_eq!(c.log_cleaner_backoff_ms, 100);
    assert_eq!(c.log_cleaner_dedupe_buffer_size, 1 << 20);
    let c = BrokerConfig::from_properties(&props(&[(
        "log.cleaner.io.max.bytes.per.second",
        "1.7976931348623157E308",
    )]))
    .unwrap();
    assert_eq!(c.log_cleaner_io_max_bytes_per_second, 0, "Kafka's default");
    for (k, v) in [
        ("log.cleaner.enable", "yes"),
        ("log.cleaner.io.max.bytes.per.second", "0"),
        ("log.cleaner.io.max.bytes.per.second", "fast"),
        ("log.cleaner.backoff.ms", "0"),
    ] {
        let e = BrokerConfig::from_properties(&props(&[(k, v)])).unwrap_err();
        assert!(e.to_string().contains(k), "{e}");
    }
    assert_eq!(key_warning("log.cleaner.io.max.bytes.per.second"), None);
}

#[test]
fn offsets_retention_keys_are_recognised_and_checked() {
    let c = BrokerConfig::default();
    assert_eq!(c.offsets_retention_minutes, 10_080);
    assert_eq!(c.offsets_retention_check_interval_ms, 600_000);
    let c = BrokerConfig::from_properties(&props(&[
        ("offsets.retention.minutes", "1"),
        ("offsets.retention.check.interval.ms", "250"),
    ]))
    .unwrap();
    assert_eq!(c.offsets_retention_minutes, 1);
    assert_eq!(c.offsets_retention_check_interval_ms, 250);
    for (k, v) in [
        ("offsets.retention.minutes", "0"),
        ("offsets.retention.check.interval.ms", "0"),
    ] {
        let e = BrokerConfig::from_properties(&props(&[(k, v)])).unwrap_err();
        assert!(e.to_string().contains(k), "{e}");
    }
    assert_eq!(key_warning("offsets.retention.minutes"), None);
    assert_eq!(key_warning("offsets.retention.check.interval.ms"), None);
}

#[test]
fn admin_listener_and_metrics_switch() {
    let c = BrokerConfig::default();
    let admin = c.admin_listener.unwrap();
    assert_eq!((admin.host.as_str(), admin.port), ("127.0.0.1", 9644));
    assert!(c.metrics_enable);
    let c = BrokerConfig::from_properties(&props(&[
        ("admin.listener", ""),
        ("metrics.enable", "false"),
    ]))
    .unwrap();
    assert!(c.admin_listener.is_none());
    assert!(!c.metrics_enable);
    let c = BrokerConfig::from_properties(&props(&[("admin.listener", "[::1]:0")])).unwrap();
    assert_eq!(c.admin_listener.unwrap().host, "::1");
    for bad in ["9644", "127.0.0.1:x", "http://a:1", "a:70000"] {
        let e = BrokerConfig::from_properties(&props(&[("admin.listener", bad)])).unwrap_err();
        assert!(e.to_string().contains("admin.listener"), "{e}");
    }
    assert_eq!(key_warning("admin.listener"), None);
    assert_eq!(key_warning("metrics.enable"), None);
}

#[test]
fn listener_and_advertised() {
    let c = BrokerConfig::from_properties(&props(&[("listeners", "PLAINTEXT://127.0.0.1:19092")]))
        .unwrap();
    assert_eq!(c.listener.host, "127.0.0.1");
    assert_eq!(c.advertised.port, 19092);
    assert_eq!(c.advertised.host, "127.0.0.1");
}

#[test]
fn overrides_win_and_unknown_keys_warn() {
    let (c, warnings) = BrokerConfig::load(
        None,
        &[
            "num.partitions=2".into(),
            "num.partitions=5".into(),
            "bogus.key=1".into(),
            "num.io.threads=8".into(),
            "log.retention.hours=168".into(),
            "socket.send.buffer.bytes=1".into(),
        ],
        Some(3),
    )
    .unwrap();
    assert_eq!(c.num_partitions, 5);
    assert_eq!(c.shard_count(), 3);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("bogus.key") && warnings[0].contains("unknown"));
    assert!(
        warnings[1].contains("socket.send.buffer.bytes")
            && warnings[1].contains("not supported yet")
    );
    assert_eq!(c.props["log.retention.hours"], "168");
}

#[test]
fn partitions_per_request_bound_by_either_name() {
    assert_eq!(BrokerConfig::default().partitions_per_request_max, 10_000);
    let c = BrokerConfig::from_properties(&props(&[("max.partitions.per.request", "50")])).unwrap();
    assert_eq!(c.partitions_per_request_max, 50);
    let c = BrokerConfig::from_properties(&props(&[("controller.max.records.per.batch", "70")]))
        .unwrap();
    assert_eq!(c.partitions_per_request_max, 70);
    let c = BrokerConfig::from_properties(&props(&[
        ("controller.max.records.per.batch", "70"),
        ("max.partitions.per.request", "50"),
    ]))
    .unwrap();
    assert_eq!(c.partitions_per_request_max, 50, "corelog's name wins");
    for (k, v) in [
        ("max.partitions.per.request", "0"),
        ("max.partitions.per.request", "-1"),
        ("max.partitions.per.request", "2147483648"),
        ("controller.max.records.per.batch", "many"),
    ] {
        let e = BrokerConfig::from_properties(&props(&[(k, v)])).unwrap_err();
        assert!(e.to_string().contains(k), "{e}");
    }
    assert_eq!(key_warning("max.partitions.per.request"), None);
    assert_eq!(key_warning("controller.max.records.per.batch"), None);
    let view = c.static_view();
    let shown = view
        .iter()
        .find(|(k, _, _)| *k == "max.partitions.per.request")
        .unwrap();
    assert_eq!((shown.1.as_str(), shown.2), ("50", true));
}

#[test]
fn fetch_max_bytes_as_kafka() {
    assert_eq!(BrokerConfig::default().fetch_bytes_max, 57_671_680);
    let c = BrokerConfig::from_properties(&props(&[("fetch.max.bytes", "1024")])).unwrap();
    assert_eq!(c.fetch_bytes_max, 1024);
    for v in ["1023", "2147483648", "x"] {
        let e = BrokerConfig::from_properties(&props(&[("fetch.max.bytes", v)])).unwrap_err();
        assert!(e.to_string().contains("fetch.max.bytes"), "{e}");
    }
    assert_eq!(key_warning("fetch.max.bytes"), None);
}

#[test]
fn group_max_size_keys_are_recognised_and_checked() {
    let c = BrokerConfig::default();
    assert_eq!(c.group_max_size, i32::MAX as usize);
    assert_eq!(c.group_consumer_max_size, i32::MAX as usize);
    let c = BrokerConfig::from_properties(&props(&[
        ("group.max.size", "500"),
        ("group.consumer.max.size", "7"),
    ]))
    .unwrap();
    assert_eq!((c.group_max_size, c.group_consumer_max_size), (500, 7));
    for k in ["group.max.size", "group.consumer.max.size"] {
        let e = BrokerConfig::from_properties(&props(&[(k, "0")])).unwrap_err();
        assert!(e.to_string().contains(k), "{e}");
        assert_eq!(key_warning(k), None);
    }
}

#[test]
fn producer_id_expiration_keys_are_recognised_and_checked() {
    let c = BrokerConfig::default();
    assert_eq!(c.txn.producer_id_expiration_ms, 86_400_000);
    assert_eq!(c.txn.producer_id_expiration_check_interval_ms, 600_000);
    let c = BrokerConfig::from_properties(&props(&[
        ("producer.id.expiration.ms", "60000"),
        ("producer.id.expiration.check.interval.ms", "1000"),
    ]))
    .unwrap();
    assert_eq!(c.txn.producer_id_expiration_ms, 60_000);
    assert_eq!(c.txn.producer_id_expiration_check_interval_ms, 1_000);
    for (k, v) in [
        ("producer.id.expiration.ms", "0"),
        ("producer.id.expiration.check.interval.ms", "-1"),
    ] {
        let e = BrokerConfig::from_properties(&props(&[(k, v)])).unwrap_err();
        assert!(e.to_string().contains(k), "{e}");
    }
    assert_eq!(key_warning("producer.id.expiration.ms"), None);
    assert_eq!(
        key_warning("producer.id.expiration.check.interval.ms"),
        None
    );
}
