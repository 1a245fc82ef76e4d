#!/bin/sh
# examples/demo.sh: the main job: walks the connect-your-own-MCP-server flow
# on a fresh database, printing what an operator would see.
set -eu
BUILD=${1:-build}
dir=$(mktemp -d /tmp/mcplink-demo-XXXXXX)
trap 'rm -rf "$dir"' EXIT
"$BUILD/mcplink" --db "$dir/demo.db" --policies policies run examples/demo.lua
