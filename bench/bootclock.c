/* SPDX-License-Identifier: MIT */
/*
 * bootclock: time one Linux boot of a VMM, the way bench/bench.py's boot
 * benchmark does, for places without Python (the arm64 test host:
 * bench/arm64-inside.sh runs it there, cross-built and static).
 *
 *   bootclock TIMEOUT_S CONSOLE_LOG -- VMM [ARG...]
 *
 * Runs VMM with stdin /dev/null and stdout (the guest console) on a pipe
 * that is read in a poll loop with a pidfd; CLOCK_MONOTONIC stamps the
 * arrival of the bytes that complete the guest's VIBEVMM-INIT-OK line and
 * its "reboot: Power down" line; the exit is seen through the pidfd and
 * reaped with wait4 (peak RSS: ru_maxrss). The console is copied to
 * CONSOLE_LOG. One line on stdout:
 *
 *   BOOT rc=R wall_ms=W uptime_ms=U overhead_ms=O teardown_ms=T life_ms=L maxrss_kb=K
 *
 * wall: start -> /init marker; uptime: the guest's VIBEVMM-UPTIME (its
 * /proc/uptime right after the marker); overhead = wall - uptime; teardown:
 * power-down line -> process exit; life: start -> exit. A value that was
 * not seen is -1. After TIMEOUT_S the VMM is killed (SIGKILL) and rc=timeout.
 * Exit status 0 when the VMM exited 0 with both markers and the uptime
 * seen, 1 otherwise, 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define INIT_MARK "VIBEVMM-INIT-OK"
#define UPTIME_MARK "VIBEVMM-UPTIME "
#define POWERDOWN_MARK "reboot: Power down"
/* the console is kept whole up to this much (the markers come early) */
#define CONSOLE_MAX (4u << 20)

struct boot {
	char *console;   /* everything read so far, NUL-terminated */
	size_t len;
	double t0, t_init, t_pd, t_exit;
	int status;      /* wait4 status; -1 while running */
	long maxrss_kb;
	int timed_out;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Append a chunk; stamp the markers it completes (they may straddle chunks). */
static void console_add(struct boot *b, const char *buf, size_t n, FILE *log, double t)
{
	if (log)
		fwrite(buf, 1, n, log);
	if (b->len + n > CONSOLE_MAX)
		n = CONSOLE_MAX - b->len;
	memcpy(b->console + b->len, buf, n);
	b->len += n;
	b->console[b->len] = '\0';
	if (b->t_init < 0 && strstr(b->console, INIT_MARK))
		b->t_init = t;
	if (b->t_pd < 0 && strstr(b->console, POWERDOWN_MARK))
		b->t_pd = t;
}

static pid_t spawn(char **argv, int *out_fd)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		if (null < 0 || dup2(null, 0) < 0 || dup2(p[1], 1) < 0)
			_exit(127);
		execvp(argv[0], argv);
		fprintf(stderr, "bootclock: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return -1;
	}
	*out_fd = p[0];
	return pid;
}

/* Read the console until the process has exited and the pipe is drained. */
static void pump(struct boot *b, pid_t pid, int out_fd, int pidfd, double timeout_ms,
		 FILE *log)
{
	struct pollfd fds[2] = { { .fd = out_fd, .events = POLLIN },
				 { .fd = pidfd, .events = POLLIN } };
	char buf[65536];
	struct rusage ru;

	while (fds[0].fd >= 0 || b->status == -1) {
		double left = b->t0 + timeout_ms - now_ms();

		if (left <= 0 && !b->timed_out) {
			b->timed_out = 1;
			kill(pid, SIGKILL);
		}
		if (poll(fds, 2, left > 0 ? (int)left + 1 : 1000) < 0 && errno != EINTR)
			break;
		if (fds[0].revents) {
			ssize_t n = read(out_fd, buf, sizeof(buf));

			if (n > 0) {
				console_add(b, buf, (size_t)n, log, now_ms());
			} else if (n == 0 || errno != EINTR) {
				fds[0].fd = -1;
			}
		}
		if (fds[1].revents && b->status == -1) {
			b->t_exit = now_ms();
			memset(&ru, 0, sizeof(ru));
			if (wait4(pid, &b->status, 0, &ru) == pid)
				b->maxrss_kb = ru.ru_maxrss;
			fds[1].fd = -1;
		}
	}
}

static double uptime_ms(const struct boot *b)
{
	const char *u = strstr(b->console, UPTIME_MARK);

	return u ? strtod(u + strlen(UPTIME_MARK), NULL) * 1e3 : -1;
}

static void report(const struct boot *b)
{
	double up = uptime_ms(b);
	double wall = b->t_init >= 0 ? b->t_init - b->t0 : -1;
	char rc[32];

	if (b->timed_out)
		snprintf(rc, sizeof(rc), "timeout");
	else if (WIFEXITED(b->status))
		snprintf(rc, sizeof(rc), "%d", WEXITSTATUS(b->status));
	else
		snprintf(rc, sizeof(rc), "signal%d", WTERMSIG(b->status));
	printf("BOOT rc=%s wall_ms=%.1f uptime_ms=%.1f overhead_ms=%.1f teardown_ms=%.1f "
	       "life_ms=%.1f maxrss_kb=%ld\n", rc, wall, up,
	       wall >= 0 && up >= 0 ? wall - up : -1,
	       b->t_pd >= 0 ? b->t_exit - b->t_pd : -1, b->t_exit - b->t0, b->maxrss_kb);
}

int main(int argc, char **argv)
{
	struct boot b = { .t_init = -1, .t_pd = -1, .status = -1 };
	double timeout_s;
	int out_fd, pidfd, ok;
	FILE *log;
	pid_t pid;

	if (argc < 5 || strcmp(argv[3], "--") || (timeout_s = atof(argv[1])) <= 0) {
		fprintf(stderr, "usage: bootclock TIMEOUT_S CONSOLE_LOG -- VMM [ARG...]\n");
		return 2;
	}
	log = fopen(argv[2], "w");
	b.console = malloc(CONSOLE_MAX + 1);
	if (!log || !b.console) {
		perror("bootclock");
		return 2;
	}
	b.console[0] = '\0';
	b.t0 = now_ms();
	pid = spawn(argv + 4, &out_fd);
	if (pid < 0) {
		perror("bootclock: spawn");
		return 1;
	}
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		perror("bootclock: pidfd_open");
		kill(pid, SIGKILL);
		return 1;
	}
	pump(&b, pid, out_fd, pidfd, timeout_s * 1e3, log);
	report(&b);
	ok = !b.timed_out && WIFEXITED(b.status) && WEXITSTATUS(b.status) == 0 &&
	     b.t_init >= 0 && b.t_pd >= 0 && uptime_ms(&b) >= 0;
	fclose(log);
	close(out_fd);
	close(pidfd);
	free(b.console);
	return ok ? 0 : 1;
}
