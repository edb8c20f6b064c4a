import { describe, expect, it } from 'vitest';
import { RecentRequests, SalesSeries } from './recent.ts';

describe('RecentRequests', () => {
  it('reports requests per second and a p99 within 9 % over the last minute', () => {
    const recent = new RecentRequests();
    const start = 1_000_000;
    // 60 s of 10 requests a second: 98 % at 2 ms, 2 % at 40 ms.
    for (let second = 0; second < 60; second++) {
      for (let i = 0; i < 10; i++) {
        const slow = (second * 10 + i) % 50 === 0;
        recent.observe(slow ? 0.04 : 0.002, start + second * 1000 + i);
      }
    }
    const summary = recent.summary(start + 59_999);
    expect(summary.count).toBe(600);
    expect(summary.seconds).toBe(60);
    expect(summary.perSecond).toBeCloseTo(10, 5);
    expect(summary.p99Ms).toBeGreaterThanOrEqual(40);
    expect(summary.p99Ms).toBeLessThan(40 * 1.091);
  });

  it('forgets what is older than the window, and rates a young window over its own length', () => {
    const recent = new RecentRequests(60);
    recent.observe(0.001, 5_000);
    recent.observe(0.001, 5_500);
    recent.observe(0.001, 9_000);
    expect(recent.summary(9_100)).toMatchObject({ count: 3, seconds: 5, perSecond: 3 / 5 });
    expect(recent.summary(9_000 + 60_000)).toMatchObject({ count: 0, p99Ms: null });
    // A slot reused a lap later starts from nothing.
    recent.observe(0.5, 5_000 + 60_000);
    expect(recent.summary(5_000 + 60_000)).toMatchObject({ count: 2 });
    expect(recent.summary(5_000 + 60_000).p99Ms).toBeGreaterThanOrEqual(500);
  });

  it('puts sub-microsecond and very slow answers in the end buckets', () => {
    const recent = new RecentRequests();
    recent.observe(0, 1);
    expect(recent.summary(1).p99Ms).toBe(0.001);
    recent.observe(3600, 2);
    expect(recent.summary(2).p99Ms).toBeCloseTo(2 ** 25 / 1000, 3);
  });
});

describe('SalesSeries', () => {
  it('counts tickets per 10 s step over 5 minutes, over all events and per event', () => {
    const clock = { now: 1_700_000_000_000 };
    const sales = new SalesSeries({ now: () => clock.now });
    sales.add('gala', 2);
    sales.add('opera', 1);
    clock.now += 10_000;
    sales.add('gala', 5);

    const all = sales.rate();
    expect(all.stepSeconds).toBe(10);
    expect(all.steps).toHaveLength(30);
    expect(all.steps.slice(-2)).toEqual([3, 5]);
    expect(all.lastStepStart).toBe(Math.floor(clock.now / 10_000) * 10_000);
    expect(sales.rate('gala').steps.slice(-2)).toEqual([2, 5]);
    expect(sales.rate('opera').steps.slice(-2)).toEqual([1, 0]);
    expect(sales.rate('nothing').steps.every((n) => n === 0)).toBe(true);

    // Five minutes on, the first step has left the window; an event idle for all of it is forgotten.
    clock.now += 290_000;
    expect(sales.rate().steps.slice(0, 1)).toEqual([5]);
    expect(sales.rate().steps.reduce((a, b) => a + b)).toBe(5);
    expect(sales.trackedEvents).toBe(1);
    clock.now += 10_000;
    expect(sales.rate().steps.every((n) => n === 0)).toBe(true);
    expect(sales.trackedEvents).toBe(0);
  });
});
