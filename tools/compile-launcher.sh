#!/bin/sh
# The presets' compiler launcher (CMAKE_CXX_COMPILER_LAUNCHER): the compiler through ccache when
# ccache is installed (tools/debian-packages.txt lists it), the compiler itself otherwise.
#   depend mode: ccache hashes the headers the compiler's -MD file names instead of running the
#     preprocessor first, so a miss costs about what a plain compile does (a cold run is no slower);
#   base_dir and no hash_dir: paths are made relative to the source tree and the build folder is
#     not hashed, so a fresh clone in another folder hits the cache a previous clone filled.
# The cache is ccache's own (~/.cache/ccache, 5 GB at most); `ccache -s` shows how it does.
if command -v ccache >/dev/null 2>&1; then
  root=$(cd "$(dirname "$0")/.." && pwd)
  CCACHE_DEPEND=1 CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=1 exec ccache "$@"
fi
exec "$@"
