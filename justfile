# ticket-system tasks. Run with `npx just <recipe>` (just comes from the rust-just devDependency).

export PATH := justfile_directory() + "/node_modules/.bin:" + env_var('PATH')

# List the recipes
default:
    @just --list

# The monolith on http://localhost:8000, restarted when src/ changes; exits if it cannot start (see src/node/dev-watch.ts)
dev:
    exec env ENVIRONMENT=development MODE=monolith node --import tsx src/node/dev-watch.ts src/main.ts

# Vacancy (8001) and ticket (8002) as two processes, restarted when src/ changes; Ctrl-C, SIGTERM or either one failing to start stops both
dev-micro:
    #!/usr/bin/env bash
    set -euo pipefail
    # However this script ends, stop both services (only our own children) and wait for their graceful shutdown.
    trap 'kill $(jobs -p) 2>/dev/null || true; wait' EXIT
    trap 'exit 143' TERM
    trap 'exit 130' INT
    ENVIRONMENT=development MODE=vacancy DATA_DIR="${DATA_DIR:-./data/vacancy}" node --import tsx src/node/dev-watch.ts src/main.ts &
    ENVIRONMENT=development MODE=ticket VACANCY_URL="${VACANCY_URL:-http://127.0.0.1:8001}" node --import tsx src/node/dev-watch.ts src/main.ts &
    # The first to stop (one that could not start, say) ends the script with its status, and the trap stops the other.
    wait -n

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

# The autocannon benchmark, quick profile (< 2 min); results in bench/results/
bench:
    npm run bench

# One of the k6 scripts in bench/k6 (load, stress, autoscaling, arrival-rate), where k6 is installed
k6 name="load":
    @command -v k6 >/dev/null || { echo "k6 is not installed: https://k6.io/docs/get-started/installation/"; exit 1; }
    k6 run bench/k6/{{name}}.js

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

# ---- Containers and Kubernetes ------------------------------------------------------------------

# The image every compose service and Kubernetes workload runs (MODE chooses the role)
image_name := "ghcr.io/ticket-system/ticket-system:0.1.0"

# Build the image with podman or docker, whichever is installed: just image; just image debug (with a shell)
image target="runtime":
    #!/usr/bin/env bash
    set -euo pipefail
    tag="{{image_name}}"
    [ "{{target}}" = runtime ] || tag="$tag-{{target}}"
    # podman: --format docker keeps the HEALTHCHECK (the OCI image format has no field for it)
    if command -v podman >/dev/null 2>&1; then
        podman build --format docker -f Containerfile --target "{{target}}" -t "$tag" .
    elif command -v docker >/dev/null 2>&1; then
        docker build -f Containerfile --target "{{target}}" -t "$tag" .
    else
        echo "neither podman nor docker is installed" >&2; exit 1
    fi

# What an image adds to its base (the bundle, node_modules, package.json), built first: just image-size; just image-size bun
image-size target="runtime": (image target)
    #!/usr/bin/env bash
    set -euo pipefail
    tag="{{image_name}}"
    [ "{{target}}" = runtime ] || tag="$tag-{{target}}"
    base="$(awk -v target="{{target}}" 'toupper($1) == "FROM" && tolower($3) == "as" && $4 == target { print $2 }' Containerfile)"
    if command -v podman >/dev/null 2>&1; then engine=podman; else engine=docker; fi
    size() { "$engine" image inspect --format '{{{{.Size}}' "$1"; }
    echo "$tag: $(( ($(size "$tag") - $(size "$base")) / 1000 )) kB of application layers above $base ($(( $(size "$base") / 1000000 )) MB)"

# The container tests: the image, a hardened monolith container and compose.yaml's topology, with podman
test-containers:
    vitest run test/deployment-image.test.ts test/deployment-compose.test.ts

# Test scaffolding for a machine that reaches no image registry: local stand-ins for the base images
stand-in-bases *args:
    bash test/support/stand-in-bases/build.sh {{args}}

# Build and start redis, vacancy (8001) and ticket (8002) in the background: just up; just up monolith
up *services:
    #!/usr/bin/env bash
    set -euo pipefail
    if command -v podman >/dev/null 2>&1; then compose=(podman compose); else compose=(docker compose); fi
    "${compose[@]}" up -d --build {{services}}

# Stop and remove the containers (the volumes, and with them the stock, stay; just down -v deletes them)
down *args:
    #!/usr/bin/env bash
    set -euo pipefail
    if command -v podman >/dev/null 2>&1; then compose=(podman compose); else compose=(docker compose); fi
    "${compose[@]}" --profile monolith --profile scale down {{args}}

# Follow the containers' logs: just logs; just logs ticket
logs *services:
    #!/usr/bin/env bash
    set -euo pipefail
    if command -v podman >/dev/null 2>&1; then compose=(podman compose); else compose=(docker compose); fi
    "${compose[@]}" logs -f {{services}}

# Apply a Kubernetes overlay: just k8s-apply (redis: ticket + vacancy on Redis); just k8s-apply single-node
k8s-apply OVERLAY="redis":
    kubectl apply -k infra/k8s/overlays/{{OVERLAY}}

# Delete everything an overlay made, the namespace included, and with it the volumes (the stock)
[confirm("Delete the overlay's objects and the ticket-system namespace, with its volumes (the stock)? [y/N]")]
k8s-delete OVERLAY="redis":
    kubectl delete -k infra/k8s/overlays/{{OVERLAY}}
