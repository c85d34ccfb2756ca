/* vimport: logs to stderr, one line per event.
 *
 * Each line is "<UTC time> <level> <stage>: <message>". No state: the minimum level
 * is read once by the caller (cmd/) and passed down inside each stage's options
 * where a stage needs to decide; these functions always print. Never pass secrets
 * (headers, keys, URLs with userinfo) in a message: use verr_redact_url().
 */
#ifndef VIMPORT_CORE_LOG_H
#define VIMPORT_CORE_LOG_H

void vlog(const char *level, const char *stage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define vlog_info(stage, ...) vlog("info", (stage), __VA_ARGS__)
#define vlog_warn(stage, ...) vlog("warn", (stage), __VA_ARGS__)
#define vlog_error(stage, ...) vlog("error", (stage), __VA_ARGS__)

#endif
