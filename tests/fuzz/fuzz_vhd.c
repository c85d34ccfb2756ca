/* libFuzzer target for pkg/vhd: arbitrary bytes through the dynamic VHD decoder (tests/fuzz/stream_fuzz.h). */
#include "vhd/vhd.h"

#define STREAM_FUZZ_INFO struct vhd_info
#define STREAM_FUZZ_OPTS struct vhd_stream_opts
#define STREAM_FUZZ_PROBE vhd_stream_probe
#define STREAM_FUZZ_DECODE vhd_stream_decode
#include "stream_fuzz.h"
