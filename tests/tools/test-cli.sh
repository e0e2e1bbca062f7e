#!/bin/bash
# End-to-end checks of the neuralcl command-line tool.
#   tests/tools/test-cli.sh NEURALCL_BINARY
# Needs NCL_SHARED_DIR (../shared: golden tensor, pretrained weights) and, for
# `style apply`, the styletransfer plugin on GST_PLUGIN_PATH_1_0 (meson's test
# environment sets both).  Every check prints PASS or FAIL; the script ends
# with "N passed, M failed" and exits non-zero when a check failed.
set -u

NEURALCL=${1:?usage: test-cli.sh NEURALCL_BINARY}
SHARED=${NCL_SHARED_DIR:-$(dirname "$0")/../../../shared}
GOLDEN=$SHARED/data/style/golden/mosaic-dog-160x120.safetensors
MOSAIC=$SHARED/data/style/pretrained/mosaic.safetensors

# meson empties the system plugin path for element tests; this script needs
# the stock elements (videotestsrc, decodebin, pngenc) too
unset GST_PLUGIN_SYSTEM_PATH_1_0 GST_PLUGIN_SYSTEM_PATH
TMP=$(mktemp -d "${TMPDIR:-/tmp}/neuralcl-cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
export GST_REGISTRY_1_0="${NCL_BUILD_DIR:-$TMP}/registry-tools-cli.bin"

passed=0
failed=0

pass () {
  echo "PASS: $1"
  passed=$((passed + 1))
}

fail () {
  echo "FAIL: $1"
  shift
  for line in "$@"; do echo "    $line"; done
  failed=$((failed + 1))
}

# run NAME ARGS...: runs the binary, leaving status in $rc, output in
# $TMP/NAME.out and $TMP/NAME.err
run () {
  local name=$1
  shift
  "$NEURALCL" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
  rc=$?
}

show () {
  sed -e 's/^/      | /' "$TMP/$1.out" "$TMP/$1.err" | tail -n 20
}

# an error is exactly one line "neuralcl: ..." on stderr
one_error_line () {
  [ "$(wc -l <"$TMP/$1.err")" -eq 1 ] && grep -q '^neuralcl: ' "$TMP/$1.err"
}

if [ ! -x "$NEURALCL" ]; then
  echo "FAIL: $NEURALCL is not an executable"
  echo "0 passed, 1 failed"
  exit 1
fi

# ---- generic front end ---------------------------------------------------

run help --help
if [ $rc -eq 0 ] && grep -q '^  devices' "$TMP/help.out" \
    && grep -q '^  style' "$TMP/help.out" && grep -q '^  bench' "$TMP/help.out" \
    && grep -q '^  models' "$TMP/help.out"; then
  pass "--help lists the subcommands"
else
  fail "--help lists the subcommands" "exit $rc" "$(show help)"
fi

run badcmd frobnicate
if [ $rc -eq 1 ] && one_error_line badcmd && grep -q frobnicate "$TMP/badcmd.err"; then
  pass "an unknown subcommand is one error line and exit 1"
else
  fail "an unknown subcommand is one error line and exit 1" "exit $rc" "$(show badcmd)"
fi

run badopt style list --no-such-option
if [ $rc -eq 1 ] && one_error_line badopt; then
  pass "an unknown option is one error line and exit 1"
else
  fail "an unknown option is one error line and exit 1" "exit $rc" "$(show badopt)"
fi

# ---- devices ---------------------------------------------------------------

run devices devices
if [ $rc -ne 0 ] && grep -qi 'no opencl\|no device\|no platform' "$TMP/devices.err"; then
  echo "SKIP: no OpenCL device: $(cat "$TMP/devices.err")"
  exit 77
fi
if [ $rc -eq 0 ] && grep -q '^0: ' "$TMP/devices.out"; then
  pass "devices lists device 0"
else
  fail "devices lists device 0" "exit $rc" "$(show devices)"
fi

# ---- style list / models list ---------------------------------------------

run list style list
n_styles=$(grep -c . "$TMP/list.out")
bad_lines=$(awk -F '\t' 'NF != 3 || $1 == "" || $2 == "" || $3 == ""' "$TMP/list.out" | wc -l)
if [ $rc -eq 0 ] && [ "$n_styles" -ge 2 ] && [ "$bad_lines" -eq 0 ] \
    && cut -f 1 "$TMP/list.out" | grep -qx mosaic; then
  pass "style list: $n_styles styles including mosaic, 3 tab-separated fields each"
else
  fail "style list: at least 2 styles including mosaic, NAME<TAB>ARCH<TAB>ORIGIN" \
    "exit $rc, $n_styles lines, $bad_lines malformed" "$(show list)"
fi

run models models list
# (mawk has no {64} intervals)
bad_lines=$(awk -F '\t' 'NF != 4 || ($1 != "style" && $1 != "face") || length($3) != 64 || $3 !~ /^[0-9a-f]+$/' \
    "$TMP/models.out" | wc -l)
missing=0
while IFS=$'\t' read -r _ _ _ path; do
  [ -f "$path" ] || missing=$((missing + 1))
done <"$TMP/models.out"
n_models=$(grep -c '^style' "$TMP/models.out")
if [ $rc -eq 0 ] && [ "$n_models" -ge 2 ] && [ "$n_models" -eq "$n_styles" ] \
    && [ "$bad_lines" -eq 0 ] && [ $missing -eq 0 ] \
    && cut -f 2 "$TMP/models.out" | grep -qx mosaic; then
  pass "models list: one line per style (and face model) with a SHA-256 fingerprint and an existing path"
else
  fail "models list: one line per style with a SHA-256 fingerprint and an existing path" \
    "exit $rc, $n_models lines for $n_styles styles, $bad_lines malformed," \
    "$missing missing files" "$(show models)"
fi

# ---- style tensor: golden --------------------------------------------------

# max |a - b| over tensor NAME of two safetensors files (F32 only), or an
# error message; plain python3 (struct), no numpy
cat >"$TMP/maxdiff.py" <<'EOF'
import json, struct, sys

def read(path, name):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    if name not in header:
        sys.exit(f"{path}: tensor '{name}': missing")
    t = header[name]
    if t["dtype"] != "F32":
        sys.exit(f"{path}: tensor '{name}': dtype {t['dtype']}, expected F32")
    begin, end = t["data_offsets"]
    count = (end - begin) // 4
    values = struct.unpack(f"<{count}f", blob[8 + n + begin:8 + n + end])
    return t["shape"], values

shape_a, a = read(sys.argv[1], sys.argv[2])
shape_b, b = read(sys.argv[3], sys.argv[4])
if shape_a != shape_b:
    sys.exit(f"shape {shape_b}, expected {shape_a}")
worst, at = 0.0, 0
for i, (x, y) in enumerate(zip(a, b)):
    d = abs(x - y)
    if d != d:
        sys.exit(f"NaN at {i}")
    if d > worst:
        worst, at = d, i
spread = max(a) - min(a)
print(f"{worst:.6f} {at} {a[at]:.4f} {b[at]:.4f} {spread:.1f}")
EOF

run tensor style tensor --model "$MOSAIC" "$GOLDEN" "$TMP/golden-out.safetensors"
if [ $rc -ne 0 ]; then
  fail "style tensor on the golden input" "exit $rc" "$(show tensor)"
elif ! result=$(python3 "$TMP/maxdiff.py" "$GOLDEN" output \
    "$TMP/golden-out.safetensors" output 2>&1); then
  fail "style tensor output readable" "$result"
else
  read -r worst at want got spread <<<"$result"
  # the reference output spans hundreds of units; a wrong network differs
  # by tens, float32 reordering by far less than 0.5
  if python3 -c "import sys; sys.exit(0 if $worst <= 0.5 and $spread > 50 else 1)"; then
    pass "style tensor reproduces the golden output (max |diff| $worst)"
  else
    fail "style tensor reproduces the golden output within 0.5" \
      "max |diff| $worst at $at: got $got want $want (reference spread $spread)"
  fi
fi

run nomodel style tensor --model "$TMP/no-such-model.safetensors" "$GOLDEN" \
  "$TMP/never.safetensors"
if [ $rc -eq 1 ] && one_error_line nomodel \
    && grep -q 'no-such-model.safetensors' "$TMP/nomodel.err" \
    && [ ! -e "$TMP/never.safetensors" ]; then
  pass "a missing model is exit 1 and one error line naming the file"
else
  fail "a missing model is exit 1 and one error line naming the file" "exit $rc" \
    "$(show nomodel)"
fi

printf 'not a safetensors file' >"$TMP/broken.safetensors"
run broken style tensor --model "$MOSAIC" "$TMP/broken.safetensors" "$TMP/never.safetensors"
if [ $rc -eq 1 ] && one_error_line broken && grep -q 'broken.safetensors' "$TMP/broken.err"; then
  pass "a malformed input tensor file is exit 1 and one error line naming it"
else
  fail "a malformed input tensor file is exit 1 and one error line naming it" "exit $rc" \
    "$(show broken)"
fi

# ---- style apply -----------------------------------------------------------

# decodes an image to raw RGB on stdout
raw_rgb () {
  gst-launch-1.0 -q filesrc location="$1" ! decodebin ! videoconvert \
    ! video/x-raw,format=RGB ! fdsink fd=1
}

if gst-launch-1.0 -q videotestsrc num-buffers=1 pattern=smpte \
    ! video/x-raw,width=64,height=48 ! videoconvert ! pngenc \
    ! filesink location="$TMP/in.png" >"$TMP/gen.log" 2>&1; then
  run apply style apply --model mosaic "$TMP/in.png" "$TMP/out.png"
  raw_rgb "$TMP/in.png" >"$TMP/in.rgb" 2>/dev/null
  raw_rgb "$TMP/out.png" >"$TMP/out.rgb" 2>/dev/null
  size=$(python3 -c "
import struct, sys
b = open(sys.argv[1], 'rb').read(24)
print('%dx%d' % struct.unpack('>II', b[16:24]) if b[:8] == b'\x89PNG\r\n\x1a\n' else 'not-png')
" "$TMP/out.png" 2>/dev/null)
  if [ $rc -eq 0 ] && [ "$size" = 64x48 ] && [ -s "$TMP/out.rgb" ] \
      && [ "$(stat -c %s "$TMP/out.rgb")" -eq $((64 * 48 * 3)) ] \
      && ! cmp -s "$TMP/in.rgb" "$TMP/out.rgb"; then
    pass "style apply writes a 64x48 PNG whose pixels differ from the input"
  else
    fail "style apply writes a 64x48 PNG whose pixels differ from the input" \
      "exit $rc, output size '$size'" "$(show apply)"
  fi

  run apply0 style apply --model mosaic --strength 0 "$TMP/in.png" "$TMP/out0.png"
  raw_rgb "$TMP/out0.png" >"$TMP/out0.rgb" 2>/dev/null
  if [ $rc -eq 0 ] && [ -s "$TMP/out0.rgb" ] && cmp -s "$TMP/in.rgb" "$TMP/out0.rgb"; then
    pass "style apply --strength 0 gives back the input pixels"
  else
    fail "style apply --strength 0 gives back the input pixels" "exit $rc" "$(show apply0)"
  fi

  run badext style apply --model mosaic "$TMP/in.png" "$TMP/out.xyz"
  if [ $rc -eq 1 ] && one_error_line badext && [ ! -e "$TMP/out.xyz" ]; then
    pass "style apply to an unknown extension is one error line and exit 1"
  else
    fail "style apply to an unknown extension is one error line and exit 1" "exit $rc" \
      "$(show badext)"
  fi

  run badmodel style apply --model no-such-style "$TMP/in.png" "$TMP/never.png"
  if [ $rc -eq 1 ] && one_error_line badmodel && grep -q no-such-style "$TMP/badmodel.err"; then
    pass "style apply with an unknown style is one error line naming it"
  else
    fail "style apply with an unknown style is one error line naming it" "exit $rc" \
      "$(show badmodel)"
  fi
else
  fail "generate a 64x48 test PNG with gst-launch-1.0" "$(cat "$TMP/gen.log")"
fi

# ---- bench -----------------------------------------------------------------

run bench bench --sizes 64x64 --runs 1 --warmup 0
if [ $rc -eq 0 ] && grep -Eq '[0-9]+\.[0-9]+ GFLOP/s' "$TMP/bench.out" \
    && grep -q '^device: ' "$TMP/bench.out" && grep -q '^machine: ' "$TMP/bench.out" \
    && grep -Eq '^  conv1.* [0-9]+\.[0-9]+ +[0-9]+\.[0-9]+ +[0-9.]+%$' "$TMP/bench.out"; then
  pass "bench prints device, machine, GFLOP/s and a per-layer table"
else
  fail "bench prints device, machine, GFLOP/s and a per-layer table" "exit $rc" "$(show bench)"
fi

run benchjson bench --sizes 64x64,32x48 --runs 2 --warmup 0 --json --no-layers
if [ $rc -eq 0 ] && python3 - "$TMP/benchjson.out" <<'EOF'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 2, lines
recs = [json.loads(l) for l in lines]
assert [r["res"] for r in recs] == ["64x64", "48x32"], recs
for r in recs:
    assert r["median_ms"] > 0 and r["throughput"] > 0, r
    assert r["gflops_per_s"] > 0 and r["runs"] == 2, r
EOF
then
  pass "bench --json prints one JSON line per size"
else
  fail "bench --json prints one JSON line per size" "exit $rc" "$(show benchjson)"
fi

run benchbad bench --sizes 64by64
if [ $rc -eq 1 ] && one_error_line benchbad; then
  pass "bench with a malformed size is one error line and exit 1"
else
  fail "bench with a malformed size is one error line and exit 1" "exit $rc" "$(show benchbad)"
fi

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
