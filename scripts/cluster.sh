#!/usr/bin/env bash
# Three Lintel nodes on loopback, joined into one cluster. Ctrl-C stops all three.
set -euo pipefail
bin=${1:-bin/lintel}
root=$(mktemp -d -t lintel-cluster-XXXXXX)
pids=()
stop() { kill -TERM "${pids[@]}" 2>/dev/null || true; wait; echo "stopped; data in $root"; }
trap stop INT TERM EXIT
for i in 1 2 3; do
  args=(serve --data-dir "$root/node$i" --node-id "node$i" --building "Building $i"
        --http "127.0.0.1:808$i" --raft "127.0.0.1:700$i" --gossip "127.0.0.1:794$i"
        --readers "127.0.0.1:710$i" --admin-password lintel-demo)
  if [ "$i" = 1 ]; then
    args+=(--demo)
  else
    # The first node wrote the join token to its data dir when it bootstrapped.
    for _ in $(seq 50); do [ -s "$root/node1/join-token" ] && break; sleep 0.1; done
    args+=(--join 127.0.0.1:7941 --join-token "$(cat "$root/node1/join-token")")
  fi
  "$bin" "${args[@]}" >"$root/node$i.log" 2>&1 &
  pids+=($!)
  sleep 1
done
echo "Three nodes: http://127.0.0.1:8081/ http://127.0.0.1:8082/ http://127.0.0.1:8083/"
echo "Login: admin@lintel.local / lintel-demo    Logs: $root/node*.log"
wait
