/* vimport blkhash, internal: what the hashers (blkhash.c, unordered.c, pool.c,
 * blocks.c) share. Not public: the contract is blkhash.h. */
#ifndef VIMPORT_BLKHASH_INTERNAL_H
#define VIMPORT_BLKHASH_INTERNAL_H

#include <stddef.h>

#include <openssl/evp.h>

/* H(buf[0..len)) into md with `ctx`, prefetching ahead (core/prefetch.h): the blocks
 * are often not in this core's cache. Returns 0 or EIO. */
int blkhash_digest(EVP_MD_CTX *ctx, const EVP_MD *type, const void *buf, size_t len,
                   unsigned char *md);

/* The digest and block size `opts` asks for (NULL and zeros mean the defaults), checked
 * as blkhash.h says. Returns 0 or EINVAL. */
struct blkhash_opts;
int blkhash_resolve_opts(const struct blkhash_opts *opts, const EVP_MD **type, size_t *block_size);
/* An OpenSSL digest by name, and "null" (EVP_md_null: hashes nothing, as blksum's). */
const EVP_MD *blkhash_digest_by_name(const char *name);

/* A blkhash_blocks (blkhash.h) for a digest already looked up and its zero digest. */
struct blkhash_blocks;
int blkhash_blocks_from(const EVP_MD *md_type, size_t block_size, const unsigned char *zero_md,
                        struct blkhash_blocks **out);

#endif
