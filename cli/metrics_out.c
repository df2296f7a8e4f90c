/* SPDX-License-Identifier: MIT */
/* The metrics file; see metrics_out.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/metrics_out.h"

int metrics_out_open(struct metrics_out *m, const char *path)
{
	/* O_NONBLOCK: a FIFO without a reader fails (ENXIO) instead of
	 * holding the start, and a full one drops a line instead of
	 * stalling the main thread. */
	m->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0600);
	m->lost = 0;
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

int metrics_out_flush(struct metrics_out *m, struct vm *vm)
{
	char *line;
	int n;
	ssize_t w;

	if (m->fd < 0)
		return -EBADF;
	n = format_line(vm, &line);
	if (n < 0)
		return n;
	/* One write of the whole line: O_APPEND keeps lines whole in a file,
	 * and a FIFO takes up to PIPE_BUF bytes atomically. */
	w = write(m->fd, line, (size_t)n);
	free(line);
	if (w < 0 && errno == EAGAIN)
		m->lost++;
	if (w < 0)
		return -errno;
	return w == n ? 0 : -EIO;
}

void metrics_out_close(struct metrics_out *m)
{
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}
