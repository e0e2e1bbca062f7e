#!/bin/sh
# Smoke test: runs every launch line in PIPELINES_DIR/*.txt to EOS with
# gst-launch-1.0 -e under a timeout.
#
#   test-pipelines.sh PIPELINES_DIR
#
# Each file holds one launch line; lines starting with # are comments.
# Placeholders: $OUT (a fresh temporary directory per pipeline), $MEDIA
# (the source tree's media/), $CONFIG (the source tree's config/), $SHARED
# (the shared data directory: $NCL_SHARED_DIR, else the source tree's
# ../shared), $FACE_GALLERY (a face gallery written at run time, listing
# people of $SHARED's example photos by absolute path: lin_manuel_miranda,
# obama, biden); the source tree is $NCL_SOURCE_DIR, else
# PIPELINES_DIR/..  A pipeline fails if gst-launch fails or times out, or if
# it writes to $OUT and leaves no non-empty file there.  Files whose name
# contains "webcam" are skipped, and so are pipelines that read a $MEDIA or
# $SHARED file that does not exist, and pipelines with facerecognize when
# the face models are not found in $NEURALCL_MODEL_PATH or
# $XDG_DATA_HOME/neuralcl/models (`neuralcl models fetch`).
#
# Prints one line per pipeline and "N passed, M failed"; exits 1 on any
# failure, 77 (skip) when nothing ran.
set -u

dir=${1:?usage: test-pipelines.sh PIPELINES_DIR}
source_dir=${NCL_SOURCE_DIR:-$(cd "$dir/.." && pwd)}
media=$source_dir/media
config=$source_dir/config
shared=${NCL_SHARED_DIR:-$source_dir/../shared}
limit=${NCL_PIPELINE_TIMEOUT:-300}

# An empty system plugin path (as the C tests use) would hide videotestsrc
# and friends; the build's plugin dir in GST_PLUGIN_PATH still comes first.
if [ -z "${GST_PLUGIN_SYSTEM_PATH_1_0:-}" ]; then
  unset GST_PLUGIN_SYSTEM_PATH_1_0
fi

if ! gst-inspect-1.0 styletransfer >/dev/null 2>&1; then
  echo "FAIL: no styletransfer element" \
    "(GST_PLUGIN_PATH_1_0=${GST_PLUGIN_PATH_1_0:-})"
  echo "0 passed, 1 failed"
  exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ncl-pipelines.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

# The face gallery for $FACE_GALLERY: photos from $SHARED by absolute path
# (its descriptor cache goes beside it, in $tmp).
examples=$shared/data/faces/face_recognition/examples
face_gallery=$tmp/faces-gallery.yaml
{
  echo "# written by test-pipelines.sh"
  echo "identities:"
  for person in lin_manuel_miranda:lin-manuel-miranda.png obama:obama.jpg \
    biden:biden.jpg; do
    echo "  - name: ${person%%:*}"
    echo "    images: [\"$examples/${person#*:}\"]"
  done
} >"$face_gallery"

# Whether the face models are where the element looks (the installed
# datadir aside).
face_models=
old_ifs=$IFS
IFS=:
for d in ${NEURALCL_MODEL_PATH:-} "${XDG_DATA_HOME:-$HOME/.local/share}/neuralcl/models"; do
  if [ -n "$d" ] && [ -e "$d/face_recognition.yaml" ]; then
    face_models=$d
  fi
done
IFS=$old_ifs

passed=0
failed=0

for file in "$dir"/*.txt; do
  [ -e "$file" ] || continue
  name=$(basename "$file" .txt)
  case $name in
    *webcam*)
      echo "SKIP $name (needs a camera)"
      continue
      ;;
  esac

  line=$(grep -v '^[[:space:]]*#' "$file" | grep -v '^[[:space:]]*$' |
    tr '\n' ' ')
  if [ -z "$line" ]; then
    echo "FAIL $name: no launch line"
    failed=$((failed + 1))
    continue
  fi

  out=$tmp/$name
  mkdir -p "$out"
  launch=$(printf '%s\n' "$line" | sed -e "s|\$OUT|$out|g" \
    -e "s|\$MEDIA|$media|g" -e "s|\$CONFIG|$config|g" \
    -e "s|\$SHARED|$shared|g" -e "s|\$FACE_GALLERY|$face_gallery|g")

  # inputs from media/ or ../shared that are not there: skip rather than
  # fail
  missing=
  set -f
  for word in $line; do
    # shellcheck disable=SC2016
    case $word in
      *'$MEDIA/'*)
        path=$media/${word#*\$MEDIA/}
        [ -e "$path" ] || missing="$missing $path"
        ;;
      *'$SHARED/'*)
        path=$shared/${word#*\$SHARED/}
        [ -e "$path" ] || missing="$missing $path"
        ;;
      *'$FACE_GALLERY'*)
        [ -e "$examples" ] || missing="$missing $examples"
        ;;
    esac
  done
  set +f
  if [ -n "$missing" ]; then
    echo "SKIP $name (missing input:$missing)"
    continue
  fi
  case $line in
    *facerecognize*)
      if [ -z "$face_models" ]; then
        echo "SKIP $name (no face models: run \`neuralcl models fetch\`)"
        continue
      fi
      ;;
  esac

  # one word per argument, as a shell would split the line (so paths with
  # spaces do not work); no globbing of the caps' brackets
  start=$(date +%s)
  set -f
  # shellcheck disable=SC2086
  timeout "$limit" gst-launch-1.0 -e $launch >"$out.log" 2>&1
  rc=$?
  set +f
  secs=$(($(date +%s) - start))

  reason=
  if [ $rc -eq 124 ]; then
    reason="timed out after ${limit} s"
  elif [ $rc -ne 0 ]; then
    reason="gst-launch-1.0 exited with $rc"
  else
    # shellcheck disable=SC2016
    case $line in
      *'$OUT'*)
        if [ -z "$(find "$out" -type f -size +0 | head -n 1)" ]; then
          reason="no output file in \$OUT"
        fi
        ;;
    esac
  fi

  if [ -z "$reason" ]; then
    echo "PASS $name (${secs} s)"
    passed=$((passed + 1))
  else
    echo "FAIL $name: $reason"
    echo "  gst-launch-1.0 -e $launch"
    tail -n 15 "$out.log" | sed 's/^/  | /'
    failed=$((failed + 1))
  fi
done

echo "$passed passed, $failed failed"
if [ $failed -gt 0 ]; then
  exit 1
fi
if [ $passed -eq 0 ]; then
  exit 77
fi
exit 0
