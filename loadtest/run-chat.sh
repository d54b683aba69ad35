#!/usr/bin/env bash
# The `chat` scenario through loadtest/run.sh (kept for the commands in the README).
exec "$(dirname "$0")/run.sh" chat "$@"
