/* SPDX-License-Identifier: MIT */
/*
 * The arm64 platform (arch/arm64): the device tree is built for several
 * machines and read back with libfdt, node by node and property by
 * property, and decompiled with dtc (device-tree-compiler) when it is
 * installed, which also runs its checks on the bindings' shape. Plus the
 * boot-blob placement and the virtio slot numbering.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libfdt.h>

#include "arch/arm64/platform.h"
#include "arch/arm64/psci.h"

#define BUF_LEN (64 * 1024)
#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

/* ---- helpers ---- */

static struct arm64_platform *make_platform(int nr_cpus, int gic, int nr_virtio)
{
	struct arm64_platform *p = malloc(sizeof(*p));

	assert_non_null(p);
	arm64_platform_init(p, nr_cpus, 512 * MiB, gic);
	p->flags = ARM64_PLATFORM_UART | ARM64_PLATFORM_RTC;
	p->cmdline = "console=ttyS0 earlycon";
	for (int i = 0; i < nr_virtio; i++)
		assert_int_equal(arm64_platform_add_virtio(p), i);
	return p;
}

/* Build into a fresh buffer; the blob must pass libfdt's checks. */
static void *build(const struct arm64_platform *p, int *size)
{
	void *buf = malloc(BUF_LEN);

	assert_non_null(buf);
	memset(buf, 0xa5, BUF_LEN);
	*size = arm64_fdt_build(buf, BUF_LEN, p);
	assert_true(*size > 0);
	assert_int_equal(fdt_check_header(buf), 0);
	assert_int_equal(fdt_totalsize(buf), (uint32_t)*size);
	return buf;
}

static int node(const void *fdt, const char *path)
{
	int off = fdt_path_offset(fdt, path);

	if (off < 0)
		fail_msg("no node %s: %s", path, fdt_strerror(off));
	return off;
}

static const void *prop(const void *fdt, const char *path, const char *name, int *len)
{
	const void *v = fdt_getprop(fdt, node(fdt, path), name, len);

	if (!v)
		fail_msg("%s has no %s", path, name);
	return v;
}

static void assert_string_prop(const void *fdt, const char *path, const char *name,
			       const char *want)
{
	int len;
	const char *v = prop(fdt, path, name, &len);

	assert_int_equal(len, strlen(want) + 1);
	assert_string_equal(v, want);
}

/* A property of `n` 32-bit cells, compared cell by cell. */
static void assert_cells(const void *fdt, const char *path, const char *name,
			 const uint32_t *want, int n)
{
	int len;
	const fdt32_t *v = prop(fdt, path, name, &len);

	assert_int_equal(len, 4 * n);
	for (int i = 0; i < n; i++)
		assert_int_equal(fdt32_to_cpu(v[i]), want[i]);
}

static void assert_u32_prop(const void *fdt, const char *path, const char *name,
			    uint32_t want)
{
	assert_cells(fdt, path, name, &want, 1);
}

/* "reg" with 2 address and 2 size cells: pairs of 64-bit numbers. */
static void assert_reg64(const void *fdt, const char *path, const uint64_t *want, int pairs)
{
	int len;
	const fdt64_t *v = prop(fdt, path, "reg", &len);

	assert_int_equal(len, 16 * pairs);
	for (int i = 0; i < 2 * pairs; i++)
		assert_int_equal(fdt64_ld(&v[i]), want[i]); /* properties are only 4-byte aligned */
}

static uint64_t u64_prop(const void *fdt, const char *path, const char *name)
{
	int len;
	const fdt64_t *v = prop(fdt, path, name, &len);

	assert_int_equal(len, 8);
	return fdt64_ld(v);
}

/* The node a phandle property points to. */
static int follow_phandle(const void *fdt, const char *path, const char *name)
{
	int len, off;
	const fdt32_t *v = prop(fdt, path, name, &len);

	assert_int_equal(len, 4);
	off = fdt_node_offset_by_phandle(fdt, fdt32_to_cpu(*v));
	assert_true(off >= 0);
	return off;
}

/* ---- the tree, node by node ---- */

static void check_root(const void *fdt)
{
	int gic;

	assert_string_prop(fdt, "/", "compatible", "linux,dummy-virt");
	assert_u32_prop(fdt, "/", "#address-cells", 2);
	assert_u32_prop(fdt, "/", "#size-cells", 2);
	gic = follow_phandle(fdt, "/", "interrupt-parent");
	assert_int_equal(gic, node(fdt, "/intc@80000000"));
	assert_non_null(fdt_getprop(fdt, gic, "interrupt-controller", NULL));
}

static void check_cpus(const void *fdt, const struct arm64_platform *p)
{
	char path[64];
	int count = 0, off;

	assert_u32_prop(fdt, "/cpus", "#address-cells", 1);
	assert_u32_prop(fdt, "/cpus", "#size-cells", 0);
	for (int i = 0; i < p->nr_cpus; i++) {
		uint32_t aff = (uint32_t)(p->mpidr[i] & ARM64_MPIDR_AFF_MASK);

		snprintf(path, sizeof(path), "/cpus/cpu@%x", aff);
		assert_string_prop(fdt, path, "device_type", "cpu");
		assert_string_prop(fdt, path, "compatible", "arm,armv8");
		assert_string_prop(fdt, path, "enable-method", "psci");
		assert_u32_prop(fdt, path, "reg", aff);
	}
	fdt_for_each_subnode(off, fdt, node(fdt, "/cpus"))
		count++;
	assert_int_equal(count, p->nr_cpus);
}

static void check_psci_and_timer(const void *fdt, const struct arm64_platform *p)
{
	static const char compat[] = "arm,psci-0.2\0arm,psci";
	uint32_t mask = p->gic.version == 2 ? ((1u << p->nr_cpus) - 1) << 8 : 0;
	const uint32_t timer[12] = { 1, 13, 4 | mask, 1, 14, 4 | mask,
				     1, 11, 4 | mask, 1, 10, 4 | mask };
	int len;

	assert_memory_equal(prop(fdt, "/psci", "compatible", &len), compat, sizeof(compat));
	assert_int_equal(len, sizeof(compat));
	assert_string_prop(fdt, "/psci", "method", "hvc");
	assert_u32_prop(fdt, "/psci", "cpu_on", PSCI_CPU_ON64);
	assert_u32_prop(fdt, "/psci", "cpu_off", PSCI_CPU_OFF);
	assert_string_prop(fdt, "/timer", "compatible", "arm,armv8-timer");
	assert_cells(fdt, "/timer", "interrupts", timer, 12);
	assert_non_null(prop(fdt, "/timer", "always-on", &len));
}

static void check_gic(const void *fdt, const struct arm64_platform *p)
{
	const char *path = "/intc@80000000";

	assert_u32_prop(fdt, path, "#interrupt-cells", 3);
	assert_u32_prop(fdt, path, "phandle", ARM64_FDT_PHANDLE_GIC);
	if (p->gic.version == 3) {
		const uint64_t reg[] = { 0x80000000, 0x10000, 0x80020000,
					 0x20000ULL * (uint64_t)p->nr_cpus };

		assert_string_prop(fdt, path, "compatible", "arm,gic-v3");
		assert_reg64(fdt, path, reg, 2);
	} else {
		const uint64_t reg[] = { 0x80000000, 0x10000, 0x80010000, 0x2000 };

		assert_string_prop(fdt, path, "compatible", "arm,cortex-a15-gic");
		assert_reg64(fdt, path, reg, 2);
	}
}

static void check_uart_and_rtc(const void *fdt)
{
	const uint64_t uart_reg[] = { 0x90002000, 8 }, rtc_reg[] = { 0x90003000, 0x1000 };
	const uint32_t uart_irq[] = { 0, 1, 4 }, rtc_irq[] = { 0, 2, 4 };
	static const char rtc_compat[] = "arm,pl031\0arm,primecell";
	int len, clk;

	assert_string_prop(fdt, "/serial@90002000", "compatible", "ns16550a");
	assert_reg64(fdt, "/serial@90002000", uart_reg, 1);
	assert_u32_prop(fdt, "/serial@90002000", "clock-frequency", 1843200);
	assert_u32_prop(fdt, "/serial@90002000", "reg-shift", 0);
	assert_u32_prop(fdt, "/serial@90002000", "reg-io-width", 1);
	assert_cells(fdt, "/serial@90002000", "interrupts", uart_irq, 3);
	assert_memory_equal(prop(fdt, "/rtc@90003000", "compatible", &len), rtc_compat,
			    sizeof(rtc_compat));
	assert_reg64(fdt, "/rtc@90003000", rtc_reg, 1);
	assert_cells(fdt, "/rtc@90003000", "interrupts", rtc_irq, 3);
	assert_string_prop(fdt, "/rtc@90003000", "clock-names", "apb_pclk");
	clk = follow_phandle(fdt, "/rtc@90003000", "clocks");
	assert_int_equal(clk, node(fdt, "/apb-pclk"));
	assert_string_prop(fdt, "/apb-pclk", "compatible", "fixed-clock");
	assert_u32_prop(fdt, "/apb-pclk", "#clock-cells", 0);
}

static void check_virtio(const void *fdt, int n)
{
	char path[64];
	int count = 0, off;

	for (int i = 0; i < n; i++) {
		uint64_t base = 0xd0000000ULL + 0x1000ULL * (uint64_t)i;
		const uint64_t reg[] = { base, 0x1000 };
		const uint32_t irq[] = { 0, 16 + (uint32_t)i, 1 };

		snprintf(path, sizeof(path), "/virtio_mmio@%llx", (unsigned long long)base);
		assert_string_prop(fdt, path, "compatible", "virtio,mmio");
		assert_reg64(fdt, path, reg, 1);
		assert_cells(fdt, path, "interrupts", irq, 3);
		assert_non_null(fdt_getprop(fdt, node(fdt, path), "dma-coherent", NULL));
	}
	fdt_for_each_subnode(off, fdt, 0)
		if (fdt_node_check_compatible(fdt, off, "virtio,mmio") == 0)
			count++;
	assert_int_equal(count, n);
}

/* stdout-path names an existing node: the UART. */
static void check_chosen(const void *fdt, const struct arm64_platform *p)
{
	int len;
	const char *out = prop(fdt, "/chosen", "stdout-path", &len);

	assert_int_equal(fdt_path_offset(fdt, out), node(fdt, "/serial@90002000"));
	assert_string_prop(fdt, "/chosen", "bootargs", p->cmdline);
	if (!p->initrd_end) {
		assert_null(fdt_getprop(fdt, node(fdt, "/chosen"), "linux,initrd-start", NULL));
		return;
	}
	assert_int_equal(u64_prop(fdt, "/chosen", "linux,initrd-start"), p->initrd_start);
	assert_int_equal(u64_prop(fdt, "/chosen", "linux,initrd-end"), p->initrd_end);
}

/* ---- dtc, when installed ---- */

static int have_dtc(void)
{
	return system("command -v dtc >/dev/null 2>&1") == 0;
}

/*
 * Decompile with dtc; its stderr (warnings of its checks included) must
 * be empty. Returns the DTS text (malloc'd), or NULL without dtc.
 */
static char *dtc_decompile(const void *fdt, int size)
{
	char dir[] = "/tmp/test_arm64_fdt.XXXXXX", cmd[512], path[128];
	char *dts = NULL;
	FILE *f;
	long n;

	if (!have_dtc())
		return NULL;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/t.dtb", dir);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(fdt, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "dtc -I dtb -O dts -o %s/t.dts %s 2>%s/err", dir, path, dir);
	assert_int_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s/err", dir);
	f = fopen(cmd, "r");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	if ((n = ftell(f)) != 0) {
		char msg[1024] = "";

		fseek(f, 0, SEEK_SET);
		msg[fread(msg, 1, sizeof(msg) - 1, f)] = 0;
		fail_msg("dtc complained: %s", msg);
	}
	fclose(f);
	snprintf(path, sizeof(path), "%s/t.dts", dir);
	f = fopen(path, "r");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	dts = calloc(1, (size_t)n + 1);
	assert_non_null(dts);
	assert_int_equal(fread(dts, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	return dts;
}

static void check_with_dtc(const void *fdt, int size, const struct arm64_platform *p)
{
	char *dts = dtc_decompile(fdt, size);

	if (!dts) {
		print_message("dtc not installed: libfdt checks only\n");
		return;
	}
	assert_non_null(strstr(dts, "compatible = \"linux,dummy-virt\";"));
	assert_non_null(strstr(dts, "method = \"hvc\";"));
	assert_non_null(strstr(dts, p->gic.version == 3 ? "compatible = \"arm,gic-v3\";"
						       : "compatible = \"arm,cortex-a15-gic\";"));
	assert_non_null(strstr(dts, "interrupt-parent = <0x01>;"));
	free(dts);
}

/* ---- tests ---- */

struct shape {
	int cpus, gic, virtio;
	uint64_t initrd_start, initrd_end;
};

static void test_tree(void **state)
{
	const struct shape *s = *state;
	struct arm64_platform *p = make_platform(s->cpus, s->gic, s->virtio);
	const uint64_t mem[] = { 0, 512 * MiB };
	void *fdt;
	int size;

	p->initrd_start = s->initrd_start;
	p->initrd_end = s->initrd_end;
	fdt = build(p, &size);
	check_root(fdt);
	check_chosen(fdt, p);
	assert_string_prop(fdt, "/memory@0", "device_type", "memory");
	assert_reg64(fdt, "/memory@0", mem, 1);
	check_cpus(fdt, p);
	check_psci_and_timer(fdt, p);
	check_gic(fdt, p);
	check_uart_and_rtc(fdt);
	check_virtio(fdt, s->virtio);
	check_with_dtc(fdt, size, p);
	free(fdt);
	free(p);
}

/* RAM beyond 2 GiB continues at 4 GiB: two ranges. */
static void test_high_memory(void **state)
{
	struct arm64_platform *p = make_platform(1, 3, 0);
	const uint64_t mem[] = { 0, 2 * GiB, 4 * GiB, 6 * GiB };
	void *fdt;
	int size;

	p->ram_size = 8 * GiB;
	p->initrd_start = 5 * GiB; /* high RAM holds an initrd too */
	p->initrd_end = 5 * GiB + MiB;
	fdt = build(p, &size);
	assert_reg64(fdt, "/memory@0", mem, 2);
	check_chosen(fdt, p);
	free(fdt);
	p->ram_size = 2 * GiB; /* exactly the low RAM: one range */
	p->initrd_start = p->initrd_end = 0;
	fdt = build(p, &size);
	assert_reg64(fdt, "/memory@0", mem, 1);
	free(fdt);
	free(p);
}

/* KVM's MPIDRs past 16 vCPUs put the id's upper bits in Aff1. */
static void test_many_cpus(void **state)
{
	struct arm64_platform *p = make_platform(ARM64_MAX_CPUS, 3, 0);
	void *fdt;
	int size;

	assert_int_equal(p->mpidr[17], 0x80000101ULL);
	fdt = build(p, &size);
	check_cpus(fdt, p);
	assert_u32_prop(fdt, "/cpus/cpu@f0f", "reg", 0xf0f); /* vCPU 255 */
	check_gic(fdt, p);
	check_with_dtc(fdt, size, p);
	free(fdt);
	/* MPIDRs a backend passes in: an Aff3 needs two address cells. */
	p->nr_cpus = 2;
	p->mpidr[1] = 0x100000000ULL;
	fdt = build(p, &size);
	assert_u32_prop(fdt, "/cpus", "#address-cells", 2);
	assert_int_equal(u64_prop(fdt, "/cpus/cpu@100000000", "reg"), 0x100000000ULL);
	free(fdt);
	free(p);
}

/* Without UART, RTC, cmdline: no stdout-path, bootargs, clock. */
static void test_minimal(void **state)
{
	struct arm64_platform p;
	uint8_t buf[4096];
	int size;

	arm64_platform_init(&p, 1, 128 * MiB, 3);
	size = arm64_fdt_build(buf, sizeof(buf), &p);
	assert_true(size > 0);
	assert_int_equal(fdt_check_header(buf), 0);
	assert_true(fdt_path_offset(buf, "/chosen") >= 0);
	assert_null(fdt_getprop(buf, node(buf, "/chosen"), "stdout-path", NULL));
	assert_null(fdt_getprop(buf, node(buf, "/chosen"), "bootargs", NULL));
	assert_true(fdt_path_offset(buf, "/serial@90002000") < 0);
	assert_true(fdt_path_offset(buf, "/rtc@90003000") < 0);
	assert_true(fdt_path_offset(buf, "/apb-pclk") < 0);
	check_root(buf);
}

static void test_no_space(void **state)
{
	struct arm64_platform *p = make_platform(4, 3, 8);
	uint8_t *buf = malloc(BUF_LEN);
	int size;

	assert_non_null(buf);
	size = arm64_fdt_build(buf, BUF_LEN, p);
	assert_true(size > 0);
	assert_int_equal(arm64_fdt_build(buf, (size_t)size - 1, p), -ENOSPC);
	assert_int_equal(arm64_fdt_build(buf, 64, p), -ENOSPC);
	assert_int_equal(arm64_fdt_build(buf, 0, p), -ENOSPC);
	assert_int_equal(arm64_fdt_build(buf, (size_t)size, p), size);
	free(buf);
	free(p);
}

typedef void (*breaker)(struct arm64_platform *p);

static void no_cpus(struct arm64_platform *p) { p->nr_cpus = 0; }
static void too_many_cpus(struct arm64_platform *p) { p->nr_cpus = ARM64_MAX_CPUS + 1; }
static void gicv2_nine(struct arm64_platform *p)
{
	arm64_platform_init(p, 9, 512 * MiB, 2);
}
static void same_mpidr(struct arm64_platform *p) { p->mpidr[1] = p->mpidr[0] & ARM64_MPIDR_AFF_MASK; }
static void gic_v4(struct arm64_platform *p) { p->gic.version = 4; }
static void redist_small(struct arm64_platform *p) { p->gic.redist_size = 3 * ARM64_GIC_REDIST_STRIDE; }
static void no_dist(struct arm64_platform *p) { p->gic.dist_size = 0; }
static void no_ram(struct arm64_platform *p) { p->ram_size = 0; }
static void ram_past_ipa(struct arm64_platform *p) { p->ram_size = ARM64_MAX_GPA; }
static void virtio_below(struct arm64_platform *p) { p->virtio[1].base = 0xc0000000; }
static void virtio_above(struct arm64_platform *p)
{
	p->virtio[1].base = ARM64_VIRTIO_MMIO_BASE +
			    ARM64_VIRTIO_MMIO_MAX * ARM64_VIRTIO_MMIO_SIZE;
}
static void virtio_overruns(struct arm64_platform *p)
{
	p->virtio[1].base = ARM64_VIRTIO_MMIO_BASE +
			    (ARM64_VIRTIO_MMIO_MAX - 1) * ARM64_VIRTIO_MMIO_SIZE;
	p->virtio[1].size = 0x2000;
}
static void virtio_empty(struct arm64_platform *p) { p->virtio[0].size = 0; }
static void virtio_spi_high(struct arm64_platform *p) { p->virtio[0].spi = ARM64_GIC_NR_SPIS; }
static void spi_shared(struct arm64_platform *p) { p->virtio[0].spi = ARM64_UART_SPI; }
static void uart_no_clock(struct arm64_platform *p) { p->uart.clock_hz = 0; }
static void too_many_virtio(struct arm64_platform *p) { p->nr_virtio = ARM64_VIRTIO_MMIO_MAX + 1; }
static void initrd_reversed(struct arm64_platform *p)
{
	p->initrd_start = 64 * MiB;
	p->initrd_end = 32 * MiB;
}
static void initrd_empty(struct arm64_platform *p) { p->initrd_start = p->initrd_end = 64 * MiB; }
static void initrd_past_ram(struct arm64_platform *p)
{
	p->initrd_start = 500 * MiB;
	p->initrd_end = 513 * MiB;
}

static void test_bad_platforms(void **state)
{
	static const breaker breakers[] = {
		no_cpus, too_many_cpus, gicv2_nine, same_mpidr, gic_v4, redist_small,
		no_dist, no_ram, ram_past_ipa, virtio_below, virtio_above,
		virtio_overruns, virtio_empty, virtio_spi_high, spi_shared,
		uart_no_clock, too_many_virtio, initrd_reversed, initrd_empty,
		initrd_past_ram,
	};
	struct arm64_platform *good = make_platform(1, 3, 0);
	uint8_t *buf = malloc(BUF_LEN);

	assert_non_null(buf);
	for (size_t i = 0; i < sizeof(breakers) / sizeof(breakers[0]); i++) {
		struct arm64_platform *p = make_platform(4, 3, 2);

		assert_true(arm64_fdt_build(buf, BUF_LEN, p) > 0);
		breakers[i](p);
		p->flags |= ARM64_PLATFORM_UART;
		if (arm64_fdt_build(buf, BUF_LEN, p) != -EINVAL)
			fail_msg("breaker %zu: not -EINVAL", i);
		free(p);
	}
	assert_int_equal(arm64_fdt_build(NULL, BUF_LEN, good), -EINVAL);
	assert_int_equal(arm64_fdt_build(buf, BUF_LEN, NULL), -EINVAL);
	free(good);
	free(buf);
}

static void test_cmdline_limit(void **state)
{
	struct arm64_platform *p = make_platform(1, 3, 0);
	char *line = malloc(ARM64_CMDLINE_MAX + 1);
	uint8_t small[16];
	void *fdt;
	int size;

	assert_non_null(line);
	memset(line, 'x', ARM64_CMDLINE_MAX);
	line[ARM64_CMDLINE_MAX] = 0;
	p->cmdline = line;
	assert_int_equal(arm64_fdt_build(small, sizeof(small), p), -E2BIG);
	line[ARM64_CMDLINE_MAX - 1] = 0; /* 2047 characters fit */
	fdt = build(p, &size);
	assert_string_prop(fdt, "/chosen", "bootargs", line);
	free(fdt);
	free(line);
	free(p);
}

static void test_virtio_slots(void **state)
{
	struct arm64_platform *p = make_platform(1, 3, 0);
	uint64_t base;
	uint32_t spi;

	assert_int_equal(arm64_virtio_slot(0, &base, &spi), 0);
	assert_int_equal(base, 0xd0000000ULL);
	assert_int_equal(spi, 16);
	assert_int_equal(arm64_virtio_slot(31, &base, &spi), 0);
	assert_int_equal(base, 0xd001f000ULL);
	assert_int_equal(spi, 47);
	assert_true(ARM64_SPI_INTID(spi) < ARM64_GIC_NR_IRQS);
	assert_int_equal(arm64_virtio_slot(32, &base, &spi), -EINVAL);
	assert_int_equal(arm64_virtio_slot(-1, &base, &spi), -EINVAL);
	assert_int_equal(arm64_virtio_slot(0, NULL, &spi), -EINVAL);
	for (int i = 0; i < ARM64_VIRTIO_MMIO_MAX; i++)
		assert_int_equal(arm64_platform_add_virtio(p), i);
	assert_int_equal(arm64_platform_add_virtio(p), -ENOSPC);
	assert_int_equal(arm64_platform_add_virtio(NULL), -EINVAL);
	free(p);
}

static void test_default_mpidr(void **state)
{
	assert_int_equal(arm64_default_mpidr(0), 0x80000000ULL);
	assert_int_equal(arm64_default_mpidr(15), 0x8000000fULL);
	assert_int_equal(arm64_default_mpidr(16), 0x80000100ULL);
	assert_int_equal(arm64_default_mpidr(4096 + 33), 0x80010201ULL);
}

static void test_place_boot(void **state)
{
	struct arm64_boot_layout l;
	uint64_t kernel_end = ARM64_KERNEL_BASE + 0x2010000; /* Debian's image_size */

	assert_int_equal(arm64_place_boot(128 * MiB, kernel_end, 0, &l), 0);
	assert_int_equal(l.dtb_gpa, 126 * MiB);
	assert_int_equal(l.initrd_gpa, 0);
	assert_int_equal(arm64_place_boot(128 * MiB, kernel_end, 10 * MiB + 1, &l), 0);
	assert_int_equal(l.initrd_gpa, 126 * MiB - 10 * MiB - 0x1000);
	assert_int_equal(l.initrd_gpa % 0x1000, 0);
	/* A RAM size that is not a 2 MiB multiple: the last whole slot. */
	assert_int_equal(arm64_place_boot(129 * MiB, kernel_end, 0, &l), 0);
	assert_int_equal(l.dtb_gpa, 126 * MiB);
	/* Beyond 2 GiB the blobs stay in low RAM, in the kernel's window. */
	assert_int_equal(arm64_place_boot(8 * GiB, kernel_end, 100 * MiB, &l), 0);
	assert_int_equal(l.dtb_gpa, 2 * GiB - 2 * MiB);
	assert_int_equal(l.initrd_gpa, 2 * GiB - 102 * MiB);
	assert_true(l.dtb_gpa % ARM64_DTB_ALIGN == 0);
	/* Does not fit: the initrd would overlap the kernel, or no room at all. */
	assert_int_equal(arm64_place_boot(64 * MiB, kernel_end, 28 * MiB, &l), -ENOSPC);
	assert_int_equal(arm64_place_boot(64 * MiB, kernel_end, 27 * MiB, &l), 0);
	assert_true(l.initrd_gpa >= kernel_end);
	assert_int_equal(arm64_place_boot(34 * MiB, kernel_end, 0, &l), -ENOSPC);
	assert_int_equal(arm64_place_boot(1 * MiB, ARM64_KERNEL_BASE, 0, &l), -ENOSPC);
	assert_int_equal(arm64_place_boot(128 * MiB, ARM64_KERNEL_BASE - 1, 0, &l), -EINVAL);
	assert_int_equal(arm64_place_boot(128 * MiB, kernel_end, 0, NULL), -EINVAL);
}

static const struct shape one = { 1, 3, 0, 0, 0 };
static const struct shape four_initrd = { 4, 3, 3, 64 * MiB, 64 * MiB + 12345 };
static const struct shape v2_two = { 2, 2, 1, 0, 0 };
static const struct shape v2_eight = { 8, 2, 4, 100 * MiB, 110 * MiB };
static const struct shape all_virtio = { 4, 3, ARM64_VIRTIO_MMIO_MAX, 0, 0 };

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_prestate(test_tree, (void *)&one),
		cmocka_unit_test_prestate(test_tree, (void *)&four_initrd),
		cmocka_unit_test_prestate(test_tree, (void *)&v2_two),
		cmocka_unit_test_prestate(test_tree, (void *)&v2_eight),
		cmocka_unit_test_prestate(test_tree, (void *)&all_virtio),
		cmocka_unit_test(test_high_memory),
		cmocka_unit_test(test_many_cpus),
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_no_space),
		cmocka_unit_test(test_bad_platforms),
		cmocka_unit_test(test_cmdline_limit),
		cmocka_unit_test(test_virtio_slots),
		cmocka_unit_test(test_default_mpidr),
		cmocka_unit_test(test_place_boot),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
