/* vimport report: the termination message CDI's controller reads, and the exit code.
 *
 * When the importer container stops, the kubelet copies the file at the termination
 * message path (/dev/termination-log) into the pod status, keeping at most 4096 bytes.
 * CDI's controller json.Unmarshal()s that into common.TerminationMessage
 * (pkg/common/common.go in kubevirt/containerized-data-importer):
 *
 *   {"message":"Import Complete","preallocationApplied":false,
 *    "scratchSpaceRequired":false,"deadlinePassed":true,"labels":{"k":"v"},
 *    "vimport":{"sourceDigest":"sha256:<hex>","blockHash":"sha256:<hex>",
 *               "blockHashLength":8388608,"imageBlockHash":"sha256:<hex>",
 *               "format":"qcow2","virtualSize":10737418240,"bytesTransferred":123,
 *               "archiveFiles":3,"archiveBytes":4096,  (contentType archive only)
 *               "registry":{"manifestDigest":"sha256:<hex>",
 *                           "indexDigest":"sha256:<hex>", (picked from an index only)
 *                           "layerDigests":["sha256:<hex>"],
 *                           "diskFile":"disk/NAME"},      (registry sources only)
 *               "verified":["checksum","blockhash-readback"],
 *               "sourceChecked":"gs://b/o generation 7: 123 bytes, crc32c ..., md5Hash ...",
 *               "error":"checksum"}}
 *
 * The first keys are CDI's, spelled as its json tags; ours sit under "vimport", which
 * CDI ignores. "deadlinePassed" appears only when set. The output is one line of valid
 * JSON (and valid UTF-8) of at most REPORT_MAX_JSON bytes with its newline, whatever
 * bytes the strings hold: when it would be longer, the message is shortened first
 * (down to 1 KiB), then the longest strings are cut to one common length. A cut keeps
 * the head and the tail of a string around a "..." marker, between whole escapes and
 * whole characters. Label keys cut that way may, in theory, come out equal.
 *
 * CDI reads the JSON only from an importer that exits 0; after a failure (exit 1) it
 * shows the raw text as the condition message, and CDI's importer writes plain text
 * there (cmd/cdi-importer/importer.go handleImport): report_write_text() writes that
 * line. A verification verdict (report_set_verdict) is JSON and exits 0, as CDI's
 * checksum mismatch is, so the controller reads it and marks the import fatal.
 *
 * Memory: each string is copied, and of one longer than REPORT_MAX_JSON only the head
 * and tail that any cut would keep; at most REPORT_MAX_LABELS labels and
 * REPORT_MAX_VERIFIED verified stages.
 */
#ifndef VIMPORT_REPORT_H
#define VIMPORT_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/error.h"

#define REPORT_MAX_JSON 4096 /* the kubelet's limit, trailing newline included */
#define REPORT_MIN_JSON 1024 /* report_to_json() never fails with a buffer this big */
#define REPORT_MAX_LABELS 16
#define REPORT_MAX_VERIFIED 8
#define REPORT_MAX_LAYERS 16 /* vimport.registry.layerDigests */
#define REPORT_DEFAULT_PATH "/dev/termination-log"

/* Names for report_add_verified(), one per verification vimport performs. */
#define REPORT_VERIFIED_CHECKSUM "checksum"
#define REPORT_VERIFIED_READBACK "blockhash-readback"
#define REPORT_VERIFIED_EXPECTED "expected-blockhash"
#define REPORT_VERIFIED_OBJECT "object-checksum" /* the store's own checksums (gcs) */

struct report;

/* A new, empty report: no message, preallocationApplied and scratchSpaceRequired false.
 * Free with report_free(). Errors: VERR_NOMEM. */
int report_new(struct report **out, struct verr *err);

/* Free the report and every string it copied. NULL is fine. */
void report_free(struct report *r);

/* The human sentence CDI shows ("Import Complete"). Copied. Errors: VERR_NOMEM (the
 * report is unchanged). */
int report_set_message(struct report *r, const char *message, struct verr *err);

void report_set_preallocation_applied(struct report *r, bool applied);
void report_set_scratch_space_required(struct report *r, bool required);
void report_set_deadline_passed(struct report *r, bool passed);

/* Add a label, or replace the value of an existing key. Both are copied. Errors:
 * VERR_USAGE past REPORT_MAX_LABELS distinct keys, VERR_NOMEM. */
int report_set_label(struct report *r, const char *key, const char *value, struct verr *err);

/* Digest of the source bytes as served, "sha256:<hex>". Copied. Errors: VERR_NOMEM. */
int report_set_source_digest(struct report *r, const char *digest, struct verr *err);

/* Block hash of the guest-visible content, "sha256:<hex>". Copied. Errors: VERR_NOMEM. */
int report_set_block_hash(struct report *r, const char *block_hash, struct verr *err);
/* vimport.blockHashLength: the bytes blockHash covers (what `vimport verify` must hash:
 * a file's size after CDI's growth, or the image on a block device). */
void report_set_block_hash_length(struct report *r, uint64_t length);
/* vimport.imageBlockHash: the block hash of the image's own bytes, when blockHashLength
 * covers more than the image. Copied. Errors: VERR_NOMEM. */
int report_set_image_block_hash(struct report *r, const char *hash, struct verr *err);

/* Source format as detected ("raw", "qcow2", ...). Copied. Errors: VERR_NOMEM. */
int report_set_format(struct report *r, const char *format, struct verr *err);

/* "vimport.content": what raw bytes hold ("gpt", "mbr", "ext", "unknown"...). Copied. */
int report_set_content(struct report *r, const char *content, struct verr *err);

/* "vimport.warning": one sentence about something that did not fail the import (a raw
 * image with neither a partition table nor a known filesystem). Copied. */
int report_set_warning(struct report *r, const char *warning, struct verr *err);

/* "vimport.verifiedBy": the key fingerprint or certificate subject that verified the
 * image's signature. Copied. */
int report_set_verified_by(struct report *r, const char *who, struct verr *err);

/* "vimport.sourceChecked": what the source itself proved of the bytes it served (a gcs
 * object's generation, length, crc32c and md5Hash). Copied. */
int report_set_source_checked(struct report *r, const char *what, struct verr *err);

void report_set_virtual_size(struct report *r, uint64_t bytes);
void report_set_bytes_transferred(struct report *r, uint64_t bytes);

/* "vimport.archiveFiles" and "vimport.archiveBytes": what contentType archive unpacked,
 * the regular files and the sum of their sizes. */
void report_set_archive(struct report *r, uint64_t files, uint64_t bytes);

/* "vimport.registry": a registry source's image manifest digest, the digest of the index
 * (or manifest list) it was picked from (NULL or "": none), the digests of the layers
 * read (in order) and the disk file's name in its layer. All copied. Errors:
 * VERR_USAGE past REPORT_MAX_LAYERS layers, VERR_NOMEM. */
int report_set_registry(struct report *r, const char *manifest_digest, const char *index_digest,
                        const char *const *layer_digests, size_t n_layers,
                        const char *disk_file, struct verr *err);

/* Record that a verification passed (REPORT_VERIFIED_*). Adding a name twice keeps one.
 * Copied. Errors: VERR_USAGE past REPORT_MAX_VERIFIED names, VERR_NOMEM. */
int report_add_verified(struct report *r, const char *stage, struct verr *err);

/* Record a failure: "vimport.error" becomes verr_code_name(e->code) and the message
 * becomes e->message. VERR_SCRATCH_REQUIRED also sets scratchSpaceRequired (CDI's
 * contract). A NULL `e`, or code VERR_OK, clears the error and leaves the message.
 * Errors: VERR_NOMEM (the report is unchanged). */
int report_set_error(struct report *r, const struct verr *e, struct verr *err);

/* CDI's words, which its controller matches (pkg/controller/import-controller.go
 * updatePvcFromPod: a message that contains "checksum mismatch" is fatal, no retry). */
#define REPORT_PROCESS_PREFIX "Unable to process data: "
#define REPORT_MISMATCH_PHRASE "checksum mismatch"

/* Whether a failure is a permanent verification verdict: the source checksum
 * (VERR_CHECKSUM), a signature, an expected or read-back block hash (VERR_VERIFY). A
 * rerun fetches the same bytes and fails the same way. */
bool report_is_verdict(enum verr_code code);

/* Record a verdict failure the way CDI's importer reports ErrChecksumMismatch: the
 * message becomes "Unable to process data: <cause>", with "checksum mismatch: " put
 * before the cause when the cause lacks that phrase, "vimport.error" the code's name,
 * and report_exit_code() 0. Errors: VERR_USAGE when `e` is not a verdict, VERR_NOMEM. */
int report_set_verdict(struct report *r, const struct verr *e, struct verr *err);

/* Render the report into buf as one NUL-terminated line of JSON without a newline, at
 * most min(size, REPORT_MAX_JSON) - 1 bytes long, shortening strings as described
 * above. Returns the length (without the NUL), or -1 if `size` is too small even with
 * every string cut (never when size >= REPORT_MIN_JSON). Writes nothing else. */
ssize_t report_to_json(const struct report *r, char *buf, size_t size);

/* Write the JSON and a newline to `path` (REPORT_DEFAULT_PATH in a pod), replacing its
 * content, and fsync it. Not via rename: the kubelet bind-mounts the file itself.
 * Errors: VERR_IO naming the path, VERR_INTERNAL if rendering fails. */
int report_write_file(const struct report *r, const char *path, struct verr *err);

/* One line of plain text, CDI's message for every other failure: `prefix` (NULL for
 * none, e.g. REPORT_PROCESS_PREFIX) then `cause`, control characters turned into
 * spaces so that the first line is the whole cause, then a newline and a NUL. When
 * longer than min(size, REPORT_MAX_JSON) - 1 bytes the cause is cut at a character
 * boundary and ends in "...". Returns the length without the NUL, or -1 when `size` is
 * smaller than 16. */
ssize_t report_text_line(const char *prefix, const char *cause, char *buf, size_t size);

/* Write report_text_line(prefix, cause) to `path` as report_write_file() writes. */
int report_write_text(const char *prefix, const char *cause, const char *path,
                      struct verr *err);

/* The process exit code for this report, CDI's importer contract: 0 on success, on a
 * checksum mismatch, after report_set_verdict() and when scratch space is required
 * (the controller reads the message only from a pod that exited 0), 1 for every other
 * failure. */
int report_exit_code(const struct report *r);

#endif
