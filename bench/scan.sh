#!/usr/bin/env bash
# Scan speed and memory against zcat, in one run (ratios, since machines are noisy).
#
# Generates (once) a 128 MiB (uncompressed) gzip Firehose object of realistic Monitron v2
# records, then prints: zcat's time, `e2b scan`'s time (best of N runs each, interleaved), their
# ratio, and the scan's peak RSS from /usr/bin/time -v.
#
# Usage: bench/scan.sh [MiB] [runs]      (defaults: 128 MiB, 5 runs)
# Targets (issue 2): ratio <= 1.0 is the floor, <= 0.5 the aim; peak RSS <= 32 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."

mib=${1:-128}
runs=${2:-5}
data_dir=bench/data
object="$data_dir/monitron-v2-${mib}MiB.json.gz"

command -v /usr/bin/time >/dev/null || { echo "bench: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

cargo build --release --quiet --bin e2b --example generate_firehose
e2b=target/release/e2b

mkdir -p "$data_dir"
if [ ! -s "$object" ]; then
  echo "generating $object ..." >&2
  target/release/examples/generate_firehose $((mib * 1024 * 1024)) 1 | gzip -6 > "$object.tmp"
  mv "$object.tmp" "$object"
fi

now() { date +%s.%N; }
min() { echo "$1 $2" | awk '{print ($1 < $2 ? $1 : $2)}'; }
best_zcat=999999
best_scan=999999
best_all=999999
for _ in $(seq "$runs"); do
  t0=$(now); zcat "$object" > /dev/null; t1=$(now)
  "$e2b" scan --quiet "$object" > /dev/null 2>"$data_dir/scan.stderr"; t2=$(now)
  # Every switch on: each measurement's payload and models are parsed too.
  "$e2b" scan --quiet --model-transitions --connectivity "$object" > /dev/null 2>/dev/null; t3=$(now)
  best_zcat=$(min "$(echo "$t1 - $t0" | bc -l)" "$best_zcat")
  best_scan=$(min "$(echo "$t2 - $t1" | bc -l)" "$best_scan")
  best_all=$(min "$(echo "$t3 - $t2" | bc -l)" "$best_all")
done

/usr/bin/time -v "$e2b" scan --quiet "$object" > /dev/null 2> "$data_dir/time.out"
rss_kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$data_dir/time.out")

compressed=$(stat -c %s "$object")
echo "object:        $object ($((compressed / 1024 / 1024)) MiB gzip, ${mib} MiB uncompressed)"
echo "summary:       $(tail -n 1 "$data_dir/scan.stderr")"
printf 'zcat:          %.3f s (best of %d)\n' "$best_zcat" "$runs"
printf 'e2b scan:      %.3f s (best of %d)\n' "$best_scan" "$runs"
printf 'ratio:         %.2f (scan / zcat; floor 1.00, aim 0.50)\n' "$(echo "$best_scan / $best_zcat" | bc -l)"
printf 'throughput:    %.0f MiB/s uncompressed\n' "$(echo "$mib / $best_scan" | bc -l)"
printf 'all switches:  %.3f s, ratio %.2f (--model-transitions --connectivity)\n' "$best_all" "$(echo "$best_all / $best_zcat" | bc -l)"
printf 'peak RSS:      %.1f MiB (target <= 32)\n' "$(echo "$rss_kib / 1024" | bc -l)"
