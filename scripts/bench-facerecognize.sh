#!/bin/bash
# End-to-end frames per second of the facerecognize element in a real
# pipeline: a photo letterboxed into WxH video (default 640x480), decoded
# once and frozen for N frames, through facerecognize (detection, tracking,
# landmarks, alignment, recognition, overlay) into fakesink, as fast as it
# goes.  The model load and pipeline start are cancelled out by timing a
# short and a long run: fps = (N_long - N_short) / (t_long - t_short).
#
#   scripts/bench-facerecognize.sh [--build DIR] [--size WxH] [--image FILE]
#       [--frames N] [--interval K,...] [--detector tiny|ssd]
#       [--detector-size S]
#
# --interval: the element's recognize-interval values to time (default
# "15,1": the default, where a tracked face is described again every 15
# frames or when it grows, and 1, every face described in every frame).
# Needs the face models (`neuralcl models fetch`).  Default image: face-api's
# demo sample1.jpg (three faces) from the fetched package; the gallery
# enrols demo samples 2-4 (one photo each), or $NCL_BENCH_GALLERY.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
build=$here/build
size=640x480
image=${XDG_CACHE_HOME:-$HOME/.cache}/neuralcl/face-api/package/demo/sample1.jpg
frames=300
intervals=15,1
detector=tiny
dsize=416

while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --image) image=$2; shift 2 ;;
    --frames) frames=$2; shift 2 ;;
    --interval) intervals=$2; shift 2 ;;
    --detector) detector=$2; shift 2 ;;
    --detector-size) dsize=$2; shift 2 ;;
    *) echo "bench-facerecognize.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
done
if [ ! -f "$image" ]; then
  echo "bench-facerecognize.sh: $image: no such image (run 'neuralcl models fetch' first, or pass --image)" >&2
  exit 1
fi
w=${size%x*}
h=${size#*x}
demo=$(dirname "$image")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ncl-bench-face.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# a gallery of three people (one photo each) from the demo images beside
# the frame, so that every face is matched against several identities
gallery=$tmp/gallery.yaml
{
  echo "identities:"
  for i in 2 3 4; do
    if [ -f "$demo/sample$i.jpg" ]; then
      echo "  - {name: person$i, images: [\"$demo/sample$i.jpg\"]}"
    fi
  done
} >"$gallery"
[ -n "${NCL_BENCH_GALLERY:-}" ] && gallery=$NCL_BENCH_GALLERY
export GST_PLUGIN_PATH=$build/gst-plugin${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}

# the pipeline with @1 frames at recognize-interval @2; further arguments
# go to gst-launch-1.0 before it
launch () {
  local n=$1 k=$2
  shift 2
  gst-launch-1.0 "$@" filesrc location="$image" ! decodebin ! videoconvert ! \
    videoscale add-borders=true ! \
    "video/x-raw,width=$w,height=$h,pixel-aspect-ratio=1/1" ! \
    imagefreeze num-buffers="$n" ! \
    facerecognize detector="$detector" detector-size="$dsize" \
    recognize-interval="$k" gallery="$gallery" ! fakesink sync=false
}

# one run of @2 frames at recognize-interval @1; prints the wall seconds
run () {
  local t0 t1
  t0=$(date +%s.%N)
  launch "$2" "$1" -q >"$tmp/log" 2>&1 || {
    echo "bench-facerecognize.sh: the pipeline failed:" >&2
    cat "$tmp/log" >&2
    exit 1
  }
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}

# faces found in the first frame: the tracks that appear on it
faces=$(launch 1 15 -m 2>/dev/null | grep -c 'event=(string)appeared' || true)
nf="$faces faces"
[ "$faces" = 1 ] && nf="1 face"
label=$detector
[ "$detector" = tiny ] && label=tiny$dsize
echo "facerecognize, $(basename "$image") letterboxed into ${w}x${h} ($nf), detector $label, $(nproc) cores"
for k in ${intervals//,/ }; do
  short=$(run "$k" 10)
  long=$(run "$k" "$frames")
  fps=$(echo "($frames - 10) / ($long - $short)" | bc -l)
  printf "recognize-interval %-3s %4d frames: %.1f fps (%.1f ms per frame; start-up %.2f s)\n" \
    "$k" "$frames" "$fps" "$(echo "1000 / $fps" | bc -l)" \
    "$(echo "$short - 10 / $fps" | bc -l)"
done
