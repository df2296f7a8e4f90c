/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"
#include "utils.h"

int format_log_line(char *line, size_t len, int level, const char *fmt,
		    va_list ap)
{
	static const char *const prefix[] = { "", "error", "warning", "info", "debug" };
	int n;

	if (level <= LOG_NONE || level > LOG_DEBUG || len < 64)
		return 0;
	n = snprintf(line, len, "vibevmm: %s: ", prefix[level]);
	vsnprintf(line + n, len - (size_t)n, fmt, ap);
	/* One write per line so lines from several threads do not interleave. */
	n = (int)strnlen(line, len - 2);
	line[n++] = '\n';
	return n;
}

void vlog(int threshold, int level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	if (level > threshold)
		return;
	va_start(ap, fmt);
	n = format_log_line(line, sizeof(line), level, fmt, ap);
	va_end(ap);
	if (n > 0 && write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

int set_why(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return -1;
}

int fail_why(int err, char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (why && len) {
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return -err;
}

int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	case 't': case 'T': shift = 40; break;
	default: return -EINVAL;
	}
	if (*end) {
		end++;
		if (*end == 'i') /* accept KiB/MiB/GiB spellings */
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
		if (*end)
			return -EINVAL;
	}
	if (shift && v > (~0ULL >> shift))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

int read_file(const char *path, uint8_t **buf, size_t *len)
{
	struct stat st;
	uint8_t *data;
	size_t done = 0;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		goto out;
	}
	data = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!data) {
		err = -ENOMEM;
		goto out;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, data + done, (size_t)st.st_size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : -EIO;
			free(data);
			goto out;
		}
		done += (size_t)n;
	}
	*buf = data;
	*len = done;
	err = 0;
out:
	close(fd);
	return err;
}
