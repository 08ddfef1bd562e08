/*
 * Shell completion scripts for bash and zsh, generated from the command
 * table so they cannot drift from the real commands and flags. Both scripts
 * share one model: command words, each command's flags, the values a flag
 * takes (fixed choices, files, or device GUIDs), and what positionals are.
 * Device GUIDs come from `dmtctl devices list -o name` (the retained states,
 * with the user's own configuration), so they complete for real devices.
 */
#include <stdio.h>
#include <string.h>

#include "dmtctl.h"

enum shell { BASH, ZSH };

/* Emits one associative-array entry: bash [key]="value", zsh 'key' 'value'. */
static void entry(FILE *out, enum shell sh, const char *key, const char *value) {
  if (sh == BASH) fprintf(out, "    [\"%s\"]=\"%s\"\n", key, value);
  else fprintf(out, "    '%s' '%s'\n", key, value);
}

static void flag_words(char *buf, size_t len, const struct ctl_flag *flags) {
  size_t o = strlen(buf);
  for (const struct ctl_flag *f = flags; f && f->name; f++) {
    o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s--%s", o ? " " : "", f->name);
    if (f->short_name) o += (size_t)snprintf(buf + o, o < len ? len - o : 0, " -%c", f->short_name);
  }
}

/* value hint of a flag: "__files", "__guids" or the choices separated by spaces */
static void hint_words(char *buf, size_t len, const char *hint) {
  if (!strcmp(hint, "file")) snprintf(buf, len, "__files");
  else if (!strcmp(hint, "guid")) snprintf(buf, len, "__guids");
  else {
    snprintf(buf, len, "%s", hint);
    for (char *p = buf; *p; p++)
      if (*p == '|') *p = ' ';
  }
}

static void value_flag_entries(FILE *out, enum shell sh, const struct ctl_flag *flags) {
  for (const struct ctl_flag *f = flags; f && f->name; f++) {
    if (!f->arg) continue;
    char key[80], hint[512];
    hint_words(hint, sizeof hint, f->complete ? f->complete : "");
    snprintf(key, sizeof key, "--%s", f->name);
    entry(out, sh, key, hint);
    if (f->short_name) {
      snprintf(key, sizeof key, "-%c", f->short_name);
      entry(out, sh, key, hint);
    }
  }
}

static void model(FILE *out, enum shell sh, const struct ctl_flag *globals, const struct ctl_cmd *const *cmds,
                  size_t n) {
  const char *decl = "  local -A"; /* bash and zsh alike */
  /* top-level words and groups' subcommands */
  char top[1024] = "";
  fprintf(out, "%s subs=(\n", decl);
  for (size_t i = 0; i < n; i++) {
    const char *sp = strchr(cmds[i]->name, ' ');
    char word[64];
    snprintf(word, sizeof word, "%.*s", (int)(sp ? sp - cmds[i]->name : (long)strlen(cmds[i]->name)), cmds[i]->name);
    char padded[80];
    snprintf(padded, sizeof padded, " %s ", word);
    char hay[1100];
    snprintf(hay, sizeof hay, " %s ", top);
    if (!strstr(hay, padded)) snprintf(top + strlen(top), sizeof top - strlen(top), "%s%s", top[0] ? " " : "", word);
    if (!sp) continue;
    bool first = true;
    for (size_t j = 0; j < i; j++)
      if (!strncmp(cmds[j]->name, cmds[i]->name, (size_t)(sp - cmds[i]->name) + 1)) first = false;
    if (!first) continue;
    char list[512] = "";
    for (size_t j = i; j < n; j++)
      if (!strncmp(cmds[j]->name, cmds[i]->name, (size_t)(sp - cmds[i]->name) + 1))
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? " " : "",
                 cmds[j]->name + (sp - cmds[i]->name) + 1);
    entry(out, sh, word, list);
  }
  fprintf(out, "  )\n  local top=\"%s\"\n", top);
  /* flags per command, and what positionals are */
  fprintf(out, "%s flags=(\n", decl);
  for (size_t i = 0; i < n; i++) {
    char words[1024] = "";
    flag_words(words, sizeof words, cmds[i]->flags);
    entry(out, sh, cmds[i]->name, words);
  }
  fprintf(out, "  )\n%s pos=(\n", decl);
  for (size_t i = 0; i < n; i++) {
    char hint[256];
    hint_words(hint, sizeof hint, cmds[i]->complete_pos ? cmds[i]->complete_pos : "");
    if (hint[0]) entry(out, sh, cmds[i]->name, hint);
  }
  fprintf(out, "  )\n%s vals=(\n", decl);
  value_flag_entries(out, sh, globals);
  for (size_t i = 0; i < n; i++) value_flag_entries(out, sh, cmds[i]->flags); /* same flag, same hint */
  fprintf(out, "  )\n");
  char g[1024] = "";
  flag_words(g, sizeof g, globals);
  fprintf(out, "  local globals=\"%s --help\"\n", g);
}

static const char bash_logic[] =
    "  local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n"
    "  local w1=\"\" cmd=\"\" i w\n"
    "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
    "    w=\"${COMP_WORDS[i]}\"\n"
    "    if [[ $w == -* ]]; then\n"
    "      [[ $w != *=* && -n ${vals[$w]+x} ]] && ((i++))\n"
    "      continue\n"
    "    fi\n"
    "    if [[ -z $w1 ]]; then\n"
    "      w1=$w\n"
    "      [[ -n ${flags[$w]+x} ]] && cmd=$w\n"
    "    elif [[ -z $cmd ]]; then\n"
    "      cmd=\"$w1 $w\"\n"
    "    fi\n"
    "  done\n"
    "  local words=\"\"\n"
    "  if [[ $prev == -* && -n ${vals[$prev]+x} ]]; then\n"
    "    words=${vals[$prev]}\n"
    "  elif [[ $cur == -* ]]; then\n"
    "    words=\"$globals ${flags[$cmd]}\"\n"
    "  elif [[ -z $w1 ]]; then\n"
    "    words=$top\n"
    "  elif [[ -z $cmd ]]; then\n"
    "    words=${subs[$w1]}\n"
    "  else\n"
    "    words=${pos[$cmd]}\n"
    "  fi\n"
    "  case $words in\n"
    "    __files) COMPREPLY=($(compgen -f -- \"$cur\")) ;;\n"
    "    __guids) COMPREPLY=($(compgen -W \"$(dmtctl devices list -o name 2>/dev/null)\" -- \"$cur\")) ;;\n"
    "    *) COMPREPLY=($(compgen -W \"$words\" -- \"$cur\")) ;;\n"
    "  esac\n";

static const char zsh_logic[] =
    "  local cur=${words[CURRENT]} prev=${words[CURRENT-1]}\n"
    "  local w1=\"\" cmd=\"\" i w\n"
    "  for ((i = 2; i < CURRENT; i++)); do\n"
    "    w=${words[i]}\n"
    "    if [[ $w == -* ]]; then\n"
    "      [[ $w != *=* && -n ${vals[$w]+x} ]] && ((i++))\n"
    "      continue\n"
    "    fi\n"
    "    if [[ -z $w1 ]]; then\n"
    "      w1=$w\n"
    "      [[ -n ${flags[$w]+x} ]] && cmd=$w\n"
    "    elif [[ -z $cmd ]]; then\n"
    "      cmd=\"$w1 $w\"\n"
    "    fi\n"
    "  done\n"
    "  local list=\"\"\n"
    "  if [[ $prev == -* && -n ${vals[$prev]+x} ]]; then\n"
    "    list=${vals[$prev]}\n"
    "  elif [[ $cur == -* ]]; then\n"
    "    list=\"$globals ${flags[$cmd]}\"\n"
    "  elif [[ -z $w1 ]]; then\n"
    "    list=$top\n"
    "  elif [[ -z $cmd ]]; then\n"
    "    list=${subs[$w1]}\n"
    "  else\n"
    "    list=${pos[$cmd]}\n"
    "  fi\n"
    "  case $list in\n"
    "    __files) _files ;;\n"
    "    __guids) compadd -- ${(f)\"$(dmtctl devices list -o name 2>/dev/null)\"} ;;\n"
    "    *) compadd -- ${=list} ;;\n"
    "  esac\n";

int ctl_completion_print(FILE *out, const char *shell, const struct ctl_flag *globals,
                         const struct ctl_cmd *const *cmds, size_t ncmds) {
  if (!strcmp(shell, "bash")) {
    fprintf(out, "# bash completion for dmtctl; load with:  source <(dmtctl completion bash)\n"
                 "_dmtctl() {\n");
    model(out, BASH, globals, cmds, ncmds);
    fputs(bash_logic, out);
    fprintf(out, "}\ncomplete -F _dmtctl dmtctl\n");
    return 0;
  }
  if (!strcmp(shell, "zsh")) {
    fprintf(out, "#compdef dmtctl\n# zsh completion for dmtctl; load with:  source <(dmtctl completion zsh)\n"
                 "# (after compinit), or save as _dmtctl in a directory of $fpath.\n"
                 "_dmtctl() {\n");
    model(out, ZSH, globals, cmds, ncmds);
    fputs(zsh_logic, out);
    fprintf(out, "}\nif [[ $zsh_eval_context[-1] == loadautofunc ]]; then _dmtctl \"$@\"; else compdef _dmtctl dmtctl; fi\n");
    return 0;
  }
  return -1;
}
