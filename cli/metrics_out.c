/* SPDX-License-Identifier: MIT */
/* The metrics file; see metrics_out.h. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/metrics_out.h"

int metrics_out_open(struct metrics_out *m, const char *path)
{
	/* O_NONBLOCK: a FIFO without a reader fails (ENXIO) instead of
	 * holding the start, and a full one drops a line instead of
	 * stalling the main thread. */
	m->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0600);
	m->lost = 0;
	m->written = NULL;
	return m->fd < 0 ? -errno : 0;
}

/* One line, '\n'-ended, in a malloc'd buffer (*out), its length or -errno.
 * Formatted again with more room when the counters grew in between. */
static int format_line(struct vm *vm, char **out)
{
	size_t size = 4096;

	for (;;) {
		char *line = malloc(size);
		int n = line ? vm_format_metrics(vm, line, size - 1) : -ENOMEM;

		if (n >= 0 && (size_t)n < size - 2) {
			line[n] = '\n';
			*out = line;
			return n + 1;
		}
		free(line);
		if (n < 0)
			return n;
		size = (size_t)n + 256;
	}
}

/* The counters of `totals` (group -> name -> count) less those of `before`
 * (absent: 0); the rest (the timestamp) as it is. */
static char *changes_since(const json_t *before, const json_t *totals)
{
	json_t *out = json_deep_copy(totals), *group, *v;
	const char *g, *k;
	char *line;

	if (!out)
		return NULL;
	json_object_foreach(out, g, group) {
		json_object_foreach(group, k, v) {
			json_t *old = json_object_get(json_object_get(before, g), k);

			if (json_is_integer(v) && json_is_integer(old))
				json_integer_set(v, json_integer_value(v) - json_integer_value(old));
		}
	}
	line = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(out);
	return line;
}

/* One write of the whole line: O_APPEND keeps lines whole in a file, and a
 * FIFO takes up to PIPE_BUF bytes atomically. */
static int write_line(struct metrics_out *m, const char *line)
{
	size_t n = strlen(line);
	char *buf = malloc(n + 1);
	ssize_t w;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, line, n);
	buf[n] = '\n';
	w = write(m->fd, buf, n + 1);
	free(buf);
	if (w < 0 && errno == EAGAIN)
		m->lost++;
	if (w < 0)
		return -errno;
	return (size_t)w == n + 1 ? 0 : -EIO;
}

int metrics_out_flush(struct metrics_out *m, struct vm *vm)
{
	json_t *totals;
	char *text, *line;
	int n;

	if (m->fd < 0)
		return -EBADF;
	n = format_line(vm, &text);
	if (n < 0)
		return n;
	totals = json_loadb(text, (size_t)n, 0, NULL);
	free(text);
	line = totals ? changes_since(m->written, totals) : NULL;
	n = line ? write_line(m, line) : -ENOMEM;
	free(line);
	/* A line that was not written leaves its counts to the next. */
	if (n == 0) {
		json_decref(m->written);
		m->written = totals;
	} else {
		json_decref(totals);
	}
	return n;
}

void metrics_out_close(struct metrics_out *m)
{
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	json_decref(m->written);
	m->written = NULL;
}
