#!/bin/bash
# The first command of the README: installs the Debian 12 packages, builds
# gst-neuralcl in ./build (reused when present) and runs the main job on the
# bundled defaults:
#   media/sample.jpg  -> out/sample-mosaic.png, out/sample-candy.png
#   a 3-second clip   -> out/sample-input.webm -> out/sample-mosaic.webm
#   face-api's demo photos (MIT, from the npm package `neuralcl models fetch`
#   downloads and verifies) -> a gallery enrolled from one photo per person,
#   out/faces/annotated.webm (facerecognize) and out/faces/identify.jsonl
# Environment: BUILD_DIR (default build), OUT_DIR (default out),
# NEURALCL_DEVICE (OpenCL device, see `neuralcl devices`).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
OUT_DIR=${OUT_DIR:-out}
STYLES=(mosaic candy)

step () {
  printf '\n==> %s\n' "$*"
}

step "Installing build dependencies (Debian 12)"
bash scripts/install-deps.sh

step "Building in $BUILD_DIR"
if [ ! -d "$BUILD_DIR/meson-private" ]; then
  meson setup "$BUILD_DIR"
fi
ninja -C "$BUILD_DIR"

BUILD_PATH=$(cd "$BUILD_DIR" && pwd)
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
NEURALCL=$BUILD_PATH/tools/neuralcl
# use the plugin and the styles of this tree, not an installed copy
export GST_PLUGIN_PATH_1_0="$BUILD_PATH/gst-plugin${GST_PLUGIN_PATH_1_0:+:$GST_PLUGIN_PATH_1_0}"
export NEURALCL_STYLE_PATH="$ROOT/models/styles${NEURALCL_STYLE_PATH:+:$NEURALCL_STYLE_PATH}"

step "OpenCL devices"
"$NEURALCL" devices

step "Bundled styles"
"$NEURALCL" style list

step "Stylising media/sample.jpg (640x356)"
for style in "${STYLES[@]}"; do
  "$NEURALCL" style apply --model "$style" media/sample.jpg \
    "$OUT_DIR/sample-$style.png"
done

step "Stylising a short video (30 frames, 320x180)"
# the sample painting with a bouncing ball over it, made on the spot
if [ ! -s "$OUT_DIR/sample-input.webm" ]; then
  gst-launch-1.0 -q \
    compositor name=mix ! videoconvert ! vp8enc deadline=1 target-bitrate=2000000 \
      ! webmmux ! filesink location="$OUT_DIR/sample-input.webm" \
    filesrc location=media/sample.jpg ! jpegdec ! videoconvert ! videoscale \
      ! video/x-raw,width=320,height=180 ! imagefreeze num-buffers=30 \
      ! video/x-raw,framerate=10/1 ! mix.sink_0 \
    videotestsrc pattern=ball num-buffers=30 background-color=0x00000000 \
        foreground-color=0xffff8000 \
      ! video/x-raw,format=BGRA,width=320,height=180,framerate=10/1 ! mix.sink_1
fi
"$NEURALCL" style apply --model mosaic "$OUT_DIR/sample-input.webm" \
  "$OUT_DIR/sample-mosaic.webm"

step "Fetching and converting the face models (npm @vladmandic/face-api 1.7.15, MIT)"
"$NEURALCL" models fetch
CACHE_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/neuralcl/face-api
FACES=$OUT_DIR/faces
mkdir -p "$FACES"
tar -xzf "$CACHE_DIR/vladmandic-face-api-1.7.15.tgz" -C "$FACES" \
  --strip-components=1 --no-same-owner \
  package/demo/sample1.jpg package/demo/sample2.jpg package/demo/sample3.jpg \
  package/demo/sample4.jpg package/demo/sample5.jpg package/demo/sample6.jpg

step "Recognising faces: gallery enrolled from one photo per person"
# one photo each of two people; every other face is a stranger (unknown)
cat > "$FACES/gallery.yaml" <<EOG
threshold: 0.6
identities:
  - name: person-a
    images: [demo/sample2.jpg]
  - name: person-b
    images: [demo/sample4.jpg]
EOG
# a slideshow: the six photos, then mirrored copies of the two enrolled
# photos (a "new" photo of each person), 960x540, 2 frames per photo
mkdir -p "$FACES/slides"
i=0
for f in sample1 sample2 sample3 sample4 sample5 sample6; do
  cp "$FACES/demo/$f.jpg" "$FACES/slides/$(printf %02d $i).jpg"; i=$((i + 1))
done
for f in sample2 sample4; do
  gst-launch-1.0 -q filesrc location="$FACES/demo/$f.jpg" ! jpegdec \
    ! videoflip method=horizontal-flip ! videoconvert ! jpegenc \
    ! filesink location="$FACES/slides/$(printf %02d $i).jpg"
  i=$((i + 1))
done
gst-launch-1.0 -q multifilesrc location="$FACES/slides/%02d.jpg" \
    caps=image/jpeg,framerate=2/1 ! jpegdec ! videoscale add-borders=true \
  ! video/x-raw,width=960,height=540,pixel-aspect-ratio=1/1 ! videoconvert \
  ! vp8enc deadline=1 ! webmmux ! filesink location="$FACES/slides.webm"
gst-launch-1.0 -q filesrc location="$FACES/slides.webm" ! decodebin \
  ! videoconvert ! facerecognize gallery="$FACES/gallery.yaml" \
  ! videoconvert ! vp8enc deadline=1 ! webmmux \
  ! filesink location="$FACES/annotated.webm"
"$NEURALCL" faces identify --gallery "$FACES/gallery.yaml" \
  "$FACES/slides.webm" > "$FACES/identify.jsonl"
echo "identify: $(grep -c . "$FACES/identify.jsonl") frames, faces named:" \
  "$(grep -o '"identity" *: *"[^"]*"' "$FACES/identify.jsonl" | sort | uniq -c | tr -s ' ' | tr '\n' ';')"

step "Done. Outputs:"
for style in "${STYLES[@]}"; do
  echo "  $OUT_DIR/sample-$style.png"
done
echo "  $OUT_DIR/sample-input.webm (the input clip)"
echo "  $OUT_DIR/sample-mosaic.webm"
echo "  $FACES/annotated.webm (facerecognize overlay)"
echo "  $FACES/identify.jsonl (one JSON line per frame)"
echo
echo "Next: scripts/run-tests.sh runs the test suite; $NEURALCL --help"
echo "lists the other subcommands (bench, models)."
