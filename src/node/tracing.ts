/**
 * Optional OpenTelemetry tracing for the Node entry, configured only by the
 * standard OTEL_* variables: off unless an OTLP endpoint is set. When on,
 * spans go over OTLP/HTTP (JSON) through a batch processor; the W3C
 * traceparent is read from incoming requests (the app's server spans) and
 * added to the calls the ticket service makes to vacancy (the undici
 * instrumentation, which sees the pooled fetch through diagnostics_channel).
 *
 * The SDK is loaded only when tracing is on: it costs ~200 ms and ~20 MB at
 * start-up that a process without tracing should not pay.
 */
import process from 'node:process';
import type { MiddlewareHandler } from 'hono';
import type { Config } from '../config.ts';
import type { Logger } from '../lib/logger.ts';
import { VERSION } from '../app.ts';

/** A running tracer provider. */
export interface Tracing {
  /** The resource's service.name. */
  readonly serviceName: string;
  /** Where spans are sent (without any credentials in the URL). */
  readonly endpoint: string;
  /** The app's server span per request (@hono/otel), for createApp's `traceRequests`. */
  readonly requestMiddleware: MiddlewareHandler;
  /** Exports the spans still buffered and stops; never rejects, gives up after {@link FLUSH_LIMIT_MS}. */
  shutdown(): Promise<void>;
}

/** How long shutting down may wait for the last spans to reach the collector. */
export const FLUSH_LIMIT_MS = 3_000;

type Env = Record<string, string | undefined>;

/** An OTEL_* value as the SDK reads it: blank counts as unset. */
function envValue(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

/**
 * Whether the OTEL_* variables ask for tracing: an OTLP endpoint
 * (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set,
 * OTEL_SDK_DISABLED is not true and OTEL_TRACES_EXPORTER is not none.
 */
export function tracingConfigured(env: Env = process.env): boolean {
  if (envValue(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return false;
  if (envValue(env, 'OTEL_TRACES_EXPORTER')?.toLowerCase() === 'none') return false;
  return (
    envValue(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') !== undefined ||
    envValue(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') !== undefined
  );
}

/** The URL the exporter posts to, as it derives it from the environment (credentials left out). */
export function tracesEndpoint(env: Env = process.env): string {
  const specific = envValue(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const general = envValue(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  const raw = specific ?? (general === undefined ? undefined : `${general.replace(/\/+$/, '')}/v1/traces`);
  if (raw === undefined || !URL.canParse(raw)) return 'http://localhost:4318/v1/traces';
  const url = new URL(raw);
  url.username = '';
  url.password = '';
  return url.toString();
}

/**
 * Starts tracing if the OTEL_* variables ask for it (see
 * {@link tracingConfigured}), else does nothing and resolves undefined.
 * Call it before the first outgoing request. The exporter, the batch
 * processor, the sampler and the resource read their own OTEL_* variables.
 */
export async function startTracing(config: Config, logger: Logger): Promise<Tracing | undefined> {
  const env = process.env;
  if (!tracingConfigured(env)) return undefined;

  const [
    { diag, DiagLogLevel },
    sdk,
    { OTLPTraceExporter },
    { registerInstrumentations },
    { UndiciInstrumentation },
    resources,
    honoOtel,
  ] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/instrumentation'),
    import('@opentelemetry/instrumentation-undici'),
    import('@opentelemetry/resources'),
    import('@hono/otel'),
  ]);

  // The SDK's own complaints (an unreachable collector, a bad OTEL_* value) go to our log, at warn.
  const report = (message: string, ...args: unknown[]) =>
    logger.warn(
      args.length > 0 ? { otel: args.map((arg) => (arg instanceof Error ? arg.message : arg)) } : {},
      `opentelemetry: ${errorMessage(message)}`,
    );
  diag.setLogger(
    { error: report, warn: report, info: () => {}, debug: () => {}, verbose: () => {} },
    { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
  );

  const exporters = (envValue(env, 'OTEL_TRACES_EXPORTER') ?? 'otlp')
    .toLowerCase()
    .split(',')
    .map((name) => name.trim());
  if (exporters.some((name) => name !== 'otlp')) {
    logger.warn(
      { OTEL_TRACES_EXPORTER: env.OTEL_TRACES_EXPORTER },
      'tracing exports over OTLP only; other exporters are ignored',
    );
  }
  const protocol = envValue(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? envValue(env, 'OTEL_EXPORTER_OTLP_PROTOCOL');
  if (protocol !== undefined && protocol !== 'http/json') {
    logger.warn({ protocol }, 'tracing sends OTLP over HTTP as JSON (http/json) whatever the protocol setting says');
  }

  // service.name: OTEL_SERVICE_NAME, else service.name in OTEL_RESOURCE_ATTRIBUTES, else SERVICE_NAME
  // (by default ticket-system-<mode>, the name the logs carry too).
  const resource = resources
    .defaultResource()
    .merge(resources.resourceFromAttributes({ 'service.name': config.SERVICE_NAME, 'service.version': VERSION }))
    .merge(resources.detectResources({ detectors: [resources.envDetector] }));
  const serviceName = String(resource.attributes['service.name']);
  const provider = new sdk.NodeTracerProvider({
    resource,
    // A batch span links to every purchase it carries: up to VACANCY_BATCH_MAX links, more than the
    // default limit of 128, unless OTEL_SPAN_LINK_COUNT_LIMIT says otherwise.
    ...(envValue(env, 'OTEL_SPAN_LINK_COUNT_LIMIT') === undefined
      ? { spanLimits: { linkCountLimit: Math.max(128, config.VACANCY_BATCH_MAX) } }
      : {}),
    spanProcessors: [new sdk.BatchSpanProcessor(new OTLPTraceExporter())],
  });
  // W3C trace context (and baggage) propagation, AsyncLocalStorage context.
  provider.register();
  const unregister = registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [new UndiciInstrumentation()],
  });

  const endpoint = tracesEndpoint(env);
  logger.info({ endpoint, serviceName }, `tracing on: sending spans to ${endpoint} as ${serviceName}`);

  let stopped: Promise<void> | undefined;
  return {
    serviceName,
    endpoint,
    requestMiddleware: honoOtel.httpInstrumentationMiddleware(),
    shutdown() {
      stopped ??= (async () => {
        unregister();
        let timer: ReturnType<typeof setTimeout> | undefined;
        const limit = new Promise<'late'>((resolve) => {
          timer = setTimeout(() => resolve('late'), FLUSH_LIMIT_MS);
          timer.unref();
        });
        try {
          const outcome = await Promise.race([provider.shutdown().then(() => 'done' as const), limit]);
          if (outcome === 'late')
            logger.warn({ endpoint, limitMs: FLUSH_LIMIT_MS }, 'tracing: gave up sending the last spans');
        } catch (error) {
          logger.warn({ err: error, endpoint }, 'tracing: could not send the last spans');
        } finally {
          clearTimeout(timer);
        }
      })();
      return stopped;
    },
  };
}

/** A failed export is reported as the error serialized to JSON: its message is what an operator needs. */
function errorMessage(message: string): string {
  if (!message.startsWith('{')) return message;
  try {
    const parsed: unknown = JSON.parse(message);
    return typeof parsed === 'object' &&
      parsed !== null &&
      typeof (parsed as { message?: unknown }).message === 'string'
      ? (parsed as { message: string }).message
      : message;
  } catch {
    return message;
  }
}
