/* Opens the Kafka sink from the engine config and adapts it to what recovery needs (BlockLog). */

import type { EngineConfig } from '../../../config.js';
import type { BlockLog, StoredBlock } from '../stored-block.js';
import type { Sink } from '../sink.js';
import kafkajs from 'kafkajs';
import { KafkaSink } from './kafka-sink.js';
import { Serial } from '../serial.js';
import { BODY_BYTES, SIGNATURE_BYTES } from '../../../core/record.js';
import type { WriterTerm } from '../writer-term.js';

// A BlockRecord is the bodies, one result byte a transaction, and a header of three hashes and a
// few varints; a record batch adds its own header.
const BLOCK_RECORD_HEADER_BYTES_MAX = 512;
const RECORD_BATCH_OVERHEAD_BYTES = 1024;

const kafkajsLogLevel = kafkajs.logLevel;

export async function openKafkaSink(config: EngineConfig, term: WriterTerm): Promise<Sink & BlockLog> {
  const sink = await KafkaSink.open({
    brokers: config.kafkaBrokers, topic: config.kafkaTopic, clientId: 'txe', term,
    connectionTimeoutMs: config.sinkConnectTimeoutMs, requestTimeoutMs: config.kafkaRequestTimeoutMs,
    replicationFactor: config.kafkaReplicationFactor,
    // kafkajs logs an expected 'topic already exists' as an error; failures reach the engine as
    // rejected writes (answered UNAVAILABLE and retried), so its own log stays quiet.
    logLevel: kafkajsLogLevel.NOTHING,
  });
  // A full batch must fit one record, or every write of it would fail the same way forever.
  const fullBlockBytes = config.batchTxsMax * (BODY_BYTES + SIGNATURE_BYTES + 1) + BLOCK_RECORD_HEADER_BYTES_MAX; // per-tx records carry their signatures
  if (fullBlockBytes > sink.recordBytesMax - RECORD_BATCH_OVERHEAD_BYTES) {
    await sink.close();
    throw new Error(`kafka topic ${config.kafkaTopic} takes records of at most ${sink.recordBytesMax} B (max.message.bytes), but a block of batchTxsMax ${config.batchTxsMax} transactions is ~${fullBlockBytes} B: raise the topic's max.message.bytes or lower batchTxsMax`);
  }
  return serialWrites(sink);
}

/**
 * The sink stage may hand over a group while the previous one is still being sent; the Kafka sink
 * tracks the topic end between sends, so its writes run one after the other.
 */
export function serialWrites(sink: KafkaSink): KafkaSink & Sink & BlockLog {
  const serial = new Serial();
  const write = sink.write.bind(sink);
  return Object.assign(sink, {
    write: (blocks: Parameters<typeof write>[0], ring: Parameters<typeof write>[1]) => serial.run(() => write(blocks, ring)),
    readStored: (from: number, to: number): Promise<StoredBlock[]> => sink.readBlocks(from, to),
    publishStored: (blocks: StoredBlock[]): Promise<void> => serial.run(() => sink.publishRecords(blocks)),
  });
}
