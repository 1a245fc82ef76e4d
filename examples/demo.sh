#!/bin/sh
# examples/demo.sh: the main job: walks the connect-your-own-MCP-server flow
# with the ops that exist, printing what an operator would see.
set -eu
BUILD=${1:-build}
exec "$BUILD/mcplink" --policies policies run examples/demo.lua
