// Every test file gets the engine on this machine's WebGPU adapter (lavapipe in CI).
import { beforeAll } from 'vitest';
import { initNode } from '../runtime-node/index.ts';

beforeAll(async () => {
  await initNode();
});
