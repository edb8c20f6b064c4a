import type { Redis } from 'ioredis';
import type {
  EventDefinition,
  EventRecord,
  OrderRecord,
  RefusalReason,
  StockCommand,
  StockDecision,
} from '../stock/model.ts';
import { purchaseRequestOf, reserveOutcomeOf, reserveRequestOf, type DecideOptions } from '../stock/rules.ts';
import type { SeedEvent, StockStore, StoreHealth } from '../stock/store.ts';

export interface RedisStockStoreOptions {
  /** e.g. `redis://127.0.0.1:6379/0` */
  url: string;
  /** Prefix of every key this store writes; stocks of different deployments on one Redis stay apart. */
  keyPrefix: string;
  /** How long one call to Redis may take; past it the batch fails (503) and Redis will not apply it late. */
  timeoutMs: number;
}

/*
 * ---- Key layout -------------------------------------------------------------------------------
 *
 * Every key of one event shares its hash tag `{<prefix>:<eventId>}` (written `{tag}` below), so one
 * script call decides all of a batch's commands on an event atomically, and on Redis Cluster the
 * events spread over the slots. Every key a script touches is named by the event's id and the
 * batch's commands alone, so all of them are declared in KEYS:
 *
 *   {tag}:event      hash, the event's definition and stock:
 *                      name            its name
 *                      cap             its capacity over all types (absent: none)
 *                      types           its ticket type ids, in definition order, joined by ' '
 *                      n:<type>        the type's name
 *                      c:<type>        its capacity (up to Number.MAX_SAFE_INTEGER after adjustments)
 *                      m:<type>        its maxPerOrder (absent: none)
 *                      s:<type>        tickets sold
 *                      i:<type>        the last ticket number handed out (ticket numbers never repeat)
 *                    Short names and values keep a typical event a listpack: 0.28 KB with two types.
 *   {tag}:orders     hash, order id -> `<status> <createdAt> <type> <qty> <first> [<type> <qty> <first> …]`,
 *                    then `\n<buyer>` when it has one; status `c` (confirmed). An order id ends with
 *                    its event's id (see eventOfOrderId), so the id alone finds the hash. One hash,
 *                    not a key per order: a purchase replayed from its idempotency record names its
 *                    order, and the script may only read keys it declared up front.
 *   {tag}:idem:<key> string with PX TTL: the request (as rules.ts writes it, never containing a
 *                    newline), `\n`, the outcome as rules.ts records it (`1 <remaining> <first>`,
 *                    `0 <remaining>`, `order <id>`, `insufficient <shortfalls as JSON>`).
 *   <prefix>:events  sorted set (all scores 0) of every event id, for listing in id order
 *                    (ZRANGEBYLEX). It lies outside every event's hash tag: written (ZADD, idempotent)
 *                    after a put-event's script has succeeded, read before the batch's scripts.
 *
 * Room for holds, order status and per-buyer limits (issue 17), under the same tag and declared
 * the same way: `h:<type>` (held) in the event hash, `{tag}:holds` (hold id -> record),
 * `{tag}:hold-deadlines` (sorted set by expiresAt, swept by the batch script against TIME),
 * `{tag}:buyers` (buyer and type -> tickets), and an order's status token going from `c` to `x`.
 *
 * ---- How a batch runs ---------------------------------------------------------------------------
 *
 * 1. Only when the batch lists events: one ZRANGEBYLEX per list-events on the index (limit + 1 ids
 *    after `after`), merged with the ids of the put-events before it in the batch (creating an
 *    event is never refused). That fixes each page's ids.
 * 2. One EVALSHA per event, all sent at once: the event's commands in batch order, with a read of
 *    the event (`g`) put in at the place of every list-events whose page names it. So each read
 *    sees exactly the commands before it, and an event is still decided in one call.
 * 3. Only when an event was put: one ZADD of their ids to the index.
 */

/**
 * Decides one event's commands of a batch, in order, by the rules of
 * src/stock/rules.ts. It reads the event once, decides every command against
 * that state in Lua, and writes what changed at the end (no write happens
 * before every command is decided, so an error leaves nothing half done).
 *
 * KEYS[1] `{tag}:event`, KEYS[2] `{tag}:orders`, KEYS[3..] the batch's idempotency keys
 * on this event (`{tag}:idem:<key>`), each once.
 *
 * ARGV[1] the deadline (ms, Redis clock): a call that reaches Redis after it
 * changes nothing and answers 'E', so a command whose caller gave up can never
 * sell. ARGV[2] the idempotency TTL (ms). Then the commands, each an op code
 * and its fields (k: the KEYS index of its idempotency key, 0 for none;
 * request: the key's request string from rules.ts, '' without a key):
 *
 *   l <type>                                   level
 *   r <type> <qty> <k> <request>               1.0.0 reserve
 *   s <type> <qty> | a <type> <qty>            adjust: set / add
 *   g                                          get-event (also a list-events' read of this event)
 *   p <name> <cap|''> <n> n × (<type> <name> <capacity> <maxPerOrder|''>)    put-event
 *   n …                                        as p, but only if the event does not exist (seeding)
 *   b <orderId> <at> <buyer> <k> <request> <n> n × (<type> <qty>)             purchase;
 *                                              buyer: '0' for none, else '1' and the buyer
 *
 * Answers one array per command (parsed by `decisionOf`): V created name cap
 * then 6 per type (id name capacity maxPerOrder sold issued) | L remaining sold
 * | A remaining sold | D outcome (reserve) | R outcome [order] (replay) |
 * O first… (order) | I available… (insufficient) | U (unknown event) |
 * T [item] (unknown type) | M item max | N (adjust below zero) |
 * C item|'' sold (capacity below sold) | K type (type in use) | X (key reused)
 * | F (key in flight). Integers are formatted with %.0f: Lua numbers are
 * doubles, exact up to 2^53.
 */
const BATCH_SCRIPT = `
local function fmt(x) return string.format('%.0f', x) end
local t = redis.call('TIME')
if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(ARGV[1]) then return 'E' end
local ttl = tonumber(ARGV[2])

-- The event as the commands see it: read once, changed in place, written back once at the end.
local ev = nil
local raw = redis.call('HGETALL', KEYS[1])
if #raw > 0 then
  local f = {}
  for j = 1, #raw, 2 do f[raw[j]] = raw[j + 1] end
  ev = { name = f.name, cap = tonumber(f.cap), ids = {}, types = {}, sold = 0 }
  for id in string.gmatch(f.types or '', '%S+') do
    local tp = { n = f['n:' .. id], c = tonumber(f['c:' .. id]), m = tonumber(f['m:' .. id]),
                 s = tonumber(f['s:' .. id]), i = tonumber(f['i:' .. id]) }
    ev.ids[#ev.ids + 1] = id
    ev.types[id] = tp
    ev.sold = ev.sold + tp.s
  end
end

local defined = false   -- the definition changed: the event hash is rewritten
local dirty, dirtyIds = {}, {}   -- types whose stock changed
local orders = {}       -- order id, record, … (HSET)
local seen = {}         -- idempotency keys recorded by this call
local records = {}      -- KEYS index, record, …

local function touch(id)
  if not dirty[id] then dirty[id] = true; dirtyIds[#dirtyIds + 1] = id end
end

-- typeAvailable of model.ts: what the type's capacity leaves, and no more than the event's cap leaves.
local function available(tp)
  local own = tp.c - tp.s
  if own < 0 then own = 0 end
  if ev.cap then
    local left = ev.cap - ev.sold
    if left < own then own = left end
    if own < 0 then own = 0 end
  end
  return own
end

local function view(created)
  local v = { 'V', created, ev.name, ev.cap and fmt(ev.cap) or '' }
  for _, id in ipairs(ev.ids) do
    local tp = ev.types[id]
    v[#v + 1] = id
    v[#v + 1] = tp.n
    v[#v + 1] = fmt(tp.c)
    v[#v + 1] = tp.m and fmt(tp.m) or ''
    v[#v + 1] = fmt(tp.s)
    v[#v + 1] = fmt(tp.i)
  end
  return v
end

-- The answer a live key gives (in flight, reused, or its replay); nil for a fresh key.
local function known(k, request)
  if k == 0 then return nil end
  if seen[KEYS[k]] then return { 'F' } end
  local prior = redis.call('GET', KEYS[k])
  if not prior then return nil end
  local cut = string.find(prior, '\\n', 1, true)
  if string.sub(prior, 1, cut - 1) ~= request then return { 'X' } end
  return { 'R', string.sub(prior, cut + 1) }
end

local function record(k, request, outcome)
  if k == 0 then return end
  seen[KEYS[k]] = true
  records[#records + 1] = k
  records[#records + 1] = request .. '\\n' .. outcome
end

local function putEvent(name, cap, defs)
  local types, ids, sold = {}, {}, 0
  for j, d in ipairs(defs) do
    local before = ev and ev.types[d.id]
    if before and d.c < before.s then return { 'C', fmt(j - 1), fmt(before.s) } end
    types[d.id] = { n = d.n, c = d.c, m = d.m, s = before and before.s or 0, i = before and before.i or 0 }
    ids[j] = d.id
    sold = sold + types[d.id].s
  end
  if ev then
    for _, id in ipairs(ev.ids) do
      if ev.types[id].i > 0 and not types[id] then return { 'K', id } end
    end
  end
  if cap and cap < sold then return { 'C', '', fmt(sold) } end
  local created = ev and '0' or '1'
  ev = { name = name, cap = cap, ids = ids, types = types, sold = sold }
  defined = true
  return view(created)
end

local function reserve(tp, typeId, qty, k, request)
  local answer = known(k, request)
  if answer then return answer end
  local left = available(tp)
  local outcome
  if qty <= left then
    local first = tp.i + 1
    tp.s = tp.s + qty
    tp.i = tp.i + qty
    ev.sold = ev.sold + qty
    touch(typeId)
    outcome = '1 ' .. fmt(left - qty) .. ' ' .. fmt(first)
  else
    outcome = '0 ' .. fmt(left)
  end
  record(k, request, outcome)
  return { 'D', outcome }
end

local function adjust(tp, typeId, op, qty)
  local remaining = qty
  if op == 'a' then remaining = tp.c - tp.s + qty end
  local capacity = tp.s + remaining
  if remaining < 0 or capacity > 9007199254740991 or capacity ~= math.floor(capacity) then return { 'N' } end
  tp.c = capacity
  touch(typeId)
  return { 'A', fmt(available(tp)), fmt(tp.s) }
end

local function purchase(orderId, at, buyer, k, request, items)
  local tps = {}
  local listed = {}
  for j, item in ipairs(items) do
    if listed[item.t] then return { 'D', fmt(j - 1) } end
    listed[item.t] = true
    local tp = ev.types[item.t]
    if not tp then return { 'T', fmt(j - 1) } end
    if tp.m and item.q > tp.m then return { 'M', fmt(j - 1), fmt(tp.m) } end
    tps[j] = tp
  end
  local prior = known(k, request)
  if prior then
    if prior[1] == 'R' and string.sub(prior[2], 1, 6) == 'order ' then
      prior[3] = redis.call('HGET', KEYS[2], string.sub(prior[2], 7)) or ''
    end
    return prior
  end
  -- All or nothing: every item must fit, and all of them together under the event's cap.
  local wanted = 0
  for _, item in ipairs(items) do wanted = wanted + item.q end
  local short = ev.cap ~= nil and ev.sold + wanted > ev.cap
  local lefts = {}
  for j, item in ipairs(items) do
    lefts[j] = available(tps[j])
    if item.q > lefts[j] then short = true end
  end
  if short then
    local answer, json = { 'I' }, {}
    for j, item in ipairs(items) do
      answer[j + 1] = fmt(lefts[j])
      json[j] = '{"typeId":"' .. item.t .. '","requested":' .. fmt(item.q) .. ',"available":' .. fmt(lefts[j]) .. '}'
    end
    record(k, request, 'insufficient [' .. table.concat(json, ',') .. ']')
    return answer
  end
  local answer, stored = { 'O' }, { 'c', at }
  for j, item in ipairs(items) do
    local tp = tps[j]
    local first = tp.i + 1
    tp.s = tp.s + item.q
    tp.i = tp.i + item.q
    ev.sold = ev.sold + item.q
    touch(item.t)
    answer[j + 1] = fmt(first)
    stored[#stored + 1] = item.t
    stored[#stored + 1] = fmt(item.q)
    stored[#stored + 1] = fmt(first)
  end
  local value = table.concat(stored, ' ')
  if string.sub(buyer, 1, 1) == '1' then value = value .. '\\n' .. string.sub(buyer, 2) end
  orders[#orders + 1] = orderId
  orders[#orders + 1] = value
  record(k, request, 'order ' .. orderId)
  return answer
end

local out = {}
local a = 3
local function arg() a = a + 1; return ARGV[a - 1] end
while a <= #ARGV do
  local op = arg()
  local answer
  if op == 'p' or op == 'n' then
    local name, cap, n = arg(), tonumber(arg()), tonumber(arg())
    local defs = {}
    for j = 1, n do defs[j] = { id = arg(), n = arg(), c = tonumber(arg()), m = tonumber(arg()) } end
    if op == 'n' and ev then answer = view('0') else answer = putEvent(name, cap, defs) end
  elseif op == 'g' then
    if ev then answer = view('0') else answer = { 'U' } end
  elseif op == 'b' then
    local orderId, at, buyer, k, request, n = arg(), arg(), arg(), tonumber(arg()), arg(), tonumber(arg())
    local items = {}
    for j = 1, n do items[j] = { t = arg(), q = tonumber(arg()) } end
    if ev then answer = purchase(orderId, at, buyer, k, request, items) else answer = { 'U' } end
  else
    local typeId = arg()
    local qty, k, request
    if op ~= 'l' then qty = tonumber(arg()) end
    if op == 'r' then k, request = tonumber(arg()), arg() end
    local tp = ev and ev.types[typeId]
    if not ev then answer = { 'U' }
    elseif not tp then answer = { 'T' }
    elseif op == 'l' then answer = { 'L', fmt(available(tp)), fmt(tp.s) }
    elseif op == 'r' then answer = reserve(tp, typeId, qty, k, request)
    else answer = adjust(tp, typeId, op, qty) end
  end
  out[#out + 1] = answer
end

local function hset(key, fields)
  for j = 1, #fields, 1000 do redis.call('HSET', key, unpack(fields, j, math.min(j + 999, #fields))) end
end
if defined then
  local h = { 'name', ev.name, 'types', table.concat(ev.ids, ' ') }
  if ev.cap then h[#h + 1] = 'cap'; h[#h + 1] = fmt(ev.cap) end
  for _, id in ipairs(ev.ids) do
    local tp = ev.types[id]
    h[#h + 1] = 'n:' .. id; h[#h + 1] = tp.n
    h[#h + 1] = 'c:' .. id; h[#h + 1] = fmt(tp.c)
    h[#h + 1] = 's:' .. id; h[#h + 1] = fmt(tp.s)
    h[#h + 1] = 'i:' .. id; h[#h + 1] = fmt(tp.i)
    if tp.m then h[#h + 1] = 'm:' .. id; h[#h + 1] = fmt(tp.m) end
  end
  redis.call('DEL', KEYS[1])
  hset(KEYS[1], h)
elseif #dirtyIds > 0 then
  local h = {}
  for _, id in ipairs(dirtyIds) do
    local tp = ev.types[id]
    h[#h + 1] = 'c:' .. id; h[#h + 1] = fmt(tp.c)
    h[#h + 1] = 's:' .. id; h[#h + 1] = fmt(tp.s)
    h[#h + 1] = 'i:' .. id; h[#h + 1] = fmt(tp.i)
  end
  hset(KEYS[1], h)
end
if #orders > 0 then hset(KEYS[2], orders) end
-- A record whose TTL is not positive would be expired at once: it is only in flight for this call.
if ttl > 0 then
  for j = 1, #records, 2 do redis.call('SET', KEYS[records[j]], records[j + 1], 'PX', ARGV[2]) end
end
return out
`;

/** One command's answer from the batch script: a tag and its fields. */
type Answer = string[];

type ScriptedRedis = Redis & {
  /** Answers one array per command, or 'E' when the call reached Redis after its deadline. */
  ticketBatch(numberOfKeys: number, keys: string[], args: string[]): Promise<Answer[] | 'E'>;
};

/** A command the batch script decides: every command but list-events (which reads the index first). */
type EventCommand = Exclude<StockCommand, { kind: 'list-events' }>;

/** A list-events' page: the events it shows (ids fixed before the scripts run) and whether more follow. */
interface Page {
  ids: string[];
  more: boolean;
  /** Filled from the scripts' answers: each listed event as of the list's place in the batch. */
  events: Map<string, EventRecord>;
  expired: boolean;
}

/**
 * One script call: one event's commands of a batch, in batch order, and the
 * reads of the event that list-events put in at their place.
 */
class EventCall {
  readonly keys: string[];
  readonly args: string[];
  /** What each op answers: a command of the batch, or a list-events' read of this event. */
  readonly ops: Array<{ index: number; page?: Page }> = [];
  readonly #idempotencyKeys = new Map<string, number>();
  readonly #tag: string;

  constructor(
    readonly eventId: string,
    tag: string,
    deadline: number,
    ttlMs: number,
  ) {
    this.#tag = tag;
    this.keys = [`${tag}:event`, `${tag}:orders`];
    this.args = [String(deadline), String(Math.max(0, Math.floor(ttlMs)))];
  }

  add(index: number, command: EventCommand): void {
    this.ops.push({ index });
    switch (command.kind) {
      case 'level':
        this.args.push('l', command.typeId);
        return;
      case 'adjust':
        this.args.push(command.op === 'set' ? 's' : 'a', command.typeId, String(command.qty));
        return;
      case 'reserve':
        this.args.push(
          'r',
          command.typeId,
          String(command.qty),
          this.#keyIndex(command.key),
          command.key === undefined ? '' : reserveRequestOf(command),
        );
        return;
      case 'get-event':
        this.args.push('g');
        return;
      case 'put-event':
        this.args.push('p', ...definitionArgs(command.definition));
        return;
      case 'purchase':
        this.args.push(
          'b',
          command.orderId,
          String(command.at),
          command.buyer === null ? '0' : `1${command.buyer}`,
          this.#keyIndex(command.key),
          command.key === undefined ? '' : purchaseRequestOf(command),
          String(command.items.length),
        );
        for (const item of command.items) this.args.push(item.typeId, String(item.qty));
        return;
    }
  }

  /** A read of the event for the list-events at `index`. */
  read(index: number, page: Page): void {
    this.ops.push({ index, page });
    this.args.push('g');
  }

  /** Creates the event if it does not exist yet. */
  seed(definition: EventDefinition): void {
    this.ops.push({ index: 0 });
    this.args.push('n', ...definitionArgs(definition));
  }

  /** The KEYS index of an idempotency key ('0' for none); each key is declared once. */
  #keyIndex(key: string | undefined): string {
    if (key === undefined) return '0';
    const name = `${this.#tag}:idem:${key}`;
    let index = this.#idempotencyKeys.get(name);
    if (index === undefined) {
      this.keys.push(name);
      index = this.keys.length;
      this.#idempotencyKeys.set(name, index);
    }
    return String(index);
  }
}

function definitionArgs(definition: EventDefinition): string[] {
  const args = [
    definition.name,
    definition.capacity === null ? '' : String(definition.capacity),
    String(definition.ticketTypes.length),
  ];
  for (const type of definition.ticketTypes) {
    args.push(type.id, type.name, String(type.capacity), type.maxPerOrder === null ? '' : String(type.maxPerOrder));
  }
  return args;
}

/**
 * The scale-out store: events, their stock, orders and idempotency keys live
 * in Redis, shared by every vacancy replica, and each batch of the actor is
 * decided by one atomic script call per event it touches (loaded once, run by
 * its SHA), by the rules of src/stock/rules.ts (the contract suite holds it to
 * the same answers as the other stores). It fails closed: with Redis down,
 * refusing or frozen, a batch fails within `timeoutMs` and is answered 503;
 * nothing is ever decided in local memory. A script that reaches Redis after
 * its caller gave up finds its deadline passed and changes nothing.
 *
 * All keys of one event share the hash tag `{prefix:eventId}`, so the script
 * runs on Redis Cluster too; see the key layout above.
 *
 * ioredis is loaded by {@link RedisStockStore.create}, so processes on the
 * other stores never load it (about 10 MB of memory).
 *
 * @example
 * const store = await RedisStockStore.create({ url: 'redis://127.0.0.1:6379', keyPrefix: 'tickets', timeoutMs: 500 });
 * const actor = await StockActor.start(store, [{ eventId: 'default', definition: defaultEventDefinition(1000) }]);
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
    if (/[{}]/.test(options.keyPrefix)) {
      throw new Error(`The Redis key prefix ${JSON.stringify(options.keyPrefix)} must not contain { or }`);
    }
    this.#prefix = options.keyPrefix;
    this.#timeoutMs = options.timeoutMs;
    const url = new URL(options.url);
    this.#location = `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
    this.#redis = new RedisClient(options.url, {
      lazyConnect: true,
      // Fail closed and fast: no command waits for a reconnect, none is retried or sent again, each has a timeout.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: options.timeoutMs,
      connectTimeout: Math.max(options.timeoutMs, 1_000),
      retryStrategy: (attempt) => Math.min(50 * attempt, 1_000),
    }) as ScriptedRedis;
    this.#redis.defineCommand('ticketBatch', { lua: BATCH_SCRIPT });
    this.#redis.on('error', (error: Error) => {
      this.#failure = `redis: ${error.message}`;
    });
    this.#redis.on('ready', () => {
      this.#failure = null;
    });
  }

  async open(seed: readonly SeedEvent[]): Promise<void> {
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
    const calls = seed.map(({ eventId, definition }) => {
      const call = this.#call(eventId, 0);
      call.seed(definition);
      return call;
    });
    for (const reply of await Promise.all(calls.map((call) => this.#run(call)))) {
      if (reply === 'E') throw new Error(`Redis at ${this.#location} took too long to create the seed events`);
    }
    // Also repairs the index if a put-event's ZADD was lost.
    await this.#index(seed.map(({ eventId }) => eventId));
    this.#lastCommitAt = Date.now();
  }

  async decide(commands: readonly StockCommand[], options: DecideOptions): Promise<StockDecision[]> {
    let pages: Map<number, Page>;
    try {
      pages = await this.#pages(commands);
    } catch (error) {
      // Only reads so far: nothing of the batch happened.
      throw this.#failed(error, false);
    }

    const calls = new Map<string, EventCall>();
    const callOf = (eventId: string) => {
      let call = calls.get(eventId);
      if (!call) calls.set(eventId, (call = this.#call(eventId, options.idempotencyTtlMs)));
      return call;
    };
    commands.forEach((command, index) => {
      if (command.kind !== 'list-events') callOf(command.eventId).add(index, command);
      else for (const eventId of pages.get(index)!.ids) callOf(eventId).read(index, pages.get(index)!);
    });

    const settled = await Promise.allSettled([...calls.values()].map((call) => this.#run(call)));
    const failure = settled.find((result) => result.status === 'rejected');
    if (failure) {
      // Another call may have run: then some of the batch happened, and nothing can be said of the rest.
      const ran = settled.some((result) => result.status === 'fulfilled' && result.value !== 'E');
      throw this.#failed(failure.reason, ran || settled.some((r) => r.status === 'rejected' && isUnknown(r.reason)));
    }

    const decisions: StockDecision[] = new Array(commands.length);
    const defined: string[] = [];
    try {
      [...calls.values()].forEach((call, position) => {
        const reply = (settled[position] as PromiseFulfilledResult<Answer[] | 'E'>).value;
        if (reply !== 'E' && reply.length !== call.ops.length) {
          throw new Error(`the batch script answered ${reply.length} times to ${call.ops.length} commands`);
        }
        call.ops.forEach(({ index, page }, op) => {
          const answer = reply === 'E' ? undefined : reply[op]!;
          if (page) {
            if (answer === undefined) page.expired = true;
            else if (answer[0] === 'V') page.events.set(call.eventId, eventFrom(call.eventId, answer));
            return;
          }
          const command = commands[index] as EventCommand;
          decisions[index] = answer === undefined ? refused('expired') : decisionOf(command, answer);
          if (command.kind === 'put-event' && decisions[index]!.kind === 'event') defined.push(command.eventId);
        });
      });
      for (const [index, page] of pages) {
        decisions[index] = page.expired
          ? refused('expired')
          : {
              kind: 'events',
              events: page.ids.flatMap((id) => page.events.get(id) ?? []),
              next: page.more && page.ids.length > 0 ? page.ids[page.ids.length - 1]! : null,
            };
      }
      await this.#index(defined);
    } catch (error) {
      // The scripts ran: their changes are in Redis.
      throw this.#failed(error, true);
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
   * The page of every list-events in the batch: up to limit + 1 ids from the
   * index, with the events the put-events before it create (those ids are
   * not in the index yet, and creating an event is never refused).
   */
  async #pages(commands: readonly StockCommand[]): Promise<Map<number, Page>> {
    const pages = new Map<number, Page>();
    const lists: Array<{ index: number; after: string | null; limit: number }> = [];
    commands.forEach((command, index) => {
      if (command.kind === 'list-events') lists.push({ index, after: command.after, limit: command.limit });
    });
    if (lists.length === 0) return pages;
    const fromIndex = await Promise.all(
      lists.map(({ after, limit }) =>
        this.#redis.zrangebylex(this.#indexKey(), after === null ? '-' : `(${after}`, '+', 'LIMIT', 0, limit + 1),
      ),
    );
    lists.forEach(({ index, after, limit }, list) => {
      const ids = new Set(fromIndex[list]);
      for (const command of commands.slice(0, index)) {
        if (command.kind === 'put-event' && (after === null || command.eventId > after)) ids.add(command.eventId);
      }
      const sorted = [...ids].sort().slice(0, Math.max(0, limit) + 1);
      pages.set(index, {
        ids: sorted.slice(0, Math.max(0, limit)),
        more: sorted.length > limit,
        events: new Map(),
        expired: false,
      });
    });
    return pages;
  }

  /** Adds event ids to the index (idempotent). */
  async #index(eventIds: readonly string[]): Promise<void> {
    if (eventIds.length === 0) return;
    await this.#redis.zadd(this.#indexKey(), ...eventIds.flatMap((id) => ['0', id]));
  }

  #call(eventId: string, ttlMs: number): EventCall {
    return new EventCall(eventId, `{${this.#prefix}:${eventId}}`, this.#deadline(), ttlMs);
  }

  #run(call: EventCall): Promise<Answer[] | 'E'> {
    return this.#redis.ticketBatch(call.keys.length, call.keys, call.args);
  }

  /** Records a failure; `unknown`: Redis may have applied (part of) the batch. */
  #failed(error: unknown, unknown: boolean): unknown {
    this.#failure = `redis: ${error instanceof Error ? error.message : String(error)}`;
    return unknown && error instanceof Error ? Object.assign(error, { outcomeUnknown: true }) : error;
  }

  /**
   * When a batch sent now stops being allowed to run, on Redis's clock: the
   * client's timeout, less a margin for the answer's way back, so that a
   * batch that runs is nearly always one whose answer still arrives in time.
   */
  #deadline(): number {
    const replyMarginMs = Math.min(Math.floor(this.#timeoutMs / 4), 250);
    return Math.floor(Date.now() + this.#clockOffsetMs + this.#timeoutMs - replyMarginMs);
  }

  async #syncClock(): Promise<void> {
    const sent = Date.now();
    const [seconds, micros] = await this.#redis.time();
    const received = Date.now();
    const redisNow = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    this.#clockOffsetMs = redisNow - (sent + received) / 2;
  }

  /** The index of every event id, outside the events' hash tags. */
  #indexKey(): string {
    return `${this.#prefix}:events`;
  }
}

/**
 * Whether Redis may have run a command that failed: it timed out, or the
 * connection was lost after it was sent (ioredis then gives up on it at once,
 * as maxRetriesPerRequest is 0). A command never sent (no connection, no
 * offline queue) or refused by Redis did not run.
 */
function isUnknown(error: unknown): boolean {
  return (
    error instanceof Error && (/command timed out/i.test(error.message) || error.name === 'MaxRetriesPerRequestError')
  );
}

function refused(reason: RefusalReason, field?: string, detail?: string): StockDecision {
  return {
    kind: 'refused',
    reason,
    ...(field === undefined ? {} : { field }),
    ...(detail === undefined ? {} : { detail }),
  };
}

/** The event view the script answers (`V created name cap`, then 6 fields a type). */
function eventFrom(eventId: string, answer: Answer): EventRecord {
  const types: EventRecord['types'] = [];
  for (let at = 4; at + 5 < answer.length; at += 6) {
    types.push({
      id: answer[at]!,
      name: answer[at + 1]!,
      capacity: Number(answer[at + 2]),
      maxPerOrder: answer[at + 3] === '' ? null : Number(answer[at + 3]),
      sold: Number(answer[at + 4]),
      issued: Number(answer[at + 5]),
    });
  }
  return { id: eventId, name: answer[2]!, capacity: answer[3] === '' ? null : Number(answer[3]), types };
}

/** An order as `{tag}:orders` keeps it (see the key layout). */
function orderFrom(id: string, eventId: string, stored: string): OrderRecord {
  const cut = stored.indexOf('\n');
  const fields = (cut < 0 ? stored : stored.slice(0, cut)).split(' ');
  const items: OrderRecord['items'] = [];
  for (let at = 2; at + 2 < fields.length; at += 3) {
    const qty = Number(fields[at + 1]);
    const first = Number(fields[at + 2]);
    items.push({ typeId: fields[at]!, qty, first, last: first + qty - 1 });
  }
  return { id, eventId, items, buyer: cut < 0 ? null : stored.slice(cut + 1), createdAt: Number(fields[1]) };
}

/** A replayed purchase: its recorded outcome (`order <id>` with the stored order, or `insufficient <json>`). */
function replayedPurchase(eventId: string, outcome: string, stored: string | undefined): StockDecision {
  if (outcome.startsWith('insufficient ')) {
    return { kind: 'insufficient', items: JSON.parse(outcome.slice('insufficient '.length)), replayed: true };
  }
  const orderId = outcome.slice('order '.length);
  if (!outcome.startsWith('order ') || !stored) {
    throw new Error(`an idempotency record names order ${orderId}, which the store does not hold`);
  }
  return { kind: 'order', order: orderFrom(orderId, eventId, stored), replayed: true };
}

/**
 * A command's decision from the script's answer. Refusals get the rules'
 * details, worded here from what the script answered (sold counts, limits).
 */
function decisionOf(command: EventCommand, answer: Answer): StockDecision {
  const [tag, ...fields] = answer;
  if (tag === 'U') return refused('unknown-event');
  if (tag === 'X') return refused('key-reused');
  if (tag === 'F') return refused('key-in-flight');
  switch (command.kind) {
    case 'level':
    case 'adjust':
    case 'reserve':
      if (tag === 'T') return refused('unknown-ticket-type');
      if (tag === 'L' || tag === 'A') {
        const level = { remaining: Number(fields[0]), sold: Number(fields[1]) };
        return tag === 'L' ? { kind: 'level', level } : { kind: 'adjusted', level };
      }
      if (tag === 'N') return refused('capacity-below-sold', 'qty', 'The change would leave the stock below zero');
      if ((tag === 'D' || tag === 'R') && command.kind === 'reserve') {
        return { kind: 'reserved', outcome: reserveOutcomeOf(fields[0]!, command), replayed: tag === 'R' };
      }
      break;
    case 'get-event':
    case 'put-event':
      if (tag === 'V') return { kind: 'event', event: eventFrom(command.eventId, answer), created: fields[0] === '1' };
      if (command.kind === 'get-event') break;
      if (tag === 'K') {
        return refused(
          'ticket-type-in-use',
          'ticketTypes',
          `ticket type ${fields[0]} has sold tickets and cannot be removed; set its capacity to what it sold instead`,
        );
      }
      if (tag === 'C' && fields[0] === '') {
        return refused(
          'capacity-below-sold',
          'capacity',
          `the event has sold ${fields[1]} tickets; its capacity cannot be ${command.definition.capacity}`,
        );
      }
      if (tag === 'C') {
        const type = command.definition.ticketTypes[Number(fields[0])]!;
        return refused(
          'capacity-below-sold',
          `ticketTypes.${fields[0]}.capacity`,
          `ticket type ${type.id} has sold ${fields[1]} tickets; its capacity cannot be ${type.capacity}`,
        );
      }
      break;
    case 'purchase': {
      const item = command.items[Number(fields[0])];
      if (tag === 'T' && item) {
        return refused(
          'unknown-ticket-type',
          `items.${fields[0]}.ticketType`,
          `event ${command.eventId} has no ticket type ${item.typeId}`,
        );
      }
      if (tag === 'D' && item) {
        return refused(
          'duplicate-ticket-type',
          `items.${fields[0]}.ticketType`,
          `ticket type ${item.typeId} is listed twice; ask for its whole qty in one item`,
        );
      }
      if (tag === 'M' && item) {
        return refused(
          'over-max-per-order',
          `items.${fields[0]}.qty`,
          `at most ${fields[1]} tickets of type ${item.typeId} per order`,
        );
      }
      if (tag === 'R') return replayedPurchase(command.eventId, fields[0]!, fields[1]);
      if (tag === 'I') {
        return {
          kind: 'insufficient',
          items: command.items.map((line, j) => ({
            typeId: line.typeId,
            requested: line.qty,
            available: Number(fields[j]),
          })),
          replayed: false,
        };
      }
      if (tag === 'O') {
        const order: OrderRecord = {
          id: command.orderId,
          eventId: command.eventId,
          items: command.items.map((line, j) => {
            const first = Number(fields[j]);
            return { typeId: line.typeId, qty: line.qty, first, last: first + line.qty - 1 };
          }),
          buyer: command.buyer,
          createdAt: command.at,
        };
        return { kind: 'order', order, replayed: false };
      }
      break;
    }
  }
  throw new Error(`the batch script answered ${JSON.stringify(answer)} to ${command.kind}`);
}
