#!/usr/bin/env bash
# test_sanitizers.sh with ThreadSanitizer: the same full commands, every thread of
# vimport running (HTTP transfer, source digest, digest tap, block hash and qcow2
# decompression workers), no data race reported. See test_sanitizers.sh.
SANITIZER=thread exec bash "$(dirname "$0")/test_sanitizers.sh" "$@"
