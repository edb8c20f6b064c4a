/* global __ENV */
/**
 * The 1.0.0 stress test: virtual users ramp up to 200, each buying tickets and
 * checking availability in turn; fewer than 1% of requests may fail. Once the
 * stock is sold out, purchases are still 200 answers ("Insufficient inventory"),
 * so a failure here is a real error, not an empty stock.
 *
 *   k6 run bench/k6/stress.js
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

const purchaseSuccess = new Counter('purchase_success');

export const options = {
  scenarios: {
    stress: {
      executor: 'ramping-vus',
      startVUs: 0,
      stages: [
        { duration: '30s', target: 50 },
        { duration: '1m', target: 100 },
        { duration: '1m', target: 200 },
        { duration: '2m', target: 200 },
        { duration: '30s', target: 0 },
      ],
      gracefulRampDown: '10s',
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    http_req_duration: ['p(99)<2000'],
  },
};

export default function () {
  const purchase = http.post(`${BASE_URL}/api/v1/purchase`, JSON.stringify({ qty: QTY }), {
    headers: JSON_HEADERS,
    tags: { name: 'purchase' },
  });
  check(purchase, { 'purchase: status 200': (r) => r.status === 200 });
  if (purchase.status === 200 && purchase.json('success') === true) purchaseSuccess.add(1);

  const available = http.get(`${VACANCY_URL}/api/v1/available`, { tags: { name: 'available' } });
  check(available, { 'available: status 200': (r) => r.status === 200 });
  sleep(0.2);
}
