#!/bin/bash
# The first command of the README: installs the Debian 12 packages, builds
# gst-neuralcl in ./build (reused when present) and runs the main job on the
# bundled defaults:
#   media/sample.jpg  -> out/sample-mosaic.png, out/sample-candy.png
#   a 3-second clip   -> out/sample-input.webm -> out/sample-mosaic.webm
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

step "Done. Outputs:"
for style in "${STYLES[@]}"; do
  echo "  $OUT_DIR/sample-$style.png"
done
echo "  $OUT_DIR/sample-input.webm (the input clip)"
echo "  $OUT_DIR/sample-mosaic.webm"
echo
echo "Next: scripts/run-tests.sh runs the test suite; $NEURALCL --help"
echo "lists the other subcommands (bench, models)."
