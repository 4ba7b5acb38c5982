/* Starts a real engine on a loopback port for a test file, with a client connected to it. */

import { Engine } from '../../engine/engine.js';
import { TxeClient } from '../../engine/client.js';
import type { EngineConfig } from '../../engine/config.js';
import { testConfig } from './fixtures.js';

export async function startTestEngine(overrides: Partial<EngineConfig> = {}): Promise<{ engine: Engine; client: TxeClient; stop: () => Promise<void> }> {
  const engine = await Engine.start(testConfig(overrides));
  const client = new TxeClient(engine.address);
  await client.waitReady(5000);
  return { engine, client, stop: async () => { client.close(); await engine.stop(); } };
}
