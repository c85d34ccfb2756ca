/* vimport verify-checksum-file: check a published checksum file's OpenPGP signature and
 * print the lines it vouches for. For a Job, or a workstation before a spec is written.
 *
 *   vimport verify-checksum-file FILE [--signature SIG] --keyring KEYS
 *
 * FILE is a clearsigned checksum file (Fedora's, CentOS Stream's CHECKSUM), or any file
 * with SIG its detached signature (Debian's SHA512SUMS.sign, Ubuntu's SHA256SUMS.gpg),
 * binary or armored. KEYS is the publisher's public key(s), as `gpg --export [--armor]`
 * writes them. On success the signed text goes to stdout (for a clearsigned file only
 * the signed part: nothing else of the file may be trusted) and one line to stderr names
 * the key: "verified: good signature by <FINGERPRINT> "<user ID>" (<algorithm>, <hash>,
 * <date>)".
 *
 * Exit status: 0 good signature, 1 refused or unreadable (the message says why), 2 for a
 * bad command line.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "core/cleanup.h"
#include "core/error.h"
#include "openpgp/openpgp.h"

static void usage(FILE *out)
{
  fputs("usage: vimport verify-checksum-file FILE [--signature SIG] --keyring KEYS\n"
        "\n"
        "Check FILE's OpenPGP signature (clearsigned, or detached in SIG) with the public\n"
        "keys in KEYS (gpg --export [--armor]) and print the signed lines.\n"
        "  --signature SIG  detached signature (binary or armored); without it FILE must\n"
        "                   be clearsigned\n"
        "  --keyring KEYS   the publisher's public key(s)\n",
        out);
}

static int read_file(const char *path, const char *what, char **out, size_t *len,
                     struct verr *err)
{
  CLEANUP_FCLOSE FILE *f = fopen(path, "rb");
  if (f == NULL)
    return verr_sys(err, VERR_IO, errno, "cannot open the %s %s", what, path);
  char *buf = malloc(OPENPGP_MAX_INPUT + 1);
  if (buf == NULL)
    return verr_set(err, VERR_NOMEM, "out of memory");
  size_t n = fread(buf, 1, OPENPGP_MAX_INPUT + 1, f);
  if (ferror(f) || n > OPENPGP_MAX_INPUT) {
    free(buf);
    return ferror(f) ? verr_sys(err, VERR_IO, errno, "cannot read the %s %s", what, path)
                     : verr_set(err, VERR_FORMAT, "the %s %s is larger than %u bytes", what,
                                path, OPENPGP_MAX_INPUT);
  }
  *out = buf;
  *len = n;
  return 0;
}

static int run(const char *file, const char *sig_path, const char *keyring,
               struct verr *err)
{
  struct openpgp_keyring *kr = NULL;
  if (openpgp_keyring_load(keyring, &kr, err) < 0)
    return -1;
  CLEANUP_FREE char *data = NULL, *sig = NULL, *text = NULL;
  size_t len = 0, sig_len = 0, text_len = 0;
  struct openpgp_result res;
  int r = read_file(file, "checksum file", &data, &len, err);
  if (r == 0 && sig_path != NULL)
    r = read_file(sig_path, "signature", &sig, &sig_len, err);
  if (r == 0)
    r = openpgp_verify_file(kr, data, len, sig, sig_len, &text, &text_len, &res, err);
  openpgp_keyring_free(kr);
  if (r < 0)
    return verr_prefix(err, "%s", file);
  fwrite(text, 1, text_len, stdout);
  char when[32];
  time_t t = (time_t)res.created;
  struct tm tm;
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
  bool subkey = strcmp(res.signing_key, res.fingerprint) != 0;
  fprintf(stderr, "verified: good signature by %s \"%s\" (%s%s%s%s, %s, made %s)\n",
          res.fingerprint, res.user_id, subkey ? "subkey " : "", subkey ? res.signing_key : "",
          subkey ? ", " : "", res.algorithm, res.hash, when);
  return 0;
}

int cmd_verify_checksum_file(int argc, char **argv)
{
  static const struct option longopts[] = {
    { "signature", required_argument, NULL, 's' },
    { "keyring", required_argument, NULL, 'k' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  const char *sig = NULL, *keyring = NULL;
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "s:k:h", longopts, NULL)) != -1) {
    switch (c) {
    case 's':
      sig = optarg;
      break;
    case 'k':
      keyring = optarg;
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (keyring == NULL || optind != argc - 1) {
    fprintf(stderr, "vimport verify-checksum-file: %s\n", keyring == NULL ?
            "--keyring is required (the publisher's public key)" : "give one FILE");
    usage(stderr);
    return 2;
  }
  struct verr err = { 0 };
  if (run(argv[optind], sig, keyring, &err) < 0) {
    fprintf(stderr, "vimport verify-checksum-file: %s\n", err.message);
    return 1;
  }
  return 0;
}
