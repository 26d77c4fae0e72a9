// kafkago: Debian's segmentio/kafka-go (0.2.1) against a broker. It speaks the pre-0.11
// protocol: message format v1 with Produce v2 and Fetch v2 (so the broker converts both
// ways), Metadata v1, CreateTopics v0, and classic groups with OffsetCommit v2 and
// OffsetFetch v1. Built offline in GOPATH mode by the e2e suite.
//
//	kafkago create  -broker B -topic T -partitions 2
//	kafkago produce -broker B -topic T -from 0 -count 10 [-compression gzip|snappy|lz4]
//	kafkago consume -broker B -topic T -group G -count 10
//
// produce writes values "kafka-go-<i>" with keys "k<i>", i from -from; consume reads
// -count messages in group G, commits each synchronously, prints
// "<partition> <offset> <key> <value>" per message, then leaves. Exits non-zero on error.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/gzip"
	"github.com/segmentio/kafka-go/lz4"
	"github.com/segmentio/kafka-go/snappy"
)

func fail(what string, err error) {
	fmt.Fprintln(os.Stderr, what+":", err)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 2 {
		fail("usage", fmt.Errorf("kafkago create|produce|consume [flags]"))
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	broker := fs.String("broker", "127.0.0.1:9092", "bootstrap broker")
	topic := fs.String("topic", "", "topic")
	group := fs.String("group", "", "consumer group")
	partitions := fs.Int("partitions", 1, "partitions of a created topic")
	from := fs.Int("from", 0, "first message number")
	count := fs.Int("count", 10, "messages")
	compression := fs.String("compression", "none", "none, gzip, snappy or lz4")
	fs.Parse(os.Args[2:])
	switch os.Args[1] {
	case "create":
		create(*broker, *topic, *partitions)
	case "produce":
		produce(*broker, *topic, *from, *count, *compression)
	case "consume":
		consume(*broker, *topic, *group, *count)
	default:
		fail("usage", fmt.Errorf("unknown command %q", os.Args[1]))
	}
}

func create(broker, topic string, partitions int) {
	conn, err := kafka.Dial("tcp", broker)
	if err != nil {
		fail("dial", err)
	}
	defer conn.Close()
	err = conn.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1})
	if err != nil {
		fail("create topics", err)
	}
}

func produce(broker, topic string, from, count int, compression string) {
	config := kafka.WriterConfig{
		Brokers:      []string{broker},
		Topic:        topic,
		RequiredAcks: -1,
		BatchSize:    count,
		BatchTimeout: 50 * time.Millisecond,
	}
	switch compression {
	case "gzip":
		config.CompressionCodec = gzip.NewCompressionCodec()
	case "snappy":
		config.CompressionCodec = snappy.NewCompressionCodec()
	case "lz4":
		config.CompressionCodec = lz4.NewCompressionCodec()
	}
	w := kafka.NewWriter(config)
	msgs := make([]kafka.Message, 0, count)
	for i := from; i < from+count; i++ {
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("kafka-go-%d", i))})
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		fail("write", err)
	}
	if err := w.Close(); err != nil {
		fail("close writer", err)
	}
}

func consume(broker, topic, group string, count int) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:           []string{broker},
		GroupID:           group,
		Topic:             topic,
		MinBytes:          1,
		MaxBytes:          1 << 20,
		MaxWait:           200 * time.Millisecond,
		HeartbeatInterval: 500 * time.Millisecond,
		SessionTimeout:    6 * time.Second,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 0; i < count; i++ {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			fail("fetch", err)
		}
		fmt.Printf("%d %d %s %s\n", m.Partition, m.Offset, m.Key, m.Value)
		if err := r.CommitMessages(ctx, m); err != nil {
			fail("commit", err)
		}
	}
	if err := r.Close(); err != nil {
		fail("close reader", err)
	}
}
