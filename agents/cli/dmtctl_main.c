/*
 * dmtctl: the command-line client of the control plane. This file holds the
 * command registry, the global flags, configuration (flags > DMTCTL_*
 * environment > config file > defaults, through common/'s dmt_config), help
 * texts, exit codes and dispatch. Commands live in cmd_*.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dmtctl.h"

#define DMTCTL_VERSION "0.1.0"

static const struct dmt_config_key keys[] = {
    {"broker", "DMTCTL_BROKER", NULL, "tcp://127.0.0.1:1883", "MQTT broker URL (tcp:// or ssl://)", 0},
    {"tenant", "DMTCTL_TENANT", NULL, "", "tenant (EMF project id); empty means DMT's default tenant (_default)", 0},
    {"token_file", "DMTCTL_TOKEN_FILE", NULL, NULL,
     "file holding the JWT: the MQTT password at the broker and the Bearer token at the bridge", 0},
    {"username", "DMTCTL_USERNAME", NULL, "dmtctl", "MQTT user name sent with the token", 0},
    {"bridge", "DMTCTL_BRIDGE", NULL, "http://127.0.0.1:3000",
     "REST bridge base URL (MPS-side routes: the event history)", 0},
    {"rps_bridge", "DMTCTL_RPS_BRIDGE", NULL, NULL,
     "bridge base URL of the RPS-side routes (default: the bridge URL with port 8081 for 3000)", 0},
    {"output", "DMTCTL_OUTPUT", NULL, "table", "output format: table, wide, json, yaml or name", 0},
    {"timeout", "DMTCTL_TIMEOUT", NULL, "30s", "deadline of each command or request (e.g. 10s, 2m)", 0},
    {"parallel", "DMTCTL_PARALLEL", NULL, "64", "bulk operations: requests in flight at once", 0},
    {"ca_file", "DMTCTL_CA_FILE", NULL, NULL, "CA bundle for ssl:// brokers and https:// bridges", 0},
};
#define NKEYS (sizeof keys / sizeof keys[0])

static const struct ctl_flag globals[] = {
    {"broker", 0, "URL", "MQTT broker URL (DMTCTL_BROKER)", NULL},
    {"tenant", 0, "TENANT", "tenant / EMF project id (DMTCTL_TENANT)", NULL},
    {"token-file", 0, "FILE", "file holding the JWT (DMTCTL_TOKEN_FILE)", "file"},
    {"username", 0, "NAME", "MQTT user name sent with the token (DMTCTL_USERNAME)", NULL},
    {"bridge", 0, "URL", "REST bridge URL (DMTCTL_BRIDGE)", NULL},
    {"rps-bridge", 0, "URL", "bridge URL of the RPS routes (DMTCTL_RPS_BRIDGE)", NULL},
    {"output", 'o', "FORMAT", "table, wide, json, yaml or name (DMTCTL_OUTPUT)", "table|wide|json|yaml|name"},
    {"timeout", 0, "DURATION", "deadline per command, e.g. 10s (DMTCTL_TIMEOUT)", NULL},
    {"parallel", 0, "N", "bulk: requests in flight (DMTCTL_PARALLEL)", NULL},
    {"ca-file", 0, "FILE", "CA bundle for ssl:// and https:// (DMTCTL_CA_FILE)", "file"},
    {"config", 0, "FILE", "configuration file (DMTCTL_CONFIG; default ~/.config/dmtctl/config)", "file"},
    {"progress", 0, NULL, "always draw the progress bar of bulk operations", NULL},
    {"no-progress", 0, NULL, "never draw it (default: only when stderr is a terminal)", NULL},
    {"verbose", 'v', NULL, "log connection details on stderr", NULL},
    {NULL, 0, NULL, NULL, NULL},
};

static const char exit_codes_help[] =
    "Exit codes:\n"
    "  0  ok                  everything succeeded\n"
    "  1  usage               bad command line, configuration, or local file\n"
    "  2  partial             bulk: some devices succeeded, or they failed differently\n"
    "  3  denied              the broker or bridge refused the token (or the tenant)\n"
    "  4  not found           no such device (no published state) or object\n"
    "  5  offline             the device is not connected\n"
    "  6  timeout             no answer before the deadline\n"
    "  7  unreachable         the broker or bridge could not be reached\n"
    "  8  failed              the device or server answered with an error\n"
    "  130 interrupted        Ctrl-C during a command (following events, Ctrl-C is the normal end: 0)\n";

/* ---- built-in commands ---- */

static const struct ctl_cmd *const *g_cmds;
static size_t g_ncmds;

static void print_flags(FILE *out, const struct ctl_flag *flags) {
  for (const struct ctl_flag *f = flags; f && f->name; f++) {
    char left[80];
    if (f->short_name) snprintf(left, sizeof left, "-%c, --%s%s%s", f->short_name, f->name, f->arg ? " " : "", f->arg ? f->arg : "");
    else snprintf(left, sizeof left, "    --%s%s%s", f->name, f->arg ? " " : "", f->arg ? f->arg : "");
    fprintf(out, "  %-30s %s\n", left, f->help);
  }
}

static void print_cmd_help(FILE *out, const struct ctl_cmd *cmd) {
  fprintf(out, "Usage: dmtctl %s%s%s [flags]\n\n%s\n\n%s\n\n", cmd->name, cmd->args[0] ? " " : "", cmd->args,
          cmd->summary, cmd->description);
  if (cmd->flags && cmd->flags->name) {
    fprintf(out, "Flags:\n");
    print_flags(out, cmd->flags);
    fputc('\n', out);
  }
  fprintf(out, "Global flags:\n");
  print_flags(out, globals);
  fprintf(out, "  %-30s %s\n\n%s", "-h, --help", "this help", exit_codes_help);
}

static void print_group_help(FILE *out, const char *group) {
  fprintf(out, "Usage: dmtctl %s <command> [flags]\n\nCommands:\n", group);
  size_t gl = strlen(group);
  for (size_t i = 0; i < g_ncmds; i++)
    if (!strncmp(g_cmds[i]->name, group, gl) && g_cmds[i]->name[gl] == ' ')
      fprintf(out, "  %-28s %s\n", g_cmds[i]->name, g_cmds[i]->summary);
  fprintf(out, "\nRun `dmtctl %s <command> --help` for a command's flags.\n", group);
}

static void print_top_help(FILE *out) {
  fprintf(out,
          "dmtctl: command-line client of the dmt control plane (Intel AMT fleets over MQTT).\n\n"
          "Usage: dmtctl <command> [arguments] [flags]\n\nCommands:\n");
  for (size_t i = 0; i < g_ncmds; i++) fprintf(out, "  %-28s %s\n", g_cmds[i]->name, g_cmds[i]->summary);
  fprintf(out, "\nGlobal flags:\n");
  print_flags(out, globals);
  fprintf(out, "  %-30s %s\n\n", "-h, --help", "help for dmtctl or any command");
  fprintf(out,
          "Configuration, highest precedence first: flags, DMTCTL_* environment variables, the\n"
          "config file (--config, DMTCTL_CONFIG, or ~/.config/dmtctl/config: `name = value` lines\n"
          "with the names shown by `dmtctl config view`), built-in defaults. The token is read\n"
          "from token_file and is never printed.\n\n%s",
          exit_codes_help);
}

static int run_help(struct ctl *c, const struct ctl_cmd *cmd, struct ctl_args *a) {
  if (a->npos == 0) {
    print_top_help(c->out);
    return CTL_OK;
  }
  char name[128] = "";
  for (size_t i = 0; i < a->npos && i < 2; i++)
    snprintf(name + strlen(name), sizeof name - strlen(name), "%s%s", i ? " " : "", a->pos[i]);
  for (size_t i = 0; i < g_ncmds; i++)
    if (!strcmp(g_cmds[i]->name, name)) {
      print_cmd_help(c->out, g_cmds[i]);
      return CTL_OK;
    }
  for (size_t i = 0; i < g_ncmds; i++)
    if (!strncmp(g_cmds[i]->name, name, strlen(name)) && g_cmds[i]->name[strlen(name)] == ' ') {
      print_group_help(c->out, name);
      return CTL_OK;
    }
  return ctl_fail(c, CTL_USAGE, "no command `%s`", name);
}

static int run_version(struct ctl *c, const struct ctl_cmd *cmd, struct ctl_args *a) {
  if (c->fmt == CTL_FMT_JSON || c->fmt == CTL_FMT_YAML) {
    json_t *v = json_pack("{s:s, s:s}", "version", DMTCTL_VERSION, "topics", "dmt/v1");
    ctl_print_value(c, v);
    json_decref(v);
  } else {
    fprintf(c->out, "dmtctl %s (topic contract dmt/v1)\n", DMTCTL_VERSION);
  }
  return CTL_OK;
}

static int run_config_view(struct ctl *c, const struct ctl_cmd *cmd, struct ctl_args *a) {
  json_t *o = json_object();
  for (size_t i = 0; i < NKEYS; i++) {
    const char *v = dmt_config_str(&c->cfg, keys[i].name);
    json_object_set_new(o, keys[i].name, v ? json_string(v) : json_null());
  }
  json_object_set_new(o, "token", json_string(c->token ? "(set)" : "(none)"));
  if (c->fmt == CTL_FMT_JSON || c->fmt == CTL_FMT_YAML) {
    ctl_print_value(c, o);
  } else {
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) fprintf(c->out, "%s = %s\n", k, json_is_string(v) ? json_string_value(v) : "");
  }
  json_decref(o);
  return CTL_OK;
}

static int run_completion(struct ctl *c, const struct ctl_cmd *cmd, struct ctl_args *a) {
  if (ctl_completion_print(c->out, a->pos[0], globals, g_cmds, g_ncmds) != 0)
    return ctl_fail(c, CTL_USAGE, "completion: `%s` is not a supported shell (bash, zsh)", a->pos[0]);
  return CTL_OK;
}

static const struct ctl_cmd builtin_cmds[] = {
    {"config view", "", "Print the effective configuration (the token is never shown)",
     "Shows every setting after flags, DMTCTL_* variables and the config file are\n"
     "applied; the names are those the config file uses (`name = value`).\n\n"
     "Example:\n  dmtctl config view --tenant lab -o yaml",
     NULL, 0, 0, run_config_view, 0, NULL},
    {"completion", "bash|zsh", "Print a shell completion script",
     "Examples:\n"
     "  source <(dmtctl completion bash)\n"
     "  dmtctl completion zsh > \"${fpath[1]}/_dmtctl\"",
     NULL, 1, 1, run_completion, 0, "bash|zsh"},
    {"version", "", "Print dmtctl's version", "Example:\n  dmtctl version", NULL, 0, 0, run_version, 0, NULL},
    {"help", "[command]", "Help for dmtctl or a command", "Example:\n  dmtctl help power off", NULL, 0, 2, run_help,
     0, NULL},
    {NULL, NULL, NULL, NULL, NULL, 0, 0, NULL, 0, NULL},
};

/* ---- main ---- */

static const char *default_config_path(char *buf, size_t len) {
  const char *x = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
  if (x && *x) snprintf(buf, len, "%s/dmtctl/config", x);
  else if (home && *home) snprintf(buf, len, "%s/.config/dmtctl/config", home);
  else return NULL;
  struct stat st;
  return stat(buf, &st) == 0 ? buf : NULL;
}

static int configure(struct ctl *c, const struct ctl_args *a) {
  char err[512], path[600];
  const char *file = ctl_arg(a, "config");
  if (!file) file = getenv("DMTCTL_CONFIG");
  if (file && !*file) file = NULL;
  if (!file) file = default_config_path(path, sizeof path);
  if (file && dmt_config_load_file(&c->cfg, file, err, sizeof err) != 0) return ctl_fail(c, CTL_USAGE, "%s", err);
  if (dmt_config_load_env(&c->cfg, err, sizeof err) != 0) return ctl_fail(c, CTL_USAGE, "%s", err);
  for (size_t i = 0; i < a->nset; i++) {
    char key[64];
    snprintf(key, sizeof key, "%s", a->set[i].flag->name);
    for (char *p = key; *p; p++)
      if (*p == '-') *p = '_';
    dmt_config_set(&c->cfg, key, a->set[i].value); /* only settings match; switches are read below */
  }
  const char *fmt = dmt_config_str(&c->cfg, "output");
  if (ctl_parse_format(fmt ? fmt : "table", &c->fmt) != 0)
    return ctl_fail(c, CTL_USAGE, "output format `%s`: use table, wide, json, yaml or name", fmt);
  const char *tenant = dmt_config_str(&c->cfg, "tenant");
  snprintf(c->tenant, sizeof c->tenant, "%s", tenant && strcmp(tenant, "_default") ? tenant : "");
  if (c->tenant[0] && !ctl_tenant_valid(c->tenant))
    return ctl_fail(c, CTL_USAGE, "tenant `%s`: 1 to 64 of A-Z a-z 0-9 _ -", tenant);
  snprintf(c->tenant_topic, sizeof c->tenant_topic, "%s", c->tenant[0] ? c->tenant : "_default");
  uint64_t ms;
  const char *to = dmt_config_str(&c->cfg, "timeout");
  if (!to || ctl_parse_duration_ms(to, &ms) != 0 || ms == 0 || ms > 3600000)
    return ctl_fail(c, CTL_USAGE, "timeout `%s`: a duration up to 1h such as 500ms, 30s or 2m", to ? to : "");
  c->timeout_ms = (int)ms;
  long par = dmt_config_int(&c->cfg, "parallel", -1);
  if (par < 1 || par > 4096) return ctl_fail(c, CTL_USAGE, "parallel must be between 1 and 4096");
  c->parallel = (int)par;
  c->progress = ctl_has(a, "progress") ? 1 : ctl_has(a, "no-progress") ? 0 : -1;
  c->verbose = ctl_has(a, "verbose");
  c->log = (struct dmt_log){.out = c->err, .min = c->verbose ? DMT_LOG_INFO : DMT_LOG_ERROR + 1, .component = "dmtctl"};
  return CTL_OK;
}

int main(int argc, char **argv) {
  /* every command in one table: groups in the order help lists them */
  const struct ctl_cmd *const groups[] = {ctl_cmds_devices, ctl_cmds_power, ctl_cmds_info, ctl_cmds_events,
                                          ctl_cmds_rps, builtin_cmds};
  const struct ctl_cmd *all[128];
  size_t n = 0;
  for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
    for (const struct ctl_cmd *cmd = groups[g]; cmd->name && n < 128; cmd++) all[n++] = cmd;
  g_cmds = all;
  g_ncmds = n;

  struct ctl c = {.out = stdout, .err = stderr};
  const struct ctl_cmd *cmd;
  const char *group;
  struct ctl_args *a = calloc(1, sizeof *a);
  char err[512];
  if (!a) return CTL_FAILED;
  int rc;
  if (ctl_parse(argc - 1, argv + 1, globals, all, n, &cmd, &group, a, err, sizeof err) != 0) {
    rc = ctl_fail(&c, CTL_USAGE, "%s", err);
    free(a);
    return rc;
  }
  if (!cmd) {
    if (group) {
      print_group_help(a->help ? stdout : stderr, group);
      rc = a->help ? CTL_OK : CTL_USAGE;
    } else {
      print_top_help(stdout);
      rc = CTL_OK;
    }
    free(a);
    return rc;
  }
  if (a->help) {
    print_cmd_help(stdout, cmd);
    free(a);
    return CTL_OK;
  }
  if (dmt_config_init(&c.cfg, keys, NKEYS) != 0) {
    free(a);
    return CTL_FAILED;
  }
  rc = configure(&c, a);
  if (rc == CTL_OK && ((int)a->npos < cmd->min_pos || (cmd->max_pos >= 0 && (int)a->npos > cmd->max_pos)))
    rc = ctl_fail(&c, CTL_USAGE, "`dmtctl %s` takes %s (see dmtctl %s --help)", cmd->name,
                  cmd->args[0] ? cmd->args : "no arguments", cmd->name);
  if (rc == CTL_OK) rc = ctl_load_token(&c);
  if (rc == CTL_OK) rc = cmd->run(&c, cmd, a);
  fflush(c.out);
  if (c.token) {
    memset(c.token, 0, strlen(c.token));
    free(c.token);
  }
  dmt_config_free(&c.cfg);
  free(a);
  return rc;
}
