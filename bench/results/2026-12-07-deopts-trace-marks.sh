#!/bin/bash
# marks.sh ROOT OUT CHUNKS: server trace appended to OUT, a MARK line after each 1 s bench chunk
ROOT=$1; OUT=$2; N=$3
D=$(mktemp -d)
: > $OUT
TALLY_LOG_LEVEL=warn node --trace-deopt $ROOT/bin/tally.mjs serve --data $D/d --listen 127.0.0.1:0 $SERVE_ARGS >> $OUT 2>$OUT.err &
PID=$!
URL=
for i in $(seq 1 150); do
  PORT=$(grep -a -m1 '^listening ' $OUT | awk -F: '{print $NF}')
  if [ -n "$PORT" ]; then URL="http://127.0.0.1:$PORT"; break; fi
  sleep 0.2
done
total=0
for i in $(seq 1 $N); do
  n=$(node $ROOT/bin/tally.mjs bench --target $URL --workload transactions --concurrency 1 --duration 1 --json 2>/dev/null | grep -o '"operations": [0-9]*' | head -1 | awk '{print $2}')
  total=$((total + n))
  echo "MARK chunk $i tx $total" >> $OUT
done
kill $PID; wait $PID
rm -rf $D
