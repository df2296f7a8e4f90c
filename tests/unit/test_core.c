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

#include "cli/console.h"
#include "cli/options.h"
#include "cli/virtio_setup.h"
#include "machine.h"
#include "mm.h"
#include "utils.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gpa_to_hva_bounds),
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
