/*
 * Structured logging: one line per event, `key=value` pairs after a fixed
 * prefix (ts, level, component, event), so logs grep and parse without a
 * schema. A logger is a value the agent owns and hands to the modules it uses;
 * common/ keeps no global state.
 *
 * Never pass a secret (passwords, keys, tokens, digest responses) as a value.
 * dmt_log_kv_quote() escapes values so hostile input cannot forge fields.
 */
#ifndef DMT_LOG_H
#define DMT_LOG_H

#include <stdarg.h>
#include <stdio.h>

enum dmt_log_level { DMT_LOG_DEBUG = 0, DMT_LOG_INFO, DMT_LOG_WARN, DMT_LOG_ERROR };

struct dmt_log {
  FILE *out;                 /* NULL means stderr */
  enum dmt_log_level min;    /* lines below this level are dropped */
  const char *component;     /* e.g. "cira", "bridge" */
};

/* Parses "debug|info|warn|error"; returns -1 on anything else. */
int dmt_log_level_parse(const char *s, enum dmt_log_level *out);
const char *dmt_log_level_name(enum dmt_log_level lvl);

/* fmt holds the key=value tail, e.g. "guid=%s port=%d". */
void dmt_log_write(const struct dmt_log *lg, enum dmt_log_level lvl, const char *event,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void dmt_log_vwrite(const struct dmt_log *lg, enum dmt_log_level lvl, const char *event,
                    const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

/*
 * Copies `in` into `out` as a log-safe value: bare if it is made of
 * [A-Za-z0-9._:/@-], otherwise double-quoted with \" \\ \n and non-printables
 * escaped. Truncates to fit; always NUL-terminates. Returns out.
 */
const char *dmt_log_kv_quote(const char *in, char *out, size_t outlen);

#define DMT_DEBUG(lg, ev, ...) dmt_log_write((lg), DMT_LOG_DEBUG, (ev), __VA_ARGS__)
#define DMT_INFO(lg, ev, ...) dmt_log_write((lg), DMT_LOG_INFO, (ev), __VA_ARGS__)
#define DMT_WARN(lg, ev, ...) dmt_log_write((lg), DMT_LOG_WARN, (ev), __VA_ARGS__)
#define DMT_ERROR(lg, ev, ...) dmt_log_write((lg), DMT_LOG_ERROR, (ev), __VA_ARGS__)

#endif
