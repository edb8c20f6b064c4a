import { createRoute, z } from '@hono/zod-openapi';
import { MODES } from '../config.ts';
import { problemResponses } from '../lib/schemas.ts';

export const ServiceInfoSchema = z
  .object({
    service: z.string().openapi({ example: 'ticket-system-monolith' }),
    version: z.string().openapi({ example: '0.1.0' }),
    mode: z.enum(MODES),
    docs: z.string().openapi({ example: '/docs' }),
  })
  .openapi('ServiceInfo');

export const HealthSchema = z
  .object({
    status: z.enum(['healthy', 'shutting-down']),
    service: z.enum(['monolith', 'vacancy', 'ticket']),
    details: z.record(z.string(), z.unknown()),
  })
  .openapi('Health');

export const ReadySchema = z.object({ status: z.literal('ready'), detail: z.string() }).openapi('Ready');

export const rootRoute = createRoute({
  method: 'get',
  path: '/',
  tags: ['system'],
  summary: 'What this process is',
  responses: {
    200: {
      description: 'Service name, version and mode',
      content: { 'application/json': { schema: ServiceInfoSchema } },
    },
  },
});

export const healthRoute = createRoute({
  method: 'get',
  path: '/api/v1/health',
  tags: ['system'],
  summary: 'Liveness: the process answers',
  responses: {
    200: {
      description: 'The service and what it depends on',
      content: { 'application/json': { schema: HealthSchema } },
    },
  },
});

export const readyRoute = createRoute({
  method: 'get',
  path: '/api/v1/ready',
  tags: ['system'],
  summary: 'Readiness: the service can sell right now',
  responses: {
    200: { description: 'Ready to take traffic', content: { 'application/json': { schema: ReadySchema } } },
    ...problemResponses('serviceUnavailable'),
  },
});
