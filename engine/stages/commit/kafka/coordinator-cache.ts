/*
 * kafkajs asks a broker where a producer's transaction coordinator is (FindCoordinator) before every
 * AddPartitionsToTxn and every EndTxn, and again before each retry: at least two extra round trips
 * a transaction. On the 3-broker cluster under load they cost ~10 ms each (session 10: 144
 * FindCoordinator requests for 52 transactions, 1.4 s of the leader's 10 s, on the path of every
 * block to finality). The coordinator of a transactional.id moves only when leadership of its
 * __transaction_state partition moves (a broker failed or was restarted).
 *
 * So the answer is kept, per producer (each kafkajs producer has a cluster object of its own) and
 * transactional.id, and forgotten when a request to that broker through it fails with anything but
 * CONCURRENT_TRANSACTIONS (the coordinator is right, only busy): NOT_COORDINATOR,
 * COORDINATOR_NOT_AVAILABLE, a lost connection, a fenced producer. The retry that kafkajs makes
 * next asks again, as before. Group coordinators (consumers) are not touched.
 *
 * kafkajs has no option for it: this wraps `Cluster.prototype.findGroupCoordinator` of the pinned
 * kafkajs (package.json) once, before any producer exists. If the module is not where this expects,
 * kafkajs keeps asking every time, which is only slower.
 */

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const KAFKAJS_CLUSTER_MODULE = 'kafkajs/src/cluster/index.js';
const COORDINATOR_TYPE_TRANSACTION = 1; // kafkajs/src/protocol/coordinatorTypes.js
const COORDINATOR_STILL_RIGHT = new Set(['CONCURRENT_TRANSACTIONS']);

interface FindArgs { groupId: string; coordinatorType?: number }
export type Find = (this: object, args: FindArgs) => Promise<object>;
interface ClusterClass { prototype: { findGroupCoordinator: Find } }

export type CoordinatorCacheInstalled = 'installed' | 'not found';

let outcome: CoordinatorCacheInstalled | null = null;
let asked = 0; // FindCoordinator lookups that went to a broker, for tests

/** Wraps kafkajs's coordinator lookup with the cache, once; says whether it could. */
export function installCoordinatorCache(): CoordinatorCacheInstalled {
  outcome ??= install();
  return outcome;
}

/** How many transaction-coordinator lookups went to a broker since start. */
export function coordinatorLookups(): number {
  return asked;
}

function install(): CoordinatorCacheInstalled {
  let Cluster: ClusterClass;
  try {
    Cluster = require(KAFKAJS_CLUSTER_MODULE) as ClusterClass;
  } catch {
    return 'not found';
  }
  if (typeof Cluster?.prototype?.findGroupCoordinator !== 'function') return 'not found';
  Cluster.prototype.findGroupCoordinator = cachingFind(Cluster.prototype.findGroupCoordinator, () => { asked++; });
  return 'installed';
}

/**
 * `find` (kafkajs's lookup, called with its cluster as `this`) with the transaction coordinator kept
 * per cluster object and transactional.id until a request to it fails; `onAsk` is told of each
 * lookup that goes to `find`.
 */
export function cachingFind(find: Find, onAsk: () => void = () => undefined): Find {
  const caches = new WeakMap<object, Map<string, object>>();
  return async function findCached(this: object, args: FindArgs): Promise<object> {
    if (args.coordinatorType !== COORDINATOR_TYPE_TRANSACTION) return find.call(this, args);
    let cache = caches.get(this);
    if (cache === undefined) caches.set(this, (cache = new Map()));
    const known = cache.get(args.groupId);
    if (known !== undefined) return known;
    onAsk();
    const broker = await find.call(this, args);
    const kept = forgetOnFailure(broker, () => { if (cache!.get(args.groupId) === kept) cache!.delete(args.groupId); });
    cache.set(args.groupId, kept);
    return kept;
  };
}

/** The broker, whose requests forget it as the coordinator when they fail for any reason but a busy coordinator. */
function forgetOnFailure(broker: object, forget: () => void): object {
  return new Proxy(broker, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result = (value as (...a: unknown[]) => unknown).apply(target, args);
        if (!(result instanceof Promise)) return result;
        return result.catch((error: { type?: string }) => {
          if (!COORDINATOR_STILL_RIGHT.has(error?.type ?? '')) forget();
          throw error;
        });
      };
    },
  });
}
