/* SPDX-License-Identifier: MIT */
/*
 * Boot soak: boot a Linux guest and power it off N times in one process
 * through the library (vm_create ... vm_destroy), and check that nothing
 * piles up: the open fds and threads after the last cycle must equal those
 * after the first, RSS must equal that after the middle cycle (within
 * --rss-slack, 1 MiB by default: RSS rose by ~0.5 MiB in each of the first
 * two or three cycles and then stayed flat to the KiB once the disk had
 * several I/O threads, as allocator arenas and cached thread stacks
 * settled, while a leak grows every cycle), and the
 * heap in use (mallinfo2, all arenas) must not grow by more than
 * --heap-slack (8 KiB). glibc's per-thread cache keeps freed chunks that
 * mallinfo2 counts as in use (~12 KiB more over the first cycles), so the
 * program re-executes itself once with that cache off (its tunable is only
 * read at start-up); the heap is then flat to the KiB, and a leak of 1 KiB
 * per cycle fails the soak after 9 cycles.
 *
 * Each cycle builds what the CLI builds for Linux, through the
 * arch-neutral machine calls (machine.h): the machine (its serial console's
 * output to a memfd we read back), a virtio-blk on a small image (its worker
 * thread comes and goes with the VM) and virtio-rng. The kernel and initrd
 * are read once and parsed each cycle. The guest (the e2e initramfs, whose
 * /init runs vibevmm.cmd=) reads a stamp the host wrote to sector 0 of the
 * disk, prints it and writes it back to sector 1; a cycle passes when the
 * guest powered off, its console shows VIBEVMM-INIT-OK, the stamp and the
 * command's rc=0, and sector 1 holds the stamp afterwards.
 *
 * Transparent huge pages are off for this process: khugepaged collapses
 * partly used 2 MiB ranges of the long-lived kernel buffers (the cloud
 * kernel's decompressed image is ~100 MiB) at random moments, which raised
 * RSS by up to ~1 MiB between cycles with the heap unchanged.
 *
 * Output: one line per cycle and a final "soak: summary: ..." line. Exit
 * status 0 when every cycle passed and nothing grew, 1 otherwise, 2 for bad
 * arguments, 77 when there is no usable KVM.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "machine.h"
#include "utils.h"
#include "vm.h"

#define SECTOR 512
#define DISK_SIZE (4u << 20)
#define CONSOLE_TAIL 3000

struct soak_opts {
	const char *kernel, *initrd, *cmdline;
	uint64_t mem;
	int cycles, cpus, timeout_s, log_level;
	long rss_slack_kib, heap_slack_kib;
};

/* What the process holds between cycles. */
struct usage {
	int fds, threads;
	long rss_kib;
	long heap_kib; /* malloc'd and not freed, all arenas */
};

/* Kernel and initrd, read and parsed once for all cycles. */
struct guest_files {
	uint8_t *kernel_file, *initrd;
	size_t kernel_len, initrd_len;
};

struct cycle {
	int n;
	char stamp[64];
	char disk[256];
	int console_fd;
	char why[512];
};

static const char usage_text[] =
	"usage: soak_boot --kernel FILE [--initrd FILE] [--cmdline STR] [--cycles N]\n"
	"                 [--mem SIZE] [--cpus N] [--timeout SEC] [--log LEVEL]\n"
	"                 [--rss-slack KIB] [--heap-slack KIB]\n";

/* ---- process usage ---- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own fd */
}

/* The number after "key:" in /proc/self/status, or -1. */
static long status_field(const char *key)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	size_t klen = strlen(key);
	long v = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static long heap_in_use_kib(void)
{
	struct mallinfo2 mi = mallinfo2();

	return (long)((mi.uordblks + mi.hblkhd) >> 10);
}

static struct usage measure(void)
{
	return (struct usage){
		.fds = count_fds(),
		.threads = (int)status_field("Threads"),
		.rss_kib = status_field("VmRSS"),
		.heap_kib = heap_in_use_kib(),
	};
}

/* ---- helpers ---- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int fail(struct cycle *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct cycle *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
	return -1;
}

/* base64 of `src` (the guest's /init takes its command that way). */
static char *base64(const char *src)
{
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t len = strlen(src), o = 0;
	char *out = malloc((len + 2) / 3 * 4 + 1);

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)(uint8_t)src[i] << 16;

		v |= i + 1 < len ? (uint32_t)(uint8_t)src[i + 1] << 8 : 0;
		v |= i + 2 < len ? (uint8_t)src[i + 2] : 0;
		out[o++] = abc[v >> 18 & 63];
		out[o++] = abc[v >> 12 & 63];
		out[o++] = i + 1 < len ? abc[v >> 6 & 63] : '=';
		out[o++] = i + 2 < len ? abc[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

/* The guest's part: read the stamp in sector 0, print it, write it to
 * sector 1 and flush. */
static const char guest_script[] =
	"s=$(dd if=/dev/vda bs=512 count=1 2>/dev/null | tr -d '\\000')\n"
	"echo \"SOAK-READ $s\"\n"
	"echo \"$s\" | dd of=/dev/vda bs=512 seek=1 conv=fsync 2>/dev/null\n";

static char *guest_cmdline(const struct soak_opts *o)
{
	char *cmd = base64(guest_script), *line = NULL;

	if (cmd && asprintf(&line, "%s vibevmm.cmd=%s", o->cmdline, cmd) < 0)
		line = NULL;
	free(cmd);
	return line;
}

/* ---- the disk ---- */

static int make_disk(char *path, size_t len)
{
	const char *tmp = getenv("TMPDIR");
	int fd;

	snprintf(path, len, "%s/soak-disk-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	fd = mkstemp(path);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, DISK_SIZE) < 0) {
		int err = -errno;

		close(fd);
		unlink(path);
		return err;
	}
	close(fd);
	return 0;
}

/* Sector `sector` of the disk as a string (NULs end it). */
static int disk_sector(const char *path, int sector, const char *write_str,
		       char *read_buf)
{
	char buf[SECTOR] = { 0 };
	int fd = open(path, O_RDWR | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (write_str) {
		strncpy(buf, write_str, SECTOR - 1);
		if (pwrite(fd, buf, SECTOR, (off_t)sector * SECTOR) != SECTOR)
			err = -EIO;
	} else if (pread(fd, read_buf, SECTOR, (off_t)sector * SECTOR) != SECTOR) {
		err = -EIO;
	}
	close(fd);
	if (read_buf)
		read_buf[SECTOR - 1] = '\0';
	return err;
}

/* ---- one VM ---- */

/* Create a virtio device in the machine's next slot (as the CLI does). */
static int add_virtio(struct vm *vm, const char *what, struct cycle *c,
		      struct device *(*create)(struct vm *vm, uint64_t base, uint32_t irq,
					       struct cycle *c, char *why, size_t why_len))
{
	char why[256] = "";
	uint64_t base;
	uint32_t irq;
	struct device *dev;
	int err = machine_virtio_slot(vm, &base, &irq, why, sizeof(why));

	if (err)
		return fail(c, "no slot for %s: %s", what, why);
	dev = create(vm, base, irq, c, why, sizeof(why));
	if (!dev)
		return fail(c, "cannot create %s%s%s", what, *why ? ": " : "", why);
	if ((err = machine_add_virtio(vm, dev, irq)))
		return fail(c, "cannot add %s: %s", what, strerror(-err));
	return 0;
}

static struct device *create_blk(struct vm *vm, uint64_t base, uint32_t irq,
				 struct cycle *c, char *why, size_t why_len)
{
	return virtio_blk_create(vm, base, irq, c->disk, 0, why, why_len);
}

static struct device *create_rng(struct vm *vm, uint64_t base, uint32_t irq,
				 struct cycle *c, char *why, size_t why_len)
{
	return virtio_rng_create(vm, base, irq);
}

/* Everything up to a started VM, through the arch-neutral machine calls. */
static int build_vm(struct vm *vm, const struct soak_opts *o,
		    const struct guest_files *g, const char *cmdline, struct cycle *c)
{
	const struct machine_config mc = {
		.nr_cpus = o->cpus, .ram_size = o->mem, .flags = MACHINE_LINUX,
		.console_in_fd = -1, .console_out_fd = c->console_fd,
	};
	const struct machine_linux b = {
		.kernel = g->kernel_file, .kernel_len = g->kernel_len,
		.initrd = g->initrd, .initrd_len = g->initrd_len, .cmdline = cmdline,
	};
	char why[256] = "";
	int err;

	vm->log_level = o->log_level;
	if (machine_create(vm, &mc, why, sizeof(why)))
		return fail(c, "cannot create the machine: %s", why);
	if (add_virtio(vm, "virtio-blk", c, create_blk) ||
	    add_virtio(vm, "virtio-rng", c, create_rng))
		return -1;
	if (machine_boot_linux(vm, &b, why, sizeof(why)))
		return fail(c, "cannot boot the kernel: %s", why);
	if ((err = vm_start(vm)))
		return fail(c, "cannot start the VM: %s", strerror(-err));
	return 0;
}

/* Wait for the guest to end by itself; stop it after the timeout. */
static int run_vm(struct vm *vm, int timeout_s, struct cycle *c)
{
	struct pollfd p = { .fd = vm_done_fd(vm), .events = POLLIN };
	int r = poll(&p, 1, timeout_s * 1000);
	int reason;

	if (r <= 0) {
		vm_stop(vm);
		return fail(c, "the guest did not end within %d s", timeout_s);
	}
	reason = vm_wait(vm);
	if (reason != VCPU_EXIT_POWEROFF)
		return fail(c, "the VM ended with %s, not a power-off",
			    reason < 0 ? strerror(-reason) : vcpu_exit_reason_name(reason));
	return 0;
}

/* The whole console output of the cycle (NUL-terminated), or NULL. */
static char *read_console(int fd)
{
	struct stat st;
	char *text;

	if (fstat(fd, &st) < 0 || !(text = malloc((size_t)st.st_size + 1)))
		return NULL;
	if (pread(fd, text, (size_t)st.st_size, 0) != st.st_size) {
		free(text);
		return NULL;
	}
	text[st.st_size] = '\0';
	return text;
}

static int check_console(struct cycle *c)
{
	char *text = read_console(c->console_fd), want[96];
	const char *missing = NULL;

	if (!text)
		return fail(c, "cannot read the console memfd");
	snprintf(want, sizeof(want), "SOAK-READ %s", c->stamp);
	if (!strstr(text, "VIBEVMM-INIT-OK"))
		missing = "VIBEVMM-INIT-OK";
	else if (!strstr(text, want))
		missing = want;
	else if (!strstr(text, "VIBEVMM-CMD-RESULT rc=0"))
		missing = "VIBEVMM-CMD-RESULT rc=0";
	if (missing) {
		size_t len = strlen(text);

		fprintf(stderr, "soak: console of cycle %d (tail):\n%s\n", c->n,
			text + (len > CONSOLE_TAIL ? len - CONSOLE_TAIL : 0));
		fail(c, "console lacks \"%s\"", missing);
	}
	free(text);
	return missing ? -1 : 0;
}

static int check_disk(struct cycle *c)
{
	char back[SECTOR];

	if (disk_sector(c->disk, 1, NULL, back))
		return fail(c, "cannot read the disk image back");
	back[strcspn(back, "\n")] = '\0';
	if (strcmp(back, c->stamp))
		return fail(c, "sector 1 holds \"%.64s\", not the stamp \"%s\"", back, c->stamp);
	return 0;
}

static int one_cycle(const struct soak_opts *o, const struct guest_files *g,
		     const char *cmdline, struct cycle *c)
{
	struct vm *vm;
	int err;

	snprintf(c->stamp, sizeof(c->stamp), "soak-stamp-%d-%ld", c->n, (long)random());
	if (disk_sector(c->disk, 0, c->stamp, NULL) || disk_sector(c->disk, 1, "", NULL))
		return fail(c, "cannot write the stamp to the disk image");
	c->console_fd = memfd_create("soak-console", MFD_CLOEXEC);
	if (c->console_fd < 0)
		return fail(c, "memfd_create: %s", strerror(errno));
	vm = vm_create();
	if (!vm)
		err = fail(c, "vm_create: %s", strerror(errno));
	else
		err = build_vm(vm, o, g, cmdline, c) || run_vm(vm, o->timeout_s, c) ? -1 : 0;
	vm_destroy(vm);
	if (!err)
		err = check_console(c) || check_disk(c) ? -1 : 0;
	close(c->console_fd);
	return err;
}

/* ---- the run ---- */

static int load_guest_files(const struct soak_opts *o, struct guest_files *g)
{
	int err = read_file(o->kernel, &g->kernel_file, &g->kernel_len);

	if (err) {
		fprintf(stderr, "soak: cannot read %s: %s\n", o->kernel, strerror(-err));
		return -1;
	}
	if (o->initrd && (err = read_file(o->initrd, &g->initrd, &g->initrd_len))) {
		fprintf(stderr, "soak: cannot read %s: %s\n", o->initrd, strerror(-err));
		return -1;
	}
	return 0;
}

static void free_guest_files(struct guest_files *g)
{
	free(g->kernel_file);
	free(g->initrd);
}

static void print_usage_line(const char *what, int n, const struct usage *u)
{
	printf("soak: %s %d: fds %d, threads %d, rss %ld KiB, heap %ld KiB\n", what, n,
	       u->fds, u->threads, u->rss_kib, u->heap_kib);
}

/* 0 when `last` holds no more than `first` (RSS and heap within their
 * slack; first's RSS is the middle cycle's). */
static int compare_usage(const struct usage *first, const struct usage *last,
			 const struct soak_opts *o)
{
	long drss = last->rss_kib - first->rss_kib;

	return first->fds == last->fds && first->threads == last->threads &&
	       labs(drss) <= o->rss_slack_kib &&
	       last->heap_kib - first->heap_kib <= o->heap_slack_kib ? 0 : -1;
}

static int soak(const struct soak_opts *o, const struct guest_files *g,
		const char *disk)
{
	struct usage first = { 0 }, last = { 0 }, before = measure();
	int warmup = (o->cycles + 1) / 2;
	char *cmdline = guest_cmdline(o);
	int passed = 0, grew;
	double t_start = now_s();

	if (!cmdline)
		return -ENOMEM;
	print_usage_line("before cycle", 1, &before);
	for (int n = 1; n <= o->cycles; n++) {
		struct cycle c = { .n = n, .console_fd = -1 };
		double t0 = now_s();
		int err;

		snprintf(c.disk, sizeof(c.disk), "%s", disk);
		err = one_cycle(o, g, cmdline, &c);
		last = measure();
		if (n == 1)
			first = last;
		if (n == warmup)
			first.rss_kib = last.rss_kib;
		passed += !err;
		printf("soak: cycle %d/%d: %s in %.2f s; fds %d, threads %d, rss %ld KiB, "
		       "heap %ld KiB%s%s\n",
		       n, o->cycles, err ? "FAILED" : "powered off", now_s() - t0, last.fds,
		       last.threads, last.rss_kib, last.heap_kib, err ? ": " : "", err ? c.why : "");
		fflush(stdout);
	}
	free(cmdline);
	grew = compare_usage(&first, &last, o);
	printf("soak: summary: %d/%d cycles passed in %.1f s; after the first / last cycle: "
	       "fds %d / %d, threads %d / %d, rss %ld / %ld KiB (from cycle %d: %+ld KiB, slack %ld), "
	       "heap %ld / %ld KiB (%+ld KiB, slack %ld): %s\n",
	       passed, o->cycles, now_s() - t_start, first.fds, last.fds, first.threads,
	       last.threads, first.rss_kib, last.rss_kib, warmup, last.rss_kib - first.rss_kib,
	       o->rss_slack_kib, first.heap_kib, last.heap_kib, last.heap_kib - first.heap_kib,
	       o->heap_slack_kib,
	       passed == o->cycles && !grew ? "PASS" : "FAIL");
	return passed == o->cycles && !grew ? 0 : -1;
}

/* ---- arguments ---- */

static int parse_int(const char *s, int lo, int hi, int *out)
{
	uint64_t v;

	if (parse_u64(s, &v) || v < (uint64_t)lo || v > (uint64_t)hi)
		return -1;
	*out = (int)v;
	return 0;
}

static int parse_args(int argc, char **argv, struct soak_opts *o)
{
	static const struct option longopts[] = {
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "cmdline", required_argument, NULL, 'c' },
		{ "cycles", required_argument, NULL, 'n' },
		{ "mem", required_argument, NULL, 'm' },
		{ "cpus", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 't' },
		{ "log", required_argument, NULL, 'l' },
		{ "rss-slack", required_argument, NULL, 'r' },
		{ "heap-slack", required_argument, NULL, 'h' },
		{ 0 },
	};
	int opt, slack = 1024, heap_slack = 8, bad = 0;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'k': o->kernel = optarg; break;
		case 'i': o->initrd = optarg; break;
		case 'c': o->cmdline = optarg; break;
		case 'n': bad |= parse_int(optarg, 1, 1000000, &o->cycles); break;
		case 'm': bad |= parse_size(optarg, &o->mem); break;
		case 'p': bad |= parse_int(optarg, 1, VM_MAX_VCPUS, &o->cpus); break;
		case 't': bad |= parse_int(optarg, 1, 86400, &o->timeout_s); break;
		case 'l': bad |= parse_int(optarg, 0, LOG_DEBUG, &o->log_level); break;
		case 'r': bad |= parse_int(optarg, 0, 1 << 30, &slack); break;
		case 'h': bad |= parse_int(optarg, 0, 1 << 30, &heap_slack); break;
		default: bad = 1;
		}
	}
	o->rss_slack_kib = slack;
	o->heap_slack_kib = heap_slack;
	if (bad || optind != argc || !o->kernel) {
		fputs(usage_text, stderr);
		return -1;
	}
	return 0;
}

#define TCACHE_OFF "glibc.malloc.tcache_count=0"

/* Run again with glibc's per-thread malloc cache off (see the top). */
static void reexec_without_tcache(char **argv)
{
	const char *t = getenv("GLIBC_TUNABLES");
	char *v;

	if (t && strstr(t, TCACHE_OFF))
		return;
	if (asprintf(&v, "%s%s%s", t ? t : "", t ? ":" : "", TCACHE_OFF) < 0)
		return;
	setenv("GLIBC_TUNABLES", v, 1);
	free(v);
	execv("/proc/self/exe", argv);
	fprintf(stderr, "soak: cannot run again without the malloc cache: %s\n", strerror(errno));
}

int main(int argc, char **argv)
{
	struct soak_opts o = {
		.cmdline = "console=ttyS0 panic=-1 vibevmm.verbose=0",
		.mem = 128ULL << 20, .cycles = 10, .cpus = 1, .timeout_s = 120,
		.log_level = LOG_WARN,
	};
	struct guest_files g = { 0 };
	char disk[256];
	int err, status = 1;

	if (parse_args(argc, argv, &o))
		return 2;
	reexec_without_tcache(argv);
	if ((err = hypervisor_init())) {
		fprintf(stderr, "soak: %s\n", hypervisor_strerror(err));
		return 77;
	}
	if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) < 0)
		fprintf(stderr, "soak: cannot turn transparent huge pages off: %s\n", strerror(errno));
	srandom((unsigned)getpid());
	if (load_guest_files(&o, &g)) {
		free_guest_files(&g);
		return 1;
	}
	if ((err = make_disk(disk, sizeof(disk)))) {
		fprintf(stderr, "soak: cannot create the disk image: %s\n", strerror(-err));
	} else {
		status = soak(&o, &g, disk) ? 1 : 0;
		unlink(disk);
	}
	free_guest_files(&g);
	return status;
}
