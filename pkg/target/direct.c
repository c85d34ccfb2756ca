/* vimport target: the O_DIRECT writer (see internal.h).
 *
 * Buffers form a ring. The caller fills bufs[queued % DIRECT_BUFS] and hands it on by
 * advancing `queued`; the thread writes bufs[written % DIRECT_BUFS] and advances
 * `written`. A buffer is the caller's while its index is `queued`, the thread's while
 * it lies in [written, queued).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/hugebuf.h"
#include "core/log.h"

struct direct_buf {
  unsigned char *data; /* DIRECT_BUF_SIZE bytes, DIRECT_ALIGN aligned */
  uint64_t offset;     /* target offset of data[0] */
  size_t len;
};

struct direct_writer {
  const char *path;
  int fd;          /* O_DIRECT, owned */
  int buffered_fd; /* borrowed: for a filesystem that refuses O_DIRECT writes */
  bool refused;    /* a write with O_DIRECT came back EINVAL: the thread's only */
  struct direct_buf bufs[DIRECT_BUFS];
  unsigned char *arena; /* every buf's data: DIRECT_BUFS * DIRECT_BUF_SIZE (core/hugebuf.h) */

  pthread_mutex_t lock;
  pthread_cond_t work_ready; /* queued advanced, or stopping */
  pthread_cond_t work_done;  /* written advanced */
  uint64_t queued, written;  /* under lock */
  bool stopping;             /* under lock */
  int error;                 /* under lock: the first write's errno, 0 if none */
  uint64_t error_offset;
  size_t error_len;
  pthread_t thread;
  bool started;
};

bool direct_writer_accepts(uint64_t offset, size_t len)
{
  return offset % DIRECT_ALIGN == 0 && len % DIRECT_ALIGN == 0 && len > 0;
}

/* pwrite all of `b` to `fd`. Returns 0 or an errno value. */
static int write_all(int fd, const struct direct_buf *b)
{
  size_t done = 0;
  while (done < b->len) {
    ssize_t n = pwrite(fd, b->data + done, b->len - done, (off_t)(b->offset + done));
    if (n == -1 && errno == EINTR)
      continue;
    if (n == -1)
      return errno;
    if (n == 0)
      return EIO;
    done += (size_t)n;
  }
  return 0;
}

static int direct_write_buf(struct direct_writer *w, const struct direct_buf *b)
{
  if (!w->refused) {
    int e = write_all(w->fd, b);
    if (e != EINVAL)
      return e;
    w->refused = true;
    vlog_info("target", "%s refuses O_DIRECT writes; writing through the page cache", w->path);
  }
  return write_all(w->buffered_fd, b);
}

static void *direct_writer_main(void *opaque)
{
  struct direct_writer *w = opaque;
  pthread_mutex_lock(&w->lock);
  for (;;) {
    while (w->written == w->queued && !w->stopping)
      pthread_cond_wait(&w->work_ready, &w->lock);
    if (w->written == w->queued)
      break; /* stopping, nothing left */
    struct direct_buf *b = &w->bufs[w->written % DIRECT_BUFS];
    bool skip = w->error != 0; /* after a failure the rest is moot */
    pthread_mutex_unlock(&w->lock);
    int e = skip ? 0 : direct_write_buf(w, b);
    pthread_mutex_lock(&w->lock);
    if (e != 0 && w->error == 0) {
      w->error = e;
      w->error_offset = b->offset;
      w->error_len = b->len;
    }
    w->written++;
    pthread_cond_broadcast(&w->work_done);
  }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

/* Lock held. */
static int direct_error(const struct direct_writer *w, struct verr *err)
{
  return verr_sys(err, VERR_IO, w->error, "write of %zu bytes at offset %llu to %s failed",
                  w->error_len, (unsigned long long)w->error_offset, w->path);
}

static struct direct_buf *filling(struct direct_writer *w)
{
  return &w->bufs[w->queued % DIRECT_BUFS];
}

/* Hand the filling buffer to the thread and wait until the next one is free. Returns 0,
 * or -1 with the first write error. */
static int direct_submit(struct direct_writer *w, struct verr *err)
{
  pthread_mutex_lock(&w->lock);
  if (filling(w)->len > 0) {
    w->queued++;
    pthread_cond_signal(&w->work_ready);
  }
  while (w->queued - w->written >= DIRECT_BUFS && w->error == 0)
    pthread_cond_wait(&w->work_done, &w->lock);
  int r = w->error != 0 ? direct_error(w, err) : 0;
  pthread_mutex_unlock(&w->lock);
  filling(w)->len = 0;
  return r;
}

int direct_writer_write(struct direct_writer *w, uint64_t offset, const void *buf, size_t len,
                        struct verr *err)
{
  const unsigned char *p = buf;
  while (len > 0) {
    struct direct_buf *b = filling(w);
    if (b->len > 0 && (b->offset + b->len != offset || b->len == DIRECT_BUF_SIZE)) {
      if (direct_submit(w, err) < 0)
        return -1;
      b = filling(w);
    }
    if (b->len == 0)
      b->offset = offset;
    size_t n = DIRECT_BUF_SIZE - b->len < len ? DIRECT_BUF_SIZE - b->len : len;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    p += n;
    offset += n;
    len -= n;
  }
  return 0;
}

int direct_writer_drain(struct direct_writer *w, struct verr *err)
{
  if (direct_submit(w, err) < 0)
    return -1;
  pthread_mutex_lock(&w->lock);
  while (w->written != w->queued)
    pthread_cond_wait(&w->work_done, &w->lock);
  int r = w->error != 0 ? direct_error(w, err) : 0;
  pthread_mutex_unlock(&w->lock);
  return r;
}

void direct_writer_free(struct direct_writer *w)
{
  if (w == NULL)
    return;
  if (w->started) {
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_signal(&w->work_ready);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
  }
  hugebuf_free(w->arena, DIRECT_BUFS * DIRECT_BUF_SIZE);
  if (w->fd >= 0)
    close(w->fd);
  pthread_mutex_destroy(&w->lock);
  pthread_cond_destroy(&w->work_ready);
  pthread_cond_destroy(&w->work_done);
  free(w);
}

struct direct_writer *direct_writer_new(const char *path, int buffered_fd)
{
  struct direct_writer *w = calloc(1, sizeof *w);
  if (w == NULL)
    return NULL;
  w->path = path;
  w->buffered_fd = buffered_fd;
  pthread_mutex_init(&w->lock, NULL);
  pthread_cond_init(&w->work_ready, NULL);
  pthread_cond_init(&w->work_done, NULL);
  /* No O_EXCL: the caller's descriptor holds a block device's exclusive claim already. */
  w->fd = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
  /* hugebuf aligns to 4096 at least, a multiple of DIRECT_ALIGN. */
  w->arena = w->fd >= 0 ? hugebuf_alloc(DIRECT_BUFS * DIRECT_BUF_SIZE) : NULL;
  bool ok = w->arena != NULL;
  for (size_t i = 0; ok && i < DIRECT_BUFS; i++)
    w->bufs[i].data = w->arena + i * DIRECT_BUF_SIZE;
  if (ok)
    ok = pthread_create(&w->thread, NULL, direct_writer_main, w) == 0;
  w->started = ok;
  if (!ok) {
    direct_writer_free(w);
    return NULL;
  }
  return w;
}
