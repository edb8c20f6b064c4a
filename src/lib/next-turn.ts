/**
 * Runs `callback` after the I/O of this turn of the event loop: requests read
 * from many sockets in one turn then meet in one batch, and their answers go
 * out together. setImmediate where the runtime has it (Node, Deno 2, Bun),
 * else a zero timeout.
 */
export const nextTurn: (callback: () => void) => void =
  typeof globalThis.setImmediate === 'function'
    ? (callback) => globalThis.setImmediate(callback)
    : (callback) => setTimeout(callback, 0);
