#!/bin/sh
# Registers the search attributes of SPEC §9 on the default namespace.
# Idempotent: an attribute that already exists is left alone.
set -eu
# The port opens before the default namespace exists; wait for it.
tries=0
until temporal operator namespace describe --namespace default >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "namespace default not ready after 60 tries" >&2
    exit 1
  fi
  sleep 2
done
for attribute in DealId:Keyword DealSource:Keyword Segment:Keyword HandoffStage:Keyword \
  HandoffOwner:Keyword AtRisk:Bool BreachCount:Int NextDeadline:Datetime DealAmount:Double; do
  name=${attribute%%:*}
  type=${attribute#*:}
  if temporal operator search-attribute list --namespace default | grep -qw "$name"; then
    echo "search attribute $name exists"
  else
    temporal operator search-attribute create --namespace default --name "$name" --type "$type"
  fi
done
