// kafkajs's transaction-coordinator lookup with the answer kept (engine/stages/commit/kafka/
// coordinator-cache.ts): asked once per cluster and transactional.id, asked again after a request to
// the coordinator failed for any reason but CONCURRENT_TRANSACTIONS; consumer groups untouched.
import { describe, expect, it } from 'vitest';
import { cachingFind, type Find } from '../../engine/stages/commit/kafka/coordinator-cache.js';

const TRANSACTION = 1;
const GROUP = 0;

class FakeBroker {
  constructor(readonly nodeId: number, private failure: { type?: string; name?: string } | null = null) {}
  fail(next: { type?: string; name?: string } | null): void { this.failure = next; }
  async endTxn(): Promise<string> {
    if (this.failure) throw Object.assign(new Error(this.failure.type ?? this.failure.name), this.failure);
    return `ended at ${this.nodeId}`;
  }
}

function fakeCluster() {
  const brokers = [new FakeBroker(1), new FakeBroker(2)];
  let coordinator = 0;
  const lookups = { count: 0 };
  const find: Find = async function (this: object) { lookups.count++; return brokers[coordinator]; };
  return { brokers, moveTo: (i: number) => { coordinator = i; }, lookups, find };
}

describe('cachingFind', () => {
  it('asks once per cluster and transactional.id, and the broker it returns still works', async () => {
    const c = fakeCluster();
    const find = cachingFind(c.find);
    const cluster = {};
    const broker = await find.call(cluster, { groupId: 'txe.blocks', coordinatorType: TRANSACTION }) as FakeBroker;
    await find.call(cluster, { groupId: 'txe.blocks', coordinatorType: TRANSACTION });
    expect(c.lookups.count).toBe(1);
    expect(await broker.endTxn()).toBe('ended at 1');
    expect(broker.nodeId).toBe(1);
    await find.call(cluster, { groupId: 'txe.other', coordinatorType: TRANSACTION });
    await find.call({}, { groupId: 'txe.blocks', coordinatorType: TRANSACTION }); // another producer's cluster
    expect(c.lookups.count).toBe(3);
  });

  it('asks again after NOT_COORDINATOR or a lost connection, not after CONCURRENT_TRANSACTIONS', async () => {
    const c = fakeCluster();
    const find = cachingFind(c.find);
    const cluster = {};
    const args = { groupId: 'txe.blocks', coordinatorType: TRANSACTION };
    let broker = await find.call(cluster, args) as FakeBroker;
    c.brokers[0].fail({ type: 'CONCURRENT_TRANSACTIONS' });
    await expect(broker.endTxn()).rejects.toMatchObject({ type: 'CONCURRENT_TRANSACTIONS' });
    expect(await find.call(cluster, args)).toBe(broker); // the coordinator is right, only busy
    expect(c.lookups.count).toBe(1);
    c.brokers[0].fail({ type: 'NOT_COORDINATOR' });
    c.moveTo(1);
    await expect(broker.endTxn()).rejects.toMatchObject({ type: 'NOT_COORDINATOR' });
    broker = await find.call(cluster, args) as FakeBroker;
    expect(c.lookups.count).toBe(2);
    expect(await broker.endTxn()).toBe('ended at 2');
    c.brokers[1].fail({ name: 'KafkaJSConnectionError' });
    await expect(broker.endTxn()).rejects.toMatchObject({ name: 'KafkaJSConnectionError' });
    await find.call(cluster, args);
    expect(c.lookups.count).toBe(3);
  });

  it('leaves consumer-group lookups to kafkajs every time', async () => {
    const c = fakeCluster();
    const find = cachingFind(c.find);
    const cluster = {};
    await find.call(cluster, { groupId: 'g', coordinatorType: GROUP });
    await find.call(cluster, { groupId: 'g' });
    expect(c.lookups.count).toBe(2);
  });
});
