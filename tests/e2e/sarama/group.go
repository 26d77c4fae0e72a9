// sarama-group: consumes a topic in a consumer group with Debian's Sarama (1.22) and
// commits what it read. Sarama 1.22 commits with OffsetCommit v1 and fetches offsets with
// OffsetFetch v1; with -version 0.10.2.0 it fetches with Fetch v3 (message format v1, so
// the broker converts its batches down). Built offline in GOPATH mode by the e2e suite.
//
//	sarama-group -broker 127.0.0.1:9092 -topic t -group g -count 10 [-version 0.10.2.0]
//
// Prints one line per message, "<partition> <offset> <value>", and exits once -count
// messages were read and their offsets committed. Exits non-zero on any error.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/Shopify/sarama"
)

type handler struct {
	mu     sync.Mutex
	count  int
	want   int
	cancel context.CancelFunc
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.mu.Lock()
		if h.count < h.want {
			fmt.Printf("%d %d %s\n", m.Partition, m.Offset, string(m.Value))
			s.MarkMessage(m, "")
			h.count++
			if h.count == h.want {
				h.cancel()
			}
		}
		h.mu.Unlock()
	}
	return nil
}

func main() {
	broker := flag.String("broker", "127.0.0.1:9092", "bootstrap broker")
	topic := flag.String("topic", "", "topic to consume")
	group := flag.String("group", "", "consumer group")
	count := flag.Int("count", 10, "messages to read before committing and leaving")
	version := flag.String("version", "2.1.0", "Kafka version Sarama speaks")
	flag.Parse()

	v, err := sarama.ParseKafkaVersion(*version)
	if err != nil {
		fmt.Fprintln(os.Stderr, "version:", err)
		os.Exit(1)
	}
	config := sarama.NewConfig()
	config.Version = v
	config.Consumer.Offsets.Initial = sarama.OffsetOldest
	config.Consumer.Offsets.CommitInterval = 100 * time.Millisecond
	config.Consumer.Return.Errors = true
	cg, err := sarama.NewConsumerGroup([]string{*broker}, *group, config)
	if err != nil {
		fmt.Fprintln(os.Stderr, "new consumer group:", err)
		os.Exit(1)
	}
	failed := make(chan error, 1)
	go func() {
		for e := range cg.Errors() {
			select {
			case failed <- e:
			default:
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	h := &handler{want: *count, cancel: cancel}
	for ctx.Err() == nil {
		if err := cg.Consume(ctx, []string{*topic}, h); err != nil {
			fmt.Fprintln(os.Stderr, "consume:", err)
			os.Exit(1)
		}
	}
	// Close commits the marked offsets before it leaves the group.
	if err := cg.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
		os.Exit(1)
	}
	select {
	case e := <-failed:
		fmt.Fprintln(os.Stderr, "consumer group error:", e)
		os.Exit(1)
	default:
	}
}
