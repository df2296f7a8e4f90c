/* SPDX-License-Identifier: MIT */
/* Pure parts of the core and CLI: GPA translation, sizes, options. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/console.h"
#include "cli/options.h"
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
	/* The parser keeps pointers into argv; copy them out before return. */
	int r = cli_parse(argc, argv, cfg, err, 256);
	static char keep[32][128];
	memcpy(keep, store, sizeof(keep));
	for (int i = 0; i < cfg->nr_disks; i++)
		for (int j = 1; j < argc; j++)
			if (cfg->disks[i].path == store[j])
				cfg->disks[i].path = keep[j];
	for (int j = 1; j < argc; j++) {
		if (cfg->binary == store[j]) cfg->binary = keep[j];
		if (cfg->kernel == store[j]) cfg->kernel = keep[j];
		if (cfg->cmdline == store[j]) cfg->cmdline = keep[j];
	}
	return r;
}

static void test_options_valid(void **state)
{
	struct vmm_config c;
	char err[256];

	assert_int_equal(parse(&c, err, "--binary", "g.bin", NULL), 0);
	assert_string_equal(c.binary, "g.bin");
	assert_int_equal(c.entry, 0x100000);
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
	assert_true(c.have_mac);
	assert_int_equal(c.mac[5], 0x56);
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
	expect_error("below 0x20000", "--binary", "x", "--entry", "0x1000");
	expect_error("--entry needs --binary", "--kernel", "k", "--entry", "0x100000");
	expect_error("need --kernel", "--binary", "x", "--cmdline", "quiet");
	expect_error("only ',ro'", "--kernel", "k", "--disk", "a.img,rw");
	expect_error("tap=IF is required", "--kernel", "k", "--net", "mac=52:54:00:00:00:01");
	expect_error("bad item", "--kernel", "k", "--net", "tap=t0,mac=01:00:00:00:00:01");
	expect_error("want serial or virtio", "--kernel", "k", "--console", "vga");
	expect_error("unexpected argument 'stray'", "--kernel", "k", "stray", NULL);
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
		cmocka_unit_test(test_console_escape),
	};

	return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
