/* SPDX-License-Identifier: MIT */
/* Pure parts of the core and CLI: GPA translation, sizes, options. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "cli/console.h"
#include "cli/options.h"
#include "cli/virtio_setup.h"
#include "machine.h"
#include "mm.h"
#include "utils.h"
#include "vm.h"

static void test_gpa_to_hva_bounds(void **state)
{
	static uint8_t a[0x2000], b[0x1000];
	struct mem_map mm = { .nr_slots = 2 };

	mm.slots[0] = (struct mem_slot){ .gpa = 0, .size = sizeof(a), .hva = a };
	mm.slots[1] = (struct mem_slot){ .gpa = 0x100000000ULL, .size = sizeof(b), .hva = b };

	assert_ptr_equal(mm_gpa_to_hva(&mm, 0, 1), a);
	assert_ptr_equal(mm_gpa_to_hva(&mm, 0x1fff, 1), a + 0x1fff);
	assert_ptr_equal(mm_gpa_to_hva(&mm, 0x1000, 0x1000), a + 0x1000);
	assert_null(mm_gpa_to_hva(&mm, 0x1000, 0x1001));    /* past the end */
	assert_null(mm_gpa_to_hva(&mm, 0x2000, 1));         /* in no slot */
	assert_null(mm_gpa_to_hva(&mm, 0x1fff, ~0ULL));     /* length wraps */
	assert_null(mm_gpa_to_hva(&mm, ~0ULL, 2));          /* address wraps */
	assert_ptr_equal(mm_gpa_to_hva(&mm, 0x100000fffULL, 1), b + 0xfff);
	assert_null(mm_gpa_to_hva(&mm, 0xffffffffULL, 2));  /* crosses into a slot */
	assert_ptr_equal(mm_gpa_to_hva(&mm, 0x10, 0), a + 0x10); /* len 0 = 1 */
	assert_null(mm_gpa_to_hva(NULL, 0, 1));
}

static void test_parse_size(void **state)
{
	uint64_t v;

	assert_int_equal(parse_size("512M", &v), 0);
	assert_int_equal(v, 512ULL << 20);
	assert_int_equal(parse_size("1G", &v), 0);
	assert_int_equal(v, 1ULL << 30);
	assert_int_equal(parse_size("64k", &v), 0);
	assert_int_equal(v, 64ULL << 10);
	assert_int_equal(parse_size("2GiB", &v), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(parse_size("0x1000", &v), 0);
	assert_int_equal(v, 0x1000);
	assert_int_equal(parse_size("", &v), -EINVAL);
	assert_int_equal(parse_size("M", &v), -EINVAL);
	assert_int_equal(parse_size("12Q", &v), -EINVAL);
	assert_int_equal(parse_size("-1G", &v), -EINVAL);
	assert_int_equal(parse_size("1Gx", &v), -EINVAL);
	assert_int_equal(parse_size("99999999999999999999", &v), -EINVAL);
	assert_int_equal(parse_size("17179869184G", &v), -EINVAL); /* 2^64 */
}

static void keep_pointer(const char **p, char store[][128], char keep[][128], int argc)
{
	for (int j = 1; j < argc && *p; j++)
		if (*p >= store[j] && *p < store[j] + 128) {
			*p = keep[j] + (*p - store[j]);
			return;
		}
}

static int parse(struct vmm_config *cfg, char *err, const char *first, ...)
{
	char *argv[32] = { "vibevmm" };
	char store[32][128];
	int argc = 1;
	va_list ap;

	va_start(ap, first);
	for (const char *a = first; a; a = va_arg(ap, const char *)) {
		snprintf(store[argc], sizeof(store[argc]), "%s", a);
		argv[argc] = store[argc];
		argc++;
	}
	va_end(ap);
	err[0] = '\0';
	/* The parser keeps pointers into argv (into the middle of a --disk
	 * value, too); move them to storage that outlives this call. */
	int r = cli_parse(argc, argv, cfg, err, 256);
	static char keep[32][128];
	memcpy(keep, store, sizeof(keep));
	for (int i = 0; i < cfg->nr_disks; i++)
		keep_pointer(&cfg->disks[i].path, store, keep, argc);
	for (int i = 0; i < cfg->nr_nets; i++)
		keep_pointer(&cfg->nets[i].tap, store, keep, argc);
	keep_pointer(&cfg->binary, store, keep, argc);
	keep_pointer(&cfg->kernel, store, keep, argc);
	keep_pointer(&cfg->cmdline, store, keep, argc);
	return r;
}

static void test_options_valid(void **state)
{
	struct vmm_config c;
	char err[256];

	assert_int_equal(parse(&c, err, "--binary", "g.bin", NULL), 0);
	assert_string_equal(c.binary, "g.bin");
	assert_int_equal(c.entry, machine_raw_default_entry());
	assert_int_equal(c.mem, 256ULL << 20);
	assert_int_equal(c.cpus, 1);
	assert_int_equal(c.log_level, LOG_WARN);

	assert_int_equal(parse(&c, err, "--kernel", "vmlinuz", "--cmdline", "console=ttyS0",
			       "--mem", "1G", "--cpus", "4", "--disk", "a.img",
			       "--disk", "b.img,ro", "--net", "tap=tap0,mac=52:54:00:12:34:56",
			       "--console", "virtio", "--log", "3", NULL), 0);
	assert_string_equal(c.kernel, "vmlinuz");
	assert_string_equal(c.cmdline, "console=ttyS0");
	assert_int_equal(c.mem, 1ULL << 30);
	assert_int_equal(c.cpus, 4);
	assert_int_equal(c.nr_disks, 2);
	assert_string_equal(c.disks[0].path, "a.img");
	assert_false(c.disks[0].readonly);
	assert_string_equal(c.disks[1].path, "b.img");
	assert_true(c.disks[1].readonly);
	assert_int_equal(c.nr_nets, 1);
	assert_string_equal(c.nets[0].tap, "tap0");
	assert_true(c.nets[0].have_mac);
	assert_int_equal(c.nets[0].mac[5], 0x56);
	assert_false(c.exit_port);
	assert_false(c.debugcon);
	assert_int_equal(c.console, CONSOLE_VIRTIO);
	assert_int_equal(c.log_level, 3);

	assert_int_equal(parse(&c, err, "--help", NULL), 0);
	assert_true(c.help);
	assert_int_equal(parse(&c, err, "-V", NULL), 0);
	assert_true(c.version);
}

static void expect_error(const char *needle, const char *a, const char *b,
			 const char *c3, const char *d)
{
	struct vmm_config c;
	char err[256];

	assert_int_equal(parse(&c, err, a, b, c3, d, NULL), -EINVAL);
	if (!strstr(err, needle))
		fail_msg("error '%s' lacks '%s'", err, needle);
	assert_null(strchr(err, '\n')); /* one line */
}

static void test_options_invalid(void **state)
{
	expect_error("nothing to run", "--mem", "1G", NULL, NULL);
	expect_error("--mem 12Q", "--binary", "x", "--mem", "12Q");
	expect_error("--mem 1M", "--binary", "x", "--mem", "1M");
	expect_error("--cpus 0", "--binary", "x", "--cpus", "0");
	expect_error("--cpus 65", "--binary", "x", "--cpus", "65");
	expect_error("--log 5", "--binary", "x", "--log", "5");
	expect_error("unknown option '--bogus'", "--bogus", NULL, NULL, NULL);
	expect_error("needs a value", "--binary", NULL, NULL, NULL);
	expect_error("exclude each other", "--binary", "x", "--kernel", "y");
	expect_error("outside guest RAM", "--binary", "x", "--entry", "0x10000000");
	expect_error("--entry needs --binary", "--kernel", "k", "--entry", "0x100000");
	expect_error("need --kernel", "--binary", "x", "--cmdline", "quiet");
	expect_error("unknown item 'rw'", "--kernel", "k", "--disk", "a.img,rw");
	expect_error("unknown key 'size'", "--kernel", "k", "--disk", "path=a.img,size=1G");
	expect_error("ro=maybe: want on or off", "--kernel", "k", "--disk", "path=a,ro=maybe");
	expect_error("given twice", "--kernel", "k", "--disk", "path=a,path=b");
	expect_error("no path", "--kernel", "k", "--disk", "ro=on");
	expect_error("no path", "--kernel", "k", "--disk", "path=,ro=on");
	expect_error("no path", "--kernel", "k", "--disk", "");
	/* A path with '=' in it is a key=value item unless it comes as path=. */
	expect_error("unknown key 'x'", "--kernel", "k", "--disk", "x=1.img");
	expect_error("TAP tap0 is given twice", "--net", "tap=tap0", "--net", "tap=tap0");
	expect_error("MAC 52:54:00:00:00:01 is given twice", "--net",
		     "tap=a,mac=52:54:00:00:00:01", "--net", "tap=b,mac=52:54:00:00:00:01");
	expect_error("tap=IF is required", "--kernel", "k", "--net", "mac=52:54:00:00:00:01");
	expect_error("bad item", "--kernel", "k", "--net", "tap=t0,mac=01:00:00:00:00:01");
	expect_error("want serial or virtio", "--kernel", "k", "--console", "vga");
	expect_error("unexpected argument 'stray'", "--kernel", "k", "stray", NULL);
}

/* --entry is the machine's to judge (x86_64: not below the boot tables;
 * arm64: word-aligned): whatever it refuses, the CLI refuses with its
 * reason, and what it takes parses. */
static void test_options_entry_judged_by_machine(void **state)
{
	static const char *const entries[] = { "0x1000", "0x20002", "0x20000", "0x200000" };
	struct vmm_config c;
	char err[256], why[256];
	int refused = 0;

	for (size_t i = 0; i < sizeof(entries) / sizeof(entries[0]); i++) {
		uint64_t entry = strtoull(entries[i], NULL, 0);
		int r = parse(&c, err, "--binary", "x", "--entry", entries[i], NULL);

		if (machine_check_raw_entry(256ULL << 20, entry, why, sizeof(why))) {
			assert_int_equal(r, -EINVAL);
			assert_string_equal(err, why);
			refused++;
		} else {
			assert_int_equal(r, 0);
			assert_int_equal(c.entry, entry);
		}
	}
	/* Each arch refuses one of the first two. */
	assert_int_equal(refused, 1);
}

static void expect_disk(const char *arg, const char *path, int readonly)
{
	struct vmm_config c;
	char err[256];

	if (parse(&c, err, "--kernel", "k", "--disk", arg, NULL))
		fail_msg("--disk %s: %s", arg, err);
	assert_int_equal(c.nr_disks, 1);
	assert_string_equal(c.disks[0].path, path);
	assert_int_equal(c.disks[0].readonly, readonly);
}

static void test_options_disk_forms(void **state)
{
	expect_disk("path=a.img", "a.img", 0);
	expect_disk("path=a.img,ro=on", "a.img", 1);
	expect_disk("ro=on,path=a.img", "a.img", 1);
	expect_disk("path=a.img,ro=off", "a.img", 0);
	expect_disk("path=a.img,readonly=yes", "a.img", 1);
	expect_disk("path=a.img,ro", "a.img", 1);
	expect_disk("path=/dev/loop0", "/dev/loop0", 0);
	/* commas in a path: doubled, anywhere in the list */
	expect_disk("path=/img/a,,b.img,ro=on", "/img/a,b.img", 1);
	expect_disk("ro=on,path=a,,,,b,,", "a,,b,", 1);
	expect_disk("path=x=y.img", "x=y.img", 0);
	/* the older PATH[,ro] */
	expect_disk("a.img", "a.img", 0);
	expect_disk("/dev/vg/disk,ro", "/dev/vg/disk", 1);
	expect_disk("a,,b.img,ro", "a,b.img", 1);
	expect_disk("ro", "ro", 0); /* a file named ro */
}

static void test_options_several_nets(void **state)
{
	struct vmm_config c;
	char err[256];

	assert_int_equal(parse(&c, err, "--kernel", "k", "--net", "tap=tap0",
			       "--net", "tap=tap1,mac=52:54:00:00:00:02", "--net", "mac=52:54:00:00:00:03,tap=t2",
			       NULL), 0);
	assert_int_equal(c.nr_nets, 3);
	assert_string_equal(c.nets[0].tap, "tap0");
	assert_false(c.nets[0].have_mac);
	assert_string_equal(c.nets[1].tap, "tap1");
	assert_true(c.nets[1].have_mac);
	assert_int_equal(c.nets[1].mac[5], 2);
	assert_string_equal(c.nets[2].tap, "t2");
	assert_int_equal(c.nets[2].mac[5], 3);

	char *argv[2 + 2 * (CLI_MAX_NETS + 1)];
	char names[CLI_MAX_NETS + 1][16];
	int argc = 0;

	argv[argc++] = "vibevmm";
	argv[argc++] = "--kernel=k";
	for (int i = 0; i <= CLI_MAX_NETS; i++) {
		snprintf(names[i], sizeof(names[i]), "tap=t%d", i);
		argv[argc++] = "--net";
		argv[argc++] = names[i];
	}
	assert_int_equal(cli_parse(argc - 2, argv, &c, err, sizeof(err)), 0);
	assert_int_equal(c.nr_nets, CLI_MAX_NETS);
	assert_int_equal(cli_parse(argc, argv, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "at most 8 network devices"));
}

static void test_options_exit_port_and_debugcon(void **state)
{
	struct vmm_config c;
	char err[256];

	assert_int_equal(parse(&c, err, "--kernel", "k", "--exit-port", NULL), 0);
	assert_true(c.exit_port);
	assert_false(c.debugcon);
	assert_int_equal(parse(&c, err, "--kernel", "k", "--debugcon", NULL), 0);
	assert_false(c.exit_port);
	assert_true(c.debugcon);
	{
		char usage[4096] = "";
		FILE *f = fmemopen(usage, sizeof(usage) - 1, "w");

		assert_non_null(f);
		cli_print_usage(f);
		fclose(f);
		assert_true(strstr(usage, "--exit-port") && strstr(usage, "--debugcon"));
		assert_non_null(strstr(usage, machine_info()->exit_device));
		assert_null(strstr(usage, "%"));
	}
}

static void test_console_escape(void **state)
{
	struct console con = { 0 };
	uint8_t in1[] = { 'a', 0x01, 0x01, 'b', 0x01, 'z', 'c' };
	int n = console_filter(&con, in1, sizeof(in1));

	/* Ctrl-A Ctrl-A -> one Ctrl-A; Ctrl-A z (unknown) is swallowed. */
	assert_int_equal(n, 4);
	assert_memory_equal(in1, "a\x01" "bc", 4);
	assert_false(con.quit_requested);

	/* An escape split across two reads still counts. */
	uint8_t in2[] = { 'q', 0x01 };
	assert_int_equal(console_filter(&con, in2, 2), 1);
	assert_true(con.escape);
}

/* ---- vm_pause/vm_resume and vm_format_metrics on a fake backend ---- */

/* Its vCPUs "run" a few microseconds per entry; it records the clock
 * calls in order: n = vcpu_pause_notify, s = clock_save, r = restore. */
struct fake_clock_hv {
	pthread_mutex_t lock;
	char calls[64];
	int nr_calls;
	atomic_bool clock_saved;
	atomic_bool ran_while_saved;  /* a guest entry between save and restore */
	atomic_int entries;
	int io_exits, mmio_exits;     /* exits each vCPU makes before HLT; 0: spin */
	uint8_t data[8];
};

struct fake_vcpu {
	int entries;
};

static struct fake_clock_hv *fake_of(struct vm *vm)
{
	return vm->private;
}

static void record_call(struct fake_clock_hv *h, char c)
{
	pthread_mutex_lock(&h->lock);
	if (h->nr_calls < (int)sizeof(h->calls) - 1)
		h->calls[h->nr_calls++] = c;
	pthread_mutex_unlock(&h->lock);
}

static int fake_vm_create(struct vm *vm) { return 0; }
static void fake_vm_destroy(struct vm *vm) { }
static int fake_vcpu_create(struct vcpu *vcpu)
{
	vcpu->private = calloc(1, sizeof(struct fake_vcpu));
	return vcpu->private ? 0 : -ENOMEM;
}
static void fake_vcpu_destroy(struct vcpu *vcpu) { free(vcpu->private); }
static void fake_vcpu_kick(struct vcpu *vcpu) { }

static int fake_vcpu_run(struct vcpu *vcpu, struct vcpu_exit *exit)
{
	struct fake_clock_hv *h = fake_of(vcpu->vm);
	struct fake_vcpu *f = vcpu->private;
	struct timespec ts = { 0, 20 * 1000 };
	int n = f->entries++;

	if (atomic_load(&h->clock_saved))
		atomic_store(&h->ran_while_saved, true);
	atomic_fetch_add(&h->entries, 1);
	if (!h->io_exits && !h->mmio_exits) {
		nanosleep(&ts, NULL);
		exit->reason = VCPU_EXIT_INTERRUPTED;
	} else if (n < h->io_exits) {
		/* an unclaimed port: written nowhere */
		exit->reason = VCPU_EXIT_IO;
		exit->io.port = 0x99;
		exit->io.size = 1;
		exit->io.is_write = 1;
		exit->io.count = 1;
		exit->io.data = h->data;
	} else if (n < h->io_exits + h->mmio_exits) {
		exit->reason = VCPU_EXIT_MMIO;
		exit->mmio.addr = 0xd0000000;
		exit->mmio.size = 4;
		exit->mmio.is_write = 1;
		exit->mmio.data = h->data;
	} else {
		exit->reason = VCPU_EXIT_HLT;
	}
	return 0;
}

static int fake_get_regs(struct vcpu *vcpu, struct regs *regs) { return 0; }
static int fake_set_regs(struct vcpu *vcpu, const struct regs *regs) { return 0; }

static int fake_pause_notify(struct vcpu *vcpu)
{
	record_call(fake_of(vcpu->vm), 'n');
	return 0;
}

static int fake_clock_save(struct vm *vm)
{
	record_call(fake_of(vm), 's');
	atomic_store(&fake_of(vm)->clock_saved, true);
	return 0;
}

static int fake_clock_restore(struct vm *vm)
{
	record_call(fake_of(vm), 'r');
	atomic_store(&fake_of(vm)->clock_saved, false);
	return 0;
}

static const struct hypervisor_ops fake_clock_ops = {
	.name = "fake", .vm_create = fake_vm_create, .vm_destroy = fake_vm_destroy,
	.vcpu_create = fake_vcpu_create, .vcpu_destroy = fake_vcpu_destroy,
	.vcpu_run = fake_vcpu_run, .vcpu_kick = fake_vcpu_kick,
	.vcpu_get_regs = fake_get_regs, .vcpu_set_regs = fake_set_regs,
	.vcpu_pause_notify = fake_pause_notify, .clock_save = fake_clock_save,
	.clock_restore = fake_clock_restore,
};

static struct vm *fake_vm(struct fake_clock_hv *h, int nr_vcpus)
{
	struct vm *vm = vm_create_on(&fake_clock_ops);

	assert_non_null(vm);
	pthread_mutex_init(&h->lock, NULL);
	vm->private = h;
	vm->log_level = LOG_NONE;
	for (int i = 0; i < nr_vcpus; i++)
		assert_non_null(vm_create_vcpu(vm, i));
	return vm;
}

static void fake_vm_destroy_all(struct vm *vm, struct fake_clock_hv *h)
{
	vm_destroy(vm);
	pthread_mutex_destroy(&h->lock);
}

static void wait_entries_past(struct fake_clock_hv *h, int than)
{
	struct timespec ts = { 0, 1000 * 1000 };

	for (int t = 0; t < 5000 && atomic_load(&h->entries) <= than; t++)
		nanosleep(&ts, NULL);
	assert_true(atomic_load(&h->entries) > than);
}

static void test_pause_clock_ops_in_order(void **state)
{
	struct fake_clock_hv h = { 0 };
	struct vm *vm = fake_vm(&h, 2);
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	int frozen;

	assert_int_equal(vm_start(vm), 0);
	wait_entries_past(&h, 10);
	assert_int_equal(vm_pause(vm), 0);
	/* Each vCPU told, then the clock saved; nothing runs meanwhile. */
	assert_string_equal(h.calls, "nns");
	frozen = atomic_load(&h.entries);
	nanosleep(&ts, NULL);
	assert_int_equal(atomic_load(&h.entries), frozen);
	assert_int_equal(vm_resume(vm), 0);
	assert_string_equal(h.calls, "nnsr");
	wait_entries_past(&h, frozen);
	assert_int_equal(vm_pause(vm), 0);
	assert_int_equal(vm_resume(vm), 0);
	assert_string_equal(h.calls, "nnsrnnsr");
	/* Restored before any vCPU entered the guest again. */
	assert_false(atomic_load(&h.ran_while_saved));
	/* Stopped while paused: no restore is owed to anyone. */
	assert_int_equal(vm_pause(vm), 0);
	assert_int_equal(vm_stop(vm), 0);
	assert_string_equal(h.calls, "nnsrnnsrnns");
	fake_vm_destroy_all(vm, &h);
}

/* A device with counters of its own, as virtio-blk has. */
static void fake_disk_metrics(struct device *dev, struct device_metrics *m)
{
	uint64_t base = (uint64_t)(uintptr_t)dev->private;

	m->group = "block";
	m->counter[0].name = "read_count";
	m->counter[0].value = base;
	m->counter[1].name = "write_bytes";
	m->counter[1].value = base * 512;
	m->nr = 2;
}

static int no_write(struct device *dev, uint64_t off, void *data, size_t size) { return 0; }

static struct device *fake_disk(uint64_t base_addr, uint64_t count)
{
	struct device *d = calloc(1, sizeof(*d));

	assert_non_null(d);
	*d = (struct device){ .name = "disk", .base = base_addr, .size = 16,
		.write = no_write, .destroy = (void (*)(struct device *))free,
		.metrics = fake_disk_metrics, .private = (void *)(uintptr_t)count };
	return d;
}

static uint64_t json_u64(json_t *root, const char *obj, const char *key)
{
	json_t *o = json_object_get(root, obj);
	json_t *v = o ? json_object_get(o, key) : NULL;

	if (!json_is_integer(v))
		fail_msg("metrics: no integer %s.%s", obj, key);
	return (uint64_t)json_integer_value(v);
}

static void test_metrics_line_is_json_with_exit_counts(void **state)
{
	struct fake_clock_hv h = { .io_exits = 7, .mmio_exits = 3 };
	struct vm *vm = fake_vm(&h, 2);
	struct device *d0 = fake_disk(0x1000, 5), *d1 = fake_disk(0x2000, 11);
	char line[4096];
	json_error_t jerr;
	json_t *root;
	int n;

	assert_int_equal(device_set_id(d1, "root-fs_2"), 0);
	assert_int_equal(device_set_id(d0, "bad id"), -EINVAL);
	assert_int_equal(device_set_id(d0, "a\"b"), -EINVAL);
	assert_int_equal(device_set_id(d0, ""), -EINVAL);
	assert_int_equal(device_set_id(d0, "0123456789012345678901234567890123"), -EINVAL);
	assert_int_equal(vm_register_device(vm, d0), 0);
	assert_int_equal(vm_register_device(vm, d1), 0);
	assert_int_equal(vm_start(vm), 0);
	assert_int_equal(vm_wait(vm), VCPU_EXIT_HLT);

	n = vm_format_metrics(vm, line, sizeof(line));
	assert_true(n > 0 && n < (int)sizeof(line));
	assert_int_equal(vm_format_metrics(vm, NULL, 0), n);
	assert_null(strchr(line, '\n'));
	root = json_loads(line, 0, &jerr);
	if (!root)
		fail_msg("not JSON (%s): %s", jerr.text, line);
	assert_true(json_integer_value(json_object_get(root, "utc_timestamp_ms")) > 1600000000000LL);
	/* Two vCPUs, each 7 port writes, 3 MMIO writes and a HLT. */
	assert_int_equal(json_u64(root, "vcpu", "exit_io"), 14);
	assert_int_equal(json_u64(root, "vcpu", "exit_mmio"), 6);
	assert_int_equal(json_u64(root, "vcpu", "exit_hlt"), 2);
	assert_int_equal(json_u64(root, "vcpu", "exit_guest_exit"), 0);
	assert_int_equal(json_u64(root, "vcpu", "exits"), 22);
	/* The group summed, then each device: by ordinal, or by its id. */
	assert_int_equal(json_u64(root, "block", "read_count"), 16);
	assert_int_equal(json_u64(root, "block", "write_bytes"), 16 * 512);
	assert_int_equal(json_u64(root, "block_0", "read_count"), 5);
	assert_int_equal(json_u64(root, "block_root-fs_2", "read_count"), 11);
	assert_int_equal(json_object_size(root), 5);
	json_decref(root);
	/* Cut short like snprintf: terminated, the full length returned. */
	assert_int_equal(vm_format_metrics(vm, line, 10), n);
	assert_int_equal(strlen(line), 9);
	assert_int_equal(vm_format_metrics(NULL, line, sizeof(line)), -EINVAL);
	fake_vm_destroy_all(vm, &h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gpa_to_hva_bounds),
		cmocka_unit_test(test_pause_clock_ops_in_order),
		cmocka_unit_test(test_metrics_line_is_json_with_exit_counts),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_options_valid),
		cmocka_unit_test(test_options_invalid),
		cmocka_unit_test(test_options_entry_judged_by_machine),
		cmocka_unit_test(test_options_disk_forms),
		cmocka_unit_test(test_options_several_nets),
		cmocka_unit_test(test_options_exit_port_and_debugcon),
		cmocka_unit_test(test_console_escape),
	};

	return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
