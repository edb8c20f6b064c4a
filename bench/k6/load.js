/* global __ENV */
/**
 * The 1.0.0 load test: 50 virtual users check availability and 50 buy
 * tickets, side by side, for one minute.
 *
 *   k6 run bench/k6/load.js
 *   k6 run -e VU_BASE_URL=http://localhost:8000 -e VU_VACANCY_URL=http://localhost:8000 bench/k6/load.js   # the monolith
 *
 * VU_BASE_URL: the ticket service (default http://localhost:8002)
 * VU_VACANCY_URL: the vacancy service (default http://localhost:8001)
 * QTY: tickets per purchase (default 1)
 */
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter } from 'k6/metrics';

const BASE_URL = __ENV.VU_BASE_URL || 'http://localhost:8002';
const VACANCY_URL = __ENV.VU_VACANCY_URL || 'http://localhost:8001';
const QTY = parseInt(__ENV.QTY || '1', 10);

const JSON_HEADERS = { 'Content-Type': 'application/json' };

/** Purchases answered with success: true (an insufficient-stock answer is a 200 too, but not a sale). */
const purchaseSuccess = new Counter('purchase_success');

export const options = {
  scenarios: {
    availability: {
      executor: 'constant-vus',
      vus: 50,
      duration: '1m',
      exec: 'checkAvailability',
    },
    purchase: {
      executor: 'constant-vus',
      vus: 50,
      duration: '1m',
      exec: 'purchaseTickets',
    },
  },
  thresholds: {
    http_req_duration: ['p(95)<500'],
    http_req_failed: ['rate<0.01'],
    purchase_success: ['count>0'],
  },
};

export function checkAvailability() {
  const res = http.get(`${VACANCY_URL}/api/v1/available`, { tags: { name: 'available' } });
  check(res, {
    'available: status 200': (r) => r.status === 200,
    'available: qty is a number': (r) => typeof r.json('qty') === 'number',
  });
  sleep(0.5);
}

export function purchaseTickets() {
  const res = http.post(`${BASE_URL}/api/v1/purchase`, JSON.stringify({ qty: QTY }), {
    headers: JSON_HEADERS,
    tags: { name: 'purchase' },
  });
  const ok = check(res, {
    'purchase: status 200': (r) => r.status === 200,
    'purchase: success is a boolean': (r) => typeof r.json('success') === 'boolean',
    'purchase: remaining is a number': (r) => typeof r.json('remaining') === 'number',
  });
  if (ok && res.json('success') === true) purchaseSuccess.add(1);
  sleep(0.5);
}
