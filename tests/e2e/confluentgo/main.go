// confluentgo: Debian's confluent-kafka-go (0.11.6, cgo over Debian's librdkafka 2.0.2)
// against a broker: admin create, produce with a codec, group consumption with commits.
// Built offline in GOPATH mode by the e2e suite.
//
//	confluentgo create  -broker B -topic T -partitions 1
//	confluentgo produce -broker B -topic T -from 0 -count 10 [-compression gzip|snappy|lz4|zstd]
//	confluentgo consume -broker B -topic T -group G -count 10
//
// produce writes values "confluent-go-<i>" with keys "k<i>"; consume prints
// "<partition> <offset> <key> <value>" per message, commits each synchronously, and
// leaves after -count. Exits non-zero on any error.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/confluentinc/confluent-kafka-go/kafka"
)

const timeout = 60 * time.Second

func fail(what string, err error) {
	fmt.Fprintln(os.Stderr, what+":", err)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 2 {
		fail("usage", fmt.Errorf("confluentgo create|produce|consume [flags]"))
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	broker := fs.String("broker", "127.0.0.1:9092", "bootstrap broker")
	topic := fs.String("topic", "", "topic")
	group := fs.String("group", "", "consumer group")
	partitions := fs.Int("partitions", 1, "partitions of a created topic")
	from := fs.Int("from", 0, "first message number")
	count := fs.Int("count", 10, "messages")
	compression := fs.String("compression", "none", "none, gzip, snappy, lz4 or zstd")
	fs.Parse(os.Args[2:])
	base := kafka.ConfigMap{"bootstrap.servers": *broker, "broker.address.family": "v4"}
	switch os.Args[1] {
	case "create":
		create(base, *topic, *partitions)
	case "produce":
		produce(base, *topic, *from, *count, *compression)
	case "consume":
		consume(base, *topic, *group, *count)
	default:
		fail("usage", fmt.Errorf("unknown command %q", os.Args[1]))
	}
}

func create(base kafka.ConfigMap, topic string, partitions int) {
	admin, err := kafka.NewAdminClient(&base)
	if err != nil {
		fail("admin", err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	results, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}})
	if err != nil {
		fail("create topics", err)
	}
	for _, r := range results {
		if r.Error.Code() != kafka.ErrNoError {
			fail("create topic "+r.Topic, r.Error)
		}
	}
}

func produce(base kafka.ConfigMap, topic string, from, count int, compression string) {
	conf := base
	conf["compression.codec"] = compression
	conf["acks"] = "all"
	conf["linger.ms"] = 20
	p, err := kafka.NewProducer(&conf)
	if err != nil {
		fail("producer", err)
	}
	defer p.Close()
	done := make(chan kafka.Event, count)
	for i := from; i < from+count; i++ {
		msg := &kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0},
			Key:            []byte(fmt.Sprintf("k%d", i)),
			Value:          []byte(fmt.Sprintf("confluent-go-%d", i)),
		}
		if err := p.Produce(msg, done); err != nil {
			fail("produce", err)
		}
	}
	for i := 0; i < count; i++ {
		select {
		case e := <-done:
			if m := e.(*kafka.Message); m.TopicPartition.Error != nil {
				fail("delivery", m.TopicPartition.Error)
			}
		case <-time.After(timeout):
			fail("delivery", fmt.Errorf("%d of %d messages unacknowledged", count-i, count))
		}
	}
}

func consume(base kafka.ConfigMap, topic, group string, count int) {
	conf := base
	conf["group.id"] = group
	conf["auto.offset.reset"] = "earliest"
	conf["enable.auto.commit"] = false
	c, err := kafka.NewConsumer(&conf)
	if err != nil {
		fail("consumer", err)
	}
	if err := c.SubscribeTopics([]string{topic}, nil); err != nil {
		fail("subscribe", err)
	}
	for i := 0; i < count; i++ {
		m, err := c.ReadMessage(timeout)
		if err != nil {
			fail("read", err)
		}
		fmt.Printf("%d %d %s %s\n", m.TopicPartition.Partition, m.TopicPartition.Offset, m.Key, m.Value)
		if _, err := c.CommitMessage(m); err != nil {
			fail("commit", err)
		}
	}
	if err := c.Close(); err != nil {
		fail("close", err)
	}
}
