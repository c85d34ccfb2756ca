/* vimport blkhash, internal: worker threads that hash runs of whole blocks for the
 * out-of-order hasher (unordered.c), so that hashing does not run on the decoder's
 * thread. Not a public header.
 *
 * The caller's bytes are copied into a job (the decoder reuses its buffer as soon as
 * the sink returns); a job holds up to `job_bytes` of consecutive blocks. Finished jobs
 * come back through hash_pool_reap(), in any order, on the caller's thread: the
 * caller's state (the frontier, the heap) is never touched by a worker. The threads
 * and the job life cycle are pkg/core/workq.
 * Memory: `jobs` buffers of `job_bytes`, fixed at creation.
 * Functions return 0 or a positive errno value (ENOMEM, EIO when OpenSSL fails), or
 * whatever the reap callback returned.
 */
#ifndef VIMPORT_BLKHASH_POOL_H
#define VIMPORT_BLKHASH_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

struct hash_pool;

/* Called once per hashed block, on the caller's thread. A non-zero return stops the
 * reaping and is returned by the pool function that reaped. */
typedef int (*hash_pool_reap_fn)(void *opaque, uint64_t block, const unsigned char *md);

struct hash_pool_opts {
  const EVP_MD *md_type;
  size_t block_size;
  const unsigned char *zero_md; /* H(zeros(block_size)): all-zero blocks are not hashed */
  unsigned threads;             /* >= 1 */
  size_t job_bytes;             /* a multiple of block_size */
  hash_pool_reap_fn reap;
  void *reap_opaque;
};

int hash_pool_new(const struct hash_pool_opts *opts, struct hash_pool **out);

/* Queue `nblocks` whole blocks starting at block index `block`, copied from `buf`.
 * Waits for a free job when every job is busy, reaping finished ones meanwhile. */
int hash_pool_add(struct hash_pool *p, uint64_t block, const unsigned char *buf, size_t nblocks);

/* Reap the jobs that finished. With `all`, first queue the job being filled and wait
 * until every job finished, so that every block added so far has been reaped. */
int hash_pool_reap(struct hash_pool *p, bool all);

/* Stop the workers and free everything; jobs not reaped are dropped. NULL is fine. */
void hash_pool_free(struct hash_pool *p);

#endif
