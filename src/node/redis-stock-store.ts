import type { Redis } from 'ioredis';
import { stockKeyOf, type StockCommand, type StockDecision } from '../stock/model.ts';
import { reserveOutcomeOf, reserveRequestOf, type DecideOptions } from '../stock/rules.ts';
import type { SeedStock, StockStore, StoreHealth } from '../stock/store.ts';

export interface RedisStockStoreOptions {
  /** e.g. `redis://127.0.0.1:6379/0` */
  url: string;
  /** Prefix of every key this store writes; stocks of different deployments on one Redis stay apart. */
  keyPrefix: string;
  /** How long one call to Redis may take; past it the batch fails (503) and Redis will not apply it late. */
  timeoutMs: number;
}

/**
 * Decides one batch of one stock atomically, by the rules of
 * src/stock/rules.ts. KEYS[1] is the stock hash (capacity, sold, issued),
 * KEYS[2..] the idempotency keys of the batch. ARGV[1] is the deadline (ms,
 * Redis clock): a batch that reaches Redis after it changes nothing, so a
 * command whose caller gave up can never sell. ARGV[2] is the keys' TTL (ms),
 * then one (op, qty, key index, request) quadruple per command: op r =
 * reserve, l = level, s = set, a = add. A key's record is its request, a
 * newline, and the outcome as rules.ts writes it (`1 <remaining> <first>` or
 * `0 <remaining>`). Answers are strings, one per command (see parseDecision).
 */
const BATCH_SCRIPT = `
local function fmt(x) return string.format('%.0f', x) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = (#ARGV - 2) / 4
local out = {}
if now > tonumber(ARGV[1]) then
  for c = 1, n do out[c] = 'E' end
  return out
end
local level = redis.call('HMGET', KEYS[1], 'capacity', 'sold', 'issued')
if not level[1] then
  for c = 1, n do out[c] = 'U' end
  return out
end
local capacity = tonumber(level[1])
local sold = tonumber(level[2])
local issued = tonumber(level[3])
local ttl = ARGV[2]
local seen = {}
local changed = false
for c = 1, n do
  local base = 3 + (c - 1) * 4
  local op = ARGV[base]
  local qty = tonumber(ARGV[base + 1])
  local k = tonumber(ARGV[base + 2])
  local request = ARGV[base + 3]
  if op == 'l' then
    out[c] = 'L|' .. fmt(capacity - sold) .. '|' .. fmt(sold)
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
          local cut = string.find(prior, '\\n', 1, true)
          if string.sub(prior, 1, cut - 1) == request then out[c] = 'R|' .. string.sub(prior, cut + 1) else out[c] = 'X' end
          decided = true
        end
      end
    end
    if not decided then
      local outcome
      if qty <= capacity - sold then
        local first = issued + 1
        sold = sold + qty
        issued = issued + qty
        changed = true
        outcome = '1 ' .. fmt(capacity - sold) .. ' ' .. fmt(first)
      else
        outcome = '0 ' .. fmt(capacity - sold)
      end
      if k > 0 then
        redis.call('SET', KEYS[k], request .. '\\n' .. outcome, 'PX', ttl)
        seen[KEYS[k]] = true
      end
      out[c] = 'D|' .. outcome
    end
  else
    local remaining = capacity - sold + qty
    if op == 's' then remaining = qty end
    if remaining < 0 or sold + remaining > 9007199254740991 then
      out[c] = 'N'
    else
      capacity = sold + remaining
      changed = true
      out[c] = 'A|' .. fmt(capacity - sold) .. '|' .. fmt(sold)
    end
  end
end
if changed then redis.call('HSET', KEYS[1], 'capacity', fmt(capacity), 'sold', fmt(sold), 'issued', fmt(issued)) end
return out
`;

/** Seeds a stock only if it does not exist yet; answers its level either way. */
const SEED_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'capacity', ARGV[1], 'sold', '0', 'issued', '0')
end
return 1
`;

type ScriptedRedis = Redis & {
  ticketBatch(...args: Array<string | number>): Promise<string[]>;
  ticketSeed(...args: Array<string | number>): Promise<number>;
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

  async open(seed: readonly SeedStock[]): Promise<void> {
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
    for (const { eventId, typeId, capacity } of seed) {
      await this.#redis.ticketSeed(this.#stockKey(eventId, typeId), String(capacity));
    }
    this.#lastCommitAt = Date.now();
  }

  async decide(commands: readonly StockCommand[], options: DecideOptions): Promise<StockDecision[]> {
    const groups = new Map<string, number[]>();
    commands.forEach((command, index) => {
      const stock = stockKeyOf(command.eventId, command.typeId);
      const group = groups.get(stock);
      if (group) group.push(index);
      else groups.set(stock, [index]);
    });
    const decisions: StockDecision[] = new Array(commands.length);
    try {
      await Promise.all(
        [...groups.values()].map(async (indexes) => {
          const { eventId, typeId } = commands[indexes[0]!]!;
          const keys = [this.#stockKey(eventId, typeId)];
          const args: string[] = [String(this.#deadline()), String(options.idempotencyTtlMs)];
          for (const index of indexes) {
            const command = commands[index]!;
            if (command.kind === 'reserve') {
              let keyIndex = 0;
              if (command.key !== undefined) {
                keys.push(this.#idempotencyKey(eventId, command.key));
                keyIndex = keys.length;
              }
              args.push(OP_CODES.reserve, String(command.qty), String(keyIndex), reserveRequestOf(command));
            } else if (command.kind === 'adjust') {
              args.push(OP_CODES[command.op], String(command.qty), '0', '');
            } else {
              args.push(OP_CODES.level, '0', '0', '');
            }
          }
          const answers = await this.#redis.ticketBatch(keys.length, ...keys, ...args);
          indexes.forEach((index, position) => {
            decisions[index] = parseDecision(answers[position], commands[index]!);
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

  /** Every key of an event shares its hash tag: one script call touches one slot of a cluster. */
  #stockKey(eventId: string, typeId: string): string {
    return `{${this.#prefix}:${eventId}}:stock:${typeId}`;
  }

  #idempotencyKey(eventId: string, key: string): string {
    return `{${this.#prefix}:${eventId}}:idem:${key}`;
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
      if (command.kind !== 'reserve') break;
      return { kind: 'reserved', outcome: reserveOutcomeOf(fields[0]!, command), replayed: tag === 'R' };
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
      return { kind: 'refused', reason: 'unknown-stock' };
    case 'E':
      return { kind: 'refused', reason: 'expired' };
  }
  throw new Error(`the batch script answered ${JSON.stringify(answer)} to ${command.kind}`);
}
