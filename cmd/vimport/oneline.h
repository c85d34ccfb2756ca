/* The one-line import, `vimport import SOURCE TARGET [--checksum] [--format] [--size]`:
 * the arguments become the DataVolume spec they mean (docs/spec.md, "The one-line
 * import"), loaded as a spec file is, so every check a spec gets applies to them too.
 * Errors name the argument a person typed, not the YAML key it became. */
#ifndef VIMPORT_CMD_ONELINE_H
#define VIMPORT_CMD_ONELINE_H

#include "core/error.h"
#include "spec/spec.h"

struct cli_import {
  const char *source;   /* a URL, docker://, nbd://, s3://BUCKET/KEY, a path or - */
  const char *target;   /* a file, or a block device (a Block volume) */
  const char *checksum; /* ALG:HEX or NULL */
  const char *format;   /* the one format allowed, or NULL */
  const char *size;     /* a quantity, or NULL */
  const char *cert_dir; /* CA certificates trusted besides the system's, or NULL */
};

/* The spec of `c` in *spec (the caller frees it with spec_free), or -1 and err.
 * s3://BUCKET/KEY reads the AWS CLI's environment: AWS_ENDPOINT_URL_S3 or
 * AWS_ENDPOINT_URL (else https://s3.REGION.amazonaws.com, REGION from AWS_REGION or
 * AWS_DEFAULT_REGION, else us-east-1) and the keys AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY (both, or neither for anonymous requests). A cert_dir is
 * IMPORTER_CERT_DIR's directory, for a source that speaks TLS (https://, docker://,
 * s3://); given to any other, it is refused, not ignored. */
int oneline_load_spec(const struct cli_import *c, struct import_spec **spec, struct verr *err);

#endif
