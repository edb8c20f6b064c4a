/* global __ENV */
/**
 * Open-model load: a constant arrival rate of purchases and availability
 * checks, whatever the latency (closed-loop tools such as autocannon slow
 * down with the server; this does not, so queues show as latency and as
 * dropped iterations). RATE (default 200) iterations a second for DURATION
 * (default 2m), each one purchase or one availability check.
 *
 *   k6 run -e RATE=500 bench/k6/arrival-rate.js
 *
 * VU_BASE_URL: the ticket service (default http://localhost:8002)
 * VU_VACANCY_URL: the vacancy service (default http://localhost:8001)
 * QTY: tickets per purchase (default 1)
 */
import http from 'k6/http';
import { check } from 'k6';
import { Counter } from 'k6/metrics';

const BASE_URL = __ENV.VU_BASE_URL || 'http://localhost:8002';
const VACANCY_URL = __ENV.VU_VACANCY_URL || 'http://localhost:8001';
const QTY = parseInt(__ENV.QTY || '1', 10);
const RATE = parseInt(__ENV.RATE || '200', 10);
const DURATION = __ENV.DURATION || '2m';

const JSON_HEADERS = { 'Content-Type': 'application/json' };

const purchaseSuccess = new Counter('purchase_success');

export const options = {
  scenarios: {
    purchases: {
      executor: 'constant-arrival-rate',
      rate: Math.max(1, Math.ceil(RATE / 2)),
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: 50,
      maxVUs: 500,
      exec: 'purchaseTickets',
    },
    availability: {
      executor: 'constant-arrival-rate',
      rate: Math.max(1, Math.floor(RATE / 2)),
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: 50,
      maxVUs: 500,
      exec: 'checkAvailability',
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    http_req_duration: ['p(95)<500'],
    dropped_iterations: ['count<100'],
  },
};

export function purchaseTickets() {
  const res = http.post(`${BASE_URL}/api/v1/purchase`, JSON.stringify({ qty: QTY }), {
    headers: JSON_HEADERS,
    tags: { name: 'purchase' },
  });
  check(res, { 'purchase: status 200': (r) => r.status === 200 });
  if (res.status === 200 && res.json('success') === true) purchaseSuccess.add(1);
}

export function checkAvailability() {
  const res = http.get(`${VACANCY_URL}/api/v1/available`, { tags: { name: 'available' } });
  check(res, { 'available: status 200': (r) => r.status === 200 });
}
