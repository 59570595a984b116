#!/bin/bash
# usage: run.sh ROOT OUT CONC SECONDS [extra node flags]
# A fresh `tally serve` from ROOT under node --trace-deopt --trace-opt (and any further node flags), its
# output (the trace) in OUT, driven by `tally bench --workload transactions` at CONC connections for
# SECONDS; SERVE_ARGS adds serve options (e.g. "--cache-rotation-threshold 1000000"). Count with grep.
ROOT=$1; OUT=$2; CONC=$3; SECS=$4; shift 4
D=$(mktemp -d)
TALLY_LOG_LEVEL=warn node --trace-deopt --trace-opt "$@" $ROOT/bin/tally.mjs serve --data $D/d --listen 127.0.0.1:0 $SERVE_ARGS > $OUT 2>$OUT.err &
PID=$!
URL=
for i in $(seq 1 150); do
  PORT=$(grep -a -m1 '^listening ' $OUT | awk -F: '{print $NF}')
  if [ -n "$PORT" ]; then URL="http://127.0.0.1:$PORT"; break; fi
  sleep 0.2
done
echo "url=$URL pid=$PID"
node $ROOT/bin/tally.mjs bench --target $URL --workload transactions --concurrency $CONC --duration $SECS --server-pid $PID --json > $OUT.bench
kill $PID; wait $PID
rm -rf $D
