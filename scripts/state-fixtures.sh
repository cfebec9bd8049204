#!/usr/bin/env bash
# Writes one saved state of every kind, in the format this checkout writes, into
# tests/Posteriors.Runtime.Tests/Serialization/Fixtures (files named <Kind>.v<KindVersion>.state). Run it when a kind's
# KindVersion is raised, and commit the new files next to the old ones: the old ones keep proving that earlier
# files still load.
set -euo pipefail
cd "$(dirname "$0")/.."
POSTERIORS_WRITE_STATE_FIXTURES="$PWD/tests/Posteriors.Runtime.Tests/Serialization/Fixtures" \
  dotnet test tests/Posteriors.Runtime.Tests -c Release --nologo --filter "FullyQualifiedName~StateFixtureTests.WriteFixtures"
