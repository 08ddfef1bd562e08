/*
 * Shared fixture for the simulator's unit tests: a small fleet on a real
 * event loop (no sockets), and a WS-Man client that talks to a device's
 * responder the way DMT does (HTTP request, 401 challenge, digest retry),
 * so tests see exactly the bytes an MPS or RPS would see.
 */
#ifndef DMT_SIM_FIXTURE_H
#define DMT_SIM_FIXTURE_H

#include <jansson.h>

#include "dmt/http.h"
#include "dmt/wsman.h"
#include "sim.h"

/* n template devices in the given mode ("pre", "ccm", "acm") with admin password FIXTURE_AMT_PASSWORD. */
struct sim *fixture_sim(size_t n, const char *mode, const char *state_dir);
void fixture_sim_free(struct sim *s);
#define FIXTURE_AMT_PASSWORD "Amt@Passw0rd1"
#define FIXTURE_GUID_PREFIX "4c4c4544-004b-4210-8033-"

/* A parsed HTTP response from a device. */
struct fixture_response {
  struct dmt_http_parser http;
  bool close_after;
};
void fixture_response_free(struct fixture_response *r);

/* One raw HTTP exchange: POST /wsman with body and an optional Authorization value. */
void fixture_http(struct sim_device *d, enum sim_transport tr, const char *authorization, const char *body,
                  struct fixture_response *out);

/*
 * A WS-Man exchange as DMT does it: first without credentials (expects the
 * 401), then with digest for user/password. Returns the HTTP status of the
 * second answer and parses its envelope into *resp (caller frees).
 */
int fixture_wsman(struct sim_device *d, enum sim_transport tr, const char *user, const char *password,
                  const char *envelope, struct dmt_wsman_response *resp);

/* Builders for the common requests (malloc'd envelope). */
char *fixture_get(const char *cls);
char *fixture_enumerate(const char *cls);
char *fixture_pull(const char *cls, const char *context, unsigned max);
char *fixture_invoke(const char *cls, const char *method, const struct dmt_wsman_param *p, size_t n);
char *fixture_delete(const char *cls, const char *selector, const char *value);
char *fixture_put(const char *cls, const struct dmt_wsman_param *p, size_t n);

/* The response as DMT's JSON ({"Header":..., "Body":...}); caller decrefs. */
json_t *fixture_json(const struct dmt_wsman_response *r);
/* A value by dotted path ("Body.AMT_GeneralSettings.DigestRealm"); borrowed from root. */
json_t *fixture_path(json_t *root, const char *path);
/* The integer ReturnValue of <Method>_OUTPUT, or -1. */
long fixture_return_value(const struct dmt_wsman_response *r, const char *method);

#endif
