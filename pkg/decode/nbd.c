/* vimport decode: the rows read through pkg/nbd, in guest order with holes skipped.
 *
 *   qemu_decoder        vmdk, vhd, vhdx, vdi that do not stream: their tables may sit
 *                       anywhere, so qemu-nbd reads a complete local copy (ctx->file)
 *   nbd_export_decoder  an NBD export: guest content already, read with block status
 */
#include "decode.h"

#include <stdio.h>

#include <openssl/evp.h>

#include "core/log.h"
#include "nbd/nbd.h"

/* Open the export, fit the target to its size and walk it into `out`. *g (free it) is
 * left for the caller's counters. */
static int guest_walk(const struct decode_ctx *ctx, const struct nbd_guest_opts *opts,
                      struct vsink *out, struct nbd_guest **g, struct decode_result *res,
                      struct verr *err)
{
  if (nbd_guest_open(opts, g, err) < 0)
    return -1;
  res->size = nbd_guest_size(*g);
  if (ctx->fit(ctx->fit_opaque, res->size, err) < 0)
    return -1;
  return nbd_guest_walk(*g, out, err);
}

static bool qemu_accepts(const struct sniff_result *s)
{
  return s->format == SNIFF_FORMAT_VMDK || s->format == SNIFF_FORMAT_VHD ||
         s->format == SNIFF_FORMAT_VDI || s->format == SNIFF_FORMAT_VHDX;
}

static int qemu_run(const struct decode_ctx *ctx, struct vsink *out, struct decode_result *res,
                    struct verr *err)
{
  struct nbd_guest_opts opts = { .file = ctx->file, .format = sniff_qemu_driver(ctx->sniff->format) };
  struct nbd_guest *g = NULL;
  int r = guest_walk(ctx, &opts, out, &g, res, err);
  if (g != NULL)
    vlog_info("nbd", "qemu-nbd -f %s: %llu bytes read, %llu zero bytes skipped", opts.format,
              (unsigned long long)nbd_guest_bytes_read(g), (unsigned long long)nbd_guest_zero_bytes(g));
  nbd_guest_free(g);
  return r;
}

/* ---- NBD exports --------------------------------------------------------------------- */

/* The source digest of an NBD export: its guest bytes, holes hashed as zeros without
 * being read (there are no "bytes as served" but the content itself). */
static int export_digest_data(struct vsink *s, uint64_t off, const void *buf, size_t len,
                              struct verr *err)
{
  (void)off;
  return EVP_DigestUpdate(s->state, buf, len) == 1 ? 0 : verr_set(err, VERR_INTERNAL, "sha256 failed");
}

static int export_digest_zero(struct vsink *s, uint64_t off, uint64_t len, struct verr *err)
{
  (void)off;
  static const unsigned char zeros[64 * 1024];
  for (uint64_t n; len > 0; len -= n) {
    n = len < sizeof zeros ? len : sizeof zeros;
    if (EVP_DigestUpdate(s->state, zeros, (size_t)n) != 1)
      return verr_set(err, VERR_INTERNAL, "sha256 failed");
  }
  return 0;
}

static const struct vsink_ops export_digest_ops = {
  .name = "export-digest",
  .data = export_digest_data,
  .zero = export_digest_zero,
};

static int export_walk(const struct decode_ctx *ctx, struct vsink *out, struct nbd_guest **g,
                       EVP_MD_CTX *md, struct decode_result *res, struct verr *err)
{
  struct nbd_guest_opts opts = { .uri = ctx->nbd_uri };
  struct vsink digest = { .ops = &export_digest_ops, .state = md };
  struct vsink tee;
  struct vsink_tee_state tee_state;
  vsink_tee_init(&tee, &tee_state, out, &digest);
  if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
    return verr_set(err, VERR_NOMEM, "cannot start a sha256 digest");
  return guest_walk(ctx, &opts, &tee, g, res, err);
}

static int export_run(const struct decode_ctx *ctx, struct vsink *out, struct decode_result *res,
                      struct verr *err)
{
  res->format = "raw";
  struct nbd_guest *g = NULL;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  int r = md != NULL ? export_walk(ctx, out, &g, md, res, err)
                     : verr_set(err, VERR_NOMEM, "cannot start a sha256 digest");
  unsigned char sum[EVP_MAX_MD_SIZE];
  unsigned sum_len = 0;
  if (r == 0 && EVP_DigestFinal_ex(md, sum, &sum_len) == 1) {
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    blkhash_hex(sum, sum_len, hex);
    snprintf(res->source_digest, sizeof res->source_digest, "sha256:%s", hex);
    res->source_bytes = nbd_guest_bytes_read(g);
    vlog_info("nbd", "export of %llu bytes: %llu read, %llu in holes never read; sha256:%s",
              (unsigned long long)res->size, (unsigned long long)nbd_guest_bytes_read(g),
              (unsigned long long)nbd_guest_zero_bytes(g), hex);
  }
  nbd_guest_free(g);
  EVP_MD_CTX_free(md);
  return r;
}

const struct decoder qemu_decoder = {
  .name        = "qemu-nbd",
  .accepts     = qemu_accepts,
  .decode      = qemu_run,
  .guest_order = true,
  .input       = DECODER_INPUT_FILE,
  .size        = DECODER_SIZE_AT_OPEN,
};

const struct decoder nbd_export_decoder = {
  .name        = "nbd",
  .accepts     = NULL,
  .decode      = export_run,
  .guest_order = true,
  .input       = DECODER_INPUT_NONE,
  .size        = DECODER_SIZE_AT_OPEN,
};
