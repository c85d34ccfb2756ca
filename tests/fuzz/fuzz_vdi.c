/* libFuzzer target for pkg/vdi: arbitrary bytes through the VDI decoder (tests/fuzz/stream_fuzz.h). */
#include "vdi/vdi.h"

#define STREAM_FUZZ_INFO struct vdi_info
#define STREAM_FUZZ_OPTS struct vdi_stream_opts
#define STREAM_FUZZ_PROBE vdi_stream_probe
#define STREAM_FUZZ_DECODE vdi_stream_decode
#include "stream_fuzz.h"
