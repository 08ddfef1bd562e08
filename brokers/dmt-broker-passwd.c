/*
 * dmt-broker-passwd: makes an agent's broker credential.
 *
 *   dmt-broker-passwd svc:<name> <secret-file>   new random secret into <secret-file> (0600, created);
 *                                                its agents_file line on stdout
 *   dmt-broker-passwd --stdin svc:<name>         hash line for a secret read from stdin
 *
 * The secret never passes through argv, the terminal or the shell history:
 * it goes to a file the agent reads (DMT_MQTT_PASSWORD_FILE) or comes from a
 * pipe. Append the printed line to the broker's agents_file, then SIGHUP the
 * broker (or let it notice the change).
 */
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dmt/svc_auth.h"

static int usage(void) {
  fprintf(stderr, "usage: dmt-broker-passwd svc:<name> <secret-file>\n"
                  "       dmt-broker-passwd --stdin svc:<name>   (secret on stdin, at least %d characters)\n",
          DMT_SVC_MIN_SECRET);
  return 2;
}

int main(int argc, char **argv) {
  if (argc != 3) return usage();
  bool from_stdin = !strcmp(argv[1], "--stdin");
  const char *user = from_stdin ? argv[2] : argv[1];
  if (!dmt_svc_username_valid(user)) {
    fprintf(stderr, "dmt-broker-passwd: the username must be svc:<name>, name = [a-z0-9][a-z0-9._-]{0,62}\n");
    return 2;
  }
  char secret[DMT_SVC_MAX_SECRET + 2] = "", line[512];
  if (from_stdin) {
    if (!fgets(secret, sizeof secret, stdin)) return usage();
    secret[strcspn(secret, "\r\n")] = '\0';
  } else {
    if (dmt_svc_new_secret(secret) != 0) return 1;
    int fd = open(argv[2], O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
      perror(argv[2]);
      OPENSSL_cleanse(secret, sizeof secret);
      return 1;
    }
    ssize_t n = write(fd, secret, strlen(secret));
    if (close(fd) != 0 || n != (ssize_t)strlen(secret)) {
      perror(argv[2]);
      OPENSSL_cleanse(secret, sizeof secret);
      return 1;
    }
  }
  int rc = dmt_svc_hash_line(user, secret, DMT_SVC_ITERATIONS, line, sizeof line);
  OPENSSL_cleanse(secret, sizeof secret);
  if (rc != 0) {
    fprintf(stderr, "dmt-broker-passwd: secrets must be %d to %d characters\n", DMT_SVC_MIN_SECRET, DMT_SVC_MAX_SECRET);
    return 1;
  }
  printf("%s\n", line);
  return 0;
}
