// KafkaJS (npm) against a broker: admin create, produce with a codec, group consumption
// with commits. Driven by tests/e2e/test_clients_kafkajs.py.
//
//   node client.js create  BROKER TOPIC PARTITIONS
//   node client.js produce BROKER TOPIC FROM COUNT none|gzip
//   node client.js consume BROKER TOPIC GROUP COUNT
//
// produce sends values "kafkajs-<i>" with keys "k<i>"; consume prints
// "<partition> <offset> <key> <value>" per message, commits each one, and disconnects
// after COUNT messages. Exits non-zero on any error.
'use strict';
const { Kafka, CompressionTypes, logLevel } = require('kafkajs');

const [cmd, broker, topic, ...rest] = process.argv.slice(2);
const kafka = new Kafka({ clientId: 'corelog-e2e', brokers: [broker], logLevel: logLevel.ERROR,
  retry: { retries: 3 } });

async function create(partitions) {
  const admin = kafka.admin();
  await admin.connect();
  const created = await admin.createTopics({ topics: [{ topic, numPartitions: Number(partitions) }],
    waitForLeaders: true });
  await admin.disconnect();
  if (!created) throw new Error('topic was not created');
}

async function produce(from, count, codec) {
  const producer = kafka.producer();
  await producer.connect();
  const messages = [];
  for (let i = Number(from); i < Number(from) + Number(count); i++) {
    messages.push({ key: `k${i}`, value: `kafkajs-${i}` });
  }
  const compression = codec === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
  await producer.send({ topic, messages, compression, acks: -1 });
  await producer.disconnect();
}

async function consume(group, count) {
  const consumer = kafka.consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 500 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let seen = 0;
  await new Promise((resolve, reject) => {
    consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        if (seen >= Number(count)) return;
        seen++;
        console.log(`${partition} ${message.offset} ${message.key} ${message.value}`);
        const next = (BigInt(message.offset) + 1n).toString();
        await consumer.commitOffsets([{ topic, partition, offset: next }]);
        if (seen === Number(count)) resolve();
      },
    }).catch(reject);
  });
  await consumer.disconnect();
}

const commands = { create: () => create(...rest), produce: () => produce(...rest),
  consume: () => consume(...rest) };
(commands[cmd] || (() => Promise.reject(new Error(`unknown command ${cmd}`))))()
  .then(() => process.exit(0))
  .catch((e) => { console.error(e); process.exit(1); });
