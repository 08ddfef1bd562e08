/*
 * Progress bar for bulk operations, on stderr so stdout stays clean for the
 * result table or JSON. Drawn only when stderr is a terminal (or when
 * --progress forces it), redrawn at most ten times a second, and finished
 * with a newline so the summary starts on its own line.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dmtctl.h"

#define REDRAW_MS 100u

void ctl_progress_render(char *buf, size_t len, size_t done, size_t total, size_t ok, size_t failed, int width) {
  char bar[128];
  if (width > (int)sizeof bar - 1) width = (int)sizeof bar - 1;
  int fill = total ? (int)((double)done / (double)total * width) : width;
  for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
  bar[width] = '\0';
  int tw = snprintf(NULL, 0, "%zu", total);
  snprintf(buf, len, "[%s] %*zu/%zu  ok %zu  failed %zu", bar, tw, done, total, ok, failed);
}

static void draw(struct ctl_progress *p, bool final) {
  char line[256];
  ctl_progress_render(line, sizeof line, p->done, p->total, p->ok, p->failed, 30);
  double secs = (double)(dmt_wall_ms() - p->start_ms) / 1000.0;
  fprintf(p->out, "\r%s %s  %.1fs%s", p->label, line, secs, final ? "\n" : "");
  fflush(p->out);
}

void ctl_progress_start(struct ctl_progress *p, struct ctl *c, const char *label, size_t total) {
  memset(p, 0, sizeof *p);
  p->out = c->err;
  p->on = c->progress > 0 || (c->progress < 0 && isatty(fileno(c->err)));
  p->label = label;
  p->total = total;
  p->start_ms = dmt_wall_ms();
  if (p->on) draw(p, false);
}

void ctl_progress_step(struct ctl_progress *p, bool ok) {
  p->done++;
  if (ok) p->ok++;
  else p->failed++;
  uint64_t now = dmt_wall_ms();
  if (p->on && now - p->drawn_ms >= REDRAW_MS) {
    p->drawn_ms = now;
    draw(p, false);
  }
}

void ctl_progress_finish(struct ctl_progress *p) {
  if (p->on) draw(p, true);
}
