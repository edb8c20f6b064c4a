import type { z } from '@hono/zod-openapi';
import { jsonResponse } from '../lib/api-headers.ts';
import { requireBearerToken } from '../lib/bearer-token.ts';
import { createRouter } from '../lib/create-router.ts';
import { IDEMPOTENT_REPLAYED_HEADER, InFlightKeys } from '../lib/idempotency.ts';
import { keyedJsonReader, unkeyedJsonReader } from '../lib/json-body.ts';
import { ProblemError, problemTypes } from '../lib/problem.ts';
import { QtyRequestSchema, ReserveBatchRequestSchema } from '../lib/schemas.ts';
import { toProblemError } from '../domain-problems.ts';
import type { Metrics } from '../lib/metrics.ts';
import { INSUFFICIENT_INVENTORY, type ReserveResult } from '../stock/model.ts';
import type { StockActor } from './stock-actor.ts';
import { availableRoute, reserveBatchRoute, reserveRoute } from './vacancy.routes.ts';
import { commandBatchRoute } from '../lib/event-routes.ts';
import { CommandBatchRequestSchema } from '../lib/event-schemas.ts';

import { InsufficientInventoryError } from '../stock/errors.ts';
import { holdView, orderView } from '../stock/views.ts';

/** One command of POST /api/v1/batch. */
type BatchCommand = z.output<typeof CommandBatchRequestSchema>['commands'][number];

export interface VacancyRouterOptions {
  actor: StockActor;
  bodyLimitBytes: number;
  /** When set, POST /api/v1/reserve (a service-to-service call) needs `Authorization: Bearer <token>`. */
  internalToken?: string;
  /** Counts reserves by outcome. */
  metrics: Metrics;
}

/**
 * The vacancy service's API: the stock itself, owned by the actor.
 *
 * @example
 * app.route('/', createVacancyRouter({ actor, bodyLimitBytes: 1024 * 1024 }));
 */
export function createVacancyRouter({ actor, bodyLimitBytes, internalToken, metrics }: VacancyRouterOptions) {
  const router = createRouter();
  const inFlight = new InFlightKeys();
  if (internalToken) {
    const requireInternalToken = requireBearerToken(internalToken, 'internal');
    router.post(reserveRoute.path, requireInternalToken);
    router.post(reserveBatchRoute.path, requireInternalToken);
    router.post(commandBatchRoute.path, requireInternalToken);
  }

  router.openAPIRegistry.registerPath(availableRoute);
  router.get(availableRoute.path, async (c) => jsonResponse(c, { qty: await actor.available() }));

  // The hot path: described by reserveRoute, validated in one step by the reader.
  const readReserve = keyedJsonReader(QtyRequestSchema, bodyLimitBytes);
  router.openAPIRegistry.registerPath(reserveRoute);
  router.post(reserveRoute.path, async (c) => {
    let qty: number;
    let result: ReserveResult;
    try {
      const { body, idempotencyKey: key } = await readReserve(c);
      qty = body.qty;
      // Reserve keys live apart from the purchase keys the monolith records in the same actor.
      result = await inFlight.run(key, () =>
        actor.reserve(body.qty, { idempotencyKey: key === undefined ? undefined : `reserve:${key}` }),
      );
    } catch (error) {
      metrics.reservation('rejected');
      throw error;
    }
    metrics.reservation(reservationOutcome(result));
    return jsonResponse(
      c,
      reserveAnswer(qty, result),
      200,
      result.replayed ? { [IDEMPOTENT_REPLAYED_HEADER]: 'true' } : undefined,
    );
  });

  // Each reserve is decided as the single route decides it (same keys, same in-flight guard), all
  // in the actor's next batch; a refusal or a store failure is that reserve's result, not the call's.
  const reserveInBatch = (qty: number, key: string) =>
    inFlight
      .run(key, () => actor.reserve(qty, { idempotencyKey: `reserve:${key}` }))
      .then(
        (result) => {
          metrics.reservation(reservationOutcome(result));
          return batchDecision(qty, result);
        },
        (error: unknown) => {
          metrics.reservation('rejected');
          return batchItemProblem(error);
        },
      );
  const readBatch = unkeyedJsonReader(ReserveBatchRequestSchema, bodyLimitBytes);
  router.openAPIRegistry.registerPath(reserveBatchRoute);
  router.post(reserveBatchRoute.path, async (c) => {
    const { reserves } = await readBatch(c);
    c.set('batchRequestIds', requestIdsOf(reserves));
    const results = await Promise.all(reserves.map(({ qty, key }) => reserveInBatch(qty, key)));
    return jsonResponse(c, { results });
  });

  /** One command of a batch, as its own call would decide it. */
  const decideCommand = async (command: BatchCommand) => {
    const items = (lines: Array<{ ticketType: string; qty: number }>) =>
      lines.map((line) => ({ typeId: line.ticketType, qty: line.qty }));
    switch (command.op) {
      case 'purchase': {
        const { eventId, buyer, key } = command;
        const { order, replayed } = await inFlight.run(`${eventId} ${key}`, () =>
          actor.purchase(eventId, items(command.items), { buyer: buyer ?? null, idempotencyKey: key }),
        );
        return { status: 201, order: orderView(order), replayed };
      }
      case 'hold': {
        const { eventId, buyer, key, ttlSeconds } = command;
        const { hold, replayed } = await inFlight.run(`${eventId} ${key}`, () =>
          actor.hold(eventId, items(command.items), {
            buyer: buyer ?? null,
            ttlMs: ttlSeconds * 1000,
            idempotencyKey: key,
          }),
        );
        return { status: 201, hold: holdView(hold), replayed };
      }
      case 'confirm': {
        const { order, replayed } = await actor.confirm(command.holdId);
        return { status: replayed ? 200 : 201, order: orderView(order), replayed };
      }
      case 'release':
        return { status: 200, hold: holdView(await actor.release(command.holdId)), replayed: false };
    }
  };

  // Purchases and holds the ticket service coalesced: each decided as its own call would be, under its key.
  const commandInBatch = (command: BatchCommand) =>
    decideCommand(command).catch((error: unknown) => {
      const problem = batchItemProblem(error);
      return error instanceof InsufficientInventoryError && error.replayed ? { ...problem, replayed: true } : problem;
    });
  const readCommands = unkeyedJsonReader(CommandBatchRequestSchema, bodyLimitBytes);
  router.openAPIRegistry.registerPath(commandBatchRoute);
  router.post(commandBatchRoute.path, async (c) => {
    const { commands } = await readCommands(c);
    c.set('batchRequestIds', requestIdsOf(commands));
    return jsonResponse(c, { results: await Promise.all(commands.map(commandInBatch)) });
  });

  return router;
}

function reservationOutcome(result: ReserveResult) {
  return result.replayed ? 'replayed' : result.success ? 'sold' : 'insufficient';
}

function reserveAnswer(qty: number, result: ReserveResult) {
  return {
    success: result.success,
    remaining: result.remaining,
    message: result.success ? `Reserved ${qty} ticket${qty === 1 ? '' : 's'}` : INSUFFICIENT_INVENTORY,
    ...(result.success ? { reservationId: result.reservationId, tickets: result.tickets } : {}),
  };
}

/** One reserve of a batch, decided: the single reserve's answer, plus whether it was replayed. */
function batchDecision(qty: number, result: ReserveResult) {
  return { status: 200, ...reserveAnswer(qty, result), replayed: result.replayed };
}

/** The request ids a batch carries, for the request log. */
function requestIdsOf(items: ReadonlyArray<{ requestId?: string | undefined }>): string[] {
  const ids: string[] = [];
  for (const { requestId } of items) if (requestId !== undefined) ids.push(requestId);
  return ids;
}

/** The problem a single reserve would have answered; anything unexpected fails the whole call. */
function batchItemProblem(error: unknown) {
  const problem = error instanceof Error ? toProblemError(error) : error;
  if (!(problem instanceof ProblemError)) throw error;
  const { status, type, title } = problemTypes[problem.kind];
  return { status, type, title, detail: problem.message, ...problem.extensions };
}
