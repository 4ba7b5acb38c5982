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
  return Object.assign(sink, {
    readStored: (from: number, to: number): Promise<StoredBlock[]> => sink.readBlocks(from, to),
    publishStored: (blocks: StoredBlock[]): Promise<void> => sink.publishRecords(blocks),
  });
}
