/* Opens the Kafka sink from the engine config and adapts it to what recovery needs (BlockLog). */

import type { EngineConfig } from '../../config.js';
import type { BlockLog } from '../recovery.js';
import type { Sink } from '../sink.js';
import type { StoredBlock } from '../stored-block.js';
import kafkajs from 'kafkajs';
import { KafkaSink } from './kafka-sink.js';

const kafkajsLogLevel = kafkajs.logLevel;

export async function openKafkaSink(config: EngineConfig): Promise<Sink & BlockLog> {
  const sink = await KafkaSink.open({
    brokers: config.kafkaBrokers, topic: config.kafkaTopic, clientId: 'txe',
    connectionTimeoutMs: config.sinkConnectTimeoutMs, requestTimeoutMs: config.sinkStatementTimeoutMs,
    // kafkajs logs an expected 'topic already exists' as an error; failures reach the engine as
    // rejected writes (answered UNAVAILABLE and retried), so its own log stays quiet.
    logLevel: kafkajsLogLevel.NOTHING,
  });
  // The sink stage may hand over a group while the previous one is still being sent; the Kafka
  // sink tracks the topic end between sends, so its writes run one after the other.
  let tail: Promise<void> = Promise.resolve();
  const serial = (send: () => Promise<void>): Promise<void> => {
    const run = tail.then(send);
    tail = run.catch(() => undefined);
    return run;
  };
  const write = sink.write.bind(sink);
  return Object.assign(sink, {
    write: (blocks: Parameters<typeof write>[0], ring: Parameters<typeof write>[1]) => serial(() => write(blocks, ring)),
    readStored: (from: number, to: number): Promise<StoredBlock[]> => sink.readBlocks(from, to),
    publishStored: (blocks: StoredBlock[]): Promise<void> => serial(() => sink.publishRecords(blocks)),
  });
}
