/* The gcs source's pure parts: CRC-32C (pkg/core/crc32c.h) against RFC 3720's vectors,
 * and the parsers of pkg/source/gcs.h (URL, object metadata, key file, token answer). The
 * transfer itself is tests/e2e/test_gcs_*.sh, against a stand-in server. */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <string.h>

#include "core/crc32c.h"
#include "source/gcs.h"

/* RFC 3720 appendix B.4: 32 bytes each; the CRC as the RFC's bytes little-endian */
Test(crc32c, rfc3720_vectors)
{
  unsigned char zeros[32] = { 0 }, ones[32], inc[32], dec[32];
  memset(ones, 0xff, sizeof ones);
  for (int i = 0; i < 32; i++) {
    inc[i] = (unsigned char)i;
    dec[i] = (unsigned char)(31 - i);
  }
  cr_assert_eq(crc32c_update(0, zeros, 32), 0x8a9136aau);
  cr_assert_eq(crc32c_update(0, ones, 32), 0x62a8ab43u);
  cr_assert_eq(crc32c_update(0, inc, 32), 0x46dd794eu);
  cr_assert_eq(crc32c_update(0, dec, 32), 0x113fdb5cu);
  cr_assert_eq(crc32c_update(0, "123456789", 9), 0xe3069283u); /* the check value */
  cr_assert_eq(crc32c_update_portable(0, inc, 32), 0x46dd794eu);
  cr_assert_eq(crc32c_update(0, "", 0), 0u);
}

/* Fed in pieces of every length and alignment, the instruction and the table agree. */
Test(crc32c, incremental_and_unaligned_agree)
{
  unsigned char buf[4099];
  for (size_t i = 0; i < sizeof buf; i++)
    buf[i] = (unsigned char)(i * 131 + 7);
  uint32_t whole = crc32c_update_portable(0, buf, sizeof buf);
  for (size_t cut = 0; cut < 40; cut++) {
    uint32_t c = crc32c_update(0, buf, cut);
    c = crc32c_update(c, buf + cut, sizeof buf - cut);
    cr_assert_eq(c, whole, "cut at %zu", cut);
  }
  for (size_t off = 1; off < 9; off++)
    cr_assert_eq(crc32c_update(0, buf + off, 1000),
                 crc32c_update_portable(0, buf + off, 1000), "offset %zu", off);
}

Test(gcs, locations)
{
  struct gcs_location l;
  struct verr err = { 0 };
  cr_assert_eq(gcs_parse_location("gs://bkt/dir/disk.qcow2", &l, &err), 0, "%s", err.message);
  cr_assert_str_eq(l.base, "https://storage.googleapis.com");
  cr_assert_str_eq(l.bucket, "bkt");
  cr_assert_str_eq(l.object, "dir/disk.qcow2");
  cr_assert_eq(gcs_parse_location("https://127.0.0.1:4443/b/o.img", &l, &err), 0);
  cr_assert_str_eq(l.base, "https://127.0.0.1:4443");
  cr_assert_str_eq(l.bucket, "b");
  cr_assert_str_eq(l.object, "o.img");
  const char *bad[] = { "gs://", "gs://bucket", "gs://bucket/", "gs:///object",
                        "https://host/bucket", "https://u:p@host/b/o", "ftp://h/b/o",
                        "gs://b/o?generation=1", "https:///b/o" };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    err = (struct verr){ 0 };
    cr_assert_eq(gcs_parse_location(bad[i], &l, &err), -1, "%s was taken", bad[i]);
    cr_assert_eq(err.code, VERR_USAGE);
    cr_assert(strstr(err.message, "p@") == NULL, "%s: %s", bad[i], err.message);
  }
}

Test(gcs, object_metadata_as_google_sends_it)
{
  const char *doc = "{\"kind\":\"storage#object\",\"generation\":\"1700000000123456\","
                    "\"size\":\"9\",\"crc32c\":\"4waSgw==\",\"md5Hash\":"
                    "\"JfnnlDI7RTiF9RgfG2JNCw==\"}";
  struct gcs_object_meta m;
  struct verr err = { 0 };
  cr_assert_eq(gcs_parse_object_meta(doc, strlen(doc), &m, &err), 0, "%s", err.message);
  cr_assert_eq(m.generation, 1700000000123456LL);
  cr_assert_eq(m.size, 9);
  cr_assert(m.has_crc32c && m.has_md5);
  cr_assert_eq(m.crc32c, crc32c_update(0, "123456789", 9)); /* 4waSgw== is e3069283 */
  unsigned char md5[16];
  unsigned n;
  EVP_Digest("123456789", 9, md5, &n, EVP_md5(), NULL);
  cr_assert_eq(memcmp(md5, m.md5, 16), 0);
  const char *composite = "{\"generation\":\"1\",\"size\":\"0\",\"crc32c\":\"AAAAAA==\"}";
  cr_assert_eq(gcs_parse_object_meta(composite, strlen(composite), &m, &err), 0);
  cr_assert(m.has_crc32c && !m.has_md5);
}

Test(gcs, object_metadata_refused)
{
  const char *bad[] = {
    "{\"size\":\"1\"}",                                        /* no generation */
    "{\"generation\":\"1\"}",                                  /* no size */
    "{\"generation\":\"-1\",\"size\":\"1\"}",
    "{\"generation\":\"99999999999999999999\",\"size\":\"1\"}", /* past int64 */
    "{\"generation\":\"1\",\"size\":\"1\",\"crc32c\":\"AAAA\"}", /* 3 bytes */
    "{\"generation\":\"1\",\"size\":\"1\",\"md5Hash\":\"AAAAAA==\"}",
    "{\"generation\":\"1\",\"size\":\"1\",\"crc32c\":\"AA=A\"}",
    "[1]", "",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct gcs_object_meta m;
    struct verr err = { 0 };
    cr_assert_eq(gcs_parse_object_meta(bad[i], strlen(bad[i]), &m, &err), -1, "%s", bad[i]);
  }
}

Test(gcs, key_file_and_its_secret_stays_out_of_messages)
{
  const char *good = "{\"type\":\"service_account\",\"client_email\":\"a@p.iam.gserviceaccount"
                     ".com\",\"private_key\":\"-----BEGIN PRIVATE KEY-----\\nSECRETBYTES\\n"
                     "-----END PRIVATE KEY-----\\n\"}";
  struct gcs_key k;
  struct verr err = { 0 };
  cr_assert_eq(gcs_parse_key(good, strlen(good), &k, &err), 0, "%s", err.message);
  cr_assert_str_eq(k.token_uri, "https://oauth2.googleapis.com/token");
  cr_assert(strstr(k.private_key_pem, "SECRETBYTES") != NULL);
  gcs_key_free(&k);
  const char *user = "{\"type\":\"authorized_user\",\"client_secret\":\"SECRETBYTES\"}";
  cr_assert_eq(gcs_parse_key(user, strlen(user), &k, &err), -1);
  cr_assert(strstr(err.message, "service_account") != NULL, "%s", err.message);
  const char *quote = "{\"type\":\"service_account\",\"client_email\":\"a\\\"b\",\"private_key\":"
                      "\"-----BEGIN SECRETBYTES\"}";
  cr_assert_eq(gcs_parse_key(quote, strlen(quote), &k, &err), -1);
  const char *broken = "{\"type\":\"service_account\",\"private_key\":\"SECRETBYTES";
  cr_assert_eq(gcs_parse_key(broken, strlen(broken), &k, &err), -1);
  cr_assert(strstr(err.message, "SECRETBYTES") == NULL, "%s", err.message);
}

Test(gcs, token_answers)
{
  char tok[GCS_TOKEN_MAX];
  int64_t exp = 0;
  struct verr err = { 0 };
  const char *ok = "{\"access_token\":\"ya29.abc\",\"expires_in\":3599,\"token_type\":\"Bearer\"}";
  cr_assert_eq(gcs_parse_token(ok, strlen(ok), tok, sizeof tok, &exp, &err), 0, "%s", err.message);
  cr_assert_str_eq(tok, "ya29.abc");
  cr_assert_eq(exp, 3599);
  const char *no = "{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT Signature.\"}";
  cr_assert_eq(gcs_parse_token(no, strlen(no), tok, sizeof tok, &exp, &err), -1);
  cr_assert(strstr(err.message, "invalid_grant: Invalid JWT Signature.") != NULL, "%s",
            err.message);
  const char *crlf = "{\"access_token\":\"a\\r\\nX-Evil: 1\"}";
  cr_assert_eq(gcs_parse_token(crlf, strlen(crlf), tok, sizeof tok, &exp, &err), -1);
  const char *zero = "{\"access_token\":\"a\",\"expires_in\":0}";
  cr_assert_eq(gcs_parse_token(zero, strlen(zero), tok, sizeof tok, &exp, &err), -1);
}
