/*
 * Provisioning classes of the simulated AMT: setup and configuration state,
 * and unprovisioning, which (as on firmware) clears the CIRA configuration
 * so the device stops calling home.
 */
#include <stdio.h>
#include <string.h>

#include "amt_classes.h"

static void setup_and_configuration(struct sim_device *d, struct dmt_buf *b, bool pull) {
  /* ProvisioningMode: 1 = admin control, 4 = client control (as DMT reads it). */
  const char *pmode = d->mode == SIM_MODE_CCM ? "4" : "1";
  const char *pstate = d->mode == SIM_MODE_PRE ? "0" : "2";
  const struct amt_prop p[] = {{"CreationClassName", "AMT_SetupAndConfigurationService"},
                               {"ElementName", "Intel(r) AMT Setup and Configuration Service"},
                               {"EnabledState", "5"}, {"Name", "Intel(r) AMT Setup and Configuration Service"},
                               {"PasswordModel", "1"}, {"ProvisioningMode", pmode}, {"ProvisioningServerOTP", ""},
                               {"ProvisioningState", pstate}, {"RequestedState", "12"},
                               {"SystemCreationClassName", "CIM_ComputerSystem"}, {"SystemName", "Intel(r) AMT"},
                               {"ZeroTouchConfigurationEnabled", "true"}};
  amt_instance(b, "AMT_SetupAndConfigurationService", pull, p, sizeof p / sizeof p[0]);
}

static void unprovision_done(struct dmt_loop *loop, struct dmt_timer *t) {
  sim_cira_drop(t->ud, "unprovisioned"); /* no CIRA configuration left: it will not call home */
}

static void setup_invoke(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                         struct amt_fault *f) {
  if (!strcmp(w->method, "Unprovision")) {
    d->mode = SIM_MODE_PRE;
    d->mps_user[0] = d->mps_password[0] = '\0';
    sim_device_save(d);
    amt_return(b, "Unprovision", 0, NULL);
    /* Answer first, then drop the tunnel, as firmware does once unprovisioning completes. */
    d->aux.fn = unprovision_done;
    dmt_timer_start(d->sim->loop, &d->aux, 500);
    return;
  }
  if (!strcmp(w->method, "CommitChanges") || !strcmp(w->method, "SetMEBxPassword")) {
    amt_return(b, w->method, 0, NULL);
    return;
  }
  f->subcode = "b:ActionNotSupported";
  f->reason = "The action is not supported by the service.";
}

const struct amt_class amt_setup_classes[] = {
    {"AMT_SetupAndConfigurationService", setup_and_configuration, NULL, setup_invoke, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
