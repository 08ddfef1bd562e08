/*
 * Builders for the HTTP messages exchanged with AMT (see dmt/http.h), byte
 * compatible with what DMT's MPS and RPS send and what AMT firmware answers.
 */
#include <stdio.h>
#include <string.h>

#include "dmt/http.h"

static int request_head(struct dmt_buf *out, const char *authorization, const char *host,
                        unsigned port) {
  if (dmt_buf_printf(out, "POST /wsman HTTP/1.1\r\n") != 0) return -1;
  if (authorization && dmt_buf_printf(out, "Authorization: %s\r\n", authorization) != 0) return -1;
  return dmt_buf_printf(out, "Host: %s:%u\r\n", host, port);
}

int dmt_http_build_wsman_request(struct dmt_buf *out, const char *authorization, const char *host,
                                 unsigned port, const char *body, size_t body_len) {
  if (request_head(out, authorization, host, port) != 0 ||
      dmt_buf_printf(out, "Content-Length: %zu\r\n\r\n", body_len) != 0)
    return -1;
  return dmt_buf_append(out, body, body_len);
}

int dmt_http_build_wsman_request_chunked(struct dmt_buf *out, const char *authorization,
                                         const char *host, unsigned port, const char *body,
                                         size_t body_len) {
  if (request_head(out, authorization, host, port) != 0 ||
      dmt_buf_printf(out, "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n%zX\r\n", body_len) != 0 ||
      dmt_buf_append(out, body, body_len) != 0)
    return -1;
  return dmt_buf_printf(out, "\r\n0\r\n\r\n");
}

/* AMT's logon-failure page; its exact length is what real firmware sends (~690 bytes). */
static const char amt_401_body[] =
    "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01 Transitional//EN\" >\n"
    "<html><head><link rel=stylesheet href=/styles.css>\n"
    "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\n"
    "<title>Intel&reg; Active Management Technology</title></head>\n"
    "<body>\n<table class=header>\n<tr><td valign=top nowrap>\n"
    "<p class=top1>Intel<font class=r><sup>&reg;</sup></font> Active Management Technology\n"
    "<td valign=\"top\"><img src=\"logo.gif\" align=\"right\" alt=\"Intel\">\n</table>\n<br />\n"
    "<h2 class=warn>Log on failed. Incorrect user name or password, or user account temporarily locked.</h2>\n\n"
    "<p>\n<form METHOD=\"GET\" action=\"index.htm\"><h2><input type=submit value=\"Try again\">\n"
    "</h2></form>\n<p>\n\n</body>\n</html>\n";

int dmt_http_build_amt_401(struct dmt_buf *out, const char *realm, const char *nonce,
                           const char *server_version) {
  return dmt_buf_printf(out,
                        "HTTP/1.1 401 Unauthorized\r\n"
                        "WWW-Authenticate: Digest realm=\"%s\", nonce=\"%s\",stale=\"false\",qop=\"auth\"\r\n"
                        "Content-Type: text/html\r\n"
                        "Server: Intel(R) Active Management Technology %s\r\n"
                        "Content-Length: %zu\r\n"
                        "Connection: close\r\n\r\n%s",
                        realm, nonce, server_version, sizeof amt_401_body - 1, amt_401_body);
}

int dmt_http_build_amt_soap(struct dmt_buf *out, int status, const char *server_version,
                            const char *body, size_t body_len, size_t chunk_max) {
  const char *reason = status == 200 ? "OK" : status == 400 ? "Bad Request" : "Internal Server Error";
  if (chunk_max == 0 || chunk_max > 0xFFFF) chunk_max = 0xFFFF; /* sizes are written as 4 hex digits */
  if (dmt_buf_printf(out,
                     "HTTP/1.1 %d %s\r\n"
                     "Server: Intel(R) Active Management Technology %s\r\n"
                     "X-Frame-Options: DENY\r\n"
                     "Content-Type: application/soap+xml; charset=UTF-8\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n",
                     status, reason, server_version) != 0)
    return -1;
  for (size_t off = 0; off < body_len; off += chunk_max) {
    size_t n = body_len - off < chunk_max ? body_len - off : chunk_max;
    if (dmt_buf_printf(out, "%04zX\r\n", n) != 0 || dmt_buf_append(out, body + off, n) != 0 ||
        dmt_buf_append(out, "\r\n", 2) != 0)
      return -1;
  }
  return dmt_buf_append(out, "0\r\n\r\n", 5);
}
