/*
 * EMF mode: Keycloak JWTs (RS256, keys from a JWKS file or URL) checked by
 * the shared verifier in common/jwt_auth.c (also used by the broker plugin),
 * tenant from the ActiveProjectID header (one of the projects the token's
 * roles grant) or, for south calls without it, from the token itself.
 *
 * Until common/jwt_auth.c is merged this file only refuses: EMF mode cannot
 * be enabled (start-up fails with a clear error) and no request is let
 * through.
 */
#include <stdio.h>

#include "bridge.h"

int br_auth_emf_init(struct br_server *s, char *err, size_t errlen) {
  snprintf(err, errlen, "EMF mode needs the shared JWT verifier (common/jwt_auth.c), not in this build");
  return -1;
}

void br_auth_emf_free(struct br_server *s) {}

bool br_auth_emf(struct br_txn *t) {
  br_out_error(&t->out, 401, "Unauthorized", "no JWT verifier in this build");
  return false;
}
