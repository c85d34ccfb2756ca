/* libFuzzer target for pkg/vmdk: arbitrary bytes through the streamOptimized VMDK decoder (tests/fuzz/stream_fuzz.h). */
#include "vmdk/vmdk.h"

#define STREAM_FUZZ_INFO struct vmdk_info
#define STREAM_FUZZ_OPTS struct vmdk_stream_opts
#define STREAM_FUZZ_PROBE vmdk_stream_probe
#define STREAM_FUZZ_DECODE vmdk_stream_decode
#include "stream_fuzz.h"
