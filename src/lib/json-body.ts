import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { ProblemError } from './problem.ts';

// The same media types the route validator parses as JSON (application/json, application/*+json,
// with name=value parameters); anything it would refuse is answered 415 here, before it gets there.
const JSON_MEDIA_TYPE = /^application\/([a-z-.]+\+)?json(;\s*[a-zA-Z0-9-]+=([^;]+))*$/i;

/**
 * Guards a route that takes a JSON body: anything but a JSON media type is a
 * 415, and a body larger than `maxBytes` is a 413, both before the body is
 * parsed. Malformed JSON and schema errors are left to the route's validator.
 *
 * @example
 * createRoute({ method: 'post', path: '/reserve', middleware: jsonBody(1024 * 1024), ... })
 */
export function jsonBody(maxBytes: number): MiddlewareHandler[] {
  const requireJson: MiddlewareHandler = async (c, next) => {
    const contentType = c.req.header('content-type');
    if (!contentType || !JSON_MEDIA_TYPE.test(contentType)) {
      throw new ProblemError(
        'unsupportedMediaType',
        contentType
          ? `Content-Type ${contentType} is not supported; send application/json`
          : 'The request has no Content-Type; send application/json',
        { headers: { 'Accept-Post': 'application/json' } },
      );
    }
    await next();
  };
  const tooLarge = () => {
    throw new ProblemError('payloadTooLarge', `The request body exceeds the limit of ${maxBytes} bytes`);
  };
  const streamingLimit = bodyLimit({ maxSize: maxBytes, onError: tooLarge });
  // A declared Content-Length is checked from the header alone. Only a body of unknown length
  // goes through bodyLimit, which counts it as it streams: touching the raw body stream makes
  // Node's adapter build a full web Request, a large share of a small request's cost.
  const limit: MiddlewareHandler = async (c, next) => {
    const length = c.req.header('content-length');
    if (length !== undefined && c.req.header('transfer-encoding') === undefined) {
      if (Number(length) > maxBytes) tooLarge();
      await next();
      return;
    }
    await streamingLimit(c, next);
  };
  return [requireJson, limit];
}
