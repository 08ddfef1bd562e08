/*
 * A test-only MQTT v5 client over libmosquitto that records what the broker
 * answered: the CONNACK reason, each SUBACK and PUBACK reason code, every
 * message with its dmt-requester / dmt-on-behalf-of user properties, and
 * disconnects. Tests use it to show a denial twice over: by the reason code
 * and by a message that never arrives.
 */
#ifndef DMT_TEST_MQTT5_PROBE_H
#define DMT_TEST_MQTT5_PROBE_H

#include <stdbool.h>
#include <stddef.h>

#define PROBE_NO_ANSWER (-1)
#define PROBE_NOT_AUTHORIZED 0x87
#define PROBE_NO_SUBSCRIBERS 0x10 /* PUBACK: accepted, but no subscription matched */

struct probe;

/*
 * Connects to 127.0.0.1:port as client_id with username/password (either may
 * be NULL) and waits for the CONNACK. A will (topic, payload) may be given.
 * Always returns a probe; check probe_connack(). A probe never reconnects.
 */
struct probe *probe_connect(int port, const char *client_id, const char *username, const char *password,
                            const char *will_topic, const char *will_payload);
/* The CONNACK reason code (0 = accepted) or PROBE_NO_ANSWER. */
int probe_connack(struct probe *p);
/* Clean DISCONNECT, then free. */
void probe_close(struct probe *p);
/* Drops the TCP connection without DISCONNECT (the broker sends the will), then free. */
void probe_drop(struct probe *p);

/* SUBACK reason code for filter (QoS 1 requested; 1 = granted, 0x87 = not authorised), or PROBE_NO_ANSWER. */
int probe_subscribe(struct probe *p, const char *filter);
/*
 * QoS 1 publish; returns the PUBACK reason code (0 = accepted, 0x87 = not
 * authorised) or PROBE_NO_ANSWER. user_props: NULL or "name=value" strings, NULL-terminated.
 */
int probe_publish(struct probe *p, const char *topic, const char *payload, bool retain, const char *const *user_props);

/* Waits for a message on topic (with payload, if non-NULL); true when it came. */
bool probe_wait_message(struct probe *p, const char *topic, const char *payload, int timeout_ms);
/* Messages received so far on topics that match filter (MQTT wildcards). */
size_t probe_count(struct probe *p, const char *filter);
size_t probe_total(struct probe *p);
/* User properties of the last message on topic: value of dmt-requester (and how many there were),
 * and of dmt-on-behalf-of ("" when absent). False when no such message. */
bool probe_properties(struct probe *p, const char *topic, char *requester, size_t rlen, int *nrequester,
                      char *behalf, size_t blen);

/* True once the broker has disconnected an accepted connection; *reason gets its reason code. */
bool probe_wait_disconnect(struct probe *p, int timeout_ms, int *reason);
#endif
