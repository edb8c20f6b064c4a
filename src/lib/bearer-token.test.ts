import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { requireBearerToken, secretsEqual } from './bearer-token.ts';

describe('secretsEqual', () => {
  const secret = 'a-secret-of-thirty-two-characters';

  it('accepts only the very same secret', () => {
    expect(secretsEqual(secret, secret)).toBe(true);
    expect(secretsEqual(`${secret}`.slice(0), secret)).toBe(true);
    expect(secretsEqual(secret.replace('a-', 'b-'), secret)).toBe(false);
    expect(secretsEqual(secret.slice(0, -1) + 'S', secret)).toBe(false);
  });

  it('refuses a prefix, an extension and the empty string', () => {
    expect(secretsEqual(secret.slice(0, -1), secret)).toBe(false);
    expect(secretsEqual(`${secret}x`, secret)).toBe(false);
    expect(secretsEqual(`${secret}\u0000`, secret)).toBe(false);
    expect(secretsEqual('', secret)).toBe(false);
    expect(secretsEqual(secret, '')).toBe(false);
  });

  it('compares characters beyond Latin-1 too', () => {
    expect(secretsEqual('pässwörd-ü', 'pässwörd-ü')).toBe(true);
    expect(secretsEqual('pässwörd-ü', 'pässwörd-u')).toBe(false);
  });
});

describe('requireBearerToken', () => {
  const app = new Hono();
  app.onError((error, c) => c.json({ error: error.message }, 401));
  app.use('/admin/*', requireBearerToken('t'.repeat(32), 'admin'));
  app.get('/admin/x', (c) => c.text('in'));

  it('lets the token through and nothing else', async () => {
    const ok = await app.request('/admin/x', { headers: { authorization: `Bearer ${'t'.repeat(32)}` } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe('in');
    for (const authorization of [`Bearer ${'t'.repeat(31)}`, `Bearer ${'t'.repeat(33)}`, 'Basic dDp0', '']) {
      const refused = await app.request('/admin/x', { headers: { authorization } });
      expect(refused.status, authorization).toBe(401);
    }
  });
});
