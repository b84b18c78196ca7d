#!/usr/bin/env bash
# Stops the dev stack `make run` started; the worker drains, then the server stops.
set -euo pipefail
pidfile=$1/dev.pid
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  pid=$(cat "$pidfile")
  kill -TERM "$pid"
  for _ in $(seq 1 90); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && { echo "still running after 45s; killing"; kill -KILL "$pid"; }
  rm -f "$pidfile"
  echo "stopped"
else
  echo "the dev stack is not running"
fi
