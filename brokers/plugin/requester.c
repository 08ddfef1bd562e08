/*
 * MOSQ_EVT_MESSAGE: stamps the authenticated identity on every publish as
 * the user property dmt-requester ("svc:<name>" for agents, "user:<name>" for
 * token holders, the token's preferred_username or sub), removing any
 * dmt-requester the client sent, so executors can put it in the audit trail
 * as is. An agent acting for someone else (the REST bridge for a REST
 * caller) says so in dmt-on-behalf-of, which north clients cannot send: the
 * plugin strips it from their publishes. The property list is rebuilt only
 * when a forged property is present; otherwise the stamp is appended.
 */
#include <mqtt_protocol.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"

#define REQUESTER "dmt-requester"
#define ON_BEHALF "dmt-on-behalf-of"

static bool forged(const char *name, bool agent) {
  return !strcmp(name, REQUESTER) || (!agent && !strcmp(name, ON_BEHALF));
}

/* True when the list holds a user property the client may not send. */
static bool has_forged(const mosquitto_property *props, bool agent) {
  for (const mosquitto_property *pr = props; pr; pr = mosquitto_property_next(pr)) {
    char *name = NULL, *value = NULL;
    if (mosquitto_property_identifier(pr) != MQTT_PROP_USER_PROPERTY ||
        !mosquitto_property_read_string_pair(pr, MQTT_PROP_USER_PROPERTY, &name, &value, false))
      continue;
    bool bad = forged(name, agent);
    mosquitto_free(name);
    mosquitto_free(value);
    if (bad) return true;
  }
  return false;
}

/* Appends a copy of one property, whatever its type. */
static int copy_one(mosquitto_property **out, const mosquitto_property *pr) {
  int id = mosquitto_property_identifier(pr), rc;
  uint8_t b;
  uint16_t s;
  uint32_t i;
  void *bin;
  char *str, *name, *value;
  if (mosquitto_property_read_byte(pr, id, &b, false)) return mosquitto_property_add_byte(out, id, b);
  if (mosquitto_property_read_int16(pr, id, &s, false)) return mosquitto_property_add_int16(out, id, s);
  if (mosquitto_property_read_int32(pr, id, &i, false)) return mosquitto_property_add_int32(out, id, i);
  if (mosquitto_property_read_varint(pr, id, &i, false)) return mosquitto_property_add_varint(out, id, i);
  if (mosquitto_property_read_binary(pr, id, &bin, &s, false)) {
    rc = mosquitto_property_add_binary(out, id, bin, s);
    mosquitto_free(bin);
    return rc;
  }
  if (mosquitto_property_read_string(pr, id, &str, false)) {
    rc = mosquitto_property_add_string(out, id, str);
    mosquitto_free(str);
    return rc;
  }
  if (mosquitto_property_read_string_pair(pr, id, &name, &value, false)) {
    rc = mosquitto_property_add_string_pair(out, id, name, value);
    mosquitto_free(name);
    mosquitto_free(value);
    return rc;
  }
  return MOSQ_ERR_INVAL;
}

/* The list without the properties the client may not send. */
static int without_forged(const mosquitto_property *props, bool agent, mosquitto_property **out) {
  *out = NULL;
  for (const mosquitto_property *pr = props; pr; pr = mosquitto_property_next(pr)) {
    if (mosquitto_property_identifier(pr) == MQTT_PROP_USER_PROPERTY) {
      char *name = NULL, *value = NULL;
      if (!mosquitto_property_read_string_pair(pr, MQTT_PROP_USER_PROPERTY, &name, &value, false)) continue;
      int rc = forged(name, agent) ? MOSQ_ERR_SUCCESS
                                   : mosquitto_property_add_string_pair(out, MQTT_PROP_USER_PROPERTY, name, value);
      mosquitto_free(name);
      mosquitto_free(value);
      if (rc != MOSQ_ERR_SUCCESS) return rc;
    } else if (copy_one(out, pr) != MOSQ_ERR_SUCCESS) {
      return MOSQ_ERR_INVAL;
    }
  }
  return MOSQ_ERR_SUCCESS;
}

int on_message(int event, void *event_data, void *userdata) {
  struct mosquitto_evt_message *ed = event_data;
  struct plugin *p = userdata;
  const char *user = mosquitto_client_username(ed->client);
  bool agent = is_agent(user);
  char who[DMT_IDENTITY_NAME_MAX + 8];
  if (agent) {
    snprintf(who, sizeof who, "%s", user);
  } else {
    const struct client *c = clients_find(p, ed->client, time(NULL));
    if (!c) return MOSQ_ERR_ACL_DENIED; /* cannot say who sent it: refuse rather than pass it unsigned */
    snprintf(who, sizeof who, "user:%s", c->id.name);
  }
  if (has_forged(ed->properties, agent)) {
    mosquitto_property *clean = NULL;
    if (without_forged(ed->properties, agent, &clean) != MOSQ_ERR_SUCCESS) {
      mosquitto_property_free_all(&clean);
      return MOSQ_ERR_ACL_DENIED;
    }
    mosquitto_property_free_all(&ed->properties);
    ed->properties = clean;
  }
  return mosquitto_property_add_string_pair(&ed->properties, MQTT_PROP_USER_PROPERTY, REQUESTER, who) == MOSQ_ERR_SUCCESS
             ? MOSQ_ERR_SUCCESS
             : MOSQ_ERR_ACL_DENIED;
}
