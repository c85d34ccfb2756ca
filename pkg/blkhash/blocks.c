/* Whole blocks hashed on the caller's threads: see blkhash.h. Also what the pool's
 * workers (pool.c) hash with, so there is one per-block digest loop. */
#include "blkhash.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/prefetch.h"
#include "core/zero.h"
#include "core/stream.h"
#include "internal.h"

struct blkhash_blocks {
  const EVP_MD *md_type;
  size_t block_size;
  unsigned md_len;
  unsigned char zero_md[BLKHASH_MAX_MD_SIZE]; /* H(zeros(block_size)) */
  EVP_MD_CTX *ctx;
};

int blkhash_blocks_from(const EVP_MD *md_type, size_t block_size, const unsigned char *zero_md,
                        struct blkhash_blocks **out)
{
  struct blkhash_blocks *b = calloc(1, sizeof *b);
  if (b == NULL)
    return ENOMEM;
  b->md_type = md_type;
  b->block_size = block_size;
  b->md_len = (unsigned)EVP_MD_size(md_type);
  b->ctx = EVP_MD_CTX_new();
  if (b->ctx == NULL) {
    free(b);
    return ENOMEM;
  }
  memcpy(b->zero_md, zero_md, b->md_len);
  *out = b;
  return 0;
}

int blkhash_digest(EVP_MD_CTX *ctx, const EVP_MD *type, const void *buf, size_t len,
                   unsigned char *md)
{
  const unsigned char *p = buf;
  if (EVP_DigestInit_ex(ctx, type, NULL) != 1)
    return EIO;
  for (size_t done = 0; done < len; done += PREFETCH_STEP) {
    prefetch_step(p, done, len);
    if (EVP_DigestUpdate(ctx, p + done, prefetch_step_len(done, len)) != 1)
      return EIO;
  }
  return EVP_DigestFinal_ex(ctx, md, NULL) == 1 ? 0 : EIO;
}

int blkhash_resolve_opts(const struct blkhash_opts *opts, const EVP_MD **type, size_t *block_size)
{
  const char *name = opts && opts->digest_name ? opts->digest_name : "sha256";
  size_t bs = opts && opts->block_size ? opts->block_size : BLKHASH_DEFAULT_BLOCK_SIZE;
  const EVP_MD *t = blkhash_digest_by_name(name);
  if (t == NULL || bs < 512 || bs > (64u << 20) || (bs & (bs - 1)) != 0 ||
      EVP_MD_size(t) < 0 || EVP_MD_size(t) > BLKHASH_MAX_MD_SIZE ||
      (EVP_MD_size(t) == 0 && t != EVP_md_null()))
    return EINVAL;
  *type = t;
  *block_size = bs;
  return 0;
}

int blkhash_blocks_new(const struct blkhash_opts *opts, struct blkhash_blocks **out)
{
  const EVP_MD *type;
  size_t bs;
  if (blkhash_resolve_opts(opts, &type, &bs) != 0)
    return EINVAL;
  unsigned char zero_md[BLKHASH_MAX_MD_SIZE];
  unsigned char *zeros = calloc(1, bs);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int r = zeros == NULL || ctx == NULL ? ENOMEM : blkhash_digest(ctx, type, zeros, bs, zero_md);
  free(zeros);
  EVP_MD_CTX_free(ctx);
  return r != 0 ? r : blkhash_blocks_from(type, bs, zero_md, out);
}

int blkhash_blocks_hash(struct blkhash_blocks *b, const void *buf, size_t nblocks,
                        unsigned char *mds)
{
  const unsigned char *block = buf;
  for (size_t i = 0; i < nblocks; i++, block += b->block_size) {
    unsigned char *md = mds + i * b->md_len;
    if (mem_is_zero(block, b->block_size))
      memcpy(md, b->zero_md, b->md_len);
    else if (blkhash_digest(b->ctx, b->md_type, block, b->block_size, md) != 0)
      return EIO;
  }
  return 0;
}

void blkhash_blocks_describe(const struct blkhash_blocks *b, const unsigned char *mds,
                             struct vsink_digests *d)
{
  *d = (struct vsink_digests){
    .md_type = b->md_type, .block_size = b->block_size, .md_len = b->md_len, .mds = mds,
  };
}

size_t blkhash_blocks_block_size(const struct blkhash_blocks *b)
{
  return b->block_size;
}

unsigned blkhash_blocks_md_len(const struct blkhash_blocks *b)
{
  return b->md_len;
}

void blkhash_blocks_free(struct blkhash_blocks *b)
{
  if (b == NULL)
    return;
  EVP_MD_CTX_free(b->ctx);
  free(b);
}
