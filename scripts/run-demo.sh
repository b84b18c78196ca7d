#!/usr/bin/env bash
# Starts `handoff dev` in the background (unless it already runs), imports the
# example CRM export and bundles at a fast time scale, drives one deal's
# events, and prints where to look.
set -euo pipefail

handoff=$1 state=$2 scale=$3
mkdir -p "$state"
pidfile=$state/dev.pid
log=$state/dev.log

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

if running; then
  echo "the dev stack is already running (pid $(cat "$pidfile"))"
else
  echo "starting the dev stack (Temporal dev server + worker); log: $log"
  nohup "$handoff" dev --state-dir "$state" >"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 1 120); do
    grep -q '"worker started"\|worker started' "$log" 2>/dev/null && break
    running || { echo "the dev stack exited:"; tail -20 "$log"; exit 1; }
    sleep 0.5
  done
  grep -q 'worker started' "$log" || { echo "the dev stack did not start in 60s:"; tail -20 "$log"; exit 1; }
fi

echo
echo "importing examples/crm/Opportunities.json at time scale $scale (a business day every $((86400 / scale))s)"
"$handoff" deal import --time-scale "$scale" --format salesforce-json examples/crm/Opportunities.json
for bundle in examples/bundles/*.json; do
  printf '%s: ' "$bundle"
  "$handoff" deal start --time-scale "$scale" "$bundle"
done

echo
echo "driving events:"
echo "  salesforce:DemoOpp1  contract_signed -> kickoff armed, onboarding tasks created; breaches in about 2 minutes"
"$handoff" deal signal salesforce:DemoOpp1 contract_signed --data '{"by": "ae-01"}' >/dev/null
echo "  salesforce:DemoOpp2  contract_signed -> still waiting for the security gate (enterprise)"
"$handoff" deal signal salesforce:DemoOpp2 contract_signed >/dev/null
echo "  manual:DEMO-ENT-1    both gates, kickoff_held, data mapping -> onboarding, three milestones to go"
"$handoff" deal signal manual:DEMO-ENT-1 contract_signed >/dev/null
"$handoff" deal signal manual:DEMO-ENT-1 security_cleared >/dev/null
sleep 2
"$handoff" deal signal manual:DEMO-ENT-1 kickoff_held >/dev/null
"$handoff" deal signal manual:DEMO-ENT-1 milestone_reached --data '{"milestone": "data_mapping"}' >/dev/null
sleep 2

echo
"$handoff" deal list --all
cat <<MSG

Temporal UI   http://127.0.0.1:8233/namespaces/default/workflows
              filter with e.g.  HandoffStage = "kickoff"   or   Segment = "enterprise"
Metrics       http://127.0.0.1:9464/metrics
Status        $handoff deal status salesforce:DemoOpp1
Tasks         $handoff tasks list
Notifications $handoff notifications list
Stop          make stop
MSG
