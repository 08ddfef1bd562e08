/* GUID derivation with the reference vectors (mps-cira.md §1.8). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dmt/amt_guid.h"

static void hex_to_bytes(const char *hex, uint8_t *out) {
  for (int i = 0; i < 16; i++) {
    unsigned v;
    sscanf(hex + 2 * i, "%2x", &v);
    out[i] = (uint8_t)v;
  }
}

static void test_reference_vectors(void **state) {
  uint8_t u[16], back[16];
  char guid[37];
  hex_to_bytes("44454C4C4B0010428033B6C04F504633", u);
  dmt_amt_uuid_to_guid(u, guid);
  assert_string_equal(guid, "4c4c4544-004b-4210-8033-b6c04f504633");
  assert_int_equal(dmt_amt_guid_to_uuid(guid, back), 0);
  assert_memory_equal(back, u, 16);
  hex_to_bytes("80b362d130c3e31182a540a8f0a2a536", u);
  dmt_amt_uuid_to_guid(u, guid);
  assert_string_equal(guid, "d162b380-c330-11e3-82a5-40a8f0a2a536");
  /* Uppercase input (as AMT formats it) round-trips to the same bytes. */
  assert_int_equal(dmt_amt_guid_to_uuid("D162B380-C330-11E3-82A5-40A8F0A2A536", back), 0);
  assert_memory_equal(back, u, 16);
}

static void test_normalize(void **state) {
  char out[37];
  assert_int_equal(dmt_guid_normalize("4C4C4544-004B-4210-8033-B6C04F504633", out), 0);
  assert_string_equal(out, "4c4c4544-004b-4210-8033-b6c04f504633");
  assert_int_equal(dmt_guid_normalize("4C4C4544-004B-4210-8033-B6C04F50463", out), -1);
  assert_int_equal(dmt_guid_normalize("4C4C4544x004B-4210-8033-B6C04F504633", out), -1);
  assert_int_equal(dmt_guid_normalize("../../../etc/passwd-aaaaaaaaaaaaaaaa", out), -1);
  assert_int_equal(dmt_guid_normalize("", out), -1);
  assert_false(dmt_guid_valid(NULL));
  assert_false(dmt_guid_valid("g c4c4544-004b-4210-8033-b6c04f504633"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reference_vectors),
      cmocka_unit_test(test_normalize),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
