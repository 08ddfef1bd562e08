/*
 * Incremental HTTP/1.1 parser (see dmt/http.h). States advance over whole
 * lines for the start line, headers, chunk sizes and trailers, and over raw
 * byte runs for bodies, so the same code serves every split of the input.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dmt/http.h"

enum state {
  ST_START,
  ST_HEADERS,
  ST_BODY,
  ST_CHUNK_SIZE,
  ST_CHUNK_DATA,
  ST_CHUNK_CRLF,
  ST_TRAILERS,
  ST_UNTIL_CLOSE,
  ST_DONE,
};

void dmt_http_parser_init(struct dmt_http_parser *p, bool request, size_t max_body) {
  memset(p, 0, sizeof *p);
  p->request = request;
  p->max_body = max_body;
  dmt_buf_init(&p->line, DMT_HTTP_MAX_HEADER_BYTES);
  dmt_buf_init(&p->body, max_body);
}

static void clear_message(struct dmt_http_parser *p) {
  for (size_t i = 0; i < p->nheaders; i++) {
    free(p->headers[i].name);
    free(p->headers[i].value);
  }
  free(p->target);
  p->target = NULL;
  p->nheaders = 0;
  p->method[0] = '\0';
  p->status = 0;
  p->minor_version = 1;
  p->header_bytes = 0;
  p->remaining = 0;
  p->chunked = p->until_close = false;
  p->keep_alive = true;
  p->state = ST_START;
}

void dmt_http_parser_reset(struct dmt_http_parser *p) {
  clear_message(p);
  dmt_buf_reset(&p->line);
  dmt_buf_reset(&p->body);
}

void dmt_http_parser_free(struct dmt_http_parser *p) {
  clear_message(p);
  dmt_buf_free(&p->line);
  dmt_buf_free(&p->body);
}

const char *dmt_http_header(const struct dmt_http_parser *p, const char *name) {
  for (size_t i = 0; i < p->nheaders; i++)
    if (strcasecmp(p->headers[i].name, name) == 0) return p->headers[i].value;
  return NULL;
}

const char *dmt_http_strerror(int status) {
  switch (status) {
    case DMT_HTTP_DONE: return "complete";
    case DMT_HTTP_MORE: return "incomplete";
    case DMT_HTTP_ERR_SYNTAX: return "malformed HTTP message";
    case DMT_HTTP_ERR_TOO_LARGE: return "HTTP message too large";
    case DMT_HTTP_ERR_CHUNK: return "malformed chunked encoding";
    default: return "unknown HTTP error";
  }
}

/* True if the comma-separated header value contains token (case-insensitive). */
static bool has_token(const char *value, const char *token) {
  size_t tl = strlen(token);
  for (const char *s = value; s && *s;) {
    while (*s == ' ' || *s == '\t' || *s == ',') s++;
    const char *e = s;
    while (*e && *e != ',') e++;
    const char *t = e;
    while (t > s && (t[-1] == ' ' || t[-1] == '\t')) t--;
    if ((size_t)(t - s) == tl && strncasecmp(s, token, tl) == 0) return true;
    s = e;
  }
  return false;
}

static int parse_start_line(struct dmt_http_parser *p, char *line) {
  if (p->request) {
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || sp1 == line || (size_t)(sp1 - line) >= sizeof p->method || sp2 == sp1 + 1)
      return DMT_HTTP_ERR_SYNTAX;
    for (char *c = line; c < sp1; c++)
      if (!isupper((unsigned char)*c)) return DMT_HTTP_ERR_SYNTAX;
    memcpy(p->method, line, (size_t)(sp1 - line));
    p->method[sp1 - line] = '\0';
    p->target = strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
    if (!p->target) return DMT_HTTP_ERR_TOO_LARGE;
    line = sp2 + 1;
    if (strncmp(line, "HTTP/1.", 7) || !isdigit((unsigned char)line[7]) || line[8]) return DMT_HTTP_ERR_SYNTAX;
    p->minor_version = line[7] - '0';
  } else {
    if (strncmp(line, "HTTP/1.", 7) || !isdigit((unsigned char)line[7]) || line[8] != ' ' ||
        !isdigit((unsigned char)line[9]) || !isdigit((unsigned char)line[10]) ||
        !isdigit((unsigned char)line[11]) || (line[12] && line[12] != ' '))
      return DMT_HTTP_ERR_SYNTAX;
    p->minor_version = line[7] - '0';
    p->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  }
  p->keep_alive = p->minor_version >= 1;
  return DMT_HTTP_MORE;
}

static int add_header(struct dmt_http_parser *p, char *line) {
  char *colon = strchr(line, ':');
  if (!colon || colon == line) return DMT_HTTP_ERR_SYNTAX;
  for (char *c = line; c < colon; c++)
    if (*c <= ' ' || *c >= 127) return DMT_HTTP_ERR_SYNTAX; /* no space before the colon */
  if (p->nheaders == DMT_HTTP_MAX_HEADERS) return DMT_HTTP_ERR_TOO_LARGE;
  char *v = colon + 1;
  while (*v == ' ' || *v == '\t') v++;
  char *e = v + strlen(v);
  while (e > v && (e[-1] == ' ' || e[-1] == '\t')) *--e = '\0';
  struct dmt_http_header *h = &p->headers[p->nheaders];
  h->name = strndup(line, (size_t)(colon - line));
  h->value = strdup(v);
  if (!h->name || !h->value) {
    free(h->name);
    free(h->value);
    return DMT_HTTP_ERR_TOO_LARGE;
  }
  p->nheaders++;
  return DMT_HTTP_MORE;
}

/* Decides how the body is framed once the headers are in (RFC 7230 §3.3.3). */
static int begin_body(struct dmt_http_parser *p) {
  const char *conn = dmt_http_header(p, "Connection");
  if (conn && has_token(conn, "close")) p->keep_alive = false;
  if (conn && p->minor_version == 0 && has_token(conn, "keep-alive")) p->keep_alive = true;
  const char *te = dmt_http_header(p, "Transfer-Encoding");
  const char *cl = dmt_http_header(p, "Content-Length");
  if (!p->request && (p->status / 100 == 1 || p->status == 204 || p->status == 304)) {
    p->state = ST_DONE;
    return DMT_HTTP_DONE;
  }
  if (te) {
    if (!has_token(te, "chunked")) return DMT_HTTP_ERR_SYNTAX;
    if (cl) return DMT_HTTP_ERR_SYNTAX; /* ambiguous framing: refuse (request smuggling) */
    p->chunked = true;
    p->state = ST_CHUNK_SIZE;
    return DMT_HTTP_MORE;
  }
  if (cl) {
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)cl[0])) return DMT_HTTP_ERR_SYNTAX;
    unsigned long long n = strtoull(cl, &end, 10);
    if (errno || *end) return DMT_HTTP_ERR_SYNTAX;
    /* Several Content-Length headers must agree. */
    for (size_t i = 0; i < p->nheaders; i++)
      if (!strcasecmp(p->headers[i].name, "Content-Length") && strcmp(p->headers[i].value, cl))
        return DMT_HTTP_ERR_SYNTAX;
    if (n > p->max_body) return DMT_HTTP_ERR_TOO_LARGE;
    p->remaining = n;
    p->state = n ? ST_BODY : ST_DONE;
    return n ? DMT_HTTP_MORE : DMT_HTTP_DONE;
  }
  if (p->request) {
    p->state = ST_DONE;
    return DMT_HTTP_DONE;
  }
  p->until_close = true;
  p->keep_alive = false;
  p->state = ST_UNTIL_CLOSE;
  return DMT_HTTP_MORE;
}

static int parse_chunk_size(struct dmt_http_parser *p, const char *line) {
  uint64_t n = 0;
  int digits = 0;
  const char *c = line;
  for (; isxdigit((unsigned char)*c); c++) {
    if (++digits > 8) return DMT_HTTP_ERR_CHUNK; /* over 4 GiB: refuse before overflow */
    n = n * 16 + (uint64_t)(isdigit((unsigned char)*c) ? *c - '0' : (tolower((unsigned char)*c) - 'a' + 10));
  }
  while (*c == ' ' || *c == '\t') c++;
  if (!digits || (*c && *c != ';')) return DMT_HTTP_ERR_CHUNK; /* ';' starts chunk extensions */
  if (n > p->max_body - dmt_buf_size(&p->body)) return DMT_HTTP_ERR_TOO_LARGE;
  p->remaining = n;
  p->state = n ? ST_CHUNK_DATA : ST_TRAILERS;
  return DMT_HTTP_MORE;
}

/* Takes one CRLF- (or LF-) terminated line from the input into p->line; returns the line or NULL. */
static char *take_line(struct dmt_http_parser *p, const uint8_t *data, size_t len, size_t *off,
                       int *err) {
  const uint8_t *start = data + *off;
  const uint8_t *nl = memchr(start, '\n', len - *off);
  size_t n = nl ? (size_t)(nl - start) + 1 : len - *off;
  if (p->header_bytes + n > DMT_HTTP_MAX_HEADER_BYTES || dmt_buf_append(&p->line, start, n) != 0) {
    *err = DMT_HTTP_ERR_TOO_LARGE;
    return NULL;
  }
  p->header_bytes += n;
  *off += n;
  if (!nl) return NULL;
  size_t ll = dmt_buf_size(&p->line);
  char *s = (char *)p->line.data + p->line.off;
  s[--ll] = '\0'; /* the '\n' */
  if (ll && s[ll - 1] == '\r') s[--ll] = '\0';
  if (memchr(s, '\0', ll)) {
    *err = DMT_HTTP_ERR_SYNTAX;
    return NULL;
  }
  return s;
}

int dmt_http_parse(struct dmt_http_parser *p, const uint8_t *data, size_t len, size_t *consumed) {
  size_t off = 0;
  int rc = DMT_HTTP_MORE;
  while (rc == DMT_HTTP_MORE && p->state != ST_DONE && off < len) {
    switch (p->state) {
      case ST_START:
      case ST_HEADERS:
      case ST_CHUNK_SIZE:
      case ST_CHUNK_CRLF:
      case ST_TRAILERS: {
        int err = 0;
        char *line = take_line(p, data, len, &off, &err);
        if (err) return err;
        if (!line) break;
        if (p->state == ST_START) {
          if (*line == '\0' && p->header_bytes <= 2) { /* tolerate a stray CRLF between messages */
            p->header_bytes = 0;
          } else {
            rc = parse_start_line(p, line);
            p->state = ST_HEADERS;
          }
        } else if (p->state == ST_HEADERS) {
          rc = *line ? add_header(p, line) : begin_body(p);
        } else if (p->state == ST_CHUNK_SIZE) {
          rc = parse_chunk_size(p, line);
        } else if (p->state == ST_CHUNK_CRLF) {
          if (*line) return DMT_HTTP_ERR_CHUNK;
          p->state = ST_CHUNK_SIZE;
        } else if (*line == '\0') { /* end of trailers */
          p->state = ST_DONE;
          rc = DMT_HTTP_DONE;
        }
        dmt_buf_consume(&p->line, dmt_buf_size(&p->line));
        if (p->state != ST_START && p->state != ST_HEADERS) p->header_bytes = 0;
        break;
      }
      case ST_BODY:
      case ST_CHUNK_DATA: {
        size_t n = len - off < p->remaining ? len - off : (size_t)p->remaining;
        if (dmt_buf_append(&p->body, data + off, n) != 0) return DMT_HTTP_ERR_TOO_LARGE;
        off += n;
        p->remaining -= n;
        if (p->remaining == 0) {
          if (p->state == ST_BODY) {
            p->state = ST_DONE;
            rc = DMT_HTTP_DONE;
          } else {
            p->state = ST_CHUNK_CRLF;
          }
        }
        break;
      }
      case ST_UNTIL_CLOSE:
        if (dmt_buf_append(&p->body, data + off, len - off) != 0) return DMT_HTTP_ERR_TOO_LARGE;
        off = len;
        break;
    }
  }
  if (rc < 0) return rc;
  *consumed = off;
  return p->state == ST_DONE ? DMT_HTTP_DONE : DMT_HTTP_MORE;
}

int dmt_http_parse_eof(struct dmt_http_parser *p) {
  if (p->state == ST_UNTIL_CLOSE) {
    p->state = ST_DONE;
    return DMT_HTTP_DONE;
  }
  return p->state == ST_DONE ? DMT_HTTP_DONE : DMT_HTTP_ERR_SYNTAX;
}
