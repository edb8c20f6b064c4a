import { jsx } from 'hono/jsx';

/** The part of node:async_hooks' AsyncLocalStorage used here (this module is not Node-only). */
type StorageClass = new () => {
  run(store: unknown, callback: (...args: unknown[]) => unknown, ...args: unknown[]): unknown;
  disable(): void;
};

/**
 * hono/jsx keeps each render's context in an AsyncLocalStorage, created on
 * the first render and used by every render after it. On Node before 24, an
 * AsyncLocalStorage that has run once turns on promise hooks for every
 * promise of the process from then on (Node 24 builds AsyncLocalStorage on
 * AsyncContextFrame, which costs nothing while unused): one dashboard opened
 * made every purchase after it 15–35 % dearer in CPU under the purchase
 * benchmark. The dashboard's components read no context and await nothing,
 * so on those versions hono/jsx is given a storage that switches itself off
 * again when each render returns. Call before the first render; Node 24,
 * Deno and Bun are left as they are.
 */
export function keepRenderContextFromLingering(): void {
  const nodeMajor = Number(globalThis.process?.versions?.node?.split('.')[0]);
  const isNode = globalThis.process?.release?.name === 'node' && !('Deno' in globalThis) && !('Bun' in globalThis);
  const hooks = globalThis.process?.getBuiltinModule?.('node:async_hooks') as
    { AsyncLocalStorage: StorageClass } | undefined;
  if (!isNode || !(nodeMajor < 24) || !hooks) return;
  const Original = hooks.AsyncLocalStorage;
  class RenderContextStorage extends Original {
    override run(store: unknown, callback: (...args: unknown[]) => unknown, ...args: unknown[]): unknown {
      try {
        return super.run(store, callback, ...args);
      } finally {
        this.disable();
      }
    }
  }
  hooks.AsyncLocalStorage = RenderContextStorage;
  try {
    // hono/jsx looks for AsyncLocalStorage on its first render, and keeps what it found.
    String(jsx('i', {}));
  } finally {
    hooks.AsyncLocalStorage = Original;
  }
}
