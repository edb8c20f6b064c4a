import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'bench/results/', 'data/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        URL: 'readonly',
        fetch: 'readonly',
        Response: 'readonly',
        Request: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        performance: 'readonly',
        queueMicrotask: 'readonly',
        structuredClone: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        crypto: 'readonly',
        Buffer: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  ...boundaries(),
);

/**
 * Which folder may import which. Node built-ins only at the edges (the core runs on Node, Deno and
 * Bun alike); src/stock is the shared core both services build on; ticket and vacancy never import
 * each other (the VacancyClient port in src/stock is their only seam); lib is below everything but
 * stock. Cycles, type-only ones included, are checked by madge (npm run lint).
 */
function boundaries() {
  const nodeOnly = { group: ['node:*'], message: 'Node-only code belongs in src/main.ts or src/node/.' };
  const folder = (name, message) => ({ group: [`../${name}/*`, `../../${name}/*`], message });
  const rules = {
    'src/stock/**/*.ts': [
      { group: ['../*', '../**'], message: 'src/stock is the core: it imports nothing of the rest.' },
    ],
    'src/lib/**/*.ts': [
      folder('vacancy', 'src/lib serves every service; it imports from src/stock at most.'),
      folder('ticket', 'src/lib serves every service; it imports from src/stock at most.'),
      folder('system', 'src/lib serves every service; it imports from src/stock at most.'),
    ],
    'src/ticket/**/*.ts': [folder('vacancy', 'ticket reaches the stock through the VacancyClient port in src/stock.')],
    'src/vacancy/**/*.ts': [folder('ticket', 'vacancy knows nothing of ticket; shared types live in src/stock.')],
    'src/dashboard/**/*.{ts,tsx}': [
      folder('ticket', 'the dashboard shows the stock this process owns, never through ticket.'),
    ],
  };
  return [
    {
      files: ['src/**/*.ts', 'src/**/*.tsx'],
      ignores: ['src/main.ts', 'src/node/**', 'src/**/*.test.ts'],
      rules: { 'no-restricted-imports': ['error', { patterns: [nodeOnly] }] },
    },
    ...Object.entries(rules).map(([files, patterns]) => ({
      files: [files],
      ignores: ['src/**/*.test.ts'],
      rules: { 'no-restricted-imports': ['error', { patterns: [nodeOnly, ...patterns] }] },
    })),
  ];
}
