/*
 * Command-line parsing for dmtctl: command words ("devices list"), then
 * positionals and flags in any order, kubectl style. Global flags are
 * accepted anywhere; a command's own flags once the command words are known.
 * Forms: --name=value, --name value, -o json, -ojson, --switch, -h/--help,
 * and "--" to end flags.
 */
#include <stdio.h>
#include <string.h>

#include "dmtctl.h"

const struct ctl_flag *ctl_flag_find(const struct ctl_flag *flags, const char *name, char short_name) {
  for (const struct ctl_flag *f = flags; f && f->name; f++) {
    if (name && !strcmp(f->name, name)) return f;
    if (!name && short_name && f->short_name == short_name) return f;
  }
  return NULL;
}

const char *ctl_arg(const struct ctl_args *a, const char *name) {
  for (size_t i = a->nset; i-- > 0;)
    if (!strcmp(a->set[i].flag->name, name)) return a->set[i].value;
  return NULL;
}

bool ctl_has(const struct ctl_args *a, const char *name) { return ctl_arg(a, name) != NULL; }

static const struct ctl_cmd *find_cmd(const struct ctl_cmd *const *cmds, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(cmds[i]->name, name)) return cmds[i];
  return NULL;
}

static bool is_group(const struct ctl_cmd *const *cmds, size_t n, const char *word) {
  size_t wl = strlen(word);
  for (size_t i = 0; i < n; i++)
    if (!strncmp(cmds[i]->name, word, wl) && cmds[i]->name[wl] == ' ') return true;
  return false;
}

static int record(struct ctl_args *a, const struct ctl_flag *f, const char *value, char *err, size_t errlen) {
  if (a->nset >= CTL_MAX_SET) {
    snprintf(err, errlen, "too many flags");
    return -1;
  }
  a->set[a->nset].flag = f;
  a->set[a->nset].value = value;
  a->nset++;
  return 0;
}

int ctl_parse(int argc, char **argv, const struct ctl_flag *globals, const struct ctl_cmd *const *cmds, size_t ncmds,
              const struct ctl_cmd **cmd, const char **group, struct ctl_args *a, char *err, size_t errlen) {
  memset(a, 0, sizeof *a);
  *cmd = NULL;
  *group = NULL;
  bool flags_done = false;
  for (int i = 0; i < argc; i++) {
    const char *w = argv[i];
    if (!flags_done && !strcmp(w, "--")) {
      flags_done = true;
      continue;
    }
    if (!flags_done && w[0] == '-' && w[1] != '\0') {
      if (!strcmp(w, "-h") || !strcmp(w, "--help")) {
        a->help = true;
        continue;
      }
      const struct ctl_flag *f = NULL;
      const char *value = NULL;
      char name[64];
      if (w[1] == '-') {
        const char *eq = strchr(w + 2, '=');
        size_t nl = eq ? (size_t)(eq - (w + 2)) : strlen(w + 2);
        snprintf(name, sizeof name, "%.*s", (int)(nl < sizeof name ? nl : sizeof name - 1), w + 2);
        f = ctl_flag_find(globals, name, 0);
        if (!f && *cmd) f = ctl_flag_find((*cmd)->flags, name, 0);
        if (eq) value = eq + 1;
      } else {
        snprintf(name, sizeof name, "-%c", w[1]);
        f = ctl_flag_find(globals, NULL, w[1]);
        if (!f && *cmd) f = ctl_flag_find((*cmd)->flags, NULL, w[1]);
        if (f && w[2]) {
          if (!f->arg) {
            snprintf(err, errlen, "flag -%c takes no value", w[1]);
            return -1;
          }
          value = w + 2;
        }
      }
      if (!f) {
        if (*cmd) snprintf(err, errlen, "unknown flag %s for `dmtctl %s` (see dmtctl %s --help)", w, (*cmd)->name,
                           (*cmd)->name);
        else snprintf(err, errlen, "unknown flag %s (command flags go after the command; see dmtctl --help)", w);
        return -1;
      }
      if (!f->arg) {
        if (value) {
          snprintf(err, errlen, "flag --%s takes no value", f->name);
          return -1;
        }
        value = "";
      } else if (!value) {
        if (i + 1 >= argc) {
          snprintf(err, errlen, "flag --%s needs a value (%s)", f->name, f->arg);
          return -1;
        }
        value = argv[++i];
      }
      if (record(a, f, value, err, errlen) != 0) return -1;
      continue;
    }
    /* a word */
    if (*cmd) {
      if (a->npos >= CTL_MAX_POS) {
        snprintf(err, errlen, "too many arguments");
        return -1;
      }
      a->pos[a->npos++] = w;
      continue;
    }
    if (!*group) {
      const struct ctl_cmd *c = find_cmd(cmds, ncmds, w);
      if (c) {
        *cmd = c;
        continue;
      }
      if (is_group(cmds, ncmds, w)) {
        *group = w;
        continue;
      }
      snprintf(err, errlen, "unknown command `%s` (see dmtctl --help)", w);
      return -1;
    }
    char full[128];
    snprintf(full, sizeof full, "%s %s", *group, w);
    const struct ctl_cmd *c = find_cmd(cmds, ncmds, full);
    if (!c) {
      snprintf(err, errlen, "unknown command `dmtctl %s` (see dmtctl %s --help)", full, *group);
      return -1;
    }
    *cmd = c;
  }
  return 0;
}
