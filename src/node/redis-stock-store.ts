import type { Redis } from 'ioredis';
import type {
  ReserveOutcome,
  StockCommand,
  StockDecision,
  StockLevel,
  StockState,
  StockStore,
  StoreHealth,
} from '../vacancy/stock-store.ts';
import { reservationIdOf } from '../vacancy/stock-store.ts';
import { KeyTable } from '../vacancy/key-table.ts';

export interface RedisStockStoreOptions {
  /** e.g. `redis://127.0.0.1:6379/0` */
  url: string;
  /** Prefix of every key this store writes; stocks of different deployments on one Redis stay apart. */
  keyPrefix: string;
  /** How long one call to Redis may take; past it the batch fails (503) and Redis will not apply it late. */
  timeoutMs: number;
}

/**
 * Decides one batch of one inventory atomically. KEYS[1] is the stock hash,
 * KEYS[2..] the idempotency keys of the batch. ARGV[1] is the deadline (ms,
 * Redis clock): a batch that reaches Redis after it changes nothing, so a
 * command whose caller gave up can never sell. ARGV[2] is the keys' TTL (ms),
 * then one (op, qty, key index) triple per command: op r = reserve, l = level,
 * s = set, a = add. The rules are the stock actor's: a reserve takes qty if
 * it all fits, else nothing; a known key replays its recorded decision if
 * the qty matches and is refused if not; a key twice in one batch is in
 * flight. Answers are strings, one per command (see parseDecision).
 */
const BATCH_SCRIPT = `
local function fmt(x) return string.format('%.0f', x) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = (#ARGV - 2) / 3
local out = {}
if now > tonumber(ARGV[1]) then
  for c = 1, n do out[c] = 'E' end
  return out
end
local level = redis.call('HMGET', KEYS[1], 'remaining', 'sold')
if not level[1] then
  for c = 1, n do out[c] = 'U' end
  return out
end
local remaining = tonumber(level[1])
local sold = tonumber(level[2])
local ttl = ARGV[2]
local seen = {}
local changed = false
for c = 1, n do
  local base = 3 + (c - 1) * 3
  local op = ARGV[base]
  local qty = tonumber(ARGV[base + 1])
  local k = tonumber(ARGV[base + 2])
  if op == 'l' then
    out[c] = 'L|' .. fmt(remaining) .. '|' .. fmt(sold)
  elseif op == 'r' then
    local decided = false
    if k > 0 then
      local key = KEYS[k]
      if seen[key] then
        out[c] = 'F'
        decided = true
      else
        local prior = redis.call('GET', key)
        if prior then
          local priorQty = string.match(prior, '^([^|]+)|')
          if tonumber(priorQty) == qty then out[c] = 'R|' .. string.sub(prior, #priorQty + 2) else out[c] = 'X' end
          decided = true
        end
      end
    end
    if not decided then
      local record
      if qty <= remaining then
        local first = sold + 1
        remaining = remaining - qty
        sold = sold + qty
        changed = true
        record = '1|' .. fmt(remaining) .. '|' .. fmt(first)
      else
        record = '0|' .. fmt(remaining) .. '|0'
      end
      if k > 0 then
        redis.call('SET', KEYS[k], fmt(qty) .. '|' .. record, 'PX', ttl)
        seen[KEYS[k]] = true
      end
      out[c] = 'D|' .. record
    end
  else
    local nextRemaining = remaining + qty
    if op == 's' then nextRemaining = qty end
    if nextRemaining < 0 then
      out[c] = 'N'
    else
      remaining = nextRemaining
      changed = true
      out[c] = 'A|' .. fmt(remaining) .. '|' .. fmt(sold)
    end
  end
end
if changed then redis.call('HSET', KEYS[1], 'remaining', fmt(remaining), 'sold', fmt(sold)) end
return out
`;

/** Seeds a stock only if it does not exist yet; answers its level either way. */
const SEED_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'remaining', ARGV[1], 'sold', '0')
end
return redis.call('HMGET', KEYS[1], 'remaining', 'sold')
`;

type ScriptedRedis = Redis & {
  ticketBatch(...args: Array<string | number>): Promise<string[]>;
  ticketSeed(...args: Array<string | number>): Promise<Array<string | null>>;
};

const OP_CODES = { reserve: 'r', level: 'l', set: 's', add: 'a' } as const;

/**
 * The scale-out store: the stock lives in Redis, shared by every vacancy
 * replica, and each batch of the actor is decided by one atomic script call
 * per inventory (loaded once, run by its SHA). It fails closed: with Redis
 * down, refusing or frozen, a batch fails within `timeoutMs` and is answered
 * 503; nothing is ever decided in local memory. A script that reaches Redis
 * after its caller gave up finds its deadline passed and changes nothing.
 *
 * All keys of one stock share the hash tag `{prefix:inventory}`, so the
 * script runs on Redis Cluster too.
 *
 * ioredis is loaded by {@link RedisStockStore.create}, so processes on the
 * other stores never load it (about 10 MB of memory).
 *
 * @example
 * const store = await RedisStockStore.create({ url: 'redis://127.0.0.1:6379', keyPrefix: 'tickets', timeoutMs: 500 });
 * const actor = await StockActor.start(store, new Map([['default', 1000]]));
 */
export class RedisStockStore implements StockStore {
  readonly kind = 'redis';
  readonly #redis: ScriptedRedis;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #location: string;
  /** Redis clock minus ours, in ms, measured with TIME; deadlines are set on Redis's clock. */
  #clockOffsetMs = 0;
  #failure: string | null = null;
  #lastCommitAt: number | null = null;

  static async create(options: RedisStockStoreOptions): Promise<RedisStockStore> {
    const { Redis } = await import('ioredis');
    return new RedisStockStore(options, Redis);
  }

  private constructor(options: RedisStockStoreOptions, RedisClient: typeof Redis) {
    this.#prefix = options.keyPrefix;
    this.#timeoutMs = options.timeoutMs;
    const url = new URL(options.url);
    this.#location = `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
    this.#redis = new RedisClient(options.url, {
      lazyConnect: true,
      // Fail closed and fast: no command waits for a reconnect, none is retried, each has a timeout.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.timeoutMs,
      connectTimeout: Math.max(options.timeoutMs, 1_000),
      retryStrategy: (attempt) => Math.min(50 * attempt, 1_000),
    }) as ScriptedRedis;
    this.#redis.defineCommand('ticketBatch', { lua: BATCH_SCRIPT });
    this.#redis.defineCommand('ticketSeed', { numberOfKeys: 1, lua: SEED_SCRIPT });
    this.#redis.on('error', (error: Error) => {
      this.#failure = `redis: ${error.message}`;
    });
    this.#redis.on('ready', () => {
      this.#failure = null;
    });
  }

  async open(seed: ReadonlyMap<string, number>): Promise<StockState> {
    try {
      await this.#redis.connect();
    } catch (error) {
      this.#redis.disconnect();
      throw new Error(
        `Cannot reach Redis at ${this.#location} (REDIS_URL): ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
    await this.#syncClock();
    const levels = new Map<string, StockLevel>();
    for (const [inventoryId, initial] of seed) {
      const [remaining, sold] = await this.#redis.ticketSeed(this.#stockKey(inventoryId), String(initial));
      levels.set(inventoryId, { remaining: Number(remaining), sold: Number(sold) });
    }
    this.#lastCommitAt = Date.now();
    return { levels, keys: new KeyTable() };
  }

  /** Never called: this store decides batches itself. */
  async commit(): Promise<void> {
    throw new Error('RedisStockStore decides batches itself; the actor calls decide(), not commit()');
  }

  async decide(commands: readonly StockCommand[], options: { idempotencyTtlMs: number }): Promise<StockDecision[]> {
    const groups = new Map<string, number[]>();
    commands.forEach((command, index) => {
      const group = groups.get(command.inventoryId);
      if (group) group.push(index);
      else groups.set(command.inventoryId, [index]);
    });
    const decisions: StockDecision[] = new Array(commands.length);
    try {
      await Promise.all(
        [...groups].map(async ([inventoryId, indexes]) => {
          const keys = [this.#stockKey(inventoryId)];
          const args: string[] = [String(this.#deadline()), String(options.idempotencyTtlMs)];
          for (const index of indexes) {
            const command = commands[index] as StockCommand;
            if (command.kind === 'reserve') {
              let keyIndex = 0;
              if (command.key !== undefined) {
                keys.push(this.#idempotencyKey(inventoryId, command.key));
                keyIndex = keys.length;
              }
              args.push(OP_CODES.reserve, String(command.qty), String(keyIndex));
            } else if (command.kind === 'adjust') {
              args.push(OP_CODES[command.op], String(command.qty), '0');
            } else {
              args.push(OP_CODES.level, '0', '0');
            }
          }
          const answers = await this.#redis.ticketBatch(keys.length, ...keys, ...args);
          indexes.forEach((index, position) => {
            decisions[index] = parseDecision(answers[position], commands[index] as StockCommand);
          });
        }),
      );
    } catch (error) {
      this.#failure = `redis: ${error instanceof Error ? error.message : String(error)}`;
      // A batch sent but not answered in time may still have run before its deadline.
      if (isCommandTimeout(error)) throw Object.assign(error as Error, { outcomeUnknown: true });
      throw error;
    }
    this.#failure = null;
    this.#lastCommitAt = Date.now();
    return decisions;
  }

  health(): StoreHealth {
    const writable = this.#failure === null && this.#redis.status === 'ready';
    return {
      kind: this.kind,
      durable: true,
      writable,
      lastCommitAgeMs: this.#lastCommitAt === null ? null : Date.now() - this.#lastCommitAt,
      location: this.#location,
      ...(writable ? {} : { error: this.#failure ?? `redis connection is ${this.#redis.status}` }),
    };
  }

  /** Pings Redis (and re-measures its clock), so readiness follows Redis without waiting for traffic. */
  async checkWritable(): Promise<boolean> {
    try {
      await this.#syncClock();
      this.#failure = null;
      return true;
    } catch (error) {
      this.#failure = `redis: ${error instanceof Error ? error.message : String(error)}`;
      return false;
    }
  }

  async close(): Promise<void> {
    try {
      await this.#redis.quit();
    } catch {
      this.#redis.disconnect();
    }
  }

  /**
   * When a batch sent now stops being allowed to run, on Redis's clock: the
   * client's timeout, less a margin for the answer's way back, so that a
   * batch that runs is nearly always one whose answer still arrives in time.
   */
  #deadline(): number {
    const replyMarginMs = Math.min(Math.floor(this.#timeoutMs / 4), 250);
    return Date.now() + this.#clockOffsetMs + this.#timeoutMs - replyMarginMs;
  }

  async #syncClock(): Promise<void> {
    const sent = Date.now();
    const [seconds, micros] = await this.#redis.time();
    const received = Date.now();
    const redisNow = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    this.#clockOffsetMs = redisNow - (sent + received) / 2;
  }

  #stockKey(inventoryId: string): string {
    return `{${this.#prefix}:${inventoryId}}:stock`;
  }

  #idempotencyKey(inventoryId: string, key: string): string {
    return `{${this.#prefix}:${inventoryId}}:idem:${key}`;
  }
}

function isCommandTimeout(error: unknown): boolean {
  return error instanceof Error && /command timed out/i.test(error.message);
}

function parseDecision(answer: string | undefined, command: StockCommand): StockDecision {
  if (answer === undefined) throw new Error('the batch script answered fewer decisions than asked');
  const [tag, ...fields] = answer.split('|');
  switch (tag) {
    case 'D':
    case 'R':
      return { kind: 'reserved', outcome: outcome(fields, command), replayed: tag === 'R' };
    case 'L':
      return { kind: 'level', level: { remaining: Number(fields[0]), sold: Number(fields[1]) } };
    case 'A':
      return { kind: 'adjusted', level: { remaining: Number(fields[0]), sold: Number(fields[1]) } };
    case 'F':
      return { kind: 'refused', reason: 'key-in-flight' };
    case 'X':
      return { kind: 'refused', reason: 'key-reused' };
    case 'N':
      return { kind: 'refused', reason: 'negative-stock' };
    case 'U':
      return { kind: 'refused', reason: 'unknown-inventory' };
    case 'E':
      return { kind: 'refused', reason: 'expired' };
    default:
      throw new Error(`the batch script answered ${JSON.stringify(answer)}`);
  }
}

/** Rebuilds a reserve outcome from the script's `success|remaining|first` record. */
function outcome([success, remaining, first]: string[], command: StockCommand): ReserveOutcome {
  if (success !== '1') return { success: false, remaining: Number(remaining) };
  const qty = command.kind === 'reserve' ? command.qty : 0;
  const firstTicket = Number(first);
  return {
    success: true,
    remaining: Number(remaining),
    reservationId: reservationIdOf(command.inventoryId, firstTicket),
    tickets: { first: firstTicket, last: firstTicket + qty - 1 },
  };
}
