#!/usr/bin/env bash
# berth end to end on one machine: a private Docker engine and registry on loopback, two small
# images, a state repo with two services, then validate → plan → apply, a change committed to
# the repo, plan → apply again, and what runs where. Stops everything it started unless --keep.
#
#   bash scripts/demo.sh [--keep]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1

bash scripts/setup.sh >/dev/null

D=$(mktemp -d /tmp/berth-demo.XXXX)
PORT_REG=$((20000 + RANDOM % 10000))
PORT_WEB=$((30000 + RANDOM % 10000))
PORT_API=$((PORT_WEB + 1))
REG=127.0.0.1:$PORT_REG
export DOCKER_HOST=unix://$D/docker.sock
BERTH=(node "$ROOT/dist/cli/main.js")

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cleanup() {
  if [ "$KEEP" = 1 ]; then
    say "left running (stop with: kill $(cat "$D/docker.pid") $(cat "$D/registry.pid"))"
    echo "export DOCKER_HOST=$DOCKER_HOST   # state repo: $D/state   record: $D/berth.db"
    return
  fi
  if [ -f "$D/docker.pid" ]; then
    local pid
    pid=$(cat "$D/docker.pid")
    docker ps -aq 2>/dev/null | xargs -r docker rm -f >/dev/null 2>&1 || true
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  if [ -f "$D/registry.pid" ]; then kill "$(cat "$D/registry.pid")" 2>/dev/null || true; fi
  # dockerd leaves its network namespace mount (exec/netns/default) behind; unmount all under $D.
  awk -v d="$D/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$D" 2>/dev/null || true
}
trap cleanup EXIT

say "starting a private Docker engine ($DOCKER_HOST) and a registry ($REG)"
setsid dockerd --iptables=false --ip6tables=false --bridge=none \
  --data-root "$D/root" --exec-root "$D/exec" -H "$DOCKER_HOST" \
  --pidfile "$D/docker.pid" >"$D/dockerd.log" 2>&1 &
mkdir -p "$D/registry"
printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s/registry\nhttp:\n  addr: %s\n' "$D" "$REG" >"$D/registry.yml"
setsid docker-registry serve "$D/registry.yml" >"$D/registry.log" 2>&1 &
echo $! >"$D/registry.pid"
for _ in $(seq 1 150); do docker version >/dev/null 2>&1 && break; sleep 0.2; done
docker version --format 'engine {{.Server.Version}} (API {{.Server.APIVersion}})'

say "building two images FROM scratch with busybox and pushing them to the registry"
BUSYBOX=$(command -v busybox || echo /bin/busybox)
for v in 1 2; do
  mkdir -p "$D/img$v/rootfs/bin" "$D/img$v/rootfs/www"
  cp "$BUSYBOX" "$D/img$v/rootfs/bin/busybox"
  echo "hello from web v$v" >"$D/img$v/rootfs/www/index.html"
  printf 'FROM scratch\nCOPY rootfs/ /\nENTRYPOINT ["/bin/busybox"]\nCMD ["sh","-c","exec /bin/busybox httpd -f -p 127.0.0.1:$PORT -h /www"]\n' >"$D/img$v/Dockerfile"
  docker build -q -t "$REG/demo/web:$v" "$D/img$v" >/dev/null
  docker push -q "$REG/demo/web:$v" >/dev/null
  docker rmi -f "$REG/demo/web:$v" >/dev/null
done
echo "$REG/demo/web:1 and :2 pushed"

say "a state repo: berth.yaml and two services (one in the reference design's keyed form)"
mkdir -p "$D/state/services"
cd "$D/state"
git init -q -b staging
cat >berth.yaml <<EOF
env_dir: $D/env
defaults:
  restart_policy: unless-stopped
EOF
cat >services/web.yaml <<EOF
image: $REG/demo/web:1
gitCommit: 1a2b3c4
buildNumber: '41'
env_vars:
  PORT: '$PORT_WEB'
EOF
cat >services/api.yaml <<EOF
api:
  name: api
  image: $REG/demo/web:1
  gitCommit: 5d6e7f8
  buildNumber: '7'
  env_vars:
    PORT: '$PORT_API'
    GREETING: hello
  command:
    - sh
    - -c
    - /bin/busybox mkdir -p /tmp/w && echo "\$GREETING from api" > /tmp/w/index.html && exec /bin/busybox httpd -f -p 127.0.0.1:\$PORT -h /tmp/w
EOF
git add -A && git -c user.name=demo -c user.email=demo@berth.invalid commit -qm "initial state"
cd "$ROOT"
ARGS=(--repo "$D/state" --env staging --store "$D/berth.db" --cache-dir "$D/cache")

say "berth validate"
"${BERTH[@]}" validate --repo "$D/state" --env staging --cache-dir "$D/cache"
say "berth plan"
"${BERTH[@]}" plan "${ARGS[@]:0:4}" --cache-dir "$D/cache" || [ $? -eq 2 ]
say "berth apply"
"${BERTH[@]}" apply "${ARGS[@]}"
say "berth apply again: nothing to do"
"${BERTH[@]}" apply "${ARGS[@]}"

say "CI commits a new image for web and a new env value for api"
cd "$D/state"
sed -i "s#demo/web:1#demo/web:2#; s#buildNumber: '41'#buildNumber: '42'#" services/web.yaml
sed -i "s#GREETING: hello#GREETING: bonjour#" services/api.yaml
git -c user.name=ci -c user.email=ci@berth.invalid commit -qam "web build 42; api greeting"
cd "$ROOT"
"${BERTH[@]}" plan "${ARGS[@]:0:4}" --cache-dir "$D/cache" || [ $? -eq 2 ]
"${BERTH[@]}" apply "${ARGS[@]}"

say "what runs where"
docker ps --format 'table {{.Names}}\t{{.Image}}\t{{.Status}}\t{{.Label "berth.build-number"}}\t{{.Label "berth.state-commit"}}'
for p in $PORT_WEB $PORT_API; do
  printf 'http://127.0.0.1:%s/ -> ' "$p"
  node -e "fetch('http://127.0.0.1:$p/').then(r=>r.text()).then(t=>process.stdout.write(t)).catch(e=>{console.log(e.message);process.exit(1)})"
done
say "berth history"
"${BERTH[@]}" history --store "$D/berth.db"
