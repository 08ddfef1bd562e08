/* AMT UUID bytes <-> DMT GUID strings (see dmt/amt_guid.h). */
#include "dmt/amt_guid.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Byte order of the text rendering: groups 1-3 reversed, groups 4-5 as is. */
static const int order[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};

void dmt_amt_uuid_to_guid(const uint8_t uuid[16], char out[DMT_GUID_STRLEN + 1]) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    uint8_t b = uuid[order[i]];
    out[o++] = hex[b >> 4];
    out[o++] = hex[b & 15];
  }
  out[o] = '\0';
}

bool dmt_guid_valid(const char *s) {
  if (!s || strlen(s) != DMT_GUID_STRLEN) return false;
  for (int i = 0; i < DMT_GUID_STRLEN; i++) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i])) return false;
  }
  return true;
}

int dmt_guid_normalize(const char *in, char out[DMT_GUID_STRLEN + 1]) {
  if (!dmt_guid_valid(in)) return -1;
  for (int i = 0; i <= DMT_GUID_STRLEN; i++) out[i] = (char)tolower((unsigned char)in[i]);
  return 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = (char)tolower((unsigned char)c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int dmt_amt_guid_to_uuid(const char *guid, uint8_t uuid[16]) {
  if (!dmt_guid_valid(guid)) return -1;
  uint8_t text_order[16];
  int n = 0;
  for (const char *p = guid; *p; p++) {
    if (*p == '-') continue;
    text_order[n / 2] = (uint8_t)((n % 2) ? (text_order[n / 2] | hexval(*p)) : (hexval(*p) << 4));
    n++;
  }
  for (int i = 0; i < 16; i++) uuid[order[i]] = text_order[i];
  return 0;
}
