/*
 * HTTP/1.1 framing for WS-Management traffic with AMT: an incremental parser
 * for requests (the simulator is the AMT) and responses (terminator and RPS
 * agent are the clients), and builders for the exact messages DMT and AMT
 * put on the wire (../shared/reference/mps-cira.md §2.2-2.4,
 * ../shared/reference/rps-activation.md §1.6). Pure codec: no I/O.
 *
 * Bytes may be fed split anywhere. Bodies are framed properly by
 * Content-Length or chunked encoding (never by looking for "</html>" or
 * "0\r\n\r\n" as DMT's MPS does). Header section, header count, chunk sizes
 * and body size are all capped.
 */
#ifndef DMT_HTTP_H
#define DMT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dmt/buf.h"

#define DMT_HTTP_MAX_HEADER_BYTES 16384u
#define DMT_HTTP_MAX_HEADERS 48u

enum dmt_http_status {
  DMT_HTTP_DONE = 1,       /* a whole message is parsed */
  DMT_HTTP_MORE = 0,       /* feed more bytes */
  DMT_HTTP_ERR_SYNTAX = -1,
  DMT_HTTP_ERR_TOO_LARGE = -2, /* header section, header count or body over its cap */
  DMT_HTTP_ERR_CHUNK = -3,     /* malformed chunk framing */
};

struct dmt_http_header {
  char *name;
  char *value;
};

struct dmt_http_parser {
  bool request;
  size_t max_body;
  int state;
  struct dmt_buf line;  /* the header section / current line being accumulated */
  size_t header_bytes;
  uint64_t remaining;   /* Content-Length or current chunk bytes left */
  bool chunked, until_close;

  /* The message (valid once DONE; headers valid once past the header section). */
  char method[16];
  char *target;         /* request target */
  int status;           /* response status code */
  int minor_version;
  struct dmt_http_header headers[DMT_HTTP_MAX_HEADERS];
  size_t nheaders;
  struct dmt_buf body;  /* de-chunked */
  bool keep_alive;      /* false when Connection: close (or HTTP/1.0 without keep-alive) */
};

void dmt_http_parser_init(struct dmt_http_parser *p, bool request, size_t max_body);
/* Ready for the next message on the same connection (keeps allocations small). */
void dmt_http_parser_reset(struct dmt_http_parser *p);
void dmt_http_parser_free(struct dmt_http_parser *p);

/*
 * Feeds bytes. Returns DONE (a message is complete: *consumed tells how many
 * input bytes it used; the rest belongs to the next message), MORE (all input
 * consumed) or an error (the connection must be closed).
 */
int dmt_http_parse(struct dmt_http_parser *p, const uint8_t *data, size_t len, size_t *consumed);
/* The peer closed: completes a response whose body runs until close. */
int dmt_http_parse_eof(struct dmt_http_parser *p);

/* Case-insensitive header lookup; NULL if absent. */
const char *dmt_http_header(const struct dmt_http_parser *p, const char *name);
const char *dmt_http_strerror(int status);

/* ---- builders (append to out; 0 or -1) ---- */

/*
 * POST /wsman as DMT's MPS sends it over CIRA: optional Authorization value
 * (from dmt_digest_authorization), Host <host>:<port>, Content-Length = byte length.
 */
int dmt_http_build_wsman_request(struct dmt_buf *out, const char *authorization, const char *host,
                                 unsigned port, const char *body, size_t body_len);
/* The same request as DMT's RPS sends it: one chunk, Connection: close. */
int dmt_http_build_wsman_request_chunked(struct dmt_buf *out, const char *authorization,
                                         const char *host, unsigned port, const char *body,
                                         size_t body_len);
/* AMT's 401: WWW-Authenticate Digest challenge, HTML body, Connection: close. */
int dmt_http_build_amt_401(struct dmt_buf *out, const char *realm, const char *nonce,
                           const char *server_version);
/* AMT's 200 (or other status) with a SOAP body in chunks of at most chunk_max bytes (4-hex sizes). */
int dmt_http_build_amt_soap(struct dmt_buf *out, int status, const char *server_version,
                            const char *body, size_t body_len, size_t chunk_max);

#endif
