#!/bin/bash
# End-to-end checks of `neuralcl faces` on the developer photos.
#   tests/tools/test-faces-cli.sh NEURALCL_BINARY
# Needs NCL_SHARED_DIR (../shared: data/faces), the converted face models on
# NEURALCL_MODEL_PATH (`neuralcl models fetch`; without them the script exits
# 77, a skip) and, for the video check, the facerecognize plugin on
# GST_PLUGIN_PATH_1_0 (meson's test environment sets all three).  Photos are
# read where they are: galleries and lists written here name them by
# absolute path.  Every check prints PASS or FAIL; the script ends with
# "N passed, M failed" and exits non-zero when a check failed.
set -u

NEURALCL=${1:?usage: test-faces-cli.sh NEURALCL_BINARY}
SHARED=${NCL_SHARED_DIR:-$(dirname "$0")/../../../shared}
FR=$SHARED/data/faces/face_recognition
EX=$FR/examples

# meson empties the system plugin path for element tests; the video check
# needs the stock elements (filesrc, decodebin, videoconvert) too
unset GST_PLUGIN_SYSTEM_PATH_1_0 GST_PLUGIN_SYSTEM_PATH
TMP=$(mktemp -d "${TMPDIR:-/tmp}/neuralcl-faces.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
export GST_REGISTRY_1_0="${NCL_BUILD_DIR:-$TMP}/registry-tools-faces.bin"

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

# py NAME SCRIPT ARGS...: runs a python check on $TMP/NAME.out; its
# message (an assertion's, or what it prints) lands in $msg
py () {
  local name=$1 script=$2
  shift 2
  msg=$(python3 -c "$script" "$TMP/$name.out" "$@" 2>&1)
}

if [ ! -x "$NEURALCL" ]; then
  echo "FAIL: $NEURALCL is not an executable"
  echo "0 passed, 1 failed"
  exit 1
fi

# ---- metrics (no models needed) --------------------------------------------

run metrics faces selftest-metrics
n_ok=$(grep -c '^PASS: metrics' "$TMP/metrics.out")
if [ $rc -eq 0 ] && [ "$n_ok" -ge 9 ] && ! grep -q '^FAIL' "$TMP/metrics.out" \
    && grep -q '^metrics self-test: 0 failures$' "$TMP/metrics.out"; then
  pass "metrics: AUC, EER, best accuracy and FAR calibration on hand-made scores ($n_ok checks)"
else
  fail "metrics: AUC, EER, best accuracy and FAR calibration on hand-made scores" \
    "exit $rc, $n_ok passed" "$(show metrics)"
fi

run badalign faces verify --align sideways "$EX/obama.jpg" "$EX/obama2.jpg"
if [ $rc -eq 1 ] && one_error_line badalign && grep -q sideways "$TMP/badalign.err"; then
  pass "a bad --align value is one error line naming it"
else
  fail "a bad --align value is one error line naming it" "exit $rc" "$(show badalign)"
fi

run badsize faces detect --detector-size 100 "$EX/obama.jpg"
if [ $rc -eq 1 ] && one_error_line badsize && grep -q 100 "$TMP/badsize.err" \
    && [ ! -s "$TMP/badsize.out" ]; then
  pass "a --detector-size that is no multiple of 32 is one error line"
else
  fail "a --detector-size that is no multiple of 32 is one error line" "exit $rc" \
    "$(show badsize)"
fi

printf 'align: diagonal\n' >"$TMP/badconfig.yaml"
run badconfig faces verify --config "$TMP/badconfig.yaml" "$EX/obama.jpg" "$EX/obama2.jpg"
if [ $rc -eq 1 ] && one_error_line badconfig \
    && grep -q "badconfig.yaml:1:[0-9]*: .*diagonal" "$TMP/badconfig.err"; then
  pass "a bad --config value is one error line FILE:LINE:COL"
else
  fail "a bad --config value is one error line FILE:LINE:COL" "exit $rc" "$(show badconfig)"
fi

# ---- models ------------------------------------------------------------------

run models models list
for m in face_recognition tiny_face_detector face_landmark_68; do
  if ! grep -q "^face	$m	" "$TMP/models.out"; then
    echo "SKIP: face model $m not installed (run: neuralcl models fetch --dest DIR;" \
      "NEURALCL_MODEL_PATH=DIR)"
    exit 77
  fi
done
if [ ! -f "$EX/obama.jpg" ]; then
  fail "the developer photos are in $FR"
  echo "$passed passed, $failed failed"
  exit 1
fi

# ---- verify ------------------------------------------------------------------

run same faces verify "$EX/obama.jpg" "$EX/obama2.jpg"
d_same=$(sed -n 's/^distance \([0-9.]*\): same person (threshold 0.6)$/\1/p' "$TMP/same.out")
if [ $rc -eq 0 ] && [ -n "$d_same" ] \
    && python3 -c "import sys; sys.exit(0 if 0 < $d_same < 0.6 else 1)"; then
  pass "verify obama obama2: same person, distance $d_same < 0.6"
else
  fail "verify obama obama2: same person, distance < 0.6" "exit $rc" "$(show same)"
fi

run diff faces verify "$EX/obama.jpg" "$EX/biden.jpg"
if [ $rc -eq 0 ] && grep -q '^distance [0-9.]*: different people (threshold 0.6)$' \
    "$TMP/diff.out"; then
  pass "verify obama biden: different people ($(cut -d: -f1 "$TMP/diff.out"))"
else
  fail "verify obama biden: different people" "exit $rc" "$(show diff)"
fi

# the threshold decides: above the obama/obama2 distance they are the same,
# below it different
run lowthr faces verify --json --threshold 0.05 "$EX/obama.jpg" "$EX/obama2.jpg"
py lowthr '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines
d = json.loads(lines[0])
assert d["same"] is False and d["threshold"] == 0.05, d
assert abs(d["distance"] - float(sys.argv[2])) < 1e-4, (d, sys.argv[2])
' "${d_same:-nan}"
if [ $rc -eq 0 ] && [ -z "$msg" ]; then
  pass "verify --json --threshold 0.05: the same pair becomes different, same distance"
else
  fail "verify --json --threshold 0.05: the same pair becomes different, same distance" \
    "exit $rc: $msg" "$(show lowthr)"
fi

run missing faces verify "$EX/obama.jpg" "$TMP/no-such-photo.jpg"
if [ $rc -eq 1 ] && one_error_line missing && grep -q 'no-such-photo.jpg' "$TMP/missing.err" \
    && [ ! -s "$TMP/missing.out" ]; then
  pass "verify with a missing image: exit 1, one error line naming it"
else
  fail "verify with a missing image: exit 1, one error line naming it" "exit $rc" \
    "$(show missing)"
fi

# a photo without a face: a plain grey picture (the tiny detector sees a face
# in the dark corner of the SMPTE bars, with 0.84)
if gst-launch-1.0 -q videotestsrc num-buffers=1 pattern=solid-color \
    foreground-color=0xff808080 \
    ! video/x-raw,width=320,height=240 ! videoconvert ! pngenc \
    ! filesink location="$TMP/grey.png" >"$TMP/gen.log" 2>&1; then
  run noface faces verify "$EX/obama.jpg" "$TMP/grey.png"
  if [ $rc -eq 1 ] && one_error_line noface \
      && grep -q 'grey.png: no face found' "$TMP/noface.err"; then
    pass "verify with a photo without a face: exit 1, the error names it"
  else
    fail "verify with a photo without a face: exit 1, the error names it" "exit $rc" \
      "$(show noface)"
  fi
else
  fail "generate a test PNG with gst-launch-1.0" "$(cat "$TMP/gen.log")"
fi

# ---- detect / embed ------------------------------------------------------------

run detect faces detect --landmarks "$EX/two_people.jpg" "$EX/obama.jpg"
py detect '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 2, lines
two, one = (json.loads(l) for l in lines)
assert two["file"].endswith("two_people.jpg") and len(two["faces"]) == 2, two
assert len(one["faces"]) == 1, one
for img in (two, one):
    W, H = img["width"], img["height"]
    for f in img["faces"]:
        x, y, w, h = f["box"]
        assert 0.5 <= f["score"] <= 1, f["score"]
        assert w > 30 and h > 30 and x > -w / 2 and y > -h / 2 \
            and x + w < W + w / 2 and y + h < H + h / 2, (f["box"], W, H)
        pts = f["landmarks"]
        assert len(pts) == 68, len(pts)
        inside = sum(x - w / 4 <= px <= x + w * 1.25 and y - h / 4 <= py <= y + h * 1.25
                     for px, py in pts)
        assert inside >= 60, ("landmarks outside the box", inside)
# the two people stand side by side
(a, b) = sorted(f["box"][0] for f in two["faces"])
assert b - a > 200, (a, b)
'
if [ $rc -eq 0 ] && [ -z "$msg" ]; then
  pass "detect --landmarks: two faces in two_people.jpg, one in obama.jpg, 68 points in each box"
else
  fail "detect --landmarks: two faces in two_people.jpg, one in obama.jpg, 68 points in each box" \
    "exit $rc: $msg" "$(show detect)"
fi

run embed faces embed "$EX/obama.jpg" "$EX/obama2.jpg"
py embed '
import json, math, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 2, lines
a, b = (json.loads(l) for l in lines)
for d in (a, b):
    assert d["n_faces"] == 1 and len(d["descriptor"]) == 128, d.keys()
    assert all(math.isfinite(v) for v in d["descriptor"])
dist = math.dist(a["descriptor"], b["descriptor"])
assert abs(dist - float(sys.argv[2])) < 1e-4, (dist, sys.argv[2])
' "${d_same:-nan}"
if [ $rc -eq 0 ] && [ -z "$msg" ]; then
  pass "embed: 128 numbers per photo, their distance is what verify printed"
else
  fail "embed: 128 numbers per photo, their distance is what verify printed" \
    "exit $rc: $msg" "$(show embed)"
fi

run embedall faces embed --all "$EX/two_people.jpg"
py embedall '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines
d = json.loads(lines[0])
assert len(d["faces"]) == 2 and all(len(f["descriptor"]) == 128 for f in d["faces"]), d
'
if [ $rc -eq 0 ] && [ -z "$msg" ]; then
  pass "embed --all: both faces of two_people.jpg"
else
  fail "embed --all: both faces of two_people.jpg" "exit $rc: $msg" "$(show embedall)"
fi

# ---- identify ------------------------------------------------------------------

cat >"$TMP/gallery.yaml" <<EOF
identities:
  - name: obama
    images: [$EX/obama.jpg]
  - name: biden
    images: [$EX/biden.jpg]
EOF

# "file" is the argument exactly as given, not a cleaned-up path
odd_path="$FR/examples/../examples//obama2.jpg"
run idimage faces identify --gallery "$TMP/gallery.yaml" "$odd_path"
py idimage '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines
d = json.loads(lines[0])
assert d["file"] == sys.argv[2], (d["file"], sys.argv[2])
assert d["frame"] == 0 and d["pts"] in (None, 0), d
assert len(d["faces"]) == 1, d["faces"]
f = d["faces"][0]
assert f["identity"] == "obama" and f["distance"] < 0.6 and f["track"] is None, f
assert len(f["box"]) == 4, f
' "$odd_path"
if [ $rc -eq 0 ] && [ -z "$msg" ]; then
  pass "identify obama2.jpg: one JSON line, file as given, obama"
else
  fail "identify obama2.jpg: one JSON line, file as given, obama" "exit $rc: $msg" \
    "$(show idimage)"
fi

run idtwo faces identify --gallery "$TMP/gallery.yaml" "$EX/two_people.jpg" \
  "$EX/knn_examples/train/rose_leslie/img1.jpg"
py idtwo '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 2, lines
two, rose = (json.loads(l) for l in lines)
names = sorted(f["identity"] for f in two["faces"])
assert names == ["biden", "obama"], names
assert [f["identity"] for f in rose["faces"]] == [None], rose
'
if [ $rc -eq 0 ] && [ -z "$msg" ]; then
  pass "identify: obama and biden in two_people.jpg, rose_leslie unknown (null)"
else
  fail "identify: obama and biden in two_people.jpg, rose_leslie unknown (null)" \
    "exit $rc: $msg" "$(show idtwo)"
fi

run idmissing faces identify --gallery "$TMP/gallery.yaml" "$TMP/gone.jpg"
if [ $rc -eq 1 ] && one_error_line idmissing && grep -q 'gone.jpg' "$TMP/idmissing.err"; then
  pass "identify with a missing input: exit 1, one error line naming it"
else
  fail "identify with a missing input: exit 1, one error line naming it" "exit $rc" \
    "$(show idmissing)"
fi

# the video runs through the facerecognize element: one line per frame; the
# performer (enrolled from another photo) is at the microphone from about
# frame 80
cat >"$TMP/gallery-video.yaml" <<EOF
identities:
  - name: lin_manuel_miranda
    images: [$EX/lin-manuel-miranda.png]
  - name: obama
    images: [$EX/obama.jpg]
EOF
clip="$EX/short_hamilton_clip.mp4"
run video faces identify --gallery "$TMP/gallery-video.yaml" --max-frames 120 "$clip"
py video '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 120, ("lines", len(lines))
recs = [json.loads(l) for l in lines]
assert all(r["file"] == sys.argv[2] for r in recs), recs[0]["file"]
frames = [r["frame"] for r in recs]
assert all(b > a for a, b in zip(frames, frames[1:])), frames
pts = [r["pts"] for r in recs]
assert all(isinstance(p, int) for p in pts) and all(b > a for a, b in zip(pts, pts[1:])), pts[:5]
named = [r["frame"] for r in recs for f in r["faces"] if f["identity"] == "lin_manuel_miranda"]
assert len(named) >= 10, ("frames naming the performer", len(named))
assert not any(f["identity"] == "obama" for r in recs for f in r["faces"]), "obama in the clip"
tracks = {f["track"] for r in recs for f in r["faces"]}
assert all(isinstance(t, int) and t > 0 for t in tracks), tracks
' "$clip"
if [ $rc -eq 0 ] && [ -z "$msg" ]; then
  pass "identify the hamilton clip: 120 lines, increasing frames and pts, the performer named"
else
  fail "identify the hamilton clip: 120 lines, increasing frames and pts, the performer named" \
    "exit $rc: $msg" "$(show video)"
fi

# ---- eval ------------------------------------------------------------------------

# default settings: every photo of the set has a face (alex-lacamoire.png
# only through the engine's retry without the border; docs/face-eval.md)
run eval faces eval --pairs "$FR/pairs.tsv" --root "$FR" --json \
  --far 0.1 --scores "$TMP/scores.tsv"
py eval '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines
d = json.loads(lines[0])
for k in ("pairs", "failed", "accuracy", "best_accuracy", "best_threshold", "auc", "eer",
          "far_threshold"):
    assert k in d, ("missing", k)
assert d["pairs"] == 28 and d["same"] == 14 and d["different"] == 14, d
assert d["failed"] == 0 and d["accuracy"] >= 0.9, d
assert d["best_accuracy"] >= d["accuracy"] and d["auc"] >= 0.95 and d["eer"] <= 0.1, d
assert d["detector"] == "tiny" and d["align"] == "warp", d
rows = [l.split("\t") for l in open(sys.argv[2]).read().splitlines()]
assert rows[0] == ["file_a", "file_b", "same", "distance"] and len(rows) == 29, rows[:2]
same = [float(r[3]) for r in rows[1:] if r[2] == "1"]
diff = [float(r[3]) for r in rows[1:] if r[2] == "0"]
right = sum(x < d["threshold"] for x in same) + sum(x >= d["threshold"] for x in diff)
assert abs(right / 28 - d["accuracy"]) < 1e-6, (right, d["accuracy"])
# calibration: at most 10% of the different pairs (1 of 14) below it
assert sum(x < d["far_threshold"] for x in diff) <= 1, d["far_threshold"]
' "$TMP/scores.tsv"
if [ $rc -eq 0 ] && [ -z "$msg" ]; then
  pass "eval on face_recognition pairs: $(sed 's/.*"accuracy": \([0-9.]*\).*"auc": \([0-9.]*\).*/accuracy \1, AUC \2/' "$TMP/eval.out"), scores file agrees"
else
  fail "eval on face_recognition pairs: keys, accuracy >= 0.9, scores file agrees" \
    "exit $rc: $msg" "$(show eval)"
fi

# options override the config file; the config applies where they are silent
printf 'align: crop\nborder: 0.1\n' >"$TMP/faces.yaml"
printf 'file_a\tfile_b\tsame\n%s\t%s\t1\n%s\t%s\t0\n' "$EX/obama.jpg" "$EX/obama2.jpg" \
  "$EX/obama.jpg" "$EX/biden.jpg" >"$TMP/two-pairs.tsv"
run evalcfg faces eval --pairs "$TMP/two-pairs.tsv" --root / --json \
  --config "$TMP/faces.yaml" --threshold 0.5
py evalcfg '
import json, sys
d = json.loads(open(sys.argv[1]).read())
assert d["align"] == "crop" and d["border"] == 0.1 and d["threshold"] == 0.5, d
assert d["pairs"] == 2 and d["accuracy"] == 1 and d["auc"] == 1, d
'
run evalcfg2 faces eval --pairs "$TMP/two-pairs.tsv" --root / --json \
  --config "$TMP/faces.yaml" --align warp
if [ $rc -eq 0 ] && [ -z "$msg" ] && grep -q '"align": "warp"' "$TMP/evalcfg2.out" \
    && grep -q '"border": 0.1,' "$TMP/evalcfg2.out"; then
  pass "eval --config: align, border from the file, --threshold and --align override it"
else
  fail "eval --config: align, border from the file, --threshold and --align override it" \
    "exit $rc: $msg" "$(show evalcfg)" "$(show evalcfg2)"
fi

printf 'file_a\tfile_b\tsame\nexamples/obama.jpg\texamples/not-there.jpg\t1\n' \
  >"$TMP/bad-pairs.tsv"
run evalmissing faces eval --pairs "$TMP/bad-pairs.tsv" --root "$FR" --json
if [ $rc -eq 1 ] && one_error_line evalmissing && grep -q 'not-there.jpg' "$TMP/evalmissing.err"; then
  pass "eval with a missing image: exit 1, one error line naming it"
else
  fail "eval with a missing image: exit 1, one error line naming it" "exit $rc" \
    "$(show evalmissing)"
fi

printf 'file_a\tfile_b\tsame\na.jpg\tb.jpg\tyes\n' >"$TMP/malformed.tsv"
run evalbad faces eval --pairs "$TMP/malformed.tsv" --json
if [ $rc -eq 1 ] && one_error_line evalbad && grep -q 'malformed.tsv:2: ' "$TMP/evalbad.err"; then
  pass "eval with a malformed pairs line: one error line FILE:LINE"
else
  fail "eval with a malformed pairs line: one error line FILE:LINE" "exit $rc" "$(show evalbad)"
fi

run evalid faces eval-identify --labels "$FR/labels.tsv" --json
py evalid '
import json, sys
d = json.loads(open(sys.argv[1]).read())
assert d["identities"] == 6 and d["probes"] == 9, d
assert d["top1"] >= 0.85 and 0 <= d["rejected"] <= 1, d
assert abs(d["accepted_correct"] + d["accepted_wrong"] + d["rejected"] - 1) < 1e-6, d
'
if [ $rc -eq 0 ] && [ -z "$msg" ]; then
  pass "eval-identify: 6 identities enrolled from one photo, 9 probes, top-1 $(sed 's/.*"top1": \([0-9.]*\).*/\1/' "$TMP/evalid.out")"
else
  fail "eval-identify: 6 identities, 9 probes, top-1 >= 0.85" "exit $rc: $msg" "$(show evalid)"
fi

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
