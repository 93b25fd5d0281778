#!/usr/bin/env bash
# Installs what pim needs (Debian 12), builds it, and runs the whole test suite:
# the C++ tests through ctest and the Python tests of tools/qat and tools/pimcal through pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
bash tools/build.sh

echo "== C++ tests (ctest)"
ctest --test-dir build --output-on-failure -j "$(nproc)" --timeout 600

echo "== Python tests (pytest)"
/usr/bin/python3 -m pytest -q -p no:cacheprovider tools/qat/tests tools/pimcal/tests
