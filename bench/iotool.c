/* SPDX-License-Identifier: MIT */
/*
 * iotool: the guest side of the disk benchmark, built with `gcc -static` and
 * put into the guest initramfs as /bin/iotool (bench/bench.mk).
 *
 *   iotool randread DEV SECONDS   4 KiB random reads, O_DIRECT, queue depth 1
 *
 * Prints "BENCH-RANDREAD ops=N secs=S iops=I" (S measured with
 * CLOCK_MONOTONIC in the guest). Offsets come from a fixed-seed xorshift over
 * the whole device, 4 KiB aligned. Exit status 0, or 1 with a message.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int randread(const char *dev, double seconds)
{
	uint64_t size = 0, blocks, x = 0x9e3779b97f4a7c15ULL, ops = 0;
	struct stat st;
	void *buf;
	double t0, t;
	int fd = open(dev, O_RDONLY | O_DIRECT);

	if (fd < 0 || fstat(fd, &st)) {
		fprintf(stderr, "iotool: %s: %s\n", dev, strerror(errno));
		return 1;
	}
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &size)) {
			fprintf(stderr, "iotool: BLKGETSIZE64: %s\n", strerror(errno));
			return 1;
		}
	} else {
		size = (uint64_t)st.st_size;
	}
	blocks = size / BLOCK;
	if (!blocks || posix_memalign(&buf, BLOCK, BLOCK)) {
		fprintf(stderr, "iotool: %s: empty device or no memory\n", dev);
		return 1;
	}
	t0 = now();
	do {
		/* 64 reads between clock reads */
		for (int i = 0; i < 64; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			if (pread(fd, buf, BLOCK, (off_t)((x % blocks) * BLOCK)) != BLOCK) {
				fprintf(stderr, "iotool: read: %s\n", strerror(errno));
				return 1;
			}
			ops++;
		}
		t = now() - t0;
	} while (t < seconds);
	printf("BENCH-RANDREAD ops=%llu secs=%.3f iops=%.0f\n",
	       (unsigned long long)ops, t, (double)ops / t);
	fflush(stdout);
	free(buf);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "randread"))
		return randread(argv[2], atof(argv[3]));
	fprintf(stderr, "usage: iotool randread DEV SECONDS\n");
	return 1;
}
