/* The simulated AMT's WS-Man classes: a table from class name to handlers. */
#ifndef DMT_SIM_AMT_CLASSES_H
#define DMT_SIM_AMT_CLASSES_H

#include "sim.h"

struct amt_fault {
  const char *code;    /* default a:Sender */
  const char *subcode; /* non-NULL = answer with a fault */
  const char *reason;
};

/* A property of an instance: name and text value (already in AMT's text form). */
struct amt_prop {
  const char *name;
  const char *value;
};

struct amt_class {
  const char *name;
  /* Writes the instance(s); pull=true writes item elements with their own namespace binding. */
  void (*instances)(struct sim_device *d, struct dmt_buf *b, bool pull);
  void (*put)(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b, struct amt_fault *f);
  void (*invoke)(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b, struct amt_fault *f);
  void (*del)(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b, struct amt_fault *f);
};

/* Writes <prefix:Class ...>props</prefix:Class>; pull=true binds the class namespace on the element. */
void amt_instance(struct dmt_buf *b, const char *cls, bool pull, const struct amt_prop *props, size_t n);
/* <g:Method_OUTPUT><g:ReturnValue>rv</g:ReturnValue>extra</g:Method_OUTPUT> */
void amt_return(struct dmt_buf *b, const char *method, int rv, const char *extra_xml);

void amt_dispatch(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *body, struct amt_fault *f);

/* Per-area tables (amt_power.c, amt_inventory.c, amt_setup.c, amt_logs.c). */
extern const struct amt_class amt_power_classes[];
extern const struct amt_class amt_inventory_classes[];
extern const struct amt_class amt_setup_classes[];
extern const struct amt_class amt_log_classes[];

#define AMT_FAULT_INVALID_PARAMS(f) ((f)->subcode = "c:InvalidParameter", (f)->reason = "A parameter is invalid.")

#endif
