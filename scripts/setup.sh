#!/usr/bin/env bash
# Installs the Debian packages kvscope builds and tests with. Idempotent: it does nothing when
# everything is already there. The CUDA toolkit is not a Debian package here; when nvcc is
# present (e.g. /usr/local/cuda) the CUDA backend is built, otherwise it is skipped.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libeigen3-dev                       # CPU kernels, least-squares calibration fits
  libboost-dev libboost-program-options-dev  # MultiIndex/Intrusive (CCV cache), CLI options
  nlohmann-json3-dev                  # configs, traces, profiles, JSON outputs
  libbenchmark-dev                    # kernel benchmarks and calibration profiles
  libgtest-dev libgmock-dev           # tests
  qt6-base-dev qt6-charts-dev qt6-svg-dev libgl-dev  # kvscope-gui, report charts, PDF
  libqt6opengl6-dev                   # Qt6Charts' CMake package needs Qt6OpenGL; not pulled in without recommends
  xvfb xauth                          # GUI screenshot under a virtual display
  poppler-utils                       # pdftoppm: report PDFs rendered in tests
  libxml2-utils                       # xmllint: report HTML checked well-formed in tests
  fonts-dejavu-core                   # the font report PDFs are typeset in
  clang libclang-rt-14-dev            # libFuzzer targets for the trace readers
  clang-format
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi
