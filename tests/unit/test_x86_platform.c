/* SPDX-License-Identifier: MIT */
/*
 * x86_64 platform description: ACPI tables, AML, MP table, e820, zero page
 * and initrd placement. The tables are also fed to ACPICA (iasl and
 * acpiexec from Debian's acpica-tools, the same interpreter Linux runs):
 * without them only those checks are skipped.
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

#include "arch/x86_64/platform.h"
#include "arch/x86_64/linux_boot.h"

#define ACPI_AREA (X86_BIOS_END - X86_ACPI_RSDP_ADDR)
#define HDR 36

/* ---- helpers ---- */

static struct x86_platform make_platform(int nr_cpus, int nr_virtio,
					 uint32_t flags)
{
	struct x86_platform p = {
		.nr_cpus = nr_cpus, .ram_size = 512ULL << 20,
		.nr_virtio = nr_virtio, .flags = flags,
	};

	for (int i = 0; i < nr_virtio; i++) {
		p.virtio[i].base = X86_VIRTIO_MMIO_BASE + (uint64_t)i * X86_VIRTIO_MMIO_SIZE;
		p.virtio[i].size = X86_VIRTIO_MMIO_SIZE;
		p.virtio[i].gsi = X86_VIRTIO_GSI_BASE + (uint32_t)i % 19;
	}
	return p;
}

/* The table `sig` at guest address `gpa`: inside the buffer, its length
 * inside the buffer, checksum 0. */
static const uint8_t *table_at(const uint8_t *buf, size_t len, uint64_t base,
			       uint64_t gpa, const char *sig)
{
	uint64_t off;
	uint32_t tlen;

	assert_true(gpa >= base);
	off = gpa - base;
	assert_true(off + HDR <= len);
	assert_memory_equal(buf + off, sig, 4);
	tlen = x86_get_le32(buf + off + 4);
	assert_true(tlen >= HDR && tlen <= len - off);
	assert_int_equal(acpi_sum(buf + off, tlen), 0);
	return buf + off;
}

struct acpi_view {
	const uint8_t *rsdp, *xsdt, *fadt, *madt, *dsdt, *mcfg; /* mcfg: with PCI */
};

/* Follow RSDP -> XSDT -> FADT/MADT, FADT -> DSDT, checking every link. */
static struct acpi_view walk_tables(const uint8_t *buf, size_t len,
				    uint64_t base)
{
	struct acpi_view v = { .rsdp = buf };
	uint32_t xlen;

	assert_memory_equal(buf, "RSD PTR ", 8);
	assert_int_equal(buf[15], 2);
	assert_int_equal(acpi_sum(buf, 20), 0);
	assert_int_equal(x86_get_le32(buf + 20), 36);
	assert_int_equal(acpi_sum(buf, 36), 0);
	v.xsdt = table_at(buf, len, base, x86_get_le64(buf + 24), "XSDT");
	xlen = x86_get_le32(v.xsdt + 4);
	assert_true(xlen == HDR + 2 * 8 || xlen == HDR + 3 * 8);
	if (xlen == HDR + 3 * 8)
		v.mcfg = table_at(buf, len, base, x86_get_le64(v.xsdt + HDR + 16), "MCFG");
	v.fadt = table_at(buf, len, base, x86_get_le64(v.xsdt + HDR), "FACP");
	v.madt = table_at(buf, len, base, x86_get_le64(v.xsdt + HDR + 8), "APIC");
	v.dsdt = table_at(buf, len, base,
			  x86_get_le64(v.fadt + ACPI_FADT_OFF_X_DSDT), "DSDT");
	return v;
}

static uint8_t *build_acpi(const struct x86_platform *p, int *used)
{
	uint8_t *buf = malloc(ACPI_AREA);
	uint64_t rsdp = 0;

	assert_non_null(buf);
	*used = acpi_build_tables(buf, ACPI_AREA, X86_ACPI_RSDP_ADDR, p, &rsdp);
	assert_true(*used > 0);
	assert_int_equal(rsdp, X86_ACPI_RSDP_ADDR);
	return buf;
}

static int count_bytes(const uint8_t *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	int count = 0;

	for (size_t i = 0; i + n <= len; i++)
		count += memcmp(hay + i, needle, n) == 0;
	return count;
}

/* ---- ACPI ---- */

static void test_acpi_links_and_checksums(void **state)
{
	static const int cpus[] = { 1, 4, X86_MAX_CPUS };

	for (size_t c = 0; c < sizeof(cpus) / sizeof(cpus[0]); c++) {
		struct x86_platform p = make_platform(cpus[c], 3, X86_PLATFORM_COM1);
		int used;
		uint8_t *buf = build_acpi(&p, &used);

		walk_tables(buf, (size_t)used, X86_ACPI_RSDP_ADDR);
		free(buf);
	}
}

static void check_madt(int nr_cpus)
{
	struct x86_platform p = make_platform(nr_cpus, 0, 0);
	int used, lapics = 0, ioapics = 0, isos = 0, nmis = 0;
	uint8_t *buf = build_acpi(&p, &used);
	struct acpi_view v = walk_tables(buf, (size_t)used, X86_ACPI_RSDP_ADDR);
	uint32_t len = x86_get_le32(v.madt + 4);

	assert_int_equal(v.madt[8], 5);
	assert_int_equal(x86_get_le32(v.madt + HDR), X86_LAPIC_ADDR);
	for (uint32_t off = HDR + 8; off < len; off += v.madt[off + 1]) {
		const uint8_t *e = v.madt + off;

		assert_true(e[1] >= 2 && off + e[1] <= len);
		switch (e[0]) {
		case 0:
			assert_int_equal(e[1], 8);
			assert_int_equal(e[2], lapics);  /* processor UID */
			assert_int_equal(e[3], lapics);  /* APIC id = cpu index */
			assert_int_equal(x86_get_le32(e + 4), 1); /* enabled */
			lapics++;
			break;
		case 1:
			assert_int_equal(e[1], 12);
			assert_int_equal(e[2], nr_cpus);
			assert_int_equal(x86_get_le32(e + 4), X86_IOAPIC_ADDR);
			assert_int_equal(x86_get_le32(e + 8), 0);
			ioapics++;
			break;
		case 2: /* interrupt source override */
			isos++;
			break;
		case 4:
			assert_int_equal(e[5], 1); /* LINT1 */
			nmis++;
			break;
		default:
			fail_msg("unexpected MADT entry type %u", e[0]);
		}
	}
	assert_int_equal(lapics, nr_cpus);
	assert_int_equal(ioapics, 1);
	/* None: KVM's default routing has ISA IRQ n (the PIT's 0
	 * included) on IOAPIC pin n, which is what no override means. */
	assert_int_equal(isos, 0);
	assert_int_equal(nmis, 1);
	free(buf);
}

static void test_madt_one_cpu(void **state)
{
	check_madt(1);
}

static void test_madt_four_cpus(void **state)
{
	check_madt(4);
}

static void check_gas_pm_port(const uint8_t *g)
{
	assert_int_equal(g[0], 1);  /* SystemIO */
	assert_int_equal(g[1], 8);  /* bits */
	assert_int_equal(g[2], 0);
	assert_int_equal(g[3], 1);  /* byte access */
	assert_int_equal(x86_get_le64(g + 4), X86_ACPI_PM_PORT);
}

static void test_fadt(void **state)
{
	struct x86_platform p = make_platform(2, 1, 0);
	int used;
	uint8_t *buf = build_acpi(&p, &used);
	struct acpi_view v = walk_tables(buf, (size_t)used, X86_ACPI_RSDP_ADDR);
	uint32_t flags = x86_get_le32(v.fadt + ACPI_FADT_OFF_FLAGS);
	uint16_t iapc = x86_get_le16(v.fadt + 109);

	assert_int_equal(x86_get_le32(v.fadt + 4), ACPI_FADT_SIZE);
	assert_int_equal(v.fadt[8], 6);
	assert_true(flags & (1u << 20)); /* HW_REDUCED_ACPI */
	assert_true(flags & (1u << 10)); /* RESET_REG_SUP */
	check_gas_pm_port(v.fadt + ACPI_FADT_OFF_RESET_REG);
	assert_int_equal(v.fadt[ACPI_FADT_OFF_RESET_VALUE], 1);
	check_gas_pm_port(v.fadt + ACPI_FADT_OFF_SLEEP_CONTROL);
	check_gas_pm_port(v.fadt + ACPI_FADT_OFF_SLEEP_STATUS);
	/* X_DSDT set, so the 32-bit DSDT field must be 0 */
	assert_int_equal(x86_get_le32(v.fadt + 40), 0);
	assert_int_equal(x86_get_le16(v.fadt + 46), 0); /* no SCI */
	assert_false(iapc & (1u << 1));                 /* no 8042 by default */
	assert_true(iapc & (1u << 5));                  /* no CMOS RTC */
	free(buf);

	p.flags = X86_PLATFORM_I8042 | X86_PLATFORM_CMOS_RTC;
	buf = build_acpi(&p, &used);
	v = walk_tables(buf, (size_t)used, X86_ACPI_RSDP_ADDR);
	iapc = x86_get_le16(v.fadt + 109);
	assert_true(iapc & (1u << 1));
	assert_false(iapc & (1u << 5));
	free(buf);
}

static void test_dsdt_content(void **state)
{
	struct x86_platform p = make_platform(1, 3, X86_PLATFORM_COM1);
	int used;
	uint8_t *buf = build_acpi(&p, &used);
	struct acpi_view v = walk_tables(buf, (size_t)used, X86_ACPI_RSDP_ADDR);
	uint32_t len = x86_get_le32(v.dsdt + 4);
	/* Name(_S5_, Package(4){5, 0, 0, 0}) */
	static const uint8_t s5[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x07,
				      0x04, 0x0a, 0x05, 0x00, 0x00, 0x00 };
	/* Memory32Fixed(ReadWrite, base of window 1, 0x1000) */
	uint8_t mem[12] = { 0x86, 0x09, 0x00, 0x01 };
	/* IO(Decode16, 0x60, 0x60, 1, 1), IO(.. 0x64 ..), IRQNoFlags(){1} */
	static const uint8_t kbd_io[] = { 0x47, 0x01, 0x60, 0x00, 0x60, 0x00, 0x01, 0x01,
					  0x47, 0x01, 0x64, 0x00, 0x64, 0x00, 0x01, 0x01,
					  0x22, 0x02, 0x00 };
	/* IO(Decode16, 0x505, 0x505, 1, 1) */
	static const uint8_t pvpanic_io[] = { 0x47, 0x01, 0x05, 0x05, 0x05, 0x05, 0x01, 0x01 };

	x86_put_le32(mem + 4, (uint32_t)p.virtio[1].base);
	x86_put_le32(mem + 8, X86_VIRTIO_MMIO_SIZE);
	assert_int_equal(v.dsdt[8], 2);
	assert_int_equal(count_bytes(v.dsdt, len, "LNRO0005"), 3);
	assert_int_equal(count_bytes(v.dsdt, len, "COM1"), 1);
	assert_int_equal(count_bytes(v.dsdt, len, "KBD_"), 0);
	assert_int_equal(count_bytes(v.dsdt, len, "QEMU0001"), 0);
	assert_non_null(memmem(v.dsdt, len, s5, sizeof(s5)));
	assert_non_null(memmem(v.dsdt, len, mem, sizeof(mem)));
	free(buf);

	/* The i8042 with its ports and IRQ 1; pvpanic with its port. */
	p = make_platform(1, 0, X86_PLATFORM_I8042 | X86_PLATFORM_PVPANIC);
	buf = build_acpi(&p, &used);
	v = walk_tables(buf, (size_t)used, X86_ACPI_RSDP_ADDR);
	len = x86_get_le32(v.dsdt + 4);
	assert_int_equal(count_bytes(v.dsdt, len, "KBD_"), 1);
	assert_int_equal(count_bytes(v.dsdt, len, "QEMU0001"), 1);
	assert_non_null(memmem(v.dsdt, len, kbd_io, sizeof(kbd_io)));
	assert_non_null(memmem(v.dsdt, len, pvpanic_io, sizeof(pvpanic_io)));
	free(buf);

	p = make_platform(1, 0, 0);
	buf = build_acpi(&p, &used);
	v = walk_tables(buf, (size_t)used, X86_ACPI_RSDP_ADDR);
	len = x86_get_le32(v.dsdt + 4);
	assert_int_equal(count_bytes(v.dsdt, len, "LNRO0005"), 0);
	assert_int_equal(count_bytes(v.dsdt, len, "COM1"), 0);
	assert_non_null(memmem(v.dsdt, len, s5, sizeof(s5)));
	free(buf);
}

static void test_acpi_max_platform(void **state)
{
	struct x86_platform p = make_platform(X86_MAX_CPUS, X86_VIRTIO_MMIO_MAX,
					      X86_PLATFORM_COM1);
	int used;
	uint8_t *buf = build_acpi(&p, &used);
	struct acpi_view v = walk_tables(buf, (size_t)used, X86_ACPI_RSDP_ADDR);

	assert_int_equal(count_bytes(v.dsdt, x86_get_le32(v.dsdt + 4), "LNRO0005"),
			 X86_VIRTIO_MMIO_MAX);
	free(buf);
}

static void test_acpi_enospc(void **state)
{
	struct x86_platform p = make_platform(4, 4, X86_PLATFORM_COM1);
	int used;
	uint8_t *full = build_acpi(&p, &used);

	/* Every truncation fails cleanly; ASan checks nothing is written past
	 * the exact-size allocation. */
	for (size_t len = 0; len < (size_t)used; len++) {
		uint8_t *buf = malloc(len ? len : 1);
		uint64_t rsdp = 0;

		assert_int_equal(acpi_build_tables(buf, len, X86_ACPI_RSDP_ADDR,
						   &p, &rsdp), -ENOSPC);
		assert_int_equal(rsdp, 0);
		free(buf);
	}
	free(full);
}

static void test_acpi_einval(void **state)
{
	uint8_t *buf = malloc(ACPI_AREA);
	uint64_t rsdp;
	struct x86_platform p;

#define EXPECT_EINVAL(plat, gpa) \
	assert_int_equal(acpi_build_tables(buf, ACPI_AREA, gpa, plat, &rsdp), -EINVAL)
	p = make_platform(0, 0, 0);
	EXPECT_EINVAL(&p, X86_ACPI_RSDP_ADDR);
	p = make_platform(X86_MAX_CPUS + 1, 0, 0);
	EXPECT_EINVAL(&p, X86_ACPI_RSDP_ADDR);
	p = make_platform(255, 0, 0);
	EXPECT_EINVAL(&p, X86_ACPI_RSDP_ADDR);
	p = make_platform(1, 1, 0);
	p.nr_virtio = X86_VIRTIO_MMIO_MAX + 1;
	EXPECT_EINVAL(&p, X86_ACPI_RSDP_ADDR);
	p.nr_virtio = -1;
	EXPECT_EINVAL(&p, X86_ACPI_RSDP_ADDR);
	p = make_platform(1, 1, 0);
	p.virtio[0].gsi = X86_IOAPIC_PINS;
	EXPECT_EINVAL(&p, X86_ACPI_RSDP_ADDR);
	p = make_platform(1, 1, 0);
	p.virtio[0].size = 0;
	EXPECT_EINVAL(&p, X86_ACPI_RSDP_ADDR);
	p = make_platform(1, 1, 0);
	p.virtio[0].base = 0xfffff000ULL;
	p.virtio[0].size = 0x2000;  /* crosses 4 GiB */
	EXPECT_EINVAL(&p, X86_ACPI_RSDP_ADDR);
	p.virtio[0].base = 0x100000000ULL;
	EXPECT_EINVAL(&p, X86_ACPI_RSDP_ADDR);
	p = make_platform(1, 1, 0);
	EXPECT_EINVAL(&p, X86_ACPI_RSDP_ADDR + 8); /* RSDP off 16 bytes */
	assert_int_equal(acpi_build_tables(NULL, 10, X86_ACPI_RSDP_ADDR, &p, &rsdp),
			 -EINVAL);
	assert_int_equal(acpi_build_tables(buf, ACPI_AREA, X86_ACPI_RSDP_ADDR,
					   NULL, &rsdp), -EINVAL);
	assert_int_equal(acpi_build_tables(buf, ACPI_AREA, X86_ACPI_RSDP_ADDR,
					   &p, NULL), -EINVAL);
#undef EXPECT_EINVAL
	/* a window ending exactly at 4 GiB is fine */
	p.virtio[0].base = 0xfffff000ULL;
	p.virtio[0].size = 0x1000;
	assert_true(acpi_build_tables(buf, ACPI_AREA, X86_ACPI_RSDP_ADDR, &p,
				      &rsdp) > 0);
	free(buf);
}

static void test_aml_pkglength(void **state)
{
	uint8_t out[4];

	assert_int_equal(acpi_aml_pkglength(0, out), 1);
	assert_int_equal(out[0], 1);
	assert_int_equal(acpi_aml_pkglength(62, out), 1);
	assert_int_equal(out[0], 63);
	/* 63 body bytes + 2 length bytes = 65 = 0x41 */
	assert_int_equal(acpi_aml_pkglength(63, out), 2);
	assert_int_equal(out[0], 0x41);
	assert_int_equal(out[1], 0x04);
	assert_int_equal(acpi_aml_pkglength(0xffd, out), 2); /* total 0xfff */
	assert_int_equal(out[0], 0x4f);
	assert_int_equal(out[1], 0xff);
	assert_int_equal(acpi_aml_pkglength(0xffe, out), 3); /* total 0x1001 */
	assert_int_equal(out[0], 0x81);
	assert_int_equal(out[1], 0x00);
	assert_int_equal(out[2], 0x01);
	assert_int_equal(acpi_aml_pkglength(0xffffc, out), 3); /* total 0xfffff */
	assert_int_equal(out[0], 0x8f);
	assert_int_equal(out[1], 0xff);
	assert_int_equal(out[2], 0xff);
	assert_int_equal(acpi_aml_pkglength(0xffffd, out), 4); /* total 0x100001 */
	assert_int_equal(out[0], 0xc1);
	assert_int_equal(out[1], 0x00);
	assert_int_equal(out[2], 0x00);
	assert_int_equal(out[3], 0x01);
	assert_int_equal(acpi_aml_pkglength(0xffffffb, out), 4); /* 2^28 - 1 */
	assert_int_equal(acpi_aml_pkglength(0xffffffc, out), 0);
}

static void test_checksum_helpers(void **state)
{
	uint8_t t[8] = { 1, 2, 3, 4, 5, 6, 7, 0 };

	t[7] = acpi_checksum(t, 7);
	assert_int_equal(acpi_sum(t, 8), 0);
	assert_int_equal(acpi_eisaid("PNP0501"), 0x0105d041);
	assert_int_equal(acpi_eisaid("PNP0A03"), 0x030ad041);
	assert_int_equal(acpi_eisaid("pnp0501"), 0);
	assert_int_equal(acpi_eisaid("PNP05"), 0);
	assert_int_equal(acpi_eisaid("PNP050G"), 0);
}

/* ---- ACPICA: iasl and acpiexec ---- */

static int tool_exists(const char *tool)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	return system(cmd) == 0;
}

/* Run `cmd` in `dir`; its exit status, or -1. */
static int run_in(const char *dir, const char *cmd)
{
	char full[1024];
	int st;

	snprintf(full, sizeof(full), "cd '%s' && %s", dir, cmd);
	st = system(full);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *dir, const char *name, size_t *len)
{
	char path[512];
	FILE *f;
	char *s;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	s = malloc((size_t)n + 1);
	assert_non_null(s);
	assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
	s[n] = 0;
	fclose(f);
	if (len)
		*len = (size_t)n;
	return s;
}

static void write_table(const char *dir, const char *name, const uint8_t *t)
{
	char path[512];
	FILE *f;
	uint32_t len = x86_get_le32(t + 4);

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(t, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void assert_file_has(const char *dir, const char *name, const char *what)
{
	char *s = slurp(dir, name, NULL);

	if (!strstr(s, what))
		fail_msg("%s/%s lacks \"%s\"", dir, name, what);
	free(s);
}

static void assert_file_lacks(const char *dir, const char *name, const char *what)
{
	char *s = slurp(dir, name, NULL);

	if (strstr(s, what))
		fail_msg("%s/%s contains \"%s\"", dir, name, what);
	free(s);
}

/*
 * Disassemble `name`.dat, check iasl's verdict, then compile the disassembly
 * back: the result must equal the original byte for byte except the
 * compiler id and checksum (header bytes 9 and 24-35), which iasl rewrites.
 */
static void iasl_round_trip(const char *dir, const char *name, const uint8_t *t)
{
	char cmd[256], aml[64];
	uint32_t len = x86_get_le32(t + 4);
	size_t rlen;
	char *re;

	write_table(dir, strcat(strcpy(aml, name), ".dat"), t);
	snprintf(cmd, sizeof(cmd), "iasl -d %s.dat > %s.dis.log 2>&1", name, name);
	assert_int_equal(run_in(dir, cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s.dis.log", name);
	assert_file_lacks(dir, cmd, "Error");
	assert_file_lacks(dir, cmd, "Warning");
	snprintf(cmd, sizeof(cmd), "iasl -p re_%s %s.dsl > %s.asm.log 2>&1",
		 name, name, name);
	assert_int_equal(run_in(dir, cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s.asm.log", name);
	assert_file_has(dir, cmd, "0 Errors, 0 Warnings, 0 Remarks");
	snprintf(aml, sizeof(aml), "re_%s.aml", name);
	re = slurp(dir, aml, &rlen);
	assert_int_equal(rlen, len);
	assert_memory_equal(re, t, 9);
	assert_memory_equal(re + 10, t + 10, 24 - 10);
	assert_memory_equal(re + HDR, t + HDR, len - HDR);
	free(re);
}

static void test_acpica_validates_tables(void **state)
{
	struct x86_platform p = make_platform(4, 3, X86_PLATFORM_COM1 | X86_PLATFORM_I8042 |
					       X86_PLATFORM_PVPANIC);
	char dir[] = "/tmp/vibevmm-acpi-XXXXXX";
	char base[16];
	struct acpi_view v;
	uint8_t *buf;
	int used;

	if (!tool_exists("iasl")) {
		print_message("iasl not installed (apt-get install acpica-tools): "
			      "skipping the ACPICA checks\n");
		skip();
	}
	buf = build_acpi(&p, &used);
	v = walk_tables(buf, (size_t)used, X86_ACPI_RSDP_ADDR);
	assert_non_null(mkdtemp(dir));

	iasl_round_trip(dir, "dsdt", v.dsdt);
	assert_file_has(dir, "dsdt.dsl", "LNRO0005");
	assert_file_has(dir, "dsdt.dsl", "_S5_");
	assert_file_has(dir, "dsdt.dsl", "EisaId (\"PNP0501\")");
	assert_file_has(dir, "dsdt.dsl", "EisaId (\"PNP0303\")");
	assert_file_has(dir, "dsdt.dsl", "\"QEMU0001\"");
	snprintf(base, sizeof(base), "0x%08llX",
		 (unsigned long long)p.virtio[2].base);
	assert_file_has(dir, "dsdt.dsl", base);
	assert_file_has(dir, "dsdt.dsl",
			"Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive");
	assert_file_has(dir, "dsdt.dsl", "0x00000007,"); /* GSI of window 2 */

	iasl_round_trip(dir, "facp", v.fadt);
	assert_file_has(dir, "facp.dsl", "Hardware Reduced (V5) : 1");
	assert_file_has(dir, "facp.dsl", "Reset Register Supported (V2) : 1");
	assert_file_has(dir, "facp.dsl", "Address : 0000000000000600");

	iasl_round_trip(dir, "apic", v.madt);
	assert_file_has(dir, "apic.dsl", "Local Apic ID : 03");
	assert_file_has(dir, "apic.dsl", "Address : FEC00000");
	iasl_round_trip(dir, "xsdt", v.xsdt);

	/* ACPICA's interpreter loads the namespace, runs \_S5_ and decodes
	 * the _CRS resources as Linux would. */
	if (tool_exists("acpiexec")) {
		assert_int_equal(run_in(dir, "acpiexec -b 'Evaluate \\_S5_; "
					"Resources \\_SB.VR02; Resources \\_SB.COM1; "
					"Resources \\_SB.KBD_; Resources \\_SB.PEVT' "
					"dsdt.dat facp.dat apic.dat > exec.log 2>&1"), 0);
		assert_file_has(dir, "exec.log", "[Integer] = 0000000000000005");
		assert_file_has(dir, "exec.log", "Address : D0002000");
		assert_file_has(dir, "exec.log", "Dword00 : 00000007");
		assert_file_has(dir, "exec.log", "Address Minimum : 03F8");
		assert_file_has(dir, "exec.log", "Address Minimum : 0064");
		assert_file_has(dir, "exec.log", "Interrupt List : 1 ");
		assert_file_has(dir, "exec.log", "Address Minimum : 0505");
		assert_file_has(dir, "exec.log", "No outstanding allocations");
	} else {
		print_message("acpiexec not installed: namespace checks skipped\n");
	}
	run_in(dir, "rm -f *.dat *.dsl *.aml *.log");
	rmdir(dir);
	free(buf);
}

/* With PCI: the MCFG (ECAM of bus 0) and the root bridge with its
 * windows, and ECAM reserved as a motherboard resource, as ACPICA reads
 * them. */
static struct x86_platform pci_platform(void)
{
	struct x86_platform p = make_platform(2, 1, X86_PLATFORM_COM1 | X86_PLATFORM_PCI);

	p.pci.ecam_base = X86_PCI_ECAM_BASE;
	p.pci.mem32_base = X86_PCI_MEM32_BASE;
	p.pci.mem32_size = X86_PCI_MEM32_SIZE;
	p.pci.mem64_base = 0x140000000ULL;
	p.pci.mem64_size = X86_PCI_MEM64_SIZE;
	return p;
}

static void test_pci_tables(void **state)
{
	struct x86_platform p = pci_platform();
	struct acpi_view v;
	uint8_t *buf;
	int used;

	buf = build_acpi(&p, &used);
	v = walk_tables(buf, (size_t)used, X86_ACPI_RSDP_ADDR);
	assert_non_null(v.mcfg);
	assert_int_equal(x86_get_le32(v.mcfg + 4), HDR + 8 + 16);
	assert_int_equal(x86_get_le64(v.mcfg + HDR + 8), X86_PCI_ECAM_BASE);
	assert_int_equal(v.mcfg[HDR + 8 + 10], 0); /* first bus */
	assert_int_equal(v.mcfg[HDR + 8 + 11], 0); /* last bus */
	assert_int_equal(count_bytes(v.dsdt, x86_get_le32(v.dsdt + 4), "PCI0"), 1);
	/* MSI allowed (the FADT's "MSI not supported" flag would turn it off) */
	assert_false(x86_get_le16(v.fadt + 109) & (1u << 3));
	free(buf);
	/* without the flag: no MCFG, no root bridge, no MSI */
	p.flags &= ~X86_PLATFORM_PCI;
	buf = build_acpi(&p, &used);
	v = walk_tables(buf, (size_t)used, X86_ACPI_RSDP_ADDR);
	assert_true(x86_get_le16(v.fadt + 109) & (1u << 3));
	assert_null(v.mcfg);
	assert_int_equal(count_bytes(v.dsdt, x86_get_le32(v.dsdt + 4), "PCI0"), 0);
	free(buf);
	/* windows that do not fit their descriptors are refused */
	p = pci_platform();
	p.pci.ecam_base = 0xfff80000ULL;
	buf = malloc(ACPI_AREA);
	uint64_t rsdp;

	assert_int_equal(acpi_build_tables(buf, ACPI_AREA, X86_ACPI_RSDP_ADDR, &p, &rsdp), -EINVAL);
	p = pci_platform();
	p.pci.mem32_base = 0x100000000ULL;
	assert_int_equal(acpi_build_tables(buf, ACPI_AREA, X86_ACPI_RSDP_ADDR, &p, &rsdp), -EINVAL);
	free(buf);
}

static void test_acpica_validates_pci(void **state)
{
	struct x86_platform p = pci_platform();
	char dir[] = "/tmp/vibevmm-acpi-pci-XXXXXX";
	struct acpi_view v;
	uint8_t *buf;
	int used;

	if (!tool_exists("iasl")) {
		print_message("iasl not installed (apt-get install acpica-tools): skipped\n");
		skip();
	}
	buf = build_acpi(&p, &used);
	v = walk_tables(buf, (size_t)used, X86_ACPI_RSDP_ADDR);
	assert_non_null(mkdtemp(dir));
	iasl_round_trip(dir, "dsdt", v.dsdt);
	assert_file_has(dir, "dsdt.dsl", "EisaId (\"PNP0A08\")");
	assert_file_has(dir, "dsdt.dsl", "EisaId (\"PNP0A03\")");
	assert_file_has(dir, "dsdt.dsl", "EisaId (\"PNP0C02\")");
	assert_file_has(dir, "dsdt.dsl", "WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode");
	assert_file_has(dir, "dsdt.dsl", "DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite");
	assert_file_has(dir, "dsdt.dsl", "QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite");
	iasl_round_trip(dir, "mcfg", v.mcfg);
	assert_file_has(dir, "mcfg.dsl", "Base Address : 00000000E0000000");
	write_table(dir, "facp.dat", v.fadt);
	write_table(dir, "apic.dat", v.madt);
	if (tool_exists("acpiexec")) {
		assert_int_equal(run_in(dir, "acpiexec -b 'Resources \\_SB.PCI0; "
					"Resources \\_SB.MRES' dsdt.dat facp.dat apic.dat > exec.log 2>&1"), 0);
		assert_file_has(dir, "exec.log", "Address Minimum : C0000000");
		assert_file_has(dir, "exec.log", "Address Maximum : CFFFFFFF");
		assert_file_has(dir, "exec.log", "Address Minimum : 0000000140000000");
		assert_file_has(dir, "exec.log", "Address Maximum : 000000113FFFFFFF");
		assert_file_has(dir, "exec.log", "Address Minimum : 0CF8");
		assert_file_has(dir, "exec.log", "Address : E0000000");
		assert_file_has(dir, "exec.log", "No outstanding allocations");
	}
	run_in(dir, "rm -f *.dat *.dsl *.aml *.log");
	rmdir(dir);
	free(buf);
}

/* ---- e820 ---- */

static void check_e820(uint64_t ram, const struct x86_e820_entry *want, int n)
{
	struct x86_e820_entry e[X86_E820_MAX];

	assert_int_equal(x86_e820_build(ram, e, X86_E820_MAX), n);
	for (int i = 0; i < n; i++) {
		assert_int_equal(e[i].addr, want[i].addr);
		assert_int_equal(e[i].size, want[i].size);
		assert_int_equal(e[i].type, want[i].type);
	}
}

#define LOW_RAM { 0, X86_EBDA_START, X86_E820_RAM }
#define BIOS_AREA { X86_EBDA_START, X86_BIOS_END - X86_EBDA_START, X86_E820_RESERVED }

static void test_e820_256m(void **state)
{
	const struct x86_e820_entry want[] = {
		LOW_RAM, BIOS_AREA,
		{ 0x100000, (256ULL << 20) - 0x100000, X86_E820_RAM },
	};

	check_e820(256ULL << 20, want, 3);
}

static void test_e820_2g(void **state)
{
	const struct x86_e820_entry want[] = {
		LOW_RAM, BIOS_AREA,
		{ 0x100000, X86_MMIO_HOLE_START - 0x100000, X86_E820_RAM },
	};

	check_e820(2ULL << 30, want, 3);
}

static void test_e820_3g(void **state)
{
	const struct x86_e820_entry want[] = {
		LOW_RAM, BIOS_AREA,
		{ 0x100000, X86_MMIO_HOLE_START - 0x100000, X86_E820_RAM },
		{ X86_HIGH_RAM_START, (3ULL << 30) - X86_MMIO_HOLE_START, X86_E820_RAM },
	};

	check_e820(3ULL << 30, want, 4);
}

static void test_e820_edges(void **state)
{
	struct x86_e820_entry e[4];
	const struct x86_e820_entry want[] = { LOW_RAM, BIOS_AREA };

	check_e820(X86_HIGH_MEMORY_START, want, 2);
	assert_int_equal(x86_e820_build(X86_HIGH_MEMORY_START - 1, e, 4), -EINVAL);
	assert_int_equal(x86_e820_build(0, e, 4), -EINVAL);
	assert_int_equal(x86_e820_build(UINT64_MAX, e, 4), -EINVAL);
	assert_int_equal(x86_e820_build(3ULL << 30, e, 3), -ENOSPC);
	assert_int_equal(x86_e820_build(3ULL << 30, NULL, 4), -EINVAL);
}

/* ---- initrd placement ---- */

static void test_place_initrd(void **state)
{
	uint64_t gpa = 0;

	/* 256 MiB of RAM: at the very top */
	assert_int_equal(x86_place_initrd(256ULL << 20, 16ULL << 20, 0x7fffffff,
					  32ULL << 20, &gpa), 0);
	assert_int_equal(gpa, 240ULL << 20);
	/* odd size: start rounded down to a page, end still inside RAM */
	assert_int_equal(x86_place_initrd(256ULL << 20, 10000, 0x7fffffff,
					  32ULL << 20, &gpa), 0);
	assert_int_equal(gpa % 4096, 0);
	assert_true(gpa + 10000 <= 256ULL << 20);
	assert_true(gpa + 10000 + 4096 > 256ULL << 20);
	/* 3 GiB: limited by the hole */
	assert_int_equal(x86_place_initrd(3ULL << 30, 1ULL << 20, 0xffffffff,
					  32ULL << 20, &gpa), 0);
	assert_int_equal(gpa, X86_MMIO_HOLE_START - (1ULL << 20));
	/* limited by initrd_addr_max (inclusive) */
	assert_int_equal(x86_place_initrd(2ULL << 30, 1ULL << 20, 0x37ffffff,
					  32ULL << 20, &gpa), 0);
	assert_int_equal(gpa, 0x38000000ULL - (1ULL << 20));
	/* exactly fills the space between kernel and the top */
	assert_int_equal(x86_place_initrd(64ULL << 20, 32ULL << 20, 0x7fffffff,
					  32ULL << 20, &gpa), 0);
	assert_int_equal(gpa, 32ULL << 20);
}

static void test_place_initrd_errors(void **state)
{
	uint64_t gpa = 0x1234;

	assert_int_equal(x86_place_initrd(64ULL << 20, (32ULL << 20) + 1,
					  0x7fffffff, 32ULL << 20, &gpa), -ENOSPC);
	assert_int_equal(x86_place_initrd(64ULL << 20, 128ULL << 20,
					  0x7fffffff, 0, &gpa), -ENOSPC);
	assert_int_equal(x86_place_initrd(256ULL << 20, 16ULL << 20,
					  0xffffff, 0, &gpa), -ENOSPC);
	/* never below 1 MiB, whatever kernel_end says */
	assert_int_equal(x86_place_initrd(2ULL << 20, 2ULL << 20, 0x7fffffff,
					  0, &gpa), -ENOSPC);
	assert_int_equal(gpa, 0x1234);
	assert_int_equal(x86_place_initrd(256ULL << 20, 0, 0x7fffffff, 0, &gpa),
			 -EINVAL);
	assert_int_equal(x86_place_initrd(256ULL << 20, 4096, 0x7fffffff, 0, NULL),
			 -EINVAL);
}

/* ---- zero page ---- */

static void check_zero_page_e820(const uint8_t *zp, uint64_t ram)
{
	struct x86_e820_entry e[X86_E820_MAX];
	int n = x86_e820_build(ram, e, X86_E820_MAX);

	assert_int_equal(zp[X86_BP_E820_ENTRIES], n);
	for (int i = 0; i < n; i++) {
		const uint8_t *p = zp + X86_BP_E820_TABLE + i * X86_BP_E820_ENTRY_SIZE;

		assert_int_equal(x86_get_le64(p), e[i].addr);
		assert_int_equal(x86_get_le64(p + 8), e[i].size);
		assert_int_equal(x86_get_le32(p + 16), e[i].type);
	}
}

static void test_zero_page_elf(void **state)
{
	uint8_t zp[X86_ZERO_PAGE_SIZE];
	const struct x86_zero_page_desc d = {
		.cmdline_gpa = X86_CMDLINE_ADDR, .cmdline_len = 40,
		.initrd_gpa = 0x123456000ULL, .initrd_size = 0x100000001ULL,
		.rsdp_gpa = X86_ACPI_RSDP_ADDR, .ram_size = 3ULL << 30,
	};

	memset(zp, 0xcc, sizeof(zp));
	assert_int_equal(x86_build_zero_page(zp, &d), 0);
	assert_int_equal(x86_get_le16(zp + 0x1fe), 0xaa55);
	assert_memory_equal(zp + 0x202, "HdrS", 4);
	assert_int_equal(x86_get_le16(zp + 0x206), 0x020f);
	assert_int_equal(zp[0x210], 0xff);             /* type_of_loader */
	assert_int_equal(zp[0x211], 0x81);             /* LOADED_HIGH | CAN_USE_HEAP */
	assert_int_equal(x86_get_le16(zp + 0x224), 0xfe00);
	assert_int_equal(x86_get_le32(zp + 0x228), X86_CMDLINE_ADDR);
	assert_int_equal(x86_get_le32(zp + 0x0c8), 0);
	assert_int_equal(x86_get_le32(zp + 0x218), 0x23456000);
	assert_int_equal(x86_get_le32(zp + 0x0c0), 1);
	assert_int_equal(x86_get_le32(zp + 0x21c), 1);
	assert_int_equal(x86_get_le32(zp + 0x0c4), 1);
	assert_int_equal(x86_get_le64(zp + 0x070), X86_ACPI_RSDP_ADDR);
	assert_int_equal(zp[0x1ef], 0);                /* sentinel */
	assert_int_equal(zp[0x1f1], 0);                /* nothing else invented */
	check_zero_page_e820(zp, d.ram_size);
	for (size_t i = X86_BP_E820_TABLE + 4 * X86_BP_E820_ENTRY_SIZE;
	     i < sizeof(zp); i++)
		assert_int_equal(zp[i], 0);
}

/* A bzImage-like setup header of `len` bytes (from image offset 0x1f1). */
static uint8_t *fake_setup_header(size_t len, uint16_t version)
{
	uint8_t *h = malloc(len);

	assert_non_null(h);
	memset(h, 0xee, len);
	memcpy(h + 0x202 - X86_BP_HDR, "HdrS", 4);
	x86_put_le16(h + 0x206 - X86_BP_HDR, version);
	h[0x211 - X86_BP_HDR] = 0x01;                            /* LOADED_HIGH */
	x86_put_le32(h + 0x22c - X86_BP_HDR, 0x7fffffff);        /* initrd_addr_max */
	x86_put_le32(h + 0x238 - X86_BP_HDR, 2048);              /* cmdline_size */
	return h;
}

static void test_zero_page_bzimage(void **state)
{
	uint8_t zp[X86_ZERO_PAGE_SIZE];
	/* longer than the header; 0xee everywhere, ramdisk fields included */
	uint8_t *h = fake_setup_header(0x400, 0x020f);
	struct x86_zero_page_desc d = {
		.setup_header = h, .setup_header_len = 0x400,
		.cmdline_gpa = X86_CMDLINE_ADDR, .cmdline_len = 2048,
		.ram_size = 256ULL << 20,
	};

	assert_int_equal(x86_build_zero_page(zp, &d), 0);
	assert_int_equal(zp[0x1f1], 0xee);                /* copied from the image */
	assert_int_equal(zp[0x28f], 0xee);                /* last byte of its room */
	assert_int_equal(zp[0x290], 0);                   /* and not one more */
	assert_int_equal(zp[0x1ef], 0);                   /* sentinel untouched */
	assert_int_equal(zp[0x210], 0xff);
	assert_int_equal(zp[0x211], 0x81);
	assert_int_equal(x86_get_le32(zp + 0x22c), 0x7fffffff);
	assert_int_equal(x86_get_le32(zp + 0x218), 0);    /* no initrd, and */
	assert_int_equal(x86_get_le32(zp + 0x21c), 0);    /* no stale values */
	assert_int_equal(x86_get_le64(zp + 0x070), 0);    /* no RSDP given */
	assert_int_equal(x86_get_le32(zp + 0x228), X86_CMDLINE_ADDR);
	check_zero_page_e820(zp, d.ram_size);

	d.cmdline_len = 2049;
	assert_int_equal(x86_build_zero_page(zp, &d), -E2BIG);
	free(h);
}

static void test_zero_page_errors(void **state)
{
	uint8_t zp[X86_ZERO_PAGE_SIZE];
	uint8_t *h = fake_setup_header(0x80, 0x020f);
	struct x86_zero_page_desc d = {
		.setup_header = h, .setup_header_len = 0x80,
		.ram_size = 256ULL << 20,
	};

	assert_int_equal(x86_build_zero_page(zp, &d), 0);
	d.setup_header_len = 0x206 + 1 - X86_BP_HDR; /* version cut in half */
	assert_int_equal(x86_build_zero_page(zp, &d), -EINVAL);
	d.setup_header_len = 0x80;
	h[0x202 - X86_BP_HDR] = 'X';
	assert_int_equal(x86_build_zero_page(zp, &d), -EINVAL);
	h[0x202 - X86_BP_HDR] = 'H';
	x86_put_le16(h + 0x206 - X86_BP_HDR, 0x01ff);
	assert_int_equal(x86_build_zero_page(zp, &d), -EINVAL);
	x86_put_le16(h + 0x206 - X86_BP_HDR, 0x020f);
	d.ram_size = 4096;
	assert_int_equal(x86_build_zero_page(zp, &d), -EINVAL);
	d.ram_size = 256ULL << 20;
	d.initrd_gpa = UINT64_MAX;
	d.initrd_size = 2;
	assert_int_equal(x86_build_zero_page(zp, &d), -EINVAL);
	assert_int_equal(x86_build_zero_page(NULL, &d), -EINVAL);
	assert_int_equal(x86_build_zero_page(zp, NULL), -EINVAL);
	free(h);
}

/* ---- MP table ---- */

static void check_mptable(int nr_cpus)
{
	size_t size = mptable_size(nr_cpus);
	uint8_t *buf = malloc(size);
	const uint8_t *c, *e;
	int cpus = 0, buses = 0, ioapics = 0, ints = 0, lints = 0, bsps = 0;
	uint16_t count, len;

	assert_non_null(buf);
	assert_int_equal(mptable_build(buf, size, X86_MPTABLE_ADDR, nr_cpus),
			 (int)size);
	assert_memory_equal(buf, "_MP_", 4);
	assert_int_equal(buf[8], 1);
	assert_int_equal(buf[9], 4);
	assert_int_equal(acpi_sum(buf, 16), 0);
	assert_int_equal(x86_get_le32(buf + 4), X86_MPTABLE_ADDR + 16);
	c = buf + 16;
	assert_memory_equal(c, "PCMP", 4);
	len = x86_get_le16(c + 4);
	assert_int_equal(16 + len, size);
	assert_int_equal(acpi_sum(c, len), 0);
	assert_int_equal(x86_get_le32(c + 36), X86_LAPIC_ADDR);
	count = x86_get_le16(c + 34);
	e = c + 44;
	for (int i = 0; i < count; i++) {
		assert_true(e < c + len);
		switch (e[0]) {
		case 0:
			assert_int_equal(e[1], cpus);
			assert_true(e[3] & 1);
			bsps += (e[3] & 2) != 0;
			assert_int_equal(!!(e[3] & 2), cpus == 0);
			cpus++;
			e += 20;
			continue;
		case 1:
			assert_memory_equal(e + 2, "ISA   ", 6);
			buses++;
			break;
		case 2:
			assert_int_equal(e[1], nr_cpus);
			assert_int_equal(x86_get_le32(e + 4), X86_IOAPIC_ADDR);
			ioapics++;
			break;
		case 3:
			assert_int_equal(e[6], nr_cpus);
			/* ISA IRQ n on pin n (KVM's default routing);
			 * no entry for the cascade, IRQ 2 */
			assert_int_equal(e[7], e[5]);
			assert_int_not_equal(e[5], 2);
			ints++;
			break;
		case 4:
			assert_int_equal(e[7], lints);
			assert_int_equal(e[1], lints == 0 ? 3 : 1); /* ExtINT, NMI */
			lints++;
			break;
		default:
			fail_msg("unexpected MP entry type %u", e[0]);
		}
		e += 8;
	}
	assert_ptr_equal(e, c + len);
	assert_int_equal(cpus, nr_cpus);
	assert_int_equal(bsps, 1);
	assert_int_equal(buses, 1);
	assert_int_equal(ioapics, 1);
	assert_int_equal(ints, 15);
	assert_int_equal(lints, 2);
	free(buf);
}

static void test_mptable(void **state)
{
	check_mptable(1);
	check_mptable(4);
	check_mptable(X86_MAX_CPUS);
	/* the EBDA's last KiB holds 40 vCPUs; the reserved area holds all */
	assert_true(mptable_size(40) <= 1024);
	assert_true(mptable_size(41) > 1024);
	assert_true(mptable_size(X86_MAX_CPUS) <= X86_MPTABLE_MAX_SIZE);
}

static void test_mptable_errors(void **state)
{
	size_t size = mptable_size(4);
	uint8_t *buf = malloc(size);

	assert_int_equal(mptable_build(buf, size - 1, X86_MPTABLE_ADDR, 4), -ENOSPC);
	assert_int_equal(mptable_build(buf, size, X86_MPTABLE_ADDR, 0), -EINVAL);
	assert_int_equal(mptable_build(buf, size, X86_MPTABLE_ADDR, X86_MAX_CPUS + 1),
			 -EINVAL);
	assert_int_equal(mptable_build(buf, size, X86_MPTABLE_ADDR + 4, 4), -EINVAL);
	assert_int_equal(mptable_build(buf, size, 0xfffffff0ULL, 4), -EINVAL);
	assert_int_equal(mptable_build(NULL, size, X86_MPTABLE_ADDR, 4), -EINVAL);
	assert_int_equal(mptable_size(0), 0);
	free(buf);
}

/* hvm_start_info v1 as Linux's init_pvh_bootparams() reads it: magic,
 * version, cmdline, RSDP, module 0 = initrd, the memory map. */
static void test_pvh_start_info(void **state)
{
	uint8_t buf[X86_PVH_INFO_SIZE];
	const uint64_t gpa = X86_PVH_INFO_ADDR;
	const struct x86_pvh_desc d = {
		.cmdline_gpa = X86_CMDLINE_ADDR, .initrd_gpa = 0x7f000000ULL,
		.initrd_size = 0x123456, .rsdp_gpa = X86_ACPI_RSDP_ADDR,
		.ram_size = 3ULL << 30,
	};
	struct x86_e820_entry e[X86_E820_MAX];
	int n = x86_e820_build(d.ram_size, e, X86_E820_MAX);
	uint64_t mod, map;

	memset(buf, 0xcc, sizeof(buf));
	assert_int_equal(x86_build_pvh_start_info(buf, sizeof(buf), gpa, &d), 0);
	assert_int_equal(x86_get_le32(buf), 0x336ec578);
	assert_int_equal(x86_get_le32(buf + 4), 1);        /* version */
	assert_int_equal(x86_get_le32(buf + 8), 0);        /* flags */
	assert_int_equal(x86_get_le32(buf + 12), 1);       /* nr_modules */
	assert_int_equal(x86_get_le64(buf + 24), X86_CMDLINE_ADDR);
	assert_int_equal(x86_get_le64(buf + 32), X86_ACPI_RSDP_ADDR);
	mod = x86_get_le64(buf + 16);
	map = x86_get_le64(buf + 40);
	assert_true(mod >= gpa + 56 && mod + 32 <= gpa + sizeof(buf) && mod % 8 == 0);
	assert_int_equal(x86_get_le64(buf + (mod - gpa)), d.initrd_gpa);
	assert_int_equal(x86_get_le64(buf + (mod - gpa) + 8), d.initrd_size);
	assert_int_equal(x86_get_le64(buf + (mod - gpa) + 16), 0); /* no module cmdline */
	assert_int_equal(x86_get_le32(buf + 48), n);
	assert_true(map >= mod + 32 && map + (uint64_t)n * 24 <= gpa + sizeof(buf));
	for (int i = 0; i < n; i++) {
		const uint8_t *m = buf + (map - gpa) + i * 24;

		assert_int_equal(x86_get_le64(m), e[i].addr);
		assert_int_equal(x86_get_le64(m + 8), e[i].size);
		assert_int_equal(x86_get_le32(m + 16), e[i].type);
		assert_int_equal(x86_get_le32(m + 20), 0);
	}
}

static void test_pvh_start_info_no_initrd_and_errors(void **state)
{
	uint8_t buf[X86_PVH_INFO_SIZE];
	struct x86_pvh_desc d = { .cmdline_gpa = X86_CMDLINE_ADDR, .ram_size = 256ULL << 20 };

	assert_int_equal(x86_build_pvh_start_info(buf, sizeof(buf), X86_PVH_INFO_ADDR, &d), 0);
	assert_int_equal(x86_get_le32(buf + 12), 0);       /* no modules */
	assert_int_equal(x86_get_le64(buf + 16), 0);
	assert_int_equal(x86_get_le32(buf + 48), 3);
	assert_int_equal(x86_build_pvh_start_info(buf, 100, X86_PVH_INFO_ADDR, &d), -ENOSPC);
	assert_int_equal(x86_build_pvh_start_info(buf, sizeof(buf), 1ULL << 32, &d), -EINVAL);
	assert_int_equal(x86_build_pvh_start_info(NULL, sizeof(buf), X86_PVH_INFO_ADDR, &d), -EINVAL);
	d.ram_size = 4096; /* the tables below 1 MiB would not be RAM */
	assert_int_equal(x86_build_pvh_start_info(buf, sizeof(buf), X86_PVH_INFO_ADDR, &d), -EINVAL);
}

static void test_cmdline_acpi_off(void **state)
{
	assert_false(x86_cmdline_has_acpi_off(NULL));
	assert_false(x86_cmdline_has_acpi_off("console=ttyS0"));
	assert_true(x86_cmdline_has_acpi_off("acpi=off"));
	assert_true(x86_cmdline_has_acpi_off("console=ttyS0  acpi=off\tquiet"));
	assert_false(x86_cmdline_has_acpi_off("acpi=offx noacpi=off acpi=ht"));
	assert_false(x86_cmdline_has_acpi_off("quiet -- acpi=off")); /* init's */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_acpi_links_and_checksums),
		cmocka_unit_test(test_madt_one_cpu),
		cmocka_unit_test(test_madt_four_cpus),
		cmocka_unit_test(test_fadt),
		cmocka_unit_test(test_dsdt_content),
		cmocka_unit_test(test_acpi_max_platform),
		cmocka_unit_test(test_acpi_enospc),
		cmocka_unit_test(test_acpi_einval),
		cmocka_unit_test(test_aml_pkglength),
		cmocka_unit_test(test_checksum_helpers),
		cmocka_unit_test(test_acpica_validates_tables),
		cmocka_unit_test(test_pci_tables),
		cmocka_unit_test(test_acpica_validates_pci),
		cmocka_unit_test(test_e820_256m),
		cmocka_unit_test(test_e820_2g),
		cmocka_unit_test(test_e820_3g),
		cmocka_unit_test(test_e820_edges),
		cmocka_unit_test(test_place_initrd),
		cmocka_unit_test(test_place_initrd_errors),
		cmocka_unit_test(test_zero_page_elf),
		cmocka_unit_test(test_zero_page_bzimage),
		cmocka_unit_test(test_zero_page_errors),
		cmocka_unit_test(test_pvh_start_info),
		cmocka_unit_test(test_pvh_start_info_no_initrd_and_errors),
		cmocka_unit_test(test_mptable),
		cmocka_unit_test(test_mptable_errors),
		cmocka_unit_test(test_cmdline_acpi_off),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
