import { createHash } from 'node:crypto';
import type { Command, Pipeline, Redis } from 'ioredis';
import {
  eventOfHoldId,
  eventOfOrderId,
  type EventDefinition,
  type EventRecord,
  type HoldRecord,
  type HoldStatus,
  type OrderRecord,
  type OrderStatus,
  type RefusalReason,
  type Shortfall,
  type StockCommand,
  type StockDecision,
} from '../stock/model.ts';
import {
  EXPIRED_PER_TOUCH,
  holdRequestOf,
  purchaseRequestOf,
  reserveOutcomeOf,
  reserveRequestOf,
  type DecideOptions,
} from '../stock/rules.ts';
import type { SeedEvent, StockStore, StoreHealth } from '../stock/store.ts';
import { createRedisConnection, type RedisConnection, type RedisTopology } from './redis-connection.ts';

/**
 * Where Redis is (one of `url`, e.g. `redis://127.0.0.1:6379/0`; `cluster`, a
 * Redis Cluster's nodes; `sentinels` and `sentinelName`, the primary Sentinel
 * names), and how the store uses it.
 */
export type RedisStockStoreOptions = RedisTopology & {
  /** Prefix of every key this store writes; stocks of different deployments on one Redis stay apart. */
  keyPrefix: string;
  /** How long one call to Redis may take; past it the batch fails (503) and Redis will not apply it late. */
  timeoutMs: number;
  /**
   * How long the periodic sweep stays with the replica that last ran it (ms;
   * default 1,000). Another replica takes it over once the holder has not
   * swept for that long.
   */
  sweepLeaseMs?: number;
  /**
   * This replica's name on the sweep lease (default: a random UUID). Stores
   * given the same name all sweep at once (tests do, to show that is safe).
   */
  sweeperId?: string;
  /**
   * Answer no batch before this many replicas have everything the primary
   * had when it ran, its own writes and what it read (WAIT; default 0: no
   * WAIT). A batch they do not confirm within `waitTimeoutMs` fails with
   * `outcomeUnknown` (503): it may or may not survive a failover, so it is
   * never acknowledged. Readiness is false while fewer are connected.
   */
  waitReplicas?: number;
  /** How long WAIT waits for the replicas (ms; default 1,000). */
  waitTimeoutMs?: number;
};

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
 *                      pb              its maxPerBuyer over all types (absent: none)
 *                      types           its ticket type ids, in definition order, joined by ' '
 *                      n:<type>        the type's name
 *                      c:<type>        its capacity (up to Number.MAX_SAFE_INTEGER after adjustments)
 *                      m:<type>        its maxPerOrder (absent: none)
 *                      b:<type>        its maxPerBuyer (absent: none)
 *                      s:<type>        tickets sold
 *                      h:<type>        tickets held (absent: 0)
 *                      i:<type>        the last ticket number handed out (ticket numbers never repeat)
 *                      dv              the deadline version: + 1 each time the event's earliest hold
 *                                      deadline changes (absent: 0), see the hold deadline index
 *                    Short names and values keep a typical event a listpack: 0.3 KB with two types.
 *   {tag}:orders     hash, order id -> `<status>[:<hold id>] <createdAt> <type> <qty> <first>
 *                    [<type> <qty> <first> …]`, then `\n<buyer>` when it has one; status `c`
 *                    (confirmed) or `x` (cancelled); the hold id when the order confirmed a hold.
 *                    (Orders written before holds existed read the same: `c`, no hold.)
 *   {tag}:holds      hash, hold id -> `<status>[:<order id>] <createdAt> <expiresAt> <type> <qty>
 *                    [<type> <qty> …]`, then `\n<buyer>` when it has one; status `h` (held),
 *                    `c` (confirmed, with its order's id), `r` (released), `e` (expired).
 *                    An order or hold id ends with its event's id (eventOfOrderId, eventOfHoldId), so
 *                    the id alone finds the hash. One hash each, not a key per record: a replay names
 *                    its record, and a script may only read keys it declared up front. (A record is
 *                    kept under the event of the command that made it: one whose id does not name
 *                    that event, i.e. not made by newOrderId / newHoldId, is never found by its id.)
 *   {tag}:deadlines  sorted set, the ids of the holds still held, scored by expiresAt (ms). The batch
 *                    script expires from it (see "Expiry"); a hold leaves it as it leaves `held`.
 *   {tag}:order-times  sorted set, every order id scored by its createdAt (ms): the event's latest
 *                    orders for the dashboard's `recent-orders` (orders made before it existed are
 *                    not in it).
 *   {tag}:buyers     hash, buyer -> `<type> <qty> [<type> <qty> …]`: the tickets the buyer holds or has
 *                    bought and not cancelled, per type (types at 0 left out; a buyer at 0 in all is
 *                    deleted). Kept for every named buyer, so that a limit set later counts earlier sales.
 *   {tag}:idem:<key> string with PX TTL: the request (as rules.ts writes it, never containing a
 *                    newline), `\n`, the outcome as rules.ts records it (`1 <remaining> <first>
 *                    <order id>` or `0 <remaining>` for a reserve, `order <id>`, `hold <id>`,
 *                    `insufficient <shortfalls as JSON>`). Records of before 1.0.0 reserves were
 *                    orders (`1 <remaining> <first>`) still replay.
 *
 * Outside every event's hash tag:
 *
 *   <prefix>:events  sorted set (all scores 0) of every event id, for listing in id order
 *                    (ZRANGEBYLEX). Written (ZADD, idempotent) after a put-event's script has
 *                    succeeded, read before the batch's scripts.
 *   {<prefix>}:hold-deadlines   sorted set, event id -> a deadline (ms) no later than the earliest
 *                    expiresAt of the event's held holds: the events the periodic sweep visits.
 *   {<prefix>}:hold-versions    hash, event id -> the event's `dv` its entry above was taken at.
 *   {<prefix>}:sweeper          string with PX TTL: the replica that runs the periodic sweep now
 *                    (its sweeperId, by default a random UUID per store; see "Expiry").
 *   {<prefix>}:order-events     sorted set, event id -> a time (ms) no earlier than the createdAt of
 *                    its latest order: which events `recent-orders` over all events reads, latest
 *                    first. Raised (ZADD GT, never lowered) to the latest `at` of the batch's purchases,
 *                    reserves and confirms on the event, sent alongside the batch's scripts (so it is
 *                    there before any order it covers; a purchase then refused only raises it early).
 *                    These share the hash tag `{<prefix>}`, so each small script on them touches one
 *                    slot on a Cluster (an event's tag always has `:<eventId>` in it, never equal).
 *
 * With `waitReplicas` only, the sync markers (see "Cluster, Sentinel, replicas and WAIT"):
 *
 *   {<prefix>}:synced  string `1`, SET before each WAIT on one server, and on a Cluster before those
 *                    for cross-event keys. On a Cluster also `{tag}:synced` (only while `{tag}:event`
 *                    exists, so an id naming no event makes none) and `{<prefix>:events}:synced`
 *                    (the index's slot), before the WAITs in those slots.
 *
 * Memory (MEMORY USAGE on Redis 7, 2,000 holds of one event, ids of 37 characters): a hold held
 * costs about 0.3 KB (0.16 KB its record, 0.13 KB its deadline entry); confirmed, 0.2 KB for the
 * hold (its record stays, with its order's id: `get-hold` answers it on every store); released or
 * expired, 0.16 KB. An order costs about 0.31 KB (0.18 KB its record, 0.13 KB its order-times
 * entry). A named buyer costs about 0.08 KB per event, an event in each cross-event index about
 * 0.1 KB. Nothing of a hold or order is ever deleted.
 *
 * ---- Expiry -----------------------------------------------------------------------------------
 *
 * "Has this hold expired?" is decided only inside the batch script, against Redis `TIME`, so no two
 * replicas can disagree on it, whatever their clocks. A command's `at` (the caller's clock) only sets
 * `createdAt` and `expiresAt = at + ttlMs`. As Batch.#event in rules.ts does, the first command of a
 * call that reads the event (any but a list-events' read, get-order, and those on a hold or order that
 * is not there, or a cancel of one cancelled already) expires up to EXPIRED_PER_TOUCH (500) of
 * `{tag}:deadlines` due by TIME, before it is decided (and whether or not it is then refused); and
 * get-hold, confirm and release expire their own hold there and then when it is due. Those 500 are
 * read from the deadlines as they were before the call, as the rules read them from the store's view.
 *
 * The `expire` command (each replica's actor sends it every quarter second) sweeps over all events,
 * but is run by any one replica: before its scripts, one small script on `{<prefix>}` takes or renews
 * the lease `{<prefix>}:sweeper` (SET … PX sweepLeaseMs, only when free or already this replica's) and,
 * only for the holder, reads up to `limit` events from `{<prefix>}:hold-deadlines` whose deadline is
 * due by TIME. The other replicas answer `expire` with a count of 0 and cost Redis one small call.
 * Each due event then gets an `x` op in its one call of the batch, which expires its due holds as
 * rules.ts does for that event (up to `limit` of them, and the touch's), and counts what it expired.
 * Over several events, `limit` bounds each event's part, where the rules bound the holds they list
 * over all events (earliest first): a sweep over many events may expire more, never other holds
 * than due ones. Every call also answers what it expired, for `options.expired`. Two replicas
 * sweeping at once (a lease that lapsed mid-sweep) are still correct: each hold is expired by the
 * script that first finds it due and held, and a second finds it expired already.
 *
 * The index is kept by what the scripts answer: a call whose changes made the event's earliest held
 * deadline earlier (a new hold) answers `(dv, earliest)`, and so does every call with an `x` op
 * (whatever its earliest is now: later, or none). The store then sets the event's entry by a small
 * script on `{<prefix>}` that applies an answer only if its `dv` is not older than the one the entry
 * has, so answers arriving out of order (replicas race) never leave an older state. An entry is thus
 * never later than the earliest held deadline, save for the moment between a script and its index
 * call, or when that call is lost (a replica killed right between): then the periodic sweep misses
 * the event until its next new hold or sweep; commands on the event still expire its due holds. (A
 * sweep of an event that is gone, after a loss of data, answers a version that removes its entry.)
 * Entries are not moved later when a confirm or release leaves a later earliest deadline: the next
 * sweep that finds the event due does that, in the one call it makes on the event anyway.
 *
 * ---- How a batch runs ---------------------------------------------------------------------------
 *
 * 1. Only when the batch lists events or sweeps: one ZRANGEBYLEX per list-events on the index (limit
 *    + 1 ids after `after`), merged with the ids of the put-events before it in the batch (creating an
 *    event is never refused), and one lease script call per expire. That fixes each page's ids and
 *    each sweep's events. The dashboard's reads (`recent-orders`, `expiring-holds`), which the rules
 *    answer as committed before the batch, are answered here by plain reads: an event's
 *    `order-times` or `deadlines` and the records they name; over all events, events taken from
 *    `order-events` or `hold-deadlines` in the order of their bounds until no event left can come
 *    before the last record kept (a few round trips; no script).
 * 2. One EVALSHA per event (ioredis sends a script's first call on a connection as EVAL), all sent at
 *    once: the event's commands in batch order, with a read of the event (`v`) at the place of every
 *    list-events whose page names it and an `x` op at the place of every expire that visits it. So
 *    each read sees exactly the commands before it, and an event is still decided in one call.
 *    Commands on a hold or an order find their event in its id; an id that names none is unknown
 *    (no call). With the scripts, when the batch may make orders: one ZADD GT of `order-events`.
 * 3. Only when an event was put: one ZADD of their ids to the index. Only when an event's earliest
 *    deadline came earlier or a sweep visited it: one call of the hold index script for all of them.
 *
 * ---- Cluster, Sentinel, replicas and WAIT -----------------------------------------------------------
 *
 * On a Redis Cluster (src/node/redis-connection.ts) ioredis sends each command to the primary of its
 * keys' slot. Every script and every multi-key command names keys of one hash tag: an event's
 * `{<prefix>:<eventId>}` or the cross-event `{<prefix>}`; `<prefix>:events` is one key of its own.
 * So no call spans two slots (the Cluster would answer CROSSSLOT), nothing scans keys, and events
 * spread over the shards by their tags while the few cross-event keys live on one. A command whose
 * connection closed under it is never sent again (it may have run: its batch is an unknown outcome);
 * MOVED and ASK are followed (the command did not run). Deadlines use the earliest primary's clock.
 *
 * Replication is asynchronous: a primary answers a write before its replicas have it, and a
 * failover to a replica that lacks it loses it, acknowledged or not. With `waitReplicas` (N), the
 * store answers no batch before N replicas have everything the primary had when the batch ran.
 * Each write of a batch (its event calls, the order hint, the index calls) goes in a pipeline that
 * ends with a write of a sync marker (`SET {<tag>}:synced 1`, by MARKER_SCRIPT) and `WAIT N
 * waitTimeoutMs` on the same connection: one pipeline for the whole batch on one server; on a
 * Cluster, where each WAIT must follow the writes on their primary, one per event and per
 * cross-event key, each with a marker of its hash tag. WAIT counts the replicas that acknowledged
 * the connection's last write (from Redis 7.2 on only a command that propagated a write moves it:
 * a read, or a script that wrote nothing, does not), and the replication stream is in order, so
 * the marker written after the batch's commands makes a confirmed WAIT cover every write of any
 * connection before them. Without it, a replay of an order or hold that another vacancy process
 * wrote and could not confirm (its WAIT timed out, its caller got 503 `outcomeUnknown` and retried)
 * would be a success at once, whether the replicas had it or not. The dashboard's and
 * list-events' reads outside the scripts get a marker and WAIT of their own on a Cluster (the one
 * pipeline covers them on one server); a batch that read and wrote nothing (a sweep with nothing
 * due) has none. Fewer than N in time, or WAIT or the marker failing: every call of the batch that
 * ran is a {@link ReplicaWaitError}, the batch fails with `outcomeUnknown` (503), never
 * acknowledged; the retry of a command with its key tells what survived. The scripts are loaded
 * (SCRIPT LOAD) on every primary at open: the pipelines send them by SHA, and one the server lacks
 * is sent again only after that pipeline's WAIT. What WAIT cannot do: make a replica's copy durable
 * on its disk (it has it in memory), make Sentinel promote a replica that has it when N is fewer
 * than the replicas (Sentinel prefers the one with the most data, as it last saw), or stop a batch
 * from deciding on a write another vacancy process has made and not had confirmed (a purchase
 * refused for want of the tickets such a write took; the refusal too waits for the replicas).
 *
 * Readiness (checkWritable, health) is false while any primary has fewer than N replicas online
 * and acknowledging (INFO replication: `state=online`, `lag` at most 3 s; a replica acknowledges
 * every second, so a frozen one or a cut link shows within seconds, before Redis itself drops it),
 * and after a batch whose WAIT fell short; the latest of those observations to start decides,
 * so a batch that started before a check and ends after it cannot undo what the check found.
 */

/**
 * Decides one event's commands of a batch, in order, by the rules of
 * src/stock/rules.ts. It reads the event once, decides every command against
 * that state in Lua, and writes what changed at the end (no write happens
 * before every command is decided, so an error leaves nothing half done).
 *
 * KEYS[1] `{tag}:event`, KEYS[2] `{tag}:orders`, KEYS[3] `{tag}:holds`, KEYS[4]
 * `{tag}:deadlines`, KEYS[5] `{tag}:buyers`, KEYS[6..] the batch's idempotency
 * keys on this event (`{tag}:idem:<key>`), each once.
 *
 * ARGV[1] the deadline (ms, Redis clock): a call that reaches Redis after it
 * changes nothing and answers 'E', so a command whose caller gave up can never
 * sell. ARGV[2] the idempotency TTL (ms). ARGV[3] EXPIRED_PER_TOUCH. Then the
 * commands, each an op code and its fields (k: the KEYS index of its
 * idempotency key, 0 for none; request: the key's request string from
 * rules.ts, '' without a key; buyer: '0' for none, else '1' and the buyer):
 *
 *   l <type>                                   level
 *   r <type> <qty> <k> <request> <orderId> <at>    1.0.0 reserve
 *   s <type> <qty> | a <type> <qty>            adjust: set / add
 *   g                                          get-event
 *   v                                          a list-events' read of this event (expires nothing)
 *   p <name> <cap|''> <maxPerBuyer|''> <n> n × (<type> <name> <capacity> <maxPerOrder|''> <maxPerBuyer|''>)
 *                                              put-event
 *   n …                                        as p, but only if the event does not exist (seeding)
 *   b <orderId> <at> <buyer> <k> <request> <n> n × (<type> <qty>)            purchase
 *   h <holdId> <at> <ttlMs> <buyer> <k> <request> <n> n × (<type> <qty>)     hold
 *   c <holdId> <orderId> <at>                  confirm
 *   f <holdId>                                 release
 *   q <holdId> | o <orderId>                   get-hold | get-order
 *   k <orderId>                                cancel
 *   x <limit>                                  expire (this event's part of a sweep)
 *
 * Answers one array per command (parsed by `decisionOf`), then one more:
 * `Z holds tickets`, what the call expired (for metrics), then `dv earliest`
 * when the hold deadline index is to be set (earliest '' when the event has no
 * hold held). A command's answer:
 *   V created name cap maxPerBuyer, then 8 per type (id name capacity
 *     maxPerOrder maxPerBuyer sold held issued)     an event
 *   L remaining sold | A remaining sold             level | adjusted
 *   S outcome | R outcome                           a reserve's outcome | a recorded outcome replayed
 *   O again id record | H again id record           an order | a hold (`again` '1': replayed), as stored
 *   I available…                                    insufficient
 *   X count                                         holds expired by an `x` op
 *   ! reason [fields]                               refused (reason as in model.ts; fields for details)
 *   Y outcome                                       a recorded outcome names a record that is missing
 * Integers are formatted with %.0f: Lua numbers are doubles, exact up to 2^53.
 */
const BATCH_SCRIPT = `
local function fmt(x) return string.format('%.0f', x) end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
if now > tonumber(ARGV[1]) then return 'E' end
local ttl = tonumber(ARGV[2])
local perTouch = tonumber(ARGV[3])
local EVENT, ORDERS, HOLDS, DEADLINES, BUYERS, ORDER_TIMES = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]

local function earliest()
  local first = redis.call('ZRANGE', DEADLINES, 0, 0, 'WITHSCORES')
  return tonumber(first[2])
end
local earliestBefore = earliest()

-- The event as the commands see it: read once, changed in place, written back once at the end.
local ev = nil
local raw = redis.call('HGETALL', EVENT)
if #raw > 0 then
  local f = {}
  for j = 1, #raw, 2 do f[raw[j]] = raw[j + 1] end
  ev = { name = f.name, cap = tonumber(f.cap), pb = tonumber(f.pb), dv = tonumber(f.dv) or 0,
         ids = {}, types = {}, taken = 0 }
  for id in string.gmatch(f.types or '', '%S+') do
    local tp = { n = f['n:' .. id], c = tonumber(f['c:' .. id]), m = tonumber(f['m:' .. id]),
                 b = tonumber(f['b:' .. id]), s = tonumber(f['s:' .. id]), h = tonumber(f['h:' .. id]) or 0,
                 i = tonumber(f['i:' .. id]) }
    ev.ids[#ev.ids + 1] = id
    ev.types[id] = tp
    ev.taken = ev.taken + tp.s + tp.h
  end
end

local defined = false               -- the definition changed: the event hash is rewritten
local dirty, dirtyIds = {}, {}      -- types whose stock changed
local holds, holdIds = {}, {}       -- hold id -> record (false: none); changed holds, in order
local orders, orderIds = {}, {}     -- the same for orders
local madeOrders = {}               -- createdAt, id of each order this call made (for ZADD)
local buyers, buyerIds = {}, {}     -- buyer -> type -> tickets; changed buyers
local changed = {}                  -- holds, orders and buyers already listed as changed
local due, dueIds, created = {}, {}, {}  -- hold id -> expiresAt to index, or false to drop
local seen = {}                     -- idempotency keys recorded by this call
local records = {}                  -- KEYS index, record, …
local swept = false                 -- this call expired the event's due holds already
local sweeps = false                -- an x op ran: answer the deadline whatever it is
local expiredHolds, expiredTickets = 0, 0  -- what this call expired (for metrics)

local function touchType(id)
  if not dirty[id] then dirty[id] = true; dirtyIds[#dirtyIds + 1] = id end
end
local function mark(list, prefix, id)
  if not changed[prefix .. id] then changed[prefix .. id] = true; list[#list + 1] = id end
end
local function setDue(id, value)
  if due[id] == nil then dueIds[#dueIds + 1] = id end
  due[id] = value
end

-- A stored hold or order: its tokens, status, the id after the status, and its buyer.
local function split(stored)
  local cut = string.find(stored, '\\n', 1, true)
  local tokens = {}
  for token in string.gmatch(cut and string.sub(stored, 1, cut - 1) or stored, '%S+') do tokens[#tokens + 1] = token end
  local status, ref = tokens[1], nil
  local colon = string.find(status, ':', 1, true)
  if colon then ref = string.sub(status, colon + 1); status = string.sub(status, 1, colon - 1) end
  return tokens, status, ref, cut and string.sub(stored, cut + 1) or nil
end
local function joined(tokens, buyer)
  local value = table.concat(tokens, ' ')
  if buyer then value = value .. '\\n' .. buyer end
  return value
end

-- A stored hold or order, read at most once per call (cached false: there is none).
local function cached(cache, key, id, decode)
  if cache[id] == nil then
    local stored = redis.call('HGET', key, id)
    cache[id] = stored and decode(id, split(stored)) or false
  end
  return cache[id] or nil
end

local function decodeHold(id, tokens, status, ref, buyer)
  local h = { id = id, st = status, oid = ref, at = tokens[2], exp = tonumber(tokens[3]), items = {}, buyer = buyer }
  for j = 4, #tokens - 1, 2 do h.items[#h.items + 1] = { t = tokens[j], q = tonumber(tokens[j + 1]) } end
  return h
end
local function getHold(id) return cached(holds, HOLDS, id, decodeHold) end
local function holdAnswer(h, again)
  local tokens = { h.oid and (h.st .. ':' .. h.oid) or h.st, h.at, fmt(h.exp) }
  for _, item in ipairs(h.items) do tokens[#tokens + 1] = item.t; tokens[#tokens + 1] = fmt(item.q) end
  return { 'H', again, h.id, joined(tokens, h.buyer) }
end

local function decodeOrder(id, tokens, status, ref, buyer)
  local o = { id = id, st = status, hid = ref, at = tokens[2], items = {}, buyer = buyer }
  for j = 3, #tokens - 2, 3 do
    o.items[#o.items + 1] = { t = tokens[j], q = tonumber(tokens[j + 1]), f = tonumber(tokens[j + 2]) }
  end
  return o
end
local function getOrder(id) return cached(orders, ORDERS, id, decodeOrder) end
local function newOrder(o)
  orders[o.id] = o
  mark(orderIds, 'o', o.id)
  madeOrders[#madeOrders + 1] = o.at
  madeOrders[#madeOrders + 1] = o.id
  return o
end
local function orderAnswer(o, again)
  local tokens = { o.hid and (o.st .. ':' .. o.hid) or o.st, o.at }
  for _, line in ipairs(o.items) do
    tokens[#tokens + 1] = line.t; tokens[#tokens + 1] = fmt(line.q); tokens[#tokens + 1] = fmt(line.f)
  end
  return { 'O', again, o.id, joined(tokens, o.buyer) }
end

-- A buyer's tickets per type (rules.ts: buyerTickets), and changing them (never below 0).
local function getBuyer(buyer)
  if not buyers[buyer] then
    local tickets, typeId = {}, nil
    for token in string.gmatch(redis.call('HGET', BUYERS, buyer) or '', '%S+') do
      if typeId then tickets[typeId] = tonumber(token); typeId = nil else typeId = token end
    end
    buyers[buyer] = tickets
  end
  return buyers[buyer]
end
local function addBuyer(buyer, items, sign)
  if not buyer then return end
  local tickets = getBuyer(buyer)
  for _, item in ipairs(items) do
    local qty = (tickets[item.t] or 0) + sign * item.q
    if qty < 0 then qty = 0 end
    tickets[item.t] = qty
  end
  mark(buyerIds, 'b', buyer)
end

-- typeAvailable of model.ts: what the type's capacity leaves, and no more than the event's cap leaves.
local function available(tp)
  local own = tp.c - tp.s - tp.h
  if own < 0 then own = 0 end
  if ev.cap then
    local left = ev.cap - ev.taken
    if left < own then own = left end
    if own < 0 then own = 0 end
  end
  return own
end

local function view(created)
  local v = { 'V', created, ev.name, ev.cap and fmt(ev.cap) or '', ev.pb and fmt(ev.pb) or '' }
  for _, id in ipairs(ev.ids) do
    local tp = ev.types[id]
    v[#v + 1] = id
    v[#v + 1] = tp.n
    v[#v + 1] = fmt(tp.c)
    v[#v + 1] = tp.m and fmt(tp.m) or ''
    v[#v + 1] = tp.b and fmt(tp.b) or ''
    v[#v + 1] = fmt(tp.s)
    v[#v + 1] = fmt(tp.h)
    v[#v + 1] = fmt(tp.i)
  end
  return v
end

-- Items back on sale: out of each type's held (h) or sold (s) count, and the buyer's count down.
local function putBack(items, count, buyer)
  for _, item in ipairs(items) do
    local tp = ev.types[item.t]
    if tp then
      tp[count] = tp[count] - item.q
      ev.taken = ev.taken - item.q
      touchType(item.t)
    end
  end
  addBuyer(buyer, items, -1)
end

-- A held hold's stock back on sale (rules.ts: #giveBack).
local function giveBack(h, status)
  putBack(h.items, 'h', h.buyer)
  if status == 'e' then
    expiredHolds = expiredHolds + 1
    for _, item in ipairs(h.items) do expiredTickets = expiredTickets + item.q end
  end
  h.st = status
  mark(holdIds, 'h', h.id)
  setDue(h.id, false)
end

-- rules.ts #event: the event; the first time, with up to EXPIRED_PER_TOUCH of its due holds expired.
-- The deadlines are written at the end, so this reads them as they were before the batch (its view).
local function touch()
  if ev and not swept then
    swept = true
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', DEADLINES, '-inf', now, 'LIMIT', 0, perTouch)) do
      local h = getHold(id)
      if h and h.st == 'h' then giveBack(h, 'e') end
    end
  end
  return ev
end

-- rules.ts #holdNow: a hold as of now; one whose time has passed is expired first.
local function holdNow(id)
  local h = getHold(id)
  if not h then return nil end
  touch()
  if h.st == 'h' and h.exp <= now then giveBack(h, 'e') end
  return h
end

-- The answer a live key gives (in flight, reused, or its recorded outcome); nil for a fresh key.
local function known(k, request)
  if k == 0 then return nil end
  if seen[KEYS[k]] then return { '!', 'key-in-flight' } end
  local prior = redis.call('GET', KEYS[k])
  if not prior then return nil end
  local cut = string.find(prior, '\\n', 1, true)
  if string.sub(prior, 1, cut - 1) ~= request then return { '!', 'key-reused' } end
  return { 'R', string.sub(prior, cut + 1) }
end

local function record(k, request, outcome)
  if k == 0 then return end
  seen[KEYS[k]] = true
  records[#records + 1] = k
  records[#records + 1] = request .. '\\n' .. outcome
end

-- rules.ts #replay: a recorded hold or order as it is now, or the recorded outcome itself.
local function replay(outcome)
  local tag, rest = string.match(outcome, '^(%S+) (.*)$')
  if tag == 'hold' or tag == 'order' then
    local found = tag == 'hold' and getHold(rest) or getOrder(rest)
    if not found then return { 'Y', outcome } end
    return tag == 'hold' and holdAnswer(found, '1') or orderAnswer(found, '1')
  end
  return { 'R', outcome }
end

-- Sells items of the event: each type's next ticket numbers; from a hold, they leave its held count.
local function sell(items, fromHold)
  local lines = {}
  for _, item in ipairs(items) do
    local tp = ev.types[item.t]
    local first = tp.i + 1
    tp.s = tp.s + item.q
    tp.i = tp.i + item.q
    if fromHold then tp.h = tp.h - item.q else ev.taken = ev.taken + item.q end
    touchType(item.t)
    lines[#lines + 1] = { t = item.t, q = item.q, f = first }
  end
  return lines
end

local function putEvent(name, cap, pb, defs)
  local types, ids, taken = {}, {}, 0
  for j, d in ipairs(defs) do
    local before = ev and ev.types[d.id]
    local s, h, i = 0, 0, 0
    if before then s, h, i = before.s, before.h, before.i end
    if d.c < s + h then return { '!', 'capacity-below-sold', fmt(j - 1), fmt(s), fmt(h) } end
    types[d.id] = { n = d.n, c = d.c, m = d.m, b = d.b, s = s, h = h, i = i }
    ids[j] = d.id
    taken = taken + s + h
  end
  if ev then
    for _, id in ipairs(ev.ids) do
      local tp = ev.types[id]
      if (tp.i > 0 or tp.h > 0) and not types[id] then return { '!', 'ticket-type-in-use', id } end
    end
  end
  if cap and cap < taken then return { '!', 'capacity-below-sold', '', fmt(taken) } end
  local created = ev and '0' or '1'
  ev = { name = name, cap = cap, pb = pb, dv = ev and ev.dv or 0, ids = ids, types = types, taken = taken }
  defined = true
  return view(created)
end

local function reserve(tp, typeId, qty, k, request, orderId, at)
  local prior = known(k, request)
  if prior then return prior end
  if ev.pb or tp.b then return { '!', 'buyer-required' } end
  local left = available(tp)
  local outcome
  if qty <= left then
    local o = newOrder({ id = orderId, st = 'c', at = at, items = sell({ { t = typeId, q = qty } }) })
    outcome = '1 ' .. fmt(left - qty) .. ' ' .. fmt(o.items[1].f) .. ' ' .. orderId
  else
    outcome = '0 ' .. fmt(left)
  end
  record(k, request, outcome)
  return { 'S', outcome }
end

local function adjust(tp, typeId, op, qty)
  local remaining = qty
  if op == 'a' then remaining = tp.c - tp.s - tp.h + qty end
  local capacity = tp.s + tp.h + remaining
  if remaining < 0 or capacity > 9007199254740991 or capacity ~= math.floor(capacity) then
    return { '!', 'capacity-below-sold' }
  end
  tp.c = capacity
  touchType(typeId)
  return { 'A', fmt(available(tp)), fmt(tp.s) }
end

-- rules.ts #take: a purchase (sold at once) or a hold (out of sale until confirmed, released or expired).
local function take(op, id, at, life, buyer, k, request, items)
  if not touch() then return { '!', 'unknown-event' } end
  local tps, listed, limited = {}, {}, ev.pb ~= nil
  for j, item in ipairs(items) do
    if listed[item.t] then return { '!', 'duplicate-ticket-type', fmt(j - 1) } end
    listed[item.t] = true
    local tp = ev.types[item.t]
    if not tp then return { '!', 'unknown-ticket-type', fmt(j - 1) } end
    if tp.m and item.q > tp.m then return { '!', 'over-max-per-order', fmt(j - 1), fmt(tp.m) } end
    if tp.b then limited = true end
    tps[j] = tp
  end
  if limited and not buyer then return { '!', 'buyer-required' } end
  local prior = known(k, request)
  if prior then
    if prior[1] == 'R' then return replay(prior[2]) end
    return prior
  end
  local wanted = 0
  for _, item in ipairs(items) do wanted = wanted + item.q end
  if limited then
    local has = getBuyer(buyer)
    for j, item in ipairs(items) do
      local already = has[item.t] or 0
      if tps[j].b and already + item.q > tps[j].b then
        return { '!', 'buyer-limit-reached', fmt(j - 1), fmt(tps[j].b), fmt(already) }
      end
    end
    if ev.pb then
      local already = 0
      for _, qty in pairs(has) do already = already + qty end
      if already + wanted > ev.pb then return { '!', 'buyer-limit-reached', '', fmt(ev.pb), fmt(already) } end
    end
  end
  -- All or nothing: every item must fit, and all of them together under the event's cap.
  local short = ev.cap ~= nil and ev.taken + wanted > ev.cap
  local lefts = {}
  for j, item in ipairs(items) do
    lefts[j] = available(tps[j])
    if item.q > lefts[j] then short = true end
  end
  if short then
    local answer, json = { 'I' }, {}
    for j, item in ipairs(items) do
      answer[j + 1] = fmt(lefts[j])
      json[j] = '{"typeId":' .. cjson.encode(item.t) .. ',"requested":' .. fmt(item.q) ..
                ',"available":' .. fmt(lefts[j]) .. '}'
    end
    record(k, request, 'insufficient [' .. table.concat(json, ',') .. ']')
    return answer
  end
  addBuyer(buyer, items, 1)
  if op == 'h' then
    for j, item in ipairs(items) do
      tps[j].h = tps[j].h + item.q
      ev.taken = ev.taken + item.q
      touchType(item.t)
    end
    local h = { id = id, st = 'h', at = at, exp = tonumber(at) + life, items = items, buyer = buyer }
    holds[id] = h
    mark(holdIds, 'h', id)
    created[id] = true
    setDue(id, h.exp)
    record(k, request, 'hold ' .. id)
    return holdAnswer(h, '0')
  end
  local o = newOrder({ id = id, st = 'c', at = at, items = sell(items), buyer = buyer })
  record(k, request, 'order ' .. id)
  return orderAnswer(o, '0')
end

local function confirm(holdId, orderId, at)
  local h = holdNow(holdId)
  if not h then return { '!', 'unknown-hold' } end
  if h.st == 'c' then
    local o = getOrder(h.oid)
    if not o then return { 'Y', 'order ' .. h.oid } end
    return orderAnswer(o, '1')
  end
  if h.st == 'r' then return { '!', 'hold-released' } end
  if h.st == 'e' then return { '!', 'hold-expired' } end
  local o = newOrder({ id = orderId, st = 'c', hid = holdId, at = at, items = sell(h.items, true), buyer = h.buyer })
  h.st = 'c'
  h.oid = orderId
  mark(holdIds, 'h', holdId)
  setDue(holdId, false)
  return orderAnswer(o, '0')
end

local function release(holdId)
  local h = holdNow(holdId)
  if not h then return { '!', 'unknown-hold' } end
  if h.st == 'c' then return { '!', 'hold-confirmed' } end
  if h.st ~= 'h' then return holdAnswer(h, '1') end
  giveBack(h, 'r')
  return holdAnswer(h, '0')
end

local function cancel(orderId)
  local o = getOrder(orderId)
  if not o then return { '!', 'unknown-order' } end
  if o.st == 'x' then return orderAnswer(o, '1') end
  if not touch() then return { '!', 'unknown-event' } end
  putBack(o.items, 's', o.buyer)
  o.st = 'x'
  mark(orderIds, 'o', orderId)
  return orderAnswer(o, '0')
end

-- rules.ts #expireDue for this event: its due holds (as before the batch), earliest first; each touches
-- the event (the first expiring up to EXPIRED_PER_TOUCH) and is expired if still held. It counts every
-- hold it expired, the touch's too.
local function expireDue(limit)
  sweeps = true
  if not ev or limit < 1 then return { 'X', '0' } end
  local before = expiredHolds
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', DEADLINES, '-inf', now, 'LIMIT', 0, limit)) do
    touch()
    local h = getHold(id)
    if h and h.st == 'h' then giveBack(h, 'e') end
  end
  return { 'X', fmt(expiredHolds - before) }
end

local out = {}
local a = 4
local function arg() a = a + 1; return ARGV[a - 1] end
local function buyerArg()
  local b = arg()
  if string.sub(b, 1, 1) == '1' then return string.sub(b, 2) end
  return nil
end
while a <= #ARGV do
  local op = arg()
  local answer
  if op == 'p' or op == 'n' then
    local name = arg()
    local cap = tonumber(arg())
    local pb = tonumber(arg())
    local defs = {}
    for j = 1, tonumber(arg()) do
      local d = { id = arg() }
      d.n = arg(); d.c = tonumber(arg()); d.m = tonumber(arg()); d.b = tonumber(arg())
      defs[j] = d
    end
    if op == 'n' and ev then answer = view('0')
    else
      if op == 'p' then touch() end
      answer = putEvent(name, cap, pb, defs)
    end
  elseif op == 'g' then
    if touch() then answer = view('0') else answer = { '!', 'unknown-event' } end
  elseif op == 'v' then
    if ev then answer = view('0') else answer = { '!', 'unknown-event' } end
  elseif op == 'b' or op == 'h' then
    local id = arg()
    local at = arg()
    local life = 0
    if op == 'h' then life = tonumber(arg()) end
    local buyer = buyerArg()
    local k = tonumber(arg())
    local request = arg()
    local items = {}
    for j = 1, tonumber(arg()) do
      local t = arg()
      items[j] = { t = t, q = tonumber(arg()) }
    end
    answer = take(op, id, at, life, buyer, k, request, items)
  elseif op == 'c' then
    local holdId = arg()
    local orderId = arg()
    answer = confirm(holdId, orderId, arg())
  elseif op == 'f' then answer = release(arg())
  elseif op == 'q' then
    local h = holdNow(arg())
    if h then answer = holdAnswer(h, '0') else answer = { '!', 'unknown-hold' } end
  elseif op == 'o' then
    local o = getOrder(arg())
    if o then answer = orderAnswer(o, '0') else answer = { '!', 'unknown-order' } end
  elseif op == 'k' then answer = cancel(arg())
  elseif op == 'x' then answer = expireDue(tonumber(arg()))
  else
    local typeId = arg()
    local qty, k, request, orderId, at
    if op ~= 'l' then qty = tonumber(arg()) end
    if op == 'r' then
      k = tonumber(arg()); request = arg(); orderId = arg(); at = arg()
    end
    local tp = touch() and ev.types[typeId]
    if not ev then answer = { '!', 'unknown-event' }
    elseif not tp then answer = { '!', 'unknown-ticket-type' }
    elseif op == 'l' then answer = { 'L', fmt(available(tp)), fmt(tp.s) }
    elseif op == 'r' then answer = reserve(tp, typeId, qty, k, request, orderId, at)
    else answer = adjust(tp, typeId, op, qty) end
  end
  out[#out + 1] = answer
end

-- ---- writing what changed ----
local function chunked(command, key, values)
  for j = 1, #values, 1000 do redis.call(command, key, unpack(values, j, math.min(j + 999, #values))) end
end
local scored, dropped = {}, {}
for _, id in ipairs(dueIds) do
  if due[id] then scored[#scored + 1] = fmt(due[id]); scored[#scored + 1] = id
  elseif not created[id] then dropped[#dropped + 1] = id end
end
chunked('ZREM', DEADLINES, dropped)
chunked('ZADD', DEADLINES, scored)
local earliestAfter = earliest()
local dvChanged = ev ~= nil and earliestAfter ~= earliestBefore
if dvChanged then ev.dv = ev.dv + 1 end

if defined then
  local h = { 'name', ev.name, 'types', table.concat(ev.ids, ' '), 'dv', fmt(ev.dv) }
  if ev.cap then h[#h + 1] = 'cap'; h[#h + 1] = fmt(ev.cap) end
  if ev.pb then h[#h + 1] = 'pb'; h[#h + 1] = fmt(ev.pb) end
  for _, id in ipairs(ev.ids) do
    local tp = ev.types[id]
    h[#h + 1] = 'n:' .. id; h[#h + 1] = tp.n
    h[#h + 1] = 'c:' .. id; h[#h + 1] = fmt(tp.c)
    h[#h + 1] = 's:' .. id; h[#h + 1] = fmt(tp.s)
    h[#h + 1] = 'h:' .. id; h[#h + 1] = fmt(tp.h)
    h[#h + 1] = 'i:' .. id; h[#h + 1] = fmt(tp.i)
    if tp.m then h[#h + 1] = 'm:' .. id; h[#h + 1] = fmt(tp.m) end
    if tp.b then h[#h + 1] = 'b:' .. id; h[#h + 1] = fmt(tp.b) end
  end
  redis.call('DEL', EVENT)
  chunked('HSET', EVENT, h)
elseif #dirtyIds > 0 or dvChanged then
  local h = {}
  if dvChanged then h[1] = 'dv'; h[2] = fmt(ev.dv) end
  for _, id in ipairs(dirtyIds) do
    local tp = ev.types[id]
    h[#h + 1] = 'c:' .. id; h[#h + 1] = fmt(tp.c)
    h[#h + 1] = 's:' .. id; h[#h + 1] = fmt(tp.s)
    h[#h + 1] = 'h:' .. id; h[#h + 1] = fmt(tp.h)
    h[#h + 1] = 'i:' .. id; h[#h + 1] = fmt(tp.i)
  end
  chunked('HSET', EVENT, h)
end
local fields = {}
for _, id in ipairs(orderIds) do fields[#fields + 1] = id; fields[#fields + 1] = orderAnswer(orders[id], '0')[4] end
chunked('HSET', ORDERS, fields)
chunked('ZADD', ORDER_TIMES, madeOrders)
fields = {}
for _, id in ipairs(holdIds) do fields[#fields + 1] = id; fields[#fields + 1] = holdAnswer(holds[id], '0')[4] end
chunked('HSET', HOLDS, fields)
local emptied = {}
fields = {}
for _, buyer in ipairs(buyerIds) do
  local tokens = {}
  for typeId, qty in pairs(buyers[buyer]) do
    if qty > 0 then tokens[#tokens + 1] = typeId; tokens[#tokens + 1] = fmt(qty) end
  end
  if #tokens > 0 then fields[#fields + 1] = buyer; fields[#fields + 1] = table.concat(tokens, ' ')
  else emptied[#emptied + 1] = buyer end
end
chunked('HSET', BUYERS, fields)
chunked('HDEL', BUYERS, emptied)
-- A record whose TTL is not positive would be expired at once: it is only in flight for this call.
if ttl > 0 then
  for j = 1, #records, 2 do redis.call('SET', KEYS[records[j]], records[j + 1], 'PX', ARGV[2]) end
end

-- For the hold deadline index: an earliest deadline that came earlier, or any after a sweep (an event
-- that is gone, after a loss of data, with a version that removes its entry whatever it was).
local earlier = earliestAfter ~= nil and (earliestBefore == nil or earliestAfter < earliestBefore)
local trailer = { 'Z', fmt(expiredHolds), fmt(expiredTickets) }
if ev and (sweeps or earlier) then
  trailer[4] = fmt(ev.dv); trailer[5] = earliestAfter and fmt(earliestAfter) or ''
elseif sweeps then
  trailer[4] = '9007199254740991'; trailer[5] = ''
end
out[#out + 1] = trailer
return out
`;

/**
 * The periodic sweep's lease and the events it visits. KEYS[1]
 * `{<prefix>}:sweeper`, KEYS[2] `{<prefix>}:hold-deadlines`; ARGV[1] this
 * replica's token, ARGV[2] the lease (ms), ARGV[3] how many events at most.
 * Answers nil when another replica holds the lease, else (taking or renewing
 * it) the ids of the events whose deadline is due by TIME, earliest first.
 */
const SWEEP_LEASE_SCRIPT = `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return false end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
`;

/**
 * Sets events' entries in the hold deadline index from what their batch
 * scripts answered. KEYS[1] `{<prefix>}:hold-deadlines`, KEYS[2]
 * `{<prefix>}:hold-versions`; ARGV: triples of event id, dv, earliest deadline
 * ('' for none). An answer older (lower dv) than the entry's is dropped, so
 * answers that arrive out of order never undo a later one.
 */
const HOLD_INDEX_SCRIPT = `
for j = 1, #ARGV, 3 do
  local id, version, deadline = ARGV[j], tonumber(ARGV[j + 1]), ARGV[j + 2]
  local known = tonumber(redis.call('HGET', KEYS[2], id))
  if not known or version >= known then
    if deadline == '' then
      redis.call('ZREM', KEYS[1], id)
      redis.call('HDEL', KEYS[2], id)
    else
      redis.call('ZADD', KEYS[1], deadline, id)
      redis.call('HSET', KEYS[2], id, ARGV[j + 1])
    end
  end
end
return #ARGV / 3
`;

/** A script the store sends by its SHA with WAIT (and in full when the server does not have it). */
interface Lua {
  readonly body: string;
  readonly sha: string;
}
const lua = (body: string): Lua => ({ body, sha: createHash('sha1').update(body).digest('hex') });
const BATCH = lua(BATCH_SCRIPT);
const HOLD_INDEX = lua(HOLD_INDEX_SCRIPT);

/**
 * Sets a sync marker before WAIT. KEYS[1] what must exist for there to be
 * anything to cover (an event's hash; the marker itself: always), KEYS[2] the
 * marker. An id naming no event so makes no key.
 */
const MARKER_SCRIPT = `
if KEYS[1] == KEYS[2] or redis.call('EXISTS', KEYS[1]) == 1 then redis.call('SET', KEYS[2], '1') end
return 1
`;

/** A sync marker: the key set before a WAIT (see "Cluster, Sentinel, replicas and WAIT"), and the key that must exist for it to be set. */
interface SyncMarker {
  key: string;
  guard: string;
}

/** A replica counts for readiness only when its last acknowledgement is at most this old (s; replicas send one a second). */
const REPLICA_LAG_LIMIT_S = 3;

/** A write to Redis: a script with its keys and arguments, or a command (its key first). */
type Write = { script: Lua; keys: string[]; args: string[] } | CommandWrite;
interface CommandWrite {
  command: string;
  args: string[];
}

/**
 * Fewer replicas than `waitReplicas` confirmed a batch's writes in time (or
 * WAIT itself failed): they are on the primary and may or may not survive a
 * failover, so the batch's outcome is unknown.
 */
export class ReplicaWaitError extends Error {
  override name = 'ReplicaWaitError';
}

/** One command's answer from the batch script: a tag and its fields. */
type Answer = string[];

/** A record and where it ranks in a dashboard read (lowest first). */
interface Ranked<T> {
  rank: number;
  record: T;
}

type ScriptedRedis = Redis & {
  /** Answers one array per command and the deadline trailer, or 'E' when the call reached Redis after its deadline. */
  ticketBatch(numberOfKeys: number, keys: string[], args: string[]): Promise<Answer[] | 'E'>;
  /** The events a sweep visits, or null when another replica holds the lease. */
  ticketSweepLease(numberOfKeys: number, keys: string[], args: string[]): Promise<string[] | null>;
  ticketHoldIndex(numberOfKeys: number, keys: string[], args: string[]): Promise<number>;
};

/** A command the batch script decides on one event: all but list-events, expire and the dashboard's reads. */
type EventCommand = Exclude<StockCommand, { kind: 'list-events' | 'expire' | 'recent-orders' | 'expiring-holds' }>;

/** The cross-event keys, under the hash tag `{<prefix>}`. */
type SharedKey = 'hold-deadlines' | 'hold-versions' | 'sweeper' | 'order-events' | 'synced';

/** A list-events' page: the events it shows (ids fixed before the scripts run) and whether more follow. */
interface Page {
  ids: string[];
  more: boolean;
  /** Filled from the scripts' answers: each listed event as of the list's place in the batch. */
  events: Map<string, EventRecord>;
  expired: boolean;
}

/** An expire's sweep: the events it visits (none when another replica holds the lease) and what they expired. */
interface Sweep {
  eventIds: string[];
  limit: number;
  count: number;
  expired: boolean;
}

/** An event's entry for the hold deadline index, as its batch script answered it. */
interface DeadlineEntry {
  version: number;
  /** ms, or '' when the event has no hold held. */
  earliest: string;
}

/**
 * One script call: one event's commands of a batch, in batch order, and the
 * reads and sweeps of the event that list-events and expire put in at their place.
 */
class EventCall {
  readonly keys: string[];
  readonly args: string[];
  /** What each op answers: a command of the batch, a list-events' read, or an expire's part. */
  readonly ops: Array<{ index: number; page?: Page; sweep?: Sweep }> = [];
  readonly #idempotencyKeys = new Map<string, number>();
  readonly #tag: string;

  constructor(
    readonly eventId: string,
    tag: string,
    deadline: number,
    ttlMs: number,
  ) {
    this.#tag = tag;
    this.keys = [
      `${tag}:event`,
      `${tag}:orders`,
      `${tag}:holds`,
      `${tag}:deadlines`,
      `${tag}:buyers`,
      `${tag}:order-times`,
    ];
    this.args = [String(deadline), String(Math.max(0, Math.floor(ttlMs))), String(EXPIRED_PER_TOUCH)];
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
          command.orderId,
          String(command.at),
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
          buyerArg(command.buyer),
          this.#keyIndex(command.key),
          command.key === undefined ? '' : purchaseRequestOf(command),
          ...itemArgs(command.items),
        );
        return;
      case 'hold':
        this.args.push(
          'h',
          command.holdId,
          String(command.at),
          String(command.ttlMs),
          buyerArg(command.buyer),
          this.#keyIndex(command.key),
          command.key === undefined ? '' : holdRequestOf(command),
          ...itemArgs(command.items),
        );
        return;
      case 'confirm':
        this.args.push('c', command.holdId, command.orderId, String(command.at));
        return;
      case 'release':
        this.args.push('f', command.holdId);
        return;
      case 'get-hold':
        this.args.push('q', command.holdId);
        return;
      case 'get-order':
        this.args.push('o', command.orderId);
        return;
      case 'cancel':
        this.args.push('k', command.orderId);
        return;
    }
  }

  /** A read of the event for the list-events at `index` (it expires nothing, as in the rules). */
  read(index: number, page: Page): void {
    this.ops.push({ index, page });
    this.args.push('v');
  }

  /** This event's part of the expire at `index`. */
  sweep(index: number, sweep: Sweep): void {
    this.ops.push({ index, sweep });
    this.args.push('x', String(sweep.limit));
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
    optional(definition.capacity),
    optional(definition.maxPerBuyer),
    String(definition.ticketTypes.length),
  ];
  for (const type of definition.ticketTypes) {
    args.push(type.id, type.name, String(type.capacity), optional(type.maxPerOrder), optional(type.maxPerBuyer));
  }
  return args;
}

function optional(value: number | null | undefined): string {
  return value === null || value === undefined ? '' : String(value);
}

function buyerArg(buyer: string | null): string {
  return buyer === null ? '0' : `1${buyer}`;
}

function itemArgs(items: ReadonlyArray<{ typeId: string; qty: number }>): string[] {
  return [String(items.length), ...items.flatMap((item) => [item.typeId, String(item.qty)])];
}

/** The event a command acts on, or undefined when its hold or order id names no event (so none is known). */
function eventOf(command: EventCommand): string | undefined {
  switch (command.kind) {
    case 'confirm':
    case 'release':
    case 'get-hold':
      return eventOfHoldId(command.holdId);
    case 'get-order':
    case 'cancel':
      return eventOfOrderId(command.orderId);
    default:
      return command.eventId;
  }
}

/**
 * The scale-out store: events, their stock, holds, orders, buyers' counts and
 * idempotency keys live in Redis, shared by every vacancy replica, and each
 * batch of the actor is decided by one atomic script call per event it
 * touches (loaded once, run by its SHA), by the rules of src/stock/rules.ts
 * (the contract suite holds it to the same answers as the other stores).
 * Whether a hold has expired is decided by Redis's clock alone. It fails
 * closed: with Redis down, refusing or frozen, a batch fails within
 * `timeoutMs` and is answered 503; nothing is ever decided in local memory.
 * A script that reaches Redis after its caller gave up finds its deadline
 * passed and changes nothing.
 *
 * All keys of one event share the hash tag `{prefix:eventId}`, and the
 * cross-event keys of holds the tag `{prefix}`, so every script runs on Redis
 * Cluster too; see the key layout above. With `waitReplicas`, no batch is
 * answered before that many replicas have its writes (see "Replicas and WAIT").
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
  readonly #connection: RedisConnection;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #sweepLeaseMs: number;
  readonly #waitReplicas: number;
  readonly #waitTimeoutMs: number;
  /** This store's name on the sweep lease. */
  readonly #token: string;
  readonly #location: string;
  /** Redis clock minus ours, in ms, measured with TIME; deadlines are set on Redis's clock. */
  #clockOffsetMs = 0;
  #failure: string | null = null;
  /** How many times Redis answered as it should (a batch, a check, a reconnect): see #failed. */
  #successes = 0;
  /** With `waitReplicas`: why the replicas fall short (a check or a WAIT said so), or null. */
  #replicaShortage: string | null = null;
  /** Observations of the replicas started (checks and WAITs), and the one #replicaShortage is from. */
  #replicaObservations = 0;
  #replicaObservedBy = 0;
  #lastCommitAt: number | null = null;
  /** Hold deadline index entries whose call failed, sent again with the next ones (newest per event). */
  readonly #unindexed = new Map<string, DeadlineEntry>();
  #opened = false;
  #closing = false;

  static async create(options: RedisStockStoreOptions): Promise<RedisStockStore> {
    if (/[{}]/.test(options.keyPrefix)) {
      throw new Error(`The Redis key prefix ${JSON.stringify(options.keyPrefix)} must not contain { or }`);
    }
    return new RedisStockStore(options, await createRedisConnection(options, options.timeoutMs));
  }

  private constructor(options: RedisStockStoreOptions, connection: RedisConnection) {
    this.#prefix = options.keyPrefix;
    this.#timeoutMs = options.timeoutMs;
    this.#sweepLeaseMs = options.sweepLeaseMs ?? 1_000;
    this.#waitReplicas = Math.max(0, Math.floor(options.waitReplicas ?? 0));
    this.#waitTimeoutMs = Math.max(1, Math.round(options.waitTimeoutMs ?? 1_000));
    this.#token = options.sweeperId ?? crypto.randomUUID();
    this.#connection = connection;
    this.#location = connection.location;
    this.#redis = connection.client as ScriptedRedis;
    this.#redis.defineCommand('ticketBatch', { lua: BATCH_SCRIPT });
    this.#redis.defineCommand('ticketSweepLease', { lua: SWEEP_LEASE_SCRIPT });
    this.#redis.defineCommand('ticketHoldIndex', { lua: HOLD_INDEX_SCRIPT });
    this.#redis.on('error', (error: Error) => {
      this.#failure = `redis: ${error.message}`;
    });
    // A Cluster reports its nodes' errors apart (a primary gone, a refused connection).
    this.#redis.on('node error', (error: Error, node: string) => {
      this.#failure = `redis ${node}: ${error.message}`;
    });
    this.#redis.on('ready', () => this.#succeeded());
    // ioredis gives up for good when a reconnect fails in a way it does not retry (a Sentinel lookup cut
    // short): a store that was opened and not closed connects again, so readiness can recover by itself.
    this.#redis.on('end', () => {
      if (!this.#opened || this.#closing) return;
      setTimeout(() => {
        if (!this.#closing && this.#redis.status === 'end') this.#redis.connect().catch(() => {});
      }, 1_000).unref();
    });
  }

  async open(seed: readonly SeedEvent[]): Promise<void> {
    const variable = this.#connection.variable;
    // A Cluster that never becomes ready (CLUSTERDOWN, no node answering) would keep connect() waiting.
    const startupMs = Math.max(this.#timeoutMs * 5, 5_000);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        this.#redis.connect(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`not ready within ${startupMs} ms`)), startupMs);
        }),
      ]);
    } catch (error) {
      this.#redis.disconnect();
      throw new Error(
        `Cannot reach Redis at ${this.#location} (${variable}): ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    } finally {
      clearTimeout(timer);
    }
    this.#opened = true;
    await this.#syncClock();
    if (this.#waitReplicas > 0) {
      // Pipelines with WAIT send scripts by their SHA: one the server lacks (NOSCRIPT) would be sent again
      // only after that pipeline's WAIT, late for its deadline whenever the replicas are slow or missing.
      await Promise.all(
        this.#connection
          .primaries()
          .flatMap((primary) => [BATCH, HOLD_INDEX].map((lua) => primary.script('LOAD', lua.body))),
      );
    }
    const calls = seed.map(({ eventId, definition }) => {
      const call = this.#call(eventId, 0);
      call.seed(definition);
      return call;
    });
    const { settled } = this.#runCalls(calls, null, new Set());
    for (const result of await settled) {
      if (result.status === 'rejected') {
        throw new Error(
          `Redis at ${this.#location} (${variable}) could not create the seed events: ${String(result.reason)}`,
          { cause: result.reason },
        );
      }
      if (result.value === 'E') throw new Error(`Redis at ${this.#location} took too long to create the seed events`);
    }
    // Also repairs the index if a put-event's ZADD was lost.
    await this.#index(seed.map(({ eventId }) => eventId));
    this.#lastCommitAt = Date.now();
  }

  async decide(commands: readonly StockCommand[], options: DecideOptions): Promise<StockDecision[]> {
    const since = this.#successes;
    let pages: Map<number, Page>;
    let sweeps: Map<number, Sweep>;
    let dashboards: Map<number, StockDecision>;
    // A key of each hash tag the batch reads in outside its scripts (its WAIT must cover that too).
    const reads = new Set<string>();
    try {
      [pages, sweeps, dashboards] = await Promise.all([
        this.#pages(commands, reads),
        this.#sweeps(commands),
        this.#dashboards(commands, reads),
      ]);
    } catch (error) {
      // Only reads so far (and the sweep lease, which decides nothing): nothing of the batch happened.
      throw this.#failed(error, false, since);
    }

    const decisions: StockDecision[] = new Array(commands.length);
    for (const [index, decision] of dashboards) decisions[index] = decision;
    const calls = new Map<string, EventCall>();
    const callOf = (eventId: string) => {
      let call = calls.get(eventId);
      if (!call) calls.set(eventId, (call = this.#call(eventId, options.idempotencyTtlMs)));
      return call;
    };
    commands.forEach((command, index) => {
      if (command.kind === 'list-events') {
        for (const eventId of pages.get(index)!.ids) callOf(eventId).read(index, pages.get(index)!);
      } else if (command.kind === 'expire') {
        for (const eventId of sweeps.get(index)!.eventIds) callOf(eventId).sweep(index, sweeps.get(index)!);
      } else if (command.kind !== 'recent-orders' && command.kind !== 'expiring-holds') {
        const eventId = eventOf(command);
        if (eventId !== undefined) callOf(eventId).add(index, command);
        else
          decisions[index] = refused(
            command.kind === 'get-order' || command.kind === 'cancel' ? 'unknown-order' : 'unknown-hold',
          );
      }
    });

    // Sent with the scripts (no round trip of its own): the order index's bounds for the orders they may make.
    const run = this.#runCalls([...calls.values()], this.#orderHint(commands), reads);
    const hinted = run.hinted.then(
      () => undefined,
      (error: unknown) => error,
    );
    const settled = await run.settled;
    const failure = settled.find((result) => result.status === 'rejected');
    if (failure) {
      // Another call may have run: then some of the batch happened, and nothing can be said of the rest.
      const ran = settled.some((result) => result.status === 'fulfilled' && result.value !== 'E');
      const unknown = ran || settled.some((r) => r.status === 'rejected' && isUnknown(r.reason));
      throw this.#failed(failure.reason, unknown, since);
    }

    const defined: string[] = [];
    const deadlines = new Map<string, DeadlineEntry>();
    const expired = { holds: 0, tickets: 0 };
    try {
      [...calls.values()].forEach((call, position) => {
        const reply = (settled[position] as PromiseFulfilledResult<Answer[] | 'E'>).value;
        if (reply !== 'E' && reply.length !== call.ops.length + 1) {
          throw new Error(`the batch script answered ${reply.length - 1} times to ${call.ops.length} commands`);
        }
        call.ops.forEach(({ index, page, sweep }, op) => {
          const answer = reply === 'E' ? undefined : reply[op]!;
          if (page) {
            if (answer === undefined) page.expired = true;
            else if (answer[0] === 'V') page.events.set(call.eventId, eventFrom(call.eventId, answer));
            return;
          }
          if (sweep) {
            if (answer === undefined) sweep.expired = true;
            else sweep.count += Number(answer[1]);
            return;
          }
          const command = commands[index] as EventCommand;
          decisions[index] = answer === undefined ? refused('expired') : decisionOf(command, call.eventId, answer);
          if (command.kind === 'put-event' && decisions[index]!.kind === 'event') defined.push(command.eventId);
        });
        const trailer = reply === 'E' ? undefined : reply[call.ops.length]!;
        if (trailer !== undefined) {
          expired.holds += Number(trailer[1]);
          expired.tickets += Number(trailer[2]);
          if (trailer.length === 5) deadlines.set(call.eventId, { version: Number(trailer[3]), earliest: trailer[4]! });
        }
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
      for (const [index, sweep] of sweeps) {
        decisions[index] = sweep.expired ? refused('expired') : { kind: 'expired', count: sweep.count };
      }
      const hintError = await hinted;
      if (hintError !== undefined) throw hintError;
      await Promise.all([this.#index(defined), this.#indexDeadlines(deadlines)]);
    } catch (error) {
      // The scripts ran: their changes are in Redis.
      throw this.#failed(error, true, since);
    }
    this.#succeeded();
    this.#lastCommitAt = Date.now();
    if (expired.holds > 0) options.expired?.(expired.holds, expired.tickets);
    return decisions;
  }

  health(): StoreHealth {
    const error =
      this.#failure ??
      (this.#redis.status === 'ready' ? null : `redis connection is ${this.#redis.status}`) ??
      (this.#waitReplicas > 0 && this.#replicaShortage !== null ? `redis: ${this.#replicaShortage}` : null);
    return {
      kind: this.kind,
      durable: true,
      writable: error === null,
      lastCommitAgeMs: this.#lastCommitAt === null ? null : Date.now() - this.#lastCommitAt,
      location: this.#location,
      ...(error === null ? {} : { error }),
    };
  }

  /**
   * Pings every primary (and re-measures its clock), so readiness follows
   * Redis without waiting for traffic; with `waitReplicas`, each primary must
   * also have that many replicas online and acknowledging, since without
   * them every batch would fail its WAIT. Until one has again, health stays
   * unwritable whatever batches succeed meanwhile (a sweep that read and
   * wrote nothing, say).
   */
  async checkWritable(): Promise<boolean> {
    const since = this.#successes;
    try {
      await this.#syncClock();
      if (this.#waitReplicas > 0) {
        const started = ++this.#replicaObservations;
        this.#observeReplicas(started, await this.#replicaShortfall());
      }
      this.#succeeded();
    } catch (error) {
      this.#failed(error, false, since);
      return false;
    }
    return this.health().writable;
  }

  async close(): Promise<void> {
    this.#closing = true;
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
  async #pages(commands: readonly StockCommand[], reads: Set<string>): Promise<Map<number, Page>> {
    const pages = new Map<number, Page>();
    const lists: Array<{ index: number; after: string | null; limit: number }> = [];
    commands.forEach((command, index) => {
      if (command.kind === 'list-events') lists.push({ index, after: command.after, limit: command.limit });
    });
    if (lists.length === 0) return pages;
    reads.add(this.#indexKey());
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

  /**
   * The events every expire in the batch visits: those due in the hold
   * deadline index, read by the holder of the sweep lease (taken or renewed
   * here); none for the other replicas, nor for a limit below 1.
   */
  async #sweeps(commands: readonly StockCommand[]): Promise<Map<number, Sweep>> {
    const sweeps = new Map<number, Sweep>();
    await Promise.all(
      commands.map(async (command, index) => {
        if (command.kind !== 'expire') return;
        const limit = Math.floor(command.limit);
        const due =
          limit < 1
            ? null
            : await this.#redis.ticketSweepLease(
                2,
                [this.#sharedKey('sweeper'), this.#sharedKey('hold-deadlines')],
                [this.#token, String(this.#sweepLeaseMs), String(limit)],
              );
        sweeps.set(index, { eventIds: due ?? [], limit, count: 0, expired: false });
      }),
    );
    return sweeps;
  }

  /**
   * The dashboard's reads in the batch, as committed before it (as the rules
   * read them, from their view): an event's latest orders or first-expiring
   * holds from its own sorted set, and over all events merged from the
   * events a cross-event index names.
   */
  async #dashboards(commands: readonly StockCommand[], reads: Set<string>): Promise<Map<number, StockDecision>> {
    const answers = new Map<number, StockDecision>();
    await Promise.all(
      commands.map(async (command, index) => {
        if (command.kind !== 'recent-orders' && command.kind !== 'expiring-holds') return;
        const limit = Math.max(0, Math.floor(command.limit));
        if (command.eventId === null) reads.add(this.#sharedKey('synced'));
        const read = <T>(eventId: string, ofEvent: (eventId: string) => Promise<T>): Promise<T> => {
          reads.add(`${this.#tag(eventId)}:event`);
          return ofEvent(eventId);
        };
        if (command.kind === 'recent-orders') {
          const orders = await this.#merged(command.eventId, limit, 'order-events', (eventId) =>
            read(eventId, (id) => this.#eventOrders(id, limit)),
          );
          answers.set(index, { kind: 'orders', orders: orders.map(({ record }) => record) });
        } else {
          const holds = await this.#merged(command.eventId, limit, 'hold-deadlines', (eventId) =>
            read(eventId, (id) => this.#eventHolds(id, limit)),
          );
          answers.set(index, { kind: 'holds', holds: holds.map(({ record }) => record) });
        }
      }),
    );
    return answers;
  }

  /**
   * The first `limit` records by rank (lowest first), of one event or of all:
   * events are read in the order of the index's bounds (`order-events`: no
   * earlier than the event's latest order, taken newest first; `hold-deadlines`:
   * no later than its first-expiring hold), until no event left can come
   * before the `limit`-th record found.
   */
  async #merged<T extends { id: string }>(
    eventId: string | null,
    limit: number,
    index: 'order-events' | 'hold-deadlines',
    ofEvent: (eventId: string) => Promise<Array<Ranked<T>>>,
  ): Promise<Array<Ranked<T>>> {
    if (limit === 0) return [];
    if (eventId !== null) return ofEvent(eventId);
    const newestFirst = index === 'order-events';
    const page = Math.max(limit, 16);
    let found: Array<Ranked<T>> = [];
    for (let offset = 0; ; offset += page) {
      const entries = newestFirst
        ? await this.#redis.zrevrange(this.#sharedKey(index), offset, offset + page - 1, 'WITHSCORES')
        : await this.#redis.zrange(this.#sharedKey(index), offset, offset + page - 1, 'WITHSCORES');
      const ids = entries.filter((_, at) => at % 2 === 0);
      found = [...found, ...(await Promise.all(ids.map(ofEvent))).flat()]
        .sort((a, b) => a.rank - b.rank || (a.record.id < b.record.id ? -1 : 1))
        .slice(0, limit);
      const lastBound = Number(entries[entries.length - 1]) * (newestFirst ? -1 : 1);
      if (ids.length < page || (found.length === limit && lastBound > found[limit - 1]!.rank)) return found;
    }
  }

  /** An event's latest `limit` orders, newest first (rank: -createdAt). */
  async #eventOrders(eventId: string, limit: number): Promise<Array<Ranked<OrderRecord>>> {
    const ids = await this.#redis.zrevrange(`${this.#tag(eventId)}:order-times`, 0, limit - 1);
    if (ids.length === 0) return [];
    const stored = await this.#redis.hmget(`${this.#tag(eventId)}:orders`, ...ids);
    return ids.flatMap((id, at) => {
      const order = stored[at] ? orderFrom(id, eventId, stored[at]) : undefined;
      return order ? [{ rank: -order.createdAt, record: order }] : [];
    });
  }

  /** An event's `limit` held holds that expire first (rank: expiresAt). */
  async #eventHolds(eventId: string, limit: number): Promise<Array<Ranked<HoldRecord>>> {
    const ids = await this.#redis.zrange(`${this.#tag(eventId)}:deadlines`, 0, limit - 1);
    if (ids.length === 0) return [];
    const stored = await this.#redis.hmget(`${this.#tag(eventId)}:holds`, ...ids);
    return ids.flatMap((id, at) => {
      const hold = stored[at] ? holdFrom(id, eventId, stored[at]) : undefined;
      return hold ? [{ rank: hold.expiresAt, record: hold }] : [];
    });
  }

  /**
   * The order index's bound of every event the batch may make an order on,
   * raised to the latest `at` among them (ZADD GT: never lowered), sent
   * alongside the scripts; null when the batch makes no order. A bound above
   * the event's latest order (the purchase was refused) only makes a
   * dashboard read look at it too.
   */
  #orderHint(commands: readonly StockCommand[]): CommandWrite | null {
    const latest = new Map<string, number>();
    for (const command of commands) {
      if (command.kind !== 'purchase' && command.kind !== 'reserve' && command.kind !== 'confirm') continue;
      const eventId = command.kind === 'confirm' ? eventOfHoldId(command.holdId) : command.eventId;
      if (eventId !== undefined) latest.set(eventId, Math.max(latest.get(eventId) ?? -Infinity, command.at));
    }
    if (latest.size === 0) return null;
    return {
      command: 'zadd',
      args: [this.#sharedKey('order-events'), 'GT', ...[...latest].flatMap(([eventId, at]) => [String(at), eventId])],
    };
  }

  /**
   * Runs the batch's event calls and the order hint. Without WAIT, each is
   * one command of its own, all sent at once. With WAIT, they go in
   * pipelines that end with a sync marker and WAIT: one for all of them on
   * one server, one per event (and one for the hint) on a Cluster, so that
   * each WAIT follows the writes it vouches for on the same connection, and
   * on a Cluster one more (marker and WAIT alone) for each hash tag of the
   * batch's `reads` (keys it read outside the scripts) that no script's or
   * hint's marker covers. `hinted` rejects when the hint failed, or when WAIT
   * fell short of what `reads` needs (a script's answer carries its own).
   */
  #runCalls(
    calls: readonly EventCall[],
    hint: CommandWrite | null,
    reads: ReadonlySet<string>,
  ): { settled: Promise<Array<PromiseSettledResult<Answer[] | 'E'>>>; hinted: Promise<void> } {
    if (this.#waitReplicas === 0) {
      const hinted = hint ? this.#redis.call(hint.command, ...hint.args).then(() => undefined) : Promise.resolve();
      const settled = Promise.allSettled(
        calls.map((call) => this.#redis.ticketBatch(call.keys.length, call.keys, call.args)),
      );
      return { settled, hinted };
    }
    const scripts = calls.map((call): Write => ({ script: BATCH, keys: call.keys, args: call.args }));
    const verdict = (result: PromiseSettledResult<unknown> | undefined): Promise<void> =>
      result?.status === 'rejected' ? Promise.reject(result.reason as Error) : Promise.resolve();
    if (this.#connection.cluster === null) {
      const writes = hint ? [hint, ...scripts] : scripts;
      // Nothing read or written (a sweep with nothing due): nothing to wait for.
      if (writes.length === 0 && reads.size === 0) return { settled: Promise.resolve([]), hinted: Promise.resolve() };
      const all = this.#durable(writes);
      return {
        settled: all.then(
          ({ results }) => (hint ? results.slice(1) : results) as Array<PromiseSettledResult<Answer[] | 'E'>>,
        ),
        hinted: all.then(async ({ results, shortfall }) => {
          if (hint) await verdict(results[0]);
          if (shortfall && reads.size > 0) throw shortfall;
        }),
      };
    }
    const covered = new Set([...scripts, ...(hint ? [hint] : [])].map((write) => this.#markerOf(keyOf(write)).key));
    const uncovered = new Map<string, SyncMarker>();
    for (const key of reads) {
      const marker = this.#markerOf(key);
      if (!covered.has(marker.key)) uncovered.set(marker.key, marker);
    }
    const syncs = [...uncovered.values()].map(async (marker) => {
      const { shortfall } = await this.#durable([], marker);
      if (shortfall) throw shortfall;
    });
    const hinted = Promise.all([
      hint ? this.#durable([hint]).then(({ results: [result] }) => verdict(result)) : undefined,
      ...syncs,
    ]).then(() => undefined);
    const settled = Promise.all(
      scripts.map(async (script) => (await this.#durable([script])).results[0] as PromiseSettledResult<Answer[] | 'E'>),
    );
    return { settled, hinted };
  }

  /** Adds event ids to the index (idempotent). */
  async #index(eventIds: readonly string[]): Promise<void> {
    if (eventIds.length === 0) return;
    await this.#write({ command: 'zadd', args: [this.#indexKey(), ...eventIds.flatMap((id) => ['0', id])] });
  }

  /**
   * Sets the hold deadline index entries the scripts answered, with any whose
   * call failed before; kept to be sent again when this one fails too.
   */
  async #indexDeadlines(entries: ReadonlyMap<string, DeadlineEntry>): Promise<void> {
    for (const [eventId, entry] of entries) {
      const waiting = this.#unindexed.get(eventId);
      if (!waiting || waiting.version <= entry.version) this.#unindexed.set(eventId, entry);
    }
    if (this.#unindexed.size === 0) return;
    const sending = [...this.#unindexed];
    await this.#write({
      script: HOLD_INDEX,
      keys: [this.#sharedKey('hold-deadlines'), this.#sharedKey('hold-versions')],
      args: sending.flatMap(([eventId, { version, earliest }]) => [eventId, String(version), earliest]),
    });
    for (const [eventId, entry] of sending) {
      if (this.#unindexed.get(eventId) === entry) this.#unindexed.delete(eventId);
    }
  }

  /** One write: as it is without WAIT, followed by a sync marker and WAIT with it. */
  async #write(write: Write): Promise<void> {
    if (this.#waitReplicas === 0) {
      if ('script' in write) await this.#redis.ticketHoldIndex(write.keys.length, write.keys, write.args);
      else await this.#redis.call(write.command, ...write.args);
      return;
    }
    const {
      results: [result],
    } = await this.#durable([write]);
    if (result!.status === 'rejected') throw result!.reason;
  }

  /**
   * Sends `writes` in one pipeline followed by the sync `marker` (MARKER_SCRIPT)
   * and `WAIT waitReplicas waitTimeoutMs`, on the connection of their keys'
   * slot (they must share one primary; the marker, by default that of the
   * first write's hash tag on a Cluster and `{<prefix>}:synced` on one
   * server, shares their slot). Each write answers as it did, except that one
   * that ran (anything but an error or a batch script's 'E') is rejected with
   * a {@link ReplicaWaitError} when fewer replicas than asked confirmed: it is
   * on the primary, and a failover may or may not keep it. `shortfall` is
   * that error (null: confirmed), for callers that vouch for reads.
   *
   * Writes that did not run because the server had no such script
   * (NOSCRIPT: its cache was flushed, or it never ran them) or the slot moved
   * (MOVED, ASK: the Cluster resharded or failed over) are sent again once,
   * scripts in full, after the slots are read again. One that then comes too
   * late to run ('E') after the first WAIT fell short is rejected with that
   * shortfall's reason (it changed nothing): the wait for the replicas is
   * what made it late.
   */
  async #durable(
    writes: readonly Write[],
    marker?: SyncMarker,
  ): Promise<{ results: Array<PromiseSettledResult<unknown>>; shortfall: ReplicaWaitError | null }> {
    const sync = marker ?? this.#markerOf(this.#connection.cluster && writes.length > 0 ? keyOf(writes[0]!) : '');
    const first = await this.#pipelined(writes, false, sync);
    const { results } = first;
    const again = writes.flatMap((_, index) => (notRun(results[index]!) ? [index] : []));
    if (again.length === 0) return first;
    if (again.some((index) => /^(MOVED|ASK) /.test(errorMessage(results[index]!)))) await this.#refreshSlots();
    const retried = await this.#pipelined(
      again.map((index) => writes[index]!),
      true,
      sync,
    );
    again.forEach((index, at) => {
      const result = retried.results[at]!;
      results[index] =
        first.shortfall && result.status === 'fulfilled' && result.value === 'E'
          ? {
              status: 'rejected',
              reason: new Error(
                `${first.shortfall.message}; sent again (${errorMessage(results[index]!).split(' ')[0]}), it came after its deadline and changed nothing`,
              ),
            }
          : result;
    });
    return { results, shortfall: retried.shortfall };
  }

  async #pipelined(
    writes: readonly Write[],
    inFull: boolean,
    marker: SyncMarker,
  ): Promise<{ results: Array<PromiseSettledResult<unknown>>; shortfall: ReplicaWaitError | null }> {
    const pipeline = this.#redis.pipeline() as unknown as Pipeline;
    for (const write of writes) {
      if ('script' in write) {
        const [name, body] = inFull ? ['eval', write.script.body] : ['evalsha', write.script.sha];
        pipeline.call(name, body, write.keys.length, ...write.keys, ...write.args);
      } else {
        pipeline.call(write.command, ...write.args);
      }
    }
    // A write after the batch's commands, so that the WAIT covers everything before them, whoever wrote
    // it (WAIT waits for this connection's last write; a batch that only read or replayed has none).
    // In full: a short script, and the marker must never be the one thing a server lacks.
    pipeline.call('eval', MARKER_SCRIPT, '2', marker.guard, marker.key);
    const wait: Command = new this.#connection.Command('wait', [
      String(this.#waitReplicas),
      String(this.#waitTimeoutMs),
    ]);
    // Its own timeout (the client's is REDIS_TIMEOUT): the writes before it run first, then WAIT waits.
    wait.setTimeout(this.#timeoutMs + this.#waitTimeoutMs);
    pipeline.sendCommand(wait);
    const started = ++this.#replicaObservations;
    let replies: Array<[Error | null, unknown]> | null;
    try {
      replies = await pipeline.exec();
    } catch (error) {
      return { results: writes.map(() => ({ status: 'rejected', reason: error })), shortfall: null };
    }
    const [markerError] = replies?.[writes.length] ?? [new Error('no answer to the sync marker')];
    const [waitError, acknowledged] = replies?.[writes.length + 1] ?? [new Error('no answer to WAIT'), 0];
    const why = markerError
      ? `the sync marker before WAIT failed: ${markerError.message}`
      : waitError
        ? `WAIT for ${this.#waitReplicas} replicas failed: ${waitError.message}`
        : Number(acknowledged) < this.#waitReplicas
          ? `${Number(acknowledged)} of the ${this.#waitReplicas} replicas asked for (REDIS_WAIT_REPLICAS) confirmed the writes within ${this.#waitTimeoutMs} ms (REDIS_WAIT_TIMEOUT)`
          : null;
    // What the replicas did, unless the marker or WAIT failed as a command (the connection, a timeout, a
    // primary turned replica: for health as any failure); a marker refused for want of replicas
    // (min-replicas-to-write) is one.
    if (markerError ? /^NOREPLICAS /.test(markerError.message) : !waitError) this.#observeReplicas(started, why);
    const shortfall = why === null ? null : new ReplicaWaitError(why);
    const results = writes.map((_, index): PromiseSettledResult<unknown> => {
      const [error, value] = replies?.[index] ?? [new Error('no answer'), undefined];
      if (error) return { status: 'rejected', reason: error };
      if (shortfall && value !== 'E') return { status: 'rejected', reason: shortfall };
      return { status: 'fulfilled', value };
    });
    return { results, shortfall };
  }

  async #refreshSlots(): Promise<void> {
    const cluster = this.#connection.cluster;
    if (!cluster) return;
    await new Promise<void>((resolve) => cluster.refreshSlotsCache(() => resolve()));
  }

  #call(eventId: string, ttlMs: number): EventCall {
    return new EventCall(eventId, this.#tag(eventId), this.#deadline(), ttlMs);
  }

  /**
   * Records a failure of what started when `since` successes were counted
   * (one that started before a later success is old news for health: a sweep
   * sent while Redis was down can fail after it is back); `unknown`: Redis
   * may have applied (part of) the batch.
   */
  #failed(error: unknown, unknown: boolean, since: number): unknown {
    if (since === this.#successes) this.#failure = `redis: ${error instanceof Error ? error.message : String(error)}`;
    return unknown && error instanceof Error ? Object.assign(error, { outcomeUnknown: true }) : error;
  }

  #succeeded(): void {
    this.#failure = null;
    this.#successes += 1;
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

  /**
   * Measures Redis's clock against ours with TIME. On a Cluster every
   * primary answers and the earliest clock counts: a deadline is then never
   * later than meant on any of them (so a late script cannot sell there), and
   * at worst a little earlier on a primary whose clock runs ahead.
   */
  async #syncClock(): Promise<void> {
    const primaries = this.#connection.primaries();
    if (primaries.length === 0) throw new Error('the Cluster names no primary');
    const offsets = await Promise.all(
      primaries.map(async (primary) => {
        const sent = Date.now();
        const [seconds, micros] = await primary.time();
        const received = Date.now();
        return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - (sent + received) / 2;
      }),
    );
    this.#clockOffsetMs = Math.min(...offsets);
  }

  /**
   * Why the replicas fall short, or null when every primary has
   * `waitReplicas` replicas online whose last acknowledgement is at most
   * REPLICA_LAG_LIMIT_S old (INFO replication). Throws when a primary does not answer.
   */
  async #replicaShortfall(): Promise<string | null> {
    const short = await Promise.all(
      this.#connection.primaries().map(async (primary) => {
        const info = await primary.info('replication');
        const replicas = [...info.matchAll(/^slave\d+:.*state=online.*$/gm)].map(([line]) =>
          Number(/,lag=(\d+)/.exec(line)?.[1] ?? 0),
        );
        const online = replicas.filter((lag) => lag <= REPLICA_LAG_LIMIT_S).length;
        if (online >= this.#waitReplicas) return null;
        const where = this.#connection.cluster ? ` ${primary.options.host}:${primary.options.port}` : '';
        const silent = replicas.length - online;
        return (
          `the primary${where} has ${online} replicas online, fewer than the ${this.#waitReplicas} REDIS_WAIT_REPLICAS waits for` +
          (silent > 0 ? ` (${silent} more connected but silent for over ${REPLICA_LAG_LIMIT_S} s)` : '')
        );
      }),
    );
    return short.find((why) => why !== null) ?? null;
  }

  /** Records what a check or a WAIT that started as observation `started` found, unless a later one has already. */
  #observeReplicas(started: number, shortage: string | null): void {
    if (started <= this.#replicaObservedBy) return;
    this.#replicaObservedBy = started;
    this.#replicaShortage = shortage;
  }

  /**
   * The sync marker of `key`'s slot: `{<its hash tag>}:synced`, or
   * `{<key>}:synced` for a key without one (the Cluster hashes the tag, or the
   * whole key, so both land in the slot of `key`); for an event's tag set
   * only while the event exists. '' : `{<prefix>}:synced`.
   */
  #markerOf(key: string): SyncMarker {
    if (key === '') key = this.#sharedKey('synced');
    const close = key.startsWith('{') ? key.indexOf('}') : -1;
    const tag = close > 1 ? key.slice(1, close) : key;
    const marker = `{${tag}}:synced`;
    return close > 1 && tag.startsWith(`${this.#prefix}:`)
      ? { key: marker, guard: `{${tag}}:event` }
      : { key: marker, guard: marker };
  }

  /** The index of every event id, outside the events' hash tags. */
  #indexKey(): string {
    return `${this.#prefix}:events`;
  }

  /** A cross-event key, under the hash tag `{<prefix>}`. */
  #sharedKey(name: SharedKey): string {
    return `{${this.#prefix}}:${name}`;
  }

  #tag(eventId: string): string {
    return `{${this.#prefix}:${eventId}}`;
  }
}

/**
 * Whether Redis may have run a command that failed: it timed out, the
 * connection was lost after it was sent (ioredis then gives up on it at once,
 * as maxRetriesPerRequest is 0), or it ran but the replicas WAIT asked for
 * did not confirm it. A command never sent (no connection, no offline queue)
 * or refused by Redis (NOREPLICAS, CLUSTERDOWN, MOVED, a script error) did not run.
 */
function isUnknown(error: unknown): boolean {
  return (
    error instanceof Error &&
    (/command timed out/i.test(error.message) ||
      error.name === 'MaxRetriesPerRequestError' ||
      error instanceof ReplicaWaitError ||
      // A Cluster's node connection that closed under a command (its commands may have run).
      error.message === 'Connection is closed.')
  );
}

/** A write that did not run and may be sent again: the server had no such script, or the slot was elsewhere. */
function notRun(result: PromiseSettledResult<unknown>): boolean {
  return /^(NOSCRIPT|MOVED|ASK) /.test(errorMessage(result));
}

/** A write's first key (a command's is its first argument). */
function keyOf(write: Write): string {
  return 'script' in write ? write.keys[0]! : write.args[0]!;
}

function errorMessage(result: PromiseSettledResult<unknown>): string {
  return result.status === 'rejected' && result.reason instanceof Error ? result.reason.message : '';
}

function refused(reason: RefusalReason, field?: string, detail?: string): StockDecision {
  return {
    kind: 'refused',
    reason,
    ...(field === undefined ? {} : { field }),
    ...(detail === undefined ? {} : { detail }),
  };
}

function nullable(value: string | undefined): number | null {
  return value === undefined || value === '' ? null : Number(value);
}

/** The event view the script answers (`V created name cap maxPerBuyer`, then 8 fields a type). */
function eventFrom(eventId: string, answer: Answer): EventRecord {
  const types: EventRecord['types'] = [];
  for (let at = 5; at + 7 < answer.length; at += 8) {
    types.push({
      id: answer[at]!,
      name: answer[at + 1]!,
      capacity: Number(answer[at + 2]),
      maxPerOrder: nullable(answer[at + 3]),
      maxPerBuyer: nullable(answer[at + 4]),
      sold: Number(answer[at + 5]),
      held: Number(answer[at + 6]),
      issued: Number(answer[at + 7]),
    });
  }
  return { id: eventId, name: answer[2]!, capacity: nullable(answer[3]), maxPerBuyer: nullable(answer[4]), types };
}

/** A stored hold or order: its space-separated tokens, the id after its status, and its buyer. */
function splitRecord(stored: string): { tokens: string[]; status: string; ref: string | null; buyer: string | null } {
  const cut = stored.indexOf('\n');
  const tokens = (cut < 0 ? stored : stored.slice(0, cut)).split(' ');
  const [status, ref] = tokens[0]!.split(':') as [string, string | undefined];
  return { tokens, status, ref: ref ?? null, buyer: cut < 0 ? null : stored.slice(cut + 1) };
}

const ORDER_STATUS: Record<string, OrderStatus> = { c: 'confirmed', x: 'cancelled' };
const HOLD_STATUS: Record<string, HoldStatus> = { h: 'held', c: 'confirmed', r: 'released', e: 'expired' };

/** An order as `{tag}:orders` keeps it (see the key layout). */
function orderFrom(id: string, eventId: string, stored: string): OrderRecord {
  const { tokens, status, ref, buyer } = splitRecord(stored);
  const items: OrderRecord['items'] = [];
  for (let at = 2; at + 2 < tokens.length; at += 3) {
    const qty = Number(tokens[at + 1]);
    const first = Number(tokens[at + 2]);
    items.push({ typeId: tokens[at]!, qty, first, last: first + qty - 1 });
  }
  return { id, eventId, items, buyer, createdAt: Number(tokens[1]), status: ORDER_STATUS[status]!, holdId: ref };
}

/** A hold as `{tag}:holds` keeps it (see the key layout). */
function holdFrom(id: string, eventId: string, stored: string): HoldRecord {
  const { tokens, status, ref, buyer } = splitRecord(stored);
  const items: HoldRecord['items'] = [];
  for (let at = 3; at + 1 < tokens.length; at += 2) items.push({ typeId: tokens[at]!, qty: Number(tokens[at + 1]) });
  return {
    id,
    eventId,
    items,
    buyer,
    status: HOLD_STATUS[status]!,
    createdAt: Number(tokens[1]),
    expiresAt: Number(tokens[2]),
    orderId: ref,
  };
}

/**
 * A command's decision from the script's answer. Refusals get the rules'
 * details, worded here from what the script answered (counts, limits).
 */
function decisionOf(command: EventCommand, eventId: string, answer: Answer): StockDecision {
  const [tag, ...fields] = answer;
  switch (tag) {
    case '!':
      return refusalOf(command, fields);
    case 'V':
      if (command.kind === 'get-event' || command.kind === 'put-event') {
        return { kind: 'event', event: eventFrom(eventId, answer), created: fields[0] === '1' };
      }
      break;
    case 'L':
    case 'A': {
      const level = { remaining: Number(fields[0]), sold: Number(fields[1]) };
      return tag === 'L' ? { kind: 'level', level } : { kind: 'adjusted', level };
    }
    case 'S':
    case 'R':
      if (command.kind === 'reserve') {
        return { kind: 'reserved', outcome: reserveOutcomeOf(fields[0]!, command), replayed: tag === 'R' };
      }
      if (tag === 'R' && fields[0]!.startsWith('insufficient ')) {
        const items = JSON.parse(fields[0]!.slice('insufficient '.length)) as Shortfall[];
        return { kind: 'insufficient', items, replayed: true };
      }
      break;
    case 'I':
      if (command.kind === 'purchase' || command.kind === 'hold') {
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
      break;
    case 'O':
      return { kind: 'order', order: orderFrom(fields[1]!, eventId, fields[2]!), replayed: fields[0] === '1' };
    case 'H':
      return { kind: 'hold', hold: holdFrom(fields[1]!, eventId, fields[2]!), replayed: fields[0] === '1' };
    case 'Y':
      throw new Error(`an idempotency record or hold names ${fields[0]}, which the store does not hold`);
  }
  throw new Error(`the batch script answered ${JSON.stringify(answer)} to ${command.kind}`);
}

/** A refusal with the field and detail the rules give, from the reason and fields the script answered. */
function refusalOf(command: EventCommand, [reason, ...fields]: string[]): StockDecision {
  const items = command.kind === 'purchase' || command.kind === 'hold' ? command.items : undefined;
  const item = items?.[Number(fields[0])];
  switch (reason as RefusalReason) {
    case 'unknown-ticket-type':
      if (!item) return refused('unknown-ticket-type');
      return refused(
        'unknown-ticket-type',
        `items.${fields[0]}.ticketType`,
        `event ${eventOf(command)} has no ticket type ${item.typeId}`,
      );
    case 'duplicate-ticket-type':
      return refused(
        'duplicate-ticket-type',
        `items.${fields[0]}.ticketType`,
        `ticket type ${item?.typeId} is listed twice; ask for its whole qty in one item`,
      );
    case 'over-max-per-order':
      return refused(
        'over-max-per-order',
        `items.${fields[0]}.qty`,
        `at most ${fields[1]} tickets of type ${item?.typeId} per order`,
      );
    case 'buyer-required':
      return items
        ? refused('buyer-required', 'buyer', 'this event limits tickets per buyer: name the buyer')
        : refused('buyer-required', 'buyer');
    case 'buyer-limit-reached': {
      const buyer = command.kind === 'purchase' || command.kind === 'hold' ? command.buyer : null;
      return fields[0] === ''
        ? refused(
            'buyer-limit-reached',
            'items',
            `a buyer may have at most ${fields[1]} tickets of this event; ${buyer} has ${fields[2]}`,
          )
        : refused(
            'buyer-limit-reached',
            `items.${fields[0]}.qty`,
            `a buyer may have at most ${fields[1]} tickets of type ${item?.typeId}; ${buyer} has ${fields[2]}`,
          );
    }
    case 'capacity-below-sold':
      return capacityRefusal(command, fields);
    case 'ticket-type-in-use':
      return refused(
        'ticket-type-in-use',
        'ticketTypes',
        `ticket type ${fields[0]} has sold or held tickets and cannot be removed; set its capacity to what it sold instead`,
      );
    default:
      return refused(reason as RefusalReason);
  }
}

function capacityRefusal(command: EventCommand, fields: string[]): StockDecision {
  if (command.kind !== 'put-event') {
    return refused('capacity-below-sold', 'qty', 'The change would leave the stock below zero');
  }
  if (fields[0] === '') {
    return refused(
      'capacity-below-sold',
      'capacity',
      `the event has ${fields[1]} tickets sold or held; its capacity cannot be ${command.definition.capacity}`,
    );
  }
  const type = command.definition.ticketTypes[Number(fields[0])]!;
  return refused(
    'capacity-below-sold',
    `ticketTypes.${fields[0]}.capacity`,
    `ticket type ${type.id} has ${fields[1]} tickets sold and ${fields[2]} held; its capacity cannot be ${type.capacity}`,
  );
}
