/*
 * A minimal HTTP responder on a dmt_loop for liveness and readiness probes
 * (Kubernetes, load balancers): GET /healthz answers 200 while the loop runs;
 * GET /readyz answers 200 or 503 from the agent's ready() callback; GET on a
 * path registered with dmt_health_add_static() answers that fixed body (the
 * terminator's /api/v1/ciracert). Anything else is 404. One short request per
 * connection; nothing else is parsed.
 */
#ifndef DMT_HEALTH_H
#define DMT_HEALTH_H

#include <stdbool.h>

struct dmt_loop;

struct dmt_health;

/* ready() returns true when the agent can do its job; detail goes into the body. NULL on failure. */
struct dmt_health *dmt_health_start(struct dmt_loop *loop, const char *address, int port,
                                    bool (*ready)(void *ud, char *detail, unsigned detail_len), void *ud);
void dmt_health_stop(struct dmt_health *h);
/* Serves body (copied) with content_type on GET path. 0, or -1 (out of memory, or 8 routes already). */
int dmt_health_add_static(struct dmt_health *h, const char *path, const char *content_type, const char *body);

#endif
