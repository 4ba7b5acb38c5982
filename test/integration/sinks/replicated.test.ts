// A history on a 3-node KRaft cluster (infra/kafka-cluster-start.sh): the engine creates its topic
// with replication factor 3 and min.insync.replicas 2 (config kafkaReplicationFactor). Under durable
// load the node that leads the topic's partition is killed with kill -9, later started again; every
// batch acknowledged as durable is in PostgreSQL and on the topic exactly once, chain unbroken.
// Batches refused UNAVAILABLE meanwhile are resubmitted (they were never sequenced).
// Kafka elects another leader and the engine goes on within ~10 s while the node is down (KRaft's
// 9 s broker session). This test once failed in about a third of the runs: the webhook topics were
// created with one replica, the dead node's share of their partitions had no leader, and the
// engine's Kafka clients failed with LEADER_NOT_AVAILABLE until the node came back.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigResourceTypes, Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TxeClient } from '../../../engine/client.js';
import { repoRoot } from '../../../engine/paths.js';
import { Result } from '../../../engine/core/result.js';
import { issuer, mint, signedBatch } from '../../support/fixtures.js';
import { dropDatabase, freshDatabase } from '../../support/servers.js';
import { readKafkaBlocks, readPgHistory, serveDurable } from '../../support/durable.js';
import { until, withTimeout } from '../../support/async.js';

const BATCH = 100;
const infra = (...args: string[]) => execFileSync('bash', [path.join(repoRoot, 'infra', args[0]), ...args.slice(1)], { encoding: 'utf8', timeout: 180_000, stdio: ['ignore', 'pipe', 'ignore'] });
let url: string;
let brokers: string[];
const topic = `txe.test.replicated.${crypto.randomBytes(4).toString('hex')}`;


/** Mint batches, one at a time, ack=durable; a batch refused UNAVAILABLE is sent again. */
function loader(client: TxeClient) {
  const acked: number[] = [];
  let refusals = 0;
  let running = true;
  const done = (async () => {
    for (let next = 0; running;) {
      const records = Array.from({ length: BATCH }, (_, i) => mint(crypto.randomBytes(32), BigInt(next * BATCH + i + 1), 1n));
      try {
        const r = await client.submitBatch({ ...signedBatch(records), ack: 'durable' });
        expect(r.results.every((c) => c === Result.committed)).toBe(true);
        acked.push(next++);
      } catch (error) {
        if (!/durable storage is failing/.test(String((error as { details?: string }).details))) throw error;
        refusals++;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  })();
  // Stopping waits for the batch in flight, but not forever: one never answered is a failure to report.
  const stop = async () => { running = false; await withTimeout(done, 60_000, 'the last batch in flight answered'); };
  return { acked, get refusals() { return refusals; }, stop };
}

describe('a replicated history', () => {
  beforeAll(async () => {
    const printed = infra('kafka-cluster-start.sh');
    brokers = /TXE_KAFKA_BROKERS=(\S+)/.exec(printed)![1].split(',');
    url = await freshDatabase('replicated');
  }, 200_000);
  afterAll(async () => {
    infra('kafka-cluster-stop.sh', '--wipe');
    await dropDatabase(url);
  }, 120_000);

  it('goes on through kill -9 of the partition leader under durable load, losing and repeating nothing', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'txe-replicated-'));
    const config = path.join(dir, 'txe.json');
    writeFileSync(config, JSON.stringify({ kafkaReplicationFactor: 3 }));
    const log: string[] = []; // the engine's last log lines, shown if the test fails
    const engine = await serveDurable(url, topic, ['--kafka-brokers', brokers.join(','), '--config', config], (line) => { log.push(line); if (log.length > 80) log.shift(); });
    const step = (what: string) => console.log(`replicated: ${new Date().toISOString()} ${what}`);
    const client = new TxeClient(engine.address);
    const kafka = new Kafka({ brokers, clientId: 'txe-test-replicated', logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    const load = loader(client);
    let passed = false;
    try {
      const meta = await admin.fetchTopicMetadata({ topics: [topic] });
      const partition = meta.topics[0].partitions[0];
      expect(partition.replicas).toHaveLength(3);
      const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['min.insync.replicas'] }] });
      expect(described.resources[0].configEntries[0].configValue).toBe('2');

      await until('10 batches acknowledged', () => (load.acked.length >= 10 ? true : null), 30_000);
      step(`killing node ${partition.leader}, the partition's leader, after ${load.acked.length} batches`);
      infra('kafka-cluster-kill.sh', String(partition.leader));
      const killedAt = Date.now();
      const ackedAtKill = load.acked.length;
      await until('10 more batches acknowledged with the node down', () => (load.acked.length >= ackedAtKill + 10 ? true : null), 60_000);
      step(`leader ${partition.leader} killed; 10 more durable batches ${Date.now() - killedAt} ms later, node down (${load.refusals} refusals meanwhile)`);
      const newLeader = (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0].partitions[0].leader;
      expect(newLeader).not.toBe(partition.leader);
      infra('kafka-cluster-start.sh', String(partition.leader));
      step(`node ${partition.leader} back`);
      const ackedAtReturn = load.acked.length;
      await until('5 more with the node back', () => (load.acked.length >= ackedAtReturn + 5 ? true : null), 90_000);
      await load.stop();
      passed = true;
    } finally {
      if (!passed) console.log(`replicated: failed at ${load.acked.length} batches; the engine's last log lines:\n${log.join('\n')}`);
      await admin.disconnect();
      client.close();
      if (!passed) engine.child.kill('SIGKILL');
    }
    expect(await engine.stop()).toBe(0);

    const history = await readPgHistory(url);
    const blocks = await readKafkaBlocks(topic, 60_000, brokers);
    expect(blocks.map((b) => b.number)).toEqual(history.blocks.map((_, i) => i + 1));
    history.blocks.forEach((b, i) => {
      expect(blocks[i].hash.equals(b.hash)).toBe(true);
      if (i > 0) expect(b.prevHash.equals(history.blocks[i - 1].hash)).toBe(true);
    });
    const nonces = history.txs.map((t) => BigInt(t.nonce));
    expect(nonces).toEqual(nonces.map((_, i) => BigInt(i + 1)));
    expect(history.txs.every((t) => t.sender === issuer.publicKey.toString('hex'))).toBe(true);
    expect(history.txs.length).toBe(load.acked.length * BATCH);
  }, 300_000);
});
