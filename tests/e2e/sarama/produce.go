// sarama-produce: produces records with Debian's Sarama (1.22, the Go client inside
// tools such as Burrow), which sends a record batch's maxTimestamp as -1 while its
// records carry real times. Built offline in GOPATH mode by the e2e suite.
//
//	sarama-produce -broker 127.0.0.1:9092 -topic t -count 10 [-from 0] [-compression gzip] [-version 0.8.2.0]
//
// -version picks the protocol: 2.1.0 (default) sends record batches with Produce v3+,
// 0.10.0.0 message format v1 with Produce v2, 0.8.2.0 message format v0 with Produce v0.
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
	from := flag.Int("from", 0, "number of the first record (values are sarama-<n>)")
	compression := flag.String("compression", "none", "none, gzip, snappy or lz4")
	version := flag.String("version", "2.1.0", "Kafka version Sarama speaks")
	flag.Parse()

	v, err := sarama.ParseKafkaVersion(*version)
	if err != nil {
		fmt.Fprintln(os.Stderr, "version:", err)
		os.Exit(1)
	}
	config := sarama.NewConfig()
	config.Version = v
	config.Producer.RequiredAcks = sarama.WaitForAll
	config.Producer.Return.Successes = true
	config.Producer.Partitioner = sarama.NewManualPartitioner
	switch *compression {
	case "gzip":
		config.Producer.Compression = sarama.CompressionGZIP
	case "snappy":
		config.Producer.Compression = sarama.CompressionSnappy
	case "lz4":
		config.Producer.Compression = sarama.CompressionLZ4
	}
	producer, err := sarama.NewSyncProducer([]string{*broker}, config)
	if err != nil {
		fmt.Fprintln(os.Stderr, "new producer:", err)
		os.Exit(1)
	}
	defer producer.Close()
	for i := *from; i < *from+*count; i++ {
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
