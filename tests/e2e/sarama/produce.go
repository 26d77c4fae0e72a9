// sarama-produce: produces records with Debian's Sarama (1.22, the Go client inside
// tools such as Burrow), which sends a record batch's maxTimestamp as -1 while its
// records carry real times. Built offline in GOPATH mode by the e2e suite.
//
//	sarama-produce -broker 127.0.0.1:9092 -topic t -count 10 [-compression gzip]
//
// Prints one line per record: "<partition> <offset>". Exits non-zero on any error.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/Shopify/sarama"
)

func main() {
	broker := flag.String("broker", "127.0.0.1:9092", "bootstrap broker")
	topic := flag.String("topic", "", "topic to produce to")
	count := flag.Int("count", 10, "records to produce")
	compression := flag.String("compression", "none", "none or gzip")
	flag.Parse()

	config := sarama.NewConfig()
	config.Version = sarama.V2_1_0_0 // record batches (magic 2)
	config.Producer.RequiredAcks = sarama.WaitForAll
	config.Producer.Return.Successes = true
	config.Producer.Partitioner = sarama.NewManualPartitioner
	if *compression == "gzip" {
		config.Producer.Compression = sarama.CompressionGZIP
	}
	producer, err := sarama.NewSyncProducer([]string{*broker}, config)
	if err != nil {
		fmt.Fprintln(os.Stderr, "new producer:", err)
		os.Exit(1)
	}
	defer producer.Close()
	for i := 0; i < *count; i++ {
		msg := &sarama.ProducerMessage{
			Topic:     *topic,
			Partition: 0,
			Value:     sarama.StringEncoder(fmt.Sprintf("sarama-%d", i)),
		}
		partition, offset, err := producer.SendMessage(msg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "send:", err)
			os.Exit(1)
		}
		fmt.Printf("%d %d\n", partition, offset)
	}
}
