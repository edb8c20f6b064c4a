# ticket-system tasks. Run with `npx just <recipe>` (just comes from the rust-just devDependency).

export PATH := justfile_directory() + "/node_modules/.bin:" + env_var('PATH')

# List the recipes
default:
    @just --list

# The monolith with reload on http://localhost:8000
dev:
    ENVIRONMENT=development MODE=monolith tsx watch src/main.ts

# Vacancy (8001) and ticket (8002) as two processes with reload; Ctrl-C stops both
dev-micro:
    #!/usr/bin/env bash
    set -euo pipefail
    trap 'kill 0' EXIT
    ENVIRONMENT=development MODE=vacancy DATA_DIR="${DATA_DIR:-./data/vacancy}" tsx watch src/main.ts &
    ENVIRONMENT=development MODE=ticket VACANCY_URL="${VACANCY_URL:-http://127.0.0.1:8001}" tsx watch src/main.ts &
    wait

# N vacancy replicas (8101..) sharing one stock in Redis, and a ticket service on 8002 in front of them
replicas n="3":
    #!/usr/bin/env bash
    set -euo pipefail
    trap 'kill 0' EXIT
    redis_url="${REDIS_URL:-redis://127.0.0.1:6379}"
    redis-cli -u "$redis_url" ping >/dev/null || { echo "no Redis answers at $redis_url (set REDIS_URL)"; exit 1; }
    just build
    urls=()
    for i in $(seq 1 {{n}}); do
        port=$((8100 + i))
        ENVIRONMENT=development MODE=vacancy STOCK_STORE=redis REDIS_URL="$redis_url" PORT=$port \
            SERVICE_NAME="vacancy-$i" node dist/main.js &
        urls+=("http://127.0.0.1:$port")
    done
    ENVIRONMENT=development MODE=ticket VACANCY_URL="$(IFS=,; echo "${urls[*]}")" node dist/main.js &
    wait

# The whole test suite (builds the bundle first)
test:
    npm test

# Bundle src/ into dist/main.js with tsup
build:
    tsup

# Run the built bundle in any mode: just start vacancy
start mode="monolith": build
    MODE={{mode}} node dist/main.js

# ESLint over the project
lint:
    eslint .

# TypeScript type check, no output
typecheck:
    tsc --noEmit
