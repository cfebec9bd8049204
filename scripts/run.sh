#!/usr/bin/env bash
# The main job: a real Bayesian training run on the default embedded setup.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v dotnet >/dev/null || { echo "The .NET SDK 10 is required (dotnet not on PATH)." >&2; exit 2; }
dotnet run -c Release --project samples/Posteriors.Cli -- "$@"
