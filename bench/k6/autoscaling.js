/* global __ENV */
/**
 * The 1.0.0 autoscaling test: a long ramp up to 300 virtual users, a plateau,
 * and a ramp back down, so that the HorizontalPodAutoscalers (CPU 70%) scale
 * the ticket and vacancy deployments out and, after their stabilization
 * window, back in. Watch it with `kubectl get hpa -n ticket-system -w`.
 * Point VU_BASE_URL and VU_VACANCY_URL at the ingress or the services.
 *
 *   k6 run -e VU_BASE_URL=http://ticket.example -e VU_VACANCY_URL=http://vacancy.example bench/k6/autoscaling.js
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
    autoscaling: {
      executor: 'ramping-vus',
      startVUs: 0,
      stages: [
        { duration: '2m', target: 50 },
        { duration: '5m', target: 150 },
        { duration: '5m', target: 300 },
        { duration: '10m', target: 300 },
        { duration: '5m', target: 100 },
        { duration: '5m', target: 20 },
        { duration: '3m', target: 0 },
      ],
      gracefulRampDown: '30s',
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.02'],
    http_req_duration: ['p(95)<1000'],
  },
};

export default function () {
  if (Math.random() < 0.5) {
    const res = http.get(`${VACANCY_URL}/api/v1/available`, { tags: { name: 'available' } });
    check(res, { 'available: status 200': (r) => r.status === 200 });
  } else {
    const res = http.post(`${BASE_URL}/api/v1/purchase`, JSON.stringify({ qty: QTY }), {
      headers: JSON_HEADERS,
      tags: { name: 'purchase' },
    });
    check(res, { 'purchase: status 200': (r) => r.status === 200 });
    if (res.status === 200 && res.json('success') === true) purchaseSuccess.add(1);
  }
  sleep(0.5 + Math.random());
}
