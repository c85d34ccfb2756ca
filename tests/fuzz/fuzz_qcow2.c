/* libFuzzer target for pkg/qcow2: arbitrary bytes through both readers.
 *
 * The stream decoder reads the input through a non-seekable reader with a small window
 * (4 KiB, so the drop/re-read path runs) and a pread callback over the same bytes. The
 * file reader opens the input from a memfd. Invariants checked: every extent lies inside
 * the virtual size; on success the stream's extents add up to exactly the virtual size
 * and the file reader's extents are contiguous from 0 to the virtual size (each guest
 * byte exactly once); a failure always has a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "qcow2/qcow2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "mem_reader.h"

static int mem_pread(void *opaque, void *buf, size_t len, uint64_t off, struct verr *err)
{
  struct mem_source *m = opaque;
  if (off > m->size || len > m->size - off)
    return verr_set(err, VERR_SOURCE, "re-read past the end");
  memcpy(buf, m->data + off, len);
  return 0;
}

struct count_sink {
  uint64_t virtual_size;
  uint64_t covered;
  uint64_t next; /* in-order readers: where the next extent must start */
  int in_order;
};

static void check_extent(struct count_sink *s, uint64_t off, uint64_t len)
{
  if (len == 0 || off > s->virtual_size || len > s->virtual_size - off)
    abort();
  if (s->in_order && off != s->next)
    abort();
  s->next = off + len;
  s->covered += len;
}

static int count_data(struct vsink *vs, uint64_t off, const void *buf, size_t len,
                      struct verr *err)
{
  (void)buf, (void)err;
  check_extent(vs->state, off, len);
  return 0;
}

static int count_zero(struct vsink *vs, uint64_t off, uint64_t len, struct verr *err)
{
  (void)err;
  check_extent(vs->state, off, len);
  return 0;
}

static const struct vsink_ops count_ops = { .name = "fuzz-count", .data = count_data,
                                            .zero = count_zero };

static uint64_t header_virtual_size(const uint8_t *data, size_t size)
{
  uint64_t v = 0;
  for (size_t i = 24; i < 32 && i < size; i++)
    v = v << 8 | data[i];
  return v;
}

static void fuzz_stream(const uint8_t *data, size_t size)
{
  struct mem_source m = { data, size, 0 };
  struct vreader in = { &(struct vreader_ops){ .name = "fuzz-mem", .read = mem_read }, &m };
  struct count_sink s = { .virtual_size = header_virtual_size(data, size) };
  struct vsink out = { &count_ops, &s };
  struct mem_source again = { data, size, 0 };
  struct qcow2_stream_opts opts = { .window_bytes = 4096, .table_bytes = 1 << 20,
                                    .pread = mem_pread, .pread_opaque = &again };
  struct qcow2_info info;
  struct verr err = { 0 };
  if (qcow2_stream_decode(&in, &out, &opts, &info, &err) < 0) {
    if (err.message[0] == '\0')
      abort();
    return;
  }
  if (s.covered != info.virtual_size || info.source_bytes != size)
    abort();
}

static void fuzz_file(const uint8_t *data, size_t size)
{
  int fd = memfd_create("fuzz-qcow2", MFD_CLOEXEC);
  if (fd < 0)
    return;
  if (write(fd, data, size) != (ssize_t)size) {
    close(fd);
    return;
  }
  struct qcow2_file *f;
  struct verr err = { 0 };
  if (qcow2_file_open(fd, &f, &err) == 0) {
    struct count_sink s = { .virtual_size = qcow2_virtual_size(f), .in_order = 1 };
    struct vsink out = { &count_ops, &s };
    if (qcow2_file_read_guest(f, &out, &err) == 0 && s.next != s.virtual_size)
      abort();
    qcow2_file_free(f);
  }
  if (err.code != VERR_OK && err.message[0] == '\0')
    abort();
  close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  fuzz_stream(data, size);
  fuzz_file(data, size);
  return 0;
}
