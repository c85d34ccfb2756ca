/* vimport report: build the termination message, fit it in 4096 bytes, write it.
 * The JSON shape and the contract are in report.h; string escaping in jsonw.c. */

#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "jsonw.h"

/* A string longer than REPORT_MAX_STRING can never fit, so only its head and tail are
 * kept -- more than any cut keeps of either (jsonw keeps 2/3 of the budget from the head
 * and 1/3 from the tail), with slack for a UTF-8 sequence split at the seam. Together
 * they are longer than any budget, so such a string is always cut and the seam with it. */
#define REPORT_MAX_STRING (REPORT_MAX_JSON + 16)
#define REPORT_KEEP_HEAD (REPORT_MAX_JSON * 2 / 3 + 8)
#define REPORT_KEEP_TAIL (REPORT_MAX_JSON / 3 + 8)

/* The message is cut before any other string, but not below this. */
#define REPORT_MESSAGE_FLOOR 1024

struct report_label {
  char *key;
  char *value;
};

struct report {
  char *message;
  bool preallocation_applied;
  bool scratch_space_required;
  bool deadline_passed;
  struct report_label labels[REPORT_MAX_LABELS];
  size_t n_labels;

  char *source_digest;
  char *block_hash;
  char *image_block_hash; /* the image's bytes, when blockHashLength covers more */
  bool has_block_hash_length;
  uint64_t block_hash_length;
  char *format;
  char *content;       /* what raw bytes hold: "gpt", "mbr", "ext", ... */
  char *warning;       /* a finding that did not fail the import */
  char *verified_by;   /* the key or certificate subject that verified a signature */
  char *source_checked; /* what the source proved of its bytes (a gcs object's crc32c) */
  bool has_virtual_size;
  uint64_t virtual_size;
  bool has_bytes_transferred;
  uint64_t bytes_transferred;
  bool has_archive;
  uint64_t archive_files, archive_bytes;
  bool has_registry;
  char *registry_manifest;
  char *registry_index; /* NULL: not picked from an index */
  char *registry_disk_file;
  char *registry_layers[REPORT_MAX_LAYERS];
  size_t n_registry_layers;
  char *verified[REPORT_MAX_VERIFIED];
  size_t n_verified;
  enum verr_code error;
  bool verdict; /* report_set_verdict(): CDI's fatal checksum mismatch, exit 0 */
};

/* ---- building ---- */

int report_new(struct report **out, struct verr *err)
{
  struct report *r = calloc(1, sizeof *r);
  if (r == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "allocating the termination report");
  *out = r;
  return 0;
}

void report_free(struct report *r)
{
  if (r == NULL)
    return;
  free(r->message);
  for (size_t i = 0; i < r->n_labels; i++) {
    free(r->labels[i].key);
    free(r->labels[i].value);
  }
  free(r->source_digest);
  free(r->block_hash);
  free(r->image_block_hash);
  free(r->format);
  free(r->content);
  free(r->warning);
  free(r->verified_by);
  free(r->source_checked);
  for (size_t i = 0; i < r->n_verified; i++)
    free(r->verified[i]);
  free(r->registry_manifest);
  free(r->registry_index);
  free(r->registry_disk_file);
  for (size_t i = 0; i < r->n_registry_layers; i++)
    free(r->registry_layers[i]);
  free(r);
}

/* A copy of s: whole, or only its head and tail when it is too long to ever fit. */
static char *report_strdup_bounded(const char *s)
{
  if (strnlen(s, REPORT_MAX_STRING + 1) <= REPORT_MAX_STRING)
    return strdup(s);
  size_t len = REPORT_KEEP_HEAD + strlen(s + REPORT_KEEP_HEAD);
  char *copy = malloc(REPORT_KEEP_HEAD + REPORT_KEEP_TAIL + 1);
  if (copy == NULL)
    return NULL;
  memcpy(copy, s, REPORT_KEEP_HEAD);
  memcpy(copy + REPORT_KEEP_HEAD, s + len - REPORT_KEEP_TAIL, REPORT_KEEP_TAIL);
  copy[REPORT_KEEP_HEAD + REPORT_KEEP_TAIL] = '\0';
  return copy;
}

/* Replace *slot with a bounded copy of s (NULL clears it). */
static int report_copy(char **slot, const char *s, const char *what, struct verr *err)
{
  char *copy = NULL;
  if (s != NULL && (copy = report_strdup_bounded(s)) == NULL)
    return verr_sys(err, VERR_NOMEM, ENOMEM, "copying the report's %s", what);
  free(*slot);
  *slot = copy;
  return 0;
}

int report_set_message(struct report *r, const char *message, struct verr *err)
{
  return report_copy(&r->message, message, "message", err);
}

void report_set_preallocation_applied(struct report *r, bool applied)
{
  r->preallocation_applied = applied;
}

void report_set_scratch_space_required(struct report *r, bool required)
{
  r->scratch_space_required = required;
}

void report_set_deadline_passed(struct report *r, bool passed)
{
  r->deadline_passed = passed;
}

int report_set_label(struct report *r, const char *key, const char *value, struct verr *err)
{
  if (key == NULL || value == NULL)
    return verr_set(err, VERR_INTERNAL, "report label with a NULL key or value: this is a bug");
  /* Compare bounded copies: that is what is stored for a long key. */
  CLEANUP_FREE char *new_key = NULL;
  if (report_copy(&new_key, key, "label key", err) < 0)
    return -1;
  for (size_t i = 0; i < r->n_labels; i++) {
    if (strcmp(r->labels[i].key, new_key) == 0)
      return report_copy(&r->labels[i].value, value, "label value", err);
  }
  if (r->n_labels == REPORT_MAX_LABELS)
    return verr_set(err, VERR_USAGE,
                    "too many termination message labels (at most %d): drop some labels",
                    REPORT_MAX_LABELS);
  char *new_value = NULL;
  if (report_copy(&new_value, value, "label value", err) < 0)
    return -1;
  r->labels[r->n_labels].key = TAKE_PTR(new_key);
  r->labels[r->n_labels].value = new_value;
  r->n_labels++;
  return 0;
}

int report_set_source_digest(struct report *r, const char *digest, struct verr *err)
{
  return report_copy(&r->source_digest, digest, "source digest", err);
}

int report_set_image_block_hash(struct report *r, const char *hash, struct verr *err)
{
  return report_copy(&r->image_block_hash, hash, "image block hash", err);
}

void report_set_block_hash_length(struct report *r, uint64_t length)
{
  r->has_block_hash_length = true;
  r->block_hash_length = length;
}

int report_set_block_hash(struct report *r, const char *block_hash, struct verr *err)
{
  return report_copy(&r->block_hash, block_hash, "block hash", err);
}

int report_set_format(struct report *r, const char *format, struct verr *err)
{
  return report_copy(&r->format, format, "format", err);
}

int report_set_content(struct report *r, const char *content, struct verr *err)
{
  return report_copy(&r->content, content, "content", err);
}

int report_set_warning(struct report *r, const char *warning, struct verr *err)
{
  return report_copy(&r->warning, warning, "warning", err);
}

int report_set_verified_by(struct report *r, const char *who, struct verr *err)
{
  return report_copy(&r->verified_by, who, "verifiedBy", err);
}

int report_set_source_checked(struct report *r, const char *what, struct verr *err)
{
  return report_copy(&r->source_checked, what, "sourceChecked", err);
}

void report_set_virtual_size(struct report *r, uint64_t bytes)
{
  r->has_virtual_size = true;
  r->virtual_size = bytes;
}

void report_set_bytes_transferred(struct report *r, uint64_t bytes)
{
  r->has_bytes_transferred = true;
  r->bytes_transferred = bytes;
}

int report_set_registry(struct report *r, const char *manifest_digest, const char *index_digest,
                        const char *const *layer_digests, size_t n_layers,
                        const char *disk_file, struct verr *err)
{
  if (n_layers > REPORT_MAX_LAYERS)
    return verr_set(err, VERR_USAGE, "more than %d layer digests for the report",
                    REPORT_MAX_LAYERS);
  if (report_copy(&r->registry_manifest, manifest_digest, "manifestDigest", err) < 0 ||
      report_copy(&r->registry_disk_file, disk_file, "diskFile", err) < 0)
    return -1;
  free(r->registry_index);
  r->registry_index = NULL;
  if (index_digest != NULL && index_digest[0] != '\0' &&
      report_copy(&r->registry_index, index_digest, "indexDigest", err) < 0)
    return -1;
  for (size_t i = 0; i < n_layers; i++) {
    if (i >= r->n_registry_layers)
      r->registry_layers[r->n_registry_layers++] = NULL;
    if (report_copy(&r->registry_layers[i], layer_digests[i], "layerDigests", err) < 0)
      return -1;
  }
  for (size_t i = n_layers; i < r->n_registry_layers; i++) {
    free(r->registry_layers[i]);
    r->registry_layers[i] = NULL;
  }
  r->n_registry_layers = n_layers;
  r->has_registry = true;
  return 0;
}

void report_set_archive(struct report *r, uint64_t files, uint64_t bytes)
{
  r->has_archive = true;
  r->archive_files = files;
  r->archive_bytes = bytes;
}

int report_add_verified(struct report *r, const char *stage, struct verr *err)
{
  if (stage == NULL)
    return verr_set(err, VERR_INTERNAL, "report_add_verified with a NULL name: this is a bug");
  CLEANUP_FREE char *copy = NULL;
  if (report_copy(&copy, stage, "verified stage", err) < 0)
    return -1;
  for (size_t i = 0; i < r->n_verified; i++) {
    if (strcmp(r->verified[i], copy) == 0)
      return 0;
  }
  if (r->n_verified == REPORT_MAX_VERIFIED)
    return verr_set(err, VERR_INTERNAL,
                    "more than %d verified stages in one report: this is a bug",
                    REPORT_MAX_VERIFIED);
  r->verified[r->n_verified++] = TAKE_PTR(copy);
  return 0;
}

int report_set_error(struct report *r, const struct verr *e, struct verr *err)
{
  if (e == NULL || e->code == VERR_OK) {
    r->error = VERR_OK;
    r->verdict = false;
    return 0;
  }
  char message[sizeof e->message + 1];
  memcpy(message, e->message, sizeof e->message);
  message[sizeof e->message] = '\0'; /* a verr filled by hand may lack its NUL */
  if (report_set_message(r, message, err) < 0)
    return -1;
  r->error = e->code;
  r->verdict = false;
  if (e->code == VERR_SCRATCH_REQUIRED)
    r->scratch_space_required = true;
  return 0;
}

bool report_is_verdict(enum verr_code code)
{
  return code == VERR_CHECKSUM || code == VERR_VERIFY;
}

int report_set_verdict(struct report *r, const struct verr *e, struct verr *err)
{
  if (e == NULL || !report_is_verdict(e->code))
    return verr_set(err, VERR_USAGE, "report_set_verdict with a failure that is no "
                    "verification verdict: this is a bug");
  char cause[sizeof e->message + 1];
  memcpy(cause, e->message, sizeof e->message);
  cause[sizeof e->message] = '\0';
  bool named = strstr(cause, REPORT_MISMATCH_PHRASE) != NULL;
  char message[sizeof REPORT_PROCESS_PREFIX + sizeof REPORT_MISMATCH_PHRASE + sizeof cause + 2];
  snprintf(message, sizeof message, "%s%s%s", REPORT_PROCESS_PREFIX,
           named ? "" : REPORT_MISMATCH_PHRASE ": ", cause);
  if (report_set_message(r, message, err) < 0)
    return -1;
  r->error = e->code;
  r->verdict = true;
  return 0;
}

int report_exit_code(const struct report *r)
{
  if (r->verdict)
    return 0;
  /* CDI's importer contract: the controller reads the message of a pod that exited 0,
   * so a checksum mismatch (fatal, not worth a restart) and scratch space (retried
   * with scratch) exit 0; everything else exits 1 and the pod's restart policy decides. */
  switch (r->error) {
  case VERR_OK:
  case VERR_CHECKSUM:
  case VERR_SCRATCH_REQUIRED:
    return 0;
  default:
    return 1;
  }
}

/* ---- rendering ---- */

/* Every string of the report, with the cap it is rendered under. */
enum {
  FIELD_MESSAGE,
  FIELD_SOURCE_DIGEST,
  FIELD_BLOCK_HASH,
  FIELD_IMAGE_BLOCK_HASH,
  FIELD_FORMAT,
  FIELD_CONTENT,
  FIELD_WARNING,
  FIELD_VERIFIED_BY,
  FIELD_SOURCE_CHECKED,
  FIELD_ERROR,
  FIELD_LABELS, /* key of label i at FIELD_LABELS + 2i, its value right after */
  FIELD_VERIFIED = FIELD_LABELS + 2 * REPORT_MAX_LABELS,
  FIELD_REGISTRY_MANIFEST = FIELD_VERIFIED + REPORT_MAX_VERIFIED,
  FIELD_REGISTRY_DISK,
  FIELD_REGISTRY_INDEX,
  FIELD_REGISTRY_LAYERS,
  FIELD_COUNT = FIELD_REGISTRY_LAYERS + REPORT_MAX_LAYERS,
};

struct field {
  const char *s; /* NULL: absent */
  size_t len;
  size_t escaped; /* length once escaped */
  size_t cap;     /* JSONW_NO_CAP, or the escaped length it must fit in */
};

static void field_init(struct field *f, const char *s)
{
  f->s = s;
  f->len = s ? strlen(s) : 0;
  f->escaped = s ? jsonw_escaped_len(s, f->len) : 0;
  f->cap = JSONW_NO_CAP;
}

static void report_fields(const struct report *r, struct field f[FIELD_COUNT])
{
  field_init(&f[FIELD_MESSAGE], r->message);
  field_init(&f[FIELD_SOURCE_DIGEST], r->source_digest);
  field_init(&f[FIELD_BLOCK_HASH], r->block_hash);
  field_init(&f[FIELD_IMAGE_BLOCK_HASH], r->image_block_hash);
  field_init(&f[FIELD_FORMAT], r->format);
  field_init(&f[FIELD_CONTENT], r->content);
  field_init(&f[FIELD_WARNING], r->warning);
  field_init(&f[FIELD_VERIFIED_BY], r->verified_by);
  field_init(&f[FIELD_SOURCE_CHECKED], r->source_checked);
  field_init(&f[FIELD_ERROR], r->error != VERR_OK ? verr_code_name(r->error) : NULL);
  for (size_t i = 0; i < REPORT_MAX_LABELS; i++) {
    bool set = i < r->n_labels;
    field_init(&f[FIELD_LABELS + 2 * i], set ? r->labels[i].key : NULL);
    field_init(&f[FIELD_LABELS + 2 * i + 1], set ? r->labels[i].value : NULL);
  }
  for (size_t i = 0; i < REPORT_MAX_VERIFIED; i++)
    field_init(&f[FIELD_VERIFIED + i], i < r->n_verified ? r->verified[i] : NULL);
  field_init(&f[FIELD_REGISTRY_MANIFEST], r->registry_manifest);
  field_init(&f[FIELD_REGISTRY_DISK], r->registry_disk_file);
  field_init(&f[FIELD_REGISTRY_INDEX], r->registry_index);
  for (size_t i = 0; i < REPORT_MAX_LAYERS; i++)
    field_init(&f[FIELD_REGISTRY_LAYERS + i],
               i < r->n_registry_layers ? r->registry_layers[i] : NULL);
}

/* Write `"name":`, after a comma unless it is the first member of its object. */
static void render_key(struct jsonw *w, bool *first, const char *name)
{
  if (!*first)
    jsonw_raw(w, ",");
  *first = false;
  jsonw_raw(w, "\"");
  jsonw_raw(w, name);
  jsonw_raw(w, "\":");
}

static void render_string(struct jsonw *w, const struct field *f)
{
  jsonw_string(w, f->s, f->len, f->cap);
}

static void render_optional(struct jsonw *w, bool *first, const char *name, const struct field *f)
{
  if (f->s == NULL)
    return;
  render_key(w, first, name);
  render_string(w, f);
}

static void render_labels(struct jsonw *w, bool *first, const struct report *r,
                          const struct field f[FIELD_COUNT])
{
  if (r->n_labels == 0)
    return;
  render_key(w, first, "labels");
  jsonw_raw(w, "{");
  for (size_t i = 0; i < r->n_labels; i++) {
    if (i > 0)
      jsonw_raw(w, ",");
    render_string(w, &f[FIELD_LABELS + 2 * i]);
    jsonw_raw(w, ":");
    render_string(w, &f[FIELD_LABELS + 2 * i + 1]);
  }
  jsonw_raw(w, "}");
}

static void render_registry(struct jsonw *w, bool *first, const struct report *r,
                            const struct field f[FIELD_COUNT])
{
  if (!r->has_registry)
    return;
  bool inner = true;
  render_key(w, first, "registry");
  jsonw_raw(w, "{");
  render_optional(w, &inner, "manifestDigest", &f[FIELD_REGISTRY_MANIFEST]);
  render_optional(w, &inner, "indexDigest", &f[FIELD_REGISTRY_INDEX]);
  render_key(w, &inner, "layerDigests");
  jsonw_raw(w, "[");
  for (size_t i = 0; i < r->n_registry_layers; i++) {
    if (i > 0)
      jsonw_raw(w, ",");
    render_string(w, &f[FIELD_REGISTRY_LAYERS + i]);
  }
  jsonw_raw(w, "]");
  render_optional(w, &inner, "diskFile", &f[FIELD_REGISTRY_DISK]);
  jsonw_raw(w, "}");
}

static void render_vimport(struct jsonw *w, const struct report *r,
                           const struct field f[FIELD_COUNT])
{
  bool first = true;
  jsonw_raw(w, "{");
  render_optional(w, &first, "sourceDigest", &f[FIELD_SOURCE_DIGEST]);
  render_optional(w, &first, "blockHash", &f[FIELD_BLOCK_HASH]);
  if (r->has_block_hash_length) {
    render_key(w, &first, "blockHashLength");
    jsonw_u64(w, r->block_hash_length);
  }
  render_optional(w, &first, "imageBlockHash", &f[FIELD_IMAGE_BLOCK_HASH]);
  render_optional(w, &first, "format", &f[FIELD_FORMAT]);
  render_optional(w, &first, "content", &f[FIELD_CONTENT]);
  if (r->has_virtual_size) {
    render_key(w, &first, "virtualSize");
    jsonw_u64(w, r->virtual_size);
  }
  if (r->has_bytes_transferred) {
    render_key(w, &first, "bytesTransferred");
    jsonw_u64(w, r->bytes_transferred);
  }
  if (r->has_archive) {
    render_key(w, &first, "archiveFiles");
    jsonw_u64(w, r->archive_files);
    render_key(w, &first, "archiveBytes");
    jsonw_u64(w, r->archive_bytes);
  }
  render_registry(w, &first, r, f);
  if (r->n_verified > 0) {
    render_key(w, &first, "verified");
    jsonw_raw(w, "[");
    for (size_t i = 0; i < r->n_verified; i++) {
      if (i > 0)
        jsonw_raw(w, ",");
      render_string(w, &f[FIELD_VERIFIED + i]);
    }
    jsonw_raw(w, "]");
  }
  render_optional(w, &first, "verifiedBy", &f[FIELD_VERIFIED_BY]);
  render_optional(w, &first, "sourceChecked", &f[FIELD_SOURCE_CHECKED]);
  render_optional(w, &first, "warning", &f[FIELD_WARNING]);
  render_optional(w, &first, "error", &f[FIELD_ERROR]);
  jsonw_raw(w, "}");
}

static void report_render(const struct report *r, const struct field f[FIELD_COUNT],
                          struct jsonw *w)
{
  bool first = true;
  jsonw_raw(w, "{");
  render_optional(w, &first, "message", &f[FIELD_MESSAGE]);
  render_key(w, &first, "preallocationApplied");
  jsonw_raw(w, r->preallocation_applied ? "true" : "false");
  render_key(w, &first, "scratchSpaceRequired");
  jsonw_raw(w, r->scratch_space_required ? "true" : "false");
  if (r->deadline_passed) {
    render_key(w, &first, "deadlinePassed");
    jsonw_raw(w, "true");
  }
  render_labels(w, &first, r, f);
  render_key(w, &first, "vimport");
  render_vimport(w, r, f);
  jsonw_raw(w, "}");
}

/* Escaped length a field renders at now. */
static size_t field_current(const struct field *f)
{
  return f->cap == JSONW_NO_CAP ? f->escaped : f->cap;
}

/* Bytes saved if every string were capped at `level`. */
static size_t fit_saving(const struct field f[FIELD_COUNT], size_t level)
{
  size_t saved = 0;
  for (size_t i = 0; i < FIELD_COUNT; i++) {
    size_t cur = field_current(&f[i]);
    if (f[i].s != NULL && cur > level)
      saved += cur - level;
  }
  return saved;
}

/* Set caps so the rendering shrinks by `excess` bytes. The message gives first, down to
 * a readable floor; then the longest strings are cut down to one common length, so
 * that every label stays recognisable instead of one collapsing to "...". Returns 0,
 * or -1 if even cutting everything to the marker is not enough. */
static int report_fit(struct field f[FIELD_COUNT], size_t excess)
{
  struct field *m = &f[FIELD_MESSAGE];
  if (m->s != NULL && m->escaped > REPORT_MESSAGE_FLOOR) {
    size_t save = m->escaped - REPORT_MESSAGE_FLOOR;
    if (save > excess)
      save = excess;
    m->cap = m->escaped - save;
    excess -= save;
  }
  if (excess == 0)
    return 0;
  if (fit_saving(f, JSONW_MARKER_LEN) < excess)
    return -1;
  /* the largest level that still saves enough: fit_saving() falls as level grows */
  size_t lo = JSONW_MARKER_LEN, hi = REPORT_MAX_JSON;
  while (lo < hi) {
    size_t mid = lo + (hi - lo + 1) / 2;
    if (fit_saving(f, mid) >= excess)
      lo = mid;
    else
      hi = mid - 1;
  }
  for (size_t i = 0; i < FIELD_COUNT; i++) {
    if (f[i].s != NULL && field_current(&f[i]) > lo)
      f[i].cap = lo;
  }
  return 0;
}

ssize_t report_to_json(const struct report *r, char *buf, size_t size)
{
  if (size > REPORT_MAX_JSON)
    size = REPORT_MAX_JSON;
  if (size == 0)
    return -1;
  size_t limit = size - 1; /* room for the NUL */
  struct field f[FIELD_COUNT];
  report_fields(r, f);

  struct jsonw measure = { NULL, 0, 0 };
  report_render(r, f, &measure);
  if (measure.len > limit && report_fit(f, measure.len - limit) < 0)
    return -1;

  struct jsonw w = { buf, limit, 0 };
  report_render(r, f, &w);
  if (w.len > limit) /* the caps guarantee this cannot happen; never emit a cut JSON */
    return -1;
  buf[w.len] = '\0';
  return (ssize_t)w.len;
}

/* ---- writing ---- */

static int write_all(int fd, const char *p, size_t len)
{
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Replace the content of `path` with `len` bytes and fsync: not via rename, since the
 * kubelet bind-mounts the file itself. */
static int write_message_file(const char *path, const char *data, size_t len, struct verr *err)
{
  CLEANUP_CLOSE int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return verr_sys(err, VERR_IO, errno,
                    "cannot open the termination message file %s: check the pod's "
                    "terminationMessagePath and that the path is writable", path);
  if (write_all(fd, data, len) < 0)
    return verr_sys(err, VERR_IO, errno,
                    "writing the termination message to %s failed: check free space and "
                    "permissions there", path);
  /* Special files (a terminal, a pipe) cannot be synced; only a real failure counts. */
  if (fsync(fd) < 0 && errno != EINVAL && errno != EROFS)
    return verr_sys(err, VERR_IO, errno, "syncing the termination message file %s failed",
                    path);
  int closing = TAKE_FD(fd);
  if (close(closing) < 0)
    return verr_sys(err, VERR_IO, errno, "closing the termination message file %s failed",
                    path);
  return 0;
}

int report_write_file(const struct report *r, const char *path, struct verr *err)
{
  char line[REPORT_MAX_JSON + 1];
  ssize_t len = report_to_json(r, line, REPORT_MAX_JSON);
  if (len < 0)
    return verr_set(err, VERR_INTERNAL,
                    "the termination message does not fit in %d bytes: this is a bug",
                    REPORT_MAX_JSON);
  line[len++] = '\n';
  return write_message_file(path, line, (size_t)len, err);
}

/* ---- plain text ---- */

#define TEXT_CUT_MARK "..."

/* Where to cut s so that no character is split: `len`, moved back over the
 * continuation bytes of a character that s[len] is inside of. s[len] must exist. */
static size_t utf8_boundary(const char *s, size_t len)
{
  size_t i = len;
  while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80 && len - i < 3)
    i--;
  return ((unsigned char)s[i] & 0xC0) == 0x80 ? len : i;
}

/* Append `s` to buf[*pos..limit), control characters as spaces. Returns whether all of
 * it fitted; when not, stops before a character that would cross `limit`. */
static bool text_append(char *buf, size_t *pos, size_t limit, const char *s)
{
  size_t len = strlen(s);
  size_t room = limit - *pos;
  size_t take = len <= room ? len : utf8_boundary(s, room);
  for (size_t i = 0; i < take; i++) {
    unsigned char c = (unsigned char)s[i];
    buf[(*pos)++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
  }
  return take == len;
}

ssize_t report_text_line(const char *prefix, const char *cause, char *buf, size_t size)
{
  if (size > REPORT_MAX_JSON)
    size = REPORT_MAX_JSON;
  if (size < 16)
    return -1;
  /* room for the newline and the NUL; a cut also needs the marker */
  size_t limit = size - 2, pos = 0;
  bool whole = text_append(buf, &pos, limit, prefix ? prefix : "");
  if (whole)
    whole = text_append(buf, &pos, limit, cause ? cause : "");
  if (!whole) {
    size_t keep = limit - (sizeof TEXT_CUT_MARK - 1);
    if (pos > keep)
      pos = utf8_boundary(buf, keep);
    memcpy(buf + pos, TEXT_CUT_MARK, sizeof TEXT_CUT_MARK - 1);
    pos += sizeof TEXT_CUT_MARK - 1;
  }
  buf[pos++] = '\n';
  buf[pos] = '\0';
  return (ssize_t)pos;
}

int report_write_text(const char *prefix, const char *cause, const char *path,
                      struct verr *err)
{
  char line[REPORT_MAX_JSON];
  ssize_t len = report_text_line(prefix, cause, line, sizeof line);
  if (len < 0)
    return verr_set(err, VERR_INTERNAL, "the termination message does not fit: this is a bug");
  return write_message_file(path, line, (size_t)len, err);
}
