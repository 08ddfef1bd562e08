/*
 * North clients' identities and token expiry. An identity is keyed by client
 * id and bound to the connection that presented the token; it stays after a
 * disconnect until the token expires, so a persistent session keeps
 * receiving (queued) messages exactly as long as its token is valid. Once a
 * second (MOSQ_EVT_TICK), expired identities are dropped and their
 * connections, if still open, are kicked without will: a client whose token
 * expires must reconnect with a fresh one. The ACL also refuses an expired
 * identity in between ticks.
 */
#include <stdlib.h>
#include <string.h>

#include "plugin.h"

static void client_free(struct client *c) {
  if (!c) return;
  dmt_identity_clear(&c->id);
  free(c);
}

static bool expired(const struct plugin *p, const struct client *c, time_t now) {
  return (long long)now - dmt_jwt_verifier_skew(p->verifier) >= c->id.exp;
}

int clients_put(struct plugin *p, const struct mosquitto *conn, const char *client_id, struct dmt_identity *id) {
  struct client *c = calloc(1, sizeof *c);
  if (!c) return -1;
  c->conn = conn;
  c->online = true;
  c->id = *id;
  memset(id, 0, sizeof *id);
  void *old = NULL;
  if (dmt_strmap_put(&p->clients, client_id, c, &old) != 0) {
    *id = c->id;
    free(c);
    return -1;
  }
  client_free(old);
  return 0;
}

const struct client *clients_find(struct plugin *p, const struct mosquitto *conn, time_t now) {
  const char *cid = mosquitto_client_id(conn);
  const struct client *c = cid ? dmt_strmap_get(&p->clients, cid) : NULL;
  return c && c->conn == conn && !expired(p, c, now) ? c : NULL;
}

void clients_forget(struct plugin *p, const char *client_id) { client_free(dmt_strmap_del(&p->clients, client_id)); }

static void free_entry(const char *key, void *value, void *ud) { client_free(value); }

void clients_free_all(struct plugin *p) {
  dmt_strmap_foreach(&p->clients, free_entry, NULL);
  dmt_strmap_free(&p->clients);
}

int on_disconnect(int event, void *event_data, void *userdata) {
  struct mosquitto_evt_disconnect *ed = event_data;
  struct plugin *p = userdata;
  const char *cid = mosquitto_client_id(ed->client);
  struct client *c = cid ? dmt_strmap_get(&p->clients, cid) : NULL;
  if (c && c->conn == ed->client) c->online = false;
  return MOSQ_ERR_SUCCESS;
}

struct sweep {
  const struct plugin *p;
  time_t now;
  char **ids;
  size_t n, cap;
};

static void collect_expired(const char *key, void *value, void *ud) {
  struct sweep *s = ud;
  if (!expired(s->p, value, s->now)) return;
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 16;
    char **ids = realloc(s->ids, cap * sizeof *ids);
    if (!ids) return;
    s->ids = ids;
    s->cap = cap;
  }
  if ((s->ids[s->n] = strdup(key))) s->n++;
}

static void sweep_expired(struct plugin *p, time_t now) {
  struct sweep s = {.p = p, .now = now};
  dmt_strmap_foreach(&p->clients, collect_expired, &s);
  for (size_t i = 0; i < s.n; i++) {
    struct client *c = dmt_strmap_del(&p->clients, s.ids[i]);
    if (c && c->online) {
      char cbuf[160], nbuf[160];
      plog(MOSQ_LOG_NOTICE, "event=token_expired client=%s user=%s effect=disconnected",
           log_safe(s.ids[i], cbuf, sizeof cbuf), log_safe(c->id.name, nbuf, sizeof nbuf));
      mosquitto_kick_client_by_clientid(s.ids[i], false); /* re-enters on_disconnect, which no longer finds it */
    }
    client_free(c);
    free(s.ids[i]);
  }
  free(s.ids);
}

int on_tick(int event, void *event_data, void *userdata) {
  struct plugin *p = userdata;
  time_t now = time(NULL);
  if (now == p->last_tick) return MOSQ_ERR_SUCCESS;
  p->last_tick = now;
  if (now >= p->next_file_check) {
    p->next_file_check = now + (time_t)p->file_check_interval;
    keys_check_file(&p->keys, false);
    agents_load(p, false);
  }
  if (p->verifier) sweep_expired(p, now);
  return MOSQ_ERR_SUCCESS;
}
