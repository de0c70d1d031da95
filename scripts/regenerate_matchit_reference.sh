#!/bin/sh
# Regenerate tests/reference/matchit/*.csv from R's MatchIt (needs R; not run by the tests).
# Install R with: apt-get update && apt-get install -y r-base-core r-cran-matchit r-cran-sandwich r-cran-lmtest
set -eu
cd "$(dirname "$0")/.."
Rscript scripts/matchit_reference.R tests/reference/matchit
echo "wrote tests/reference/matchit/ (commit the CSVs)"
