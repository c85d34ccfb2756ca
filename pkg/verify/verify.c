/* vimport verify: read-back hashing of a written target (see verify.h). */
#include "verify/verify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/fs.h>

#include "core/cleanup.h"
#include "core/log.h"

#define VERIFY_ALIGN 4096 /* O_DIRECT alignment that fits every logical block size */

static void cleanup_blkhash_ptr(struct blkhash **h) { blkhash_free(*h); }
#define CLEANUP_BLKHASH __attribute__((cleanup(cleanup_blkhash_ptr)))

static uint64_t round_down(uint64_t n, uint64_t m) { return n / m * m; }
static uint64_t round_up(uint64_t n, uint64_t m) { return (n + m - 1) / m * m; }
static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* blkhash returns errno values; turn one into a verr. */
static int verify_blkhash_error(struct verr *err, int e, const char *what)
{
  if (e == EINVAL)
    return verr_set(err, VERR_USAGE,
                    "%s: unknown digest or bad block size (block size must be a power of two "
                    "between 512 B and 64 MiB; digest an OpenSSL name such as sha256)",
                    what);
  if (e == ENOMEM)
    return verr_set(err, VERR_NOMEM, "%s: out of memory", what);
  return verr_sys(err, VERR_INTERNAL, e, "%s failed", what);
}

/* ---- read-back ---------------------------------------------------------------------- */

struct readback {
  const char *path;
  int fd;
  bool direct;
  unsigned char *buf; /* VERIFY_READ_SIZE bytes, VERIFY_ALIGN aligned */
  struct blkhash *h;
  struct verify_result *result;
  uint64_t zeros_from; /* bytes at and past this offset must be zeros; UINT64_MAX: none */
  size_t block_size;   /* to name the block of a non-zero byte */
};

static int readback_open(struct readback *rb, struct verr *err)
{
  rb->fd = open(rb->path, O_RDONLY | O_DIRECT | O_CLOEXEC);
  rb->direct = rb->fd >= 0;
  if (rb->fd == -1 && errno == EINVAL)
    rb->fd = open(rb->path, O_RDONLY | O_CLOEXEC);
  if (rb->fd == -1)
    return verr_sys(err, VERR_IO, errno, "cannot open %s to read it back", rb->path);
  if (!rb->direct)
    vlog_info("verify", "%s refuses O_DIRECT; reading it through the page cache after "
                        "dropping its cached pages", rb->path);
  return 0;
}

/* Some filesystems accept O_DIRECT at open and refuse it at read time. The O_DIRECT
 * descriptor stays open: verify_readback() owns and closes both. */
static int readback_go_buffered(struct readback *rb, struct verr *err)
{
  int fd = open(rb->path, O_RDONLY | O_CLOEXEC);
  if (fd == -1)
    return verr_sys(err, VERR_IO, errno, "cannot reopen %s for buffered reading", rb->path);
  rb->fd = fd;
  rb->direct = false;
  vlog_info("verify", "%s refuses O_DIRECT reads; reading through the page cache", rb->path);
  (void)posix_fadvise(rb->fd, 0, 0, POSIX_FADV_DONTNEED);
  return 0;
}

static int readback_check_size(struct readback *rb, uint64_t length, bool *is_file,
                               struct verr *err)
{
  struct stat st;
  if (fstat(rb->fd, &st) == -1)
    return verr_sys(err, VERR_IO, errno, "cannot stat %s", rb->path);
  uint64_t size;
  if (S_ISREG(st.st_mode)) {
    size = (uint64_t)st.st_size;
    *is_file = true;
  } else if (S_ISBLK(st.st_mode)) {
    if (ioctl(rb->fd, BLKGETSIZE64, &size) == -1)
      return verr_sys(err, VERR_IO, errno, "cannot read the size of %s", rb->path);
    *is_file = false;
  } else {
    return verr_set(err, VERR_USAGE, "%s is neither a regular file nor a block device: give "
                                     "the disk image or block volume to verify", rb->path);
  }
  if (size < length)
    return verr_set(err, VERR_IO,
                    "%s holds %llu bytes, fewer than the %llu bytes written: the target was "
                    "truncated or replaced; re-run the import",
                    rb->path, (unsigned long long)size, (unsigned long long)length);
  return 0;
}

/* Make sure what follows is read from storage: write back, then drop cached pages. */
static int readback_drop_cache(struct readback *rb, struct verr *err)
{
  if (fsync(rb->fd) == -1 && errno != EINVAL && errno != EROFS)
    return verr_sys(err, VERR_IO, errno, "fsync of %s before read-back failed", rb->path);
  (void)posix_fadvise(rb->fd, 0, 0, POSIX_FADV_DONTNEED); /* advice only */
  return 0;
}

static int readback_hash_zeros(struct readback *rb, uint64_t len, struct verr *err)
{
  int e = blkhash_zero(rb->h, len);
  if (e != 0)
    return verify_blkhash_error(err, e, "hashing a hole");
  if (rb->result)
    rb->result->hole_bytes += len;
  return 0;
}

/* Where the next read goes: straight into the hasher's batch when it is aligned for
 * O_DIRECT and has room (no copy, and the hashing threads start on it at once), else
 * into rb->buf. *cap is how many bytes may be read there. */
static int readback_dest(struct readback *rb, uint64_t left, void **dst, size_t *cap,
                         bool *into_hash, struct verr *err)
{
  void *hb;
  size_t room;
  int e = blkhash_buffer(rb->h, &hb, &room);
  if (e != 0)
    return verify_blkhash_error(err, e, "hashing read-back data");
  size_t want = (size_t)min_u64(left, round_down(room, VERIFY_ALIGN));
  *into_hash = (uintptr_t)hb % VERIFY_ALIGN == 0 && want > 0 &&
               round_up(want, VERIFY_ALIGN) <= room;
  *dst = *into_hash ? hb : rb->buf;
  *cap = *into_hash ? want : (size_t)min_u64(left, VERIFY_READ_SIZE);
  return 0;
}

/* Past the image the volume must read as zeros: the import grew the file with a hole. */
static int readback_check_zeros(const struct readback *rb, uint64_t pos, const void *buf,
                                size_t len, struct verr *err)
{
  if (pos + len <= rb->zeros_from)
    return 0;
  size_t skip = pos >= rb->zeros_from ? 0 : (size_t)(rb->zeros_from - pos);
  const unsigned char *p = (const unsigned char *)buf + skip;
  for (size_t i = 0; i < len - skip; i++) {
    if (p[i] == 0)
      continue;
    uint64_t at = pos + skip + i;
    return verr_set(err, VERR_VERIFY,
                    "byte %llu of %s (block %llu of %zu bytes) is not zero, past the end of "
                    "the %llu-byte image: the volume was written after the import, or the "
                    "storage returned other bytes; re-run the import",
                    (unsigned long long)at, rb->path, (unsigned long long)(at / rb->block_size),
                    rb->block_size, (unsigned long long)rb->zeros_from);
  }
  return 0;
}

static int readback_read_range(struct readback *rb, uint64_t start, uint64_t end,
                               struct verr *err)
{
  uint64_t pos = start;
  while (pos < end) {
    void *dst = NULL;
    size_t want = 0;
    bool into_hash = false;
    if (readback_dest(rb, end - pos, &dst, &want, &into_hash, err) < 0)
      return -1;
    size_t request = (size_t)round_up(want, VERIFY_ALIGN);
    ssize_t n = pread(rb->fd, dst, request, (off_t)pos);
    if (n == -1 && errno == EINTR)
      continue;
    if (n == -1 && errno == EINVAL && rb->direct) {
      if (readback_go_buffered(rb, err) == -1)
        return -1;
      continue;
    }
    if (n == -1)
      return verr_sys(err, VERR_IO, errno, "read of %s at offset %llu failed", rb->path,
                      (unsigned long long)pos);
    if (n == 0)
      return verr_set(err, VERR_IO, "%s ends at %llu bytes, before the %llu bytes written: "
                                    "the target was truncated; re-run the import",
                      rb->path, (unsigned long long)pos, (unsigned long long)end);
    size_t take = (size_t)n < want ? (size_t)n : want;
    if (readback_check_zeros(rb, pos, dst, take, err) == -1)
      return -1;
    int e = into_hash ? blkhash_commit(rb->h, take) : blkhash_update(rb->h, rb->buf, take);
    if (e != 0)
      return verify_blkhash_error(err, e, "hashing read-back data");
    if (rb->result)
      rb->result->bytes_read += take;
    pos += take;
  }
  return 0;
}

/* Where the next data starts at or after `pos` (`length` if only a hole is left);
 * `pos` itself when the filesystem cannot say. */
static int readback_next_data(struct readback *rb, uint64_t pos, uint64_t length,
                              uint64_t *data, bool *seek_works, struct verr *err)
{
  off_t d = lseek(rb->fd, (off_t)pos, SEEK_DATA);
  if (d >= 0) {
    *data = min_u64((uint64_t)d, length);
    return 0;
  }
  if (errno == ENXIO) {
    *data = length;
    return 0;
  }
  if (errno == EINVAL || errno == EOPNOTSUPP) {
    *seek_works = false;
    *data = pos;
    return 0;
  }
  return verr_sys(err, VERR_IO, errno, "cannot find the data of %s", rb->path);
}

static int readback_next_hole(struct readback *rb, uint64_t data, uint64_t length,
                              uint64_t *hole, struct verr *err)
{
  off_t h = lseek(rb->fd, (off_t)data, SEEK_HOLE);
  if (h == -1)
    return verr_sys(err, VERR_IO, errno, "cannot find the holes of %s", rb->path);
  *hole = min_u64((uint64_t)h, length);
  return 0;
}

/* Walk [start, length) as alternating holes and data. Boundaries are kept VERIFY_ALIGN
 * aligned for O_DIRECT: a partial page of hole next to data is read as data. */
static int readback_walk(struct readback *rb, uint64_t start, uint64_t length, bool is_file,
                         struct verr *err)
{
  bool seek_works = is_file;
  uint64_t pos = start;
  while (pos < length) {
    uint64_t data = pos, data_end = length;
    if (seek_works && readback_next_data(rb, pos, length, &data, &seek_works, err) == -1)
      return -1;
    uint64_t hole_end = data >= length ? length : round_down(data, VERIFY_ALIGN);
    hole_end = hole_end > pos ? hole_end : pos;
    if (hole_end > pos) {
      if (readback_hash_zeros(rb, hole_end - pos, err) == -1)
        return -1;
      pos = hole_end;
      continue;
    }
    if (seek_works) {
      if (readback_next_hole(rb, data, length, &data_end, err) == -1)
        return -1;
      data_end = min_u64(round_up(data_end, VERIFY_ALIGN), length);
    }
    if (readback_read_range(rb, pos, data_end, err) == -1)
      return -1;
    pos = data_end;
  }
  return 0;
}

/* Hash [0, V) and take its digest, then the rest; or [0, length) in one walk. */
static int readback_hash_all(struct readback *rb, uint64_t length, bool is_file,
                             struct verify_span *span, struct verr *err)
{
  if (span == NULL || span->image_length >= length)
    return readback_walk(rb, 0, length, is_file, err);
  if (readback_walk(rb, 0, span->image_length, is_file, err) == -1)
    return -1;
  int e = blkhash_snapshot(rb->h, span->image_md, &span->image_md_len);
  if (e != 0)
    return verify_blkhash_error(err, e, "hashing the image's bytes");
  if (span->zeros_after_image)
    rb->zeros_from = span->image_length;
  return readback_walk(rb, span->image_length, length, is_file, err);
}

int verify_readback_span(const char *path, uint64_t length, const struct blkhash_opts *opts,
                         struct verify_span *span, unsigned char *md, unsigned *md_len,
                         struct verify_result *result, struct verr *err)
{
  if (result)
    *result = (struct verify_result){0};
  CLEANUP_BLKHASH struct blkhash *h = NULL;
  int e = blkhash_new(opts, &h);
  if (e != 0)
    return verify_blkhash_error(err, e, "creating the read-back hasher");
  CLEANUP_FREE unsigned char *buf = NULL;
  if (posix_memalign((void **)&buf, VERIFY_ALIGN, VERIFY_READ_SIZE) != 0)
    return verr_set(err, VERR_NOMEM, "out of memory for the read-back buffer");

  struct readback rb = {.path = path, .fd = -1, .buf = buf, .h = h, .result = result,
                        .zeros_from = UINT64_MAX,
                        .block_size = opts && opts->block_size ? opts->block_size
                                                               : BLKHASH_DEFAULT_BLOCK_SIZE};
  if (readback_open(&rb, err) == -1)
    return -1;
  CLEANUP_CLOSE int fd_owner = rb.fd; /* readback_go_buffered() may swap rb.fd */
  bool is_file = false;
  int r = readback_check_size(&rb, length, &is_file, err);
  if (r == 0)
    r = readback_drop_cache(&rb, err);
  if (r == 0)
    r = readback_hash_all(&rb, length, is_file, span, err);
  if (rb.fd != fd_owner)
    close(rb.fd);
  if (result)
    result->direct_io = rb.direct;
  if (r == -1)
    return verr_prefix(err, "reading back %s", path);
  e = blkhash_final(h, md, md_len);
  if (e != 0)
    return verify_blkhash_error(err, e, "finishing the read-back hash");
  if (span != NULL && span->image_length >= length) {
    memcpy(span->image_md, md, *md_len);
    span->image_md_len = *md_len;
  }
  return 0;
}

int verify_readback(const char *path, uint64_t length, const struct blkhash_opts *opts,
                    unsigned char *md, unsigned *md_len, struct verify_result *result,
                    struct verr *err)
{
  return verify_readback_span(path, length, opts, NULL, md, md_len, result, err);
}

/* ---- block manifest --------------------------------------------------------------- */

struct blockmap_entry {
  uint64_t granule; /* block index >> shift */
  uint64_t fold;    /* XOR of the fingerprints of its non-zero blocks */
};

struct blockmap {
  size_t block_size;
  size_t max_entries;
  unsigned shift; /* a granule is 2^shift blocks */
  unsigned char zero_md[BLKHASH_MAX_MD_SIZE];
  unsigned zero_md_len;
  bool failed; /* an allocation failed in the callback: the map is incomplete */
  struct blockmap_entry *entries;
  size_t count, allocated;
};

struct zero_capture {
  unsigned char *md;
  unsigned *md_len;
};

static void capture_first_block(void *opaque, uint64_t index, const unsigned char *md,
                                unsigned md_len)
{
  struct zero_capture *c = opaque;
  if (index == 0) {
    memcpy(c->md, md, md_len);
    *c->md_len = md_len;
  }
}

/* H(zeros(block_size)): what blkhash reports for an all-zero block. */
static int blockmap_zero_digest(struct blockmap *m, const char *digest_name, struct verr *err)
{
  struct zero_capture cap = {m->zero_md, &m->zero_md_len};
  struct blkhash_opts opts = {
    .digest_name = digest_name,
    .block_size = m->block_size,
    .on_block = capture_first_block,
    .on_block_opaque = &cap,
  };
  CLEANUP_BLKHASH struct blkhash *h = NULL;
  unsigned char md[BLKHASH_MAX_MD_SIZE];
  unsigned md_len;
  int e = blkhash_new(&opts, &h);
  if (e == 0)
    e = blkhash_zero(h, m->block_size);
  if (e == 0)
    e = blkhash_final(h, md, &md_len);
  return e == 0 ? 0 : verify_blkhash_error(err, e, "creating the block manifest");
}

int blockmap_new(const char *digest_name, size_t block_size, size_t max_entries,
                 struct blockmap **out, struct verr *err)
{
  struct blockmap *m = calloc(1, sizeof *m);
  if (m == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory for the block manifest");
  m->block_size = block_size ? block_size : BLKHASH_DEFAULT_BLOCK_SIZE;
  m->max_entries = max_entries ? max_entries : BLOCKMAP_DEFAULT_MAX_ENTRIES;
  if (m->max_entries < 2)
    m->max_entries = 2;
  if (blockmap_zero_digest(m, digest_name, err) == -1) {
    blockmap_free(m);
    return -1;
  }
  *out = m;
  return 0;
}

void blockmap_attach(struct blockmap *m, struct blkhash_opts *opts)
{
  opts->on_block = blockmap_on_block;
  opts->on_block_opaque = m;
}

/* Double the granule: merge neighbours until the map has room again. Entries stay
 * sorted because merging keeps granule order. */
static void blockmap_coarsen(struct blockmap *m)
{
  while (m->count >= m->max_entries && m->shift < 63) {
    size_t out = 0;
    m->shift++;
    for (size_t i = 0; i < m->count; i++) {
      uint64_t g = m->entries[i].granule >> 1;
      if (out > 0 && m->entries[out - 1].granule == g) {
        m->entries[out - 1].fold ^= m->entries[i].fold;
      } else {
        m->entries[out].granule = g;
        m->entries[out].fold = m->entries[i].fold;
        out++;
      }
    }
    m->count = out;
  }
}

static bool blockmap_grow(struct blockmap *m)
{
  size_t n = m->allocated ? m->allocated * 2 : 1024;
  if (n > m->max_entries)
    n = m->max_entries;
  struct blockmap_entry *e = realloc(m->entries, n * sizeof *e);
  if (e == NULL)
    return false;
  m->entries = e;
  m->allocated = n;
  return true;
}

/* A block's fingerprint: its digest prefix, mixed with its index so that two equal
 * blocks swapped inside a granule still change the fold. */
static uint64_t block_fingerprint(uint64_t index, const unsigned char *md, unsigned md_len)
{
  uint64_t v = 0;
  memcpy(&v, md, md_len < sizeof v ? md_len : sizeof v);
  return v ^ (index * UINT64_C(0x9E3779B97F4A7C15));
}

void blockmap_on_block(void *opaque, uint64_t index, const unsigned char *md, unsigned md_len)
{
  struct blockmap *m = opaque;
  if (m->failed)
    return;
  if (md_len == m->zero_md_len && memcmp(md, m->zero_md, md_len) == 0)
    return;
  uint64_t fp = block_fingerprint(index, md, md_len);
  if (m->count > 0 && m->entries[m->count - 1].granule == index >> m->shift) {
    m->entries[m->count - 1].fold ^= fp;
    return;
  }
  if (m->count == m->max_entries)
    blockmap_coarsen(m);
  if (m->count > 0 && m->entries[m->count - 1].granule == index >> m->shift) {
    m->entries[m->count - 1].fold ^= fp;
    return;
  }
  if (m->count == m->allocated && !blockmap_grow(m)) {
    m->failed = true;
    return;
  }
  m->entries[m->count++] = (struct blockmap_entry){index >> m->shift, fp};
}

size_t blockmap_entries(const struct blockmap *m) { return m->count; }

uint64_t blockmap_granule_blocks(const struct blockmap *m) { return UINT64_C(1) << m->shift; }

void blockmap_free(struct blockmap *m)
{
  if (m == NULL)
    return;
  free(m->entries);
  free(m);
}

/* ---- comparison ------------------------------------------------------------------- */

/* Walks a map's entries as granules of 2^shift blocks (shift >= the map's own). */
struct granule_iter {
  const struct blockmap *m;
  unsigned extra; /* shift - m->shift */
  size_t pos;
};

static bool granule_next(struct granule_iter *it, uint64_t *granule, uint64_t *fold)
{
  if (it->pos >= it->m->count)
    return false;
  *granule = it->m->entries[it->pos].granule >> it->extra;
  *fold = 0;
  while (it->pos < it->m->count && it->m->entries[it->pos].granule >> it->extra == *granule)
    *fold ^= it->m->entries[it->pos++].fold;
  return true;
}

#define VERIFY_MAX_RANGES 6

struct diff_list {
  uint64_t block_size, length, blocks; /* blocks: count of blocks in `length` */
  uint64_t first[VERIFY_MAX_RANGES], last[VERIFY_MAX_RANGES];
  size_t shown;
  uint64_t more; /* ranges past the shown ones */
  bool open;     /* the last range may still grow */
  uint64_t open_first, open_last;
};

static void diff_close(struct diff_list *d)
{
  if (!d->open)
    return;
  if (d->shown < VERIFY_MAX_RANGES) {
    d->first[d->shown] = d->open_first;
    d->last[d->shown] = d->open_last;
    d->shown++;
  } else {
    d->more++;
  }
  d->open = false;
}

static void diff_add(struct diff_list *d, unsigned shift, uint64_t granule)
{
  uint64_t first = granule << shift;
  uint64_t last = ((granule + 1) << shift) - 1;
  if (d->blocks > 0 && last >= d->blocks)
    last = d->blocks - 1;
  if (d->open && first == d->open_last + 1) {
    d->open_last = last;
    return;
  }
  diff_close(d);
  d->open = true;
  d->open_first = first;
  d->open_last = last;
}

static void diff_walk(struct diff_list *d, const struct blockmap *a, const struct blockmap *b)
{
  unsigned shift = a->shift > b->shift ? a->shift : b->shift;
  struct granule_iter ia = {a, shift - a->shift, 0}, ib = {b, shift - b->shift, 0};
  uint64_t ga = 0, fa = 0, gb = 0, fb = 0;
  bool ha = granule_next(&ia, &ga, &fa), hb = granule_next(&ib, &gb, &fb);
  while (ha || hb) {
    if (ha && hb && ga == gb) {
      if (fa != fb)
        diff_add(d, shift, ga);
      ha = granule_next(&ia, &ga, &fa);
      hb = granule_next(&ib, &gb, &fb);
    } else if (ha && (!hb || ga < gb)) {
      diff_add(d, shift, ga);
      ha = granule_next(&ia, &ga, &fa);
    } else {
      diff_add(d, shift, gb);
      hb = granule_next(&ib, &gb, &fb);
    }
  }
  diff_close(d);
}

static void diff_format(const struct diff_list *d, char *out, size_t size)
{
  size_t used = 0;
  out[0] = '\0';
  for (size_t i = 0; i < d->shown && used < size; i++) {
    uint64_t byte_first = d->first[i] * d->block_size;
    uint64_t byte_last = (d->last[i] + 1) * d->block_size - 1;
    if (d->length > 0 && byte_last >= d->length)
      byte_last = d->length - 1;
    char blocks[48];
    if (d->first[i] == d->last[i])
      snprintf(blocks, sizeof blocks, "block %llu", (unsigned long long)d->first[i]);
    else
      snprintf(blocks, sizeof blocks, "blocks %llu-%llu", (unsigned long long)d->first[i],
               (unsigned long long)d->last[i]);
    int n = snprintf(out + used, size - used, "%s%s (bytes %llu-%llu)", i ? ", " : "", blocks,
                     (unsigned long long)byte_first, (unsigned long long)byte_last);
    used += n > 0 ? (size_t)n : 0;
  }
  if (d->more > 0 && used < size)
    snprintf(out + used, size - used, " and %llu more ranges", (unsigned long long)d->more);
}

int verify_compare(const unsigned char *written_md, const unsigned char *readback_md,
                   unsigned md_len, const struct blockmap *written,
                   const struct blockmap *readback, uint64_t length, struct verr *err)
{
  if (memcmp(written_md, readback_md, md_len) == 0)
    return 0;
  char whex[2 * BLKHASH_MAX_MD_SIZE + 1], rhex[2 * BLKHASH_MAX_MD_SIZE + 1];
  blkhash_hex(written_md, md_len, whex);
  blkhash_hex(readback_md, md_len, rhex);
  whex[16] = rhex[16] = '\0'; /* a prefix is enough to tell them apart in a log */
  const char *what = "the storage returned other bytes than were written: check the "
                     "volume's health (dmesg, storage backend) and re-run the import";
  bool usable = written && readback && !written->failed && !readback->failed &&
                written->block_size == readback->block_size;
  if (!usable)
    return verr_set(err, VERR_VERIFY,
                    "read-back block hash %s... differs from the write-time block hash %s... "
                    "(the differing blocks were not recorded); %s",
                    rhex, whex, what);
  struct diff_list d = {.block_size = written->block_size, .length = length};
  d.blocks = (length + d.block_size - 1) / d.block_size;
  diff_walk(&d, written, readback);
  if (d.shown == 0)
    return verr_set(err, VERR_VERIFY,
                    "read-back block hash %s... differs from the write-time block hash %s... "
                    "although every block matches: the hashed lengths differ; this is a bug, "
                    "please report it",
                    rhex, whex);
  char ranges[640];
  diff_format(&d, ranges, sizeof ranges);
  return verr_set(err, VERR_VERIFY,
                  "read-back block hash %s... differs from the write-time block hash %s...: "
                  "%s differ; %s",
                  rhex, whex, ranges, what);
}
