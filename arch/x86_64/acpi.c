/* SPDX-License-Identifier: MIT */
/*
 * ACPI tables for a hardware-reduced x86_64 guest: RSDP, XSDT, FADT, MADT
 * and a DSDT written in AML by a tiny encoder.
 *
 * Why ACPI at all: Debian's kernels only find virtio-mmio devices through
 * DSDT nodes (_HID "LNRO0005"), the cloud kernel needs a MADT for SMP, and a
 * hardware-reduced FADT with RESET_REG and the sleep registers gives the
 * guest a working reboot and poweroff through one I/O port (acpi_pm.c),
 * without emulating the PM1 register blocks, GPEs or an SCI.
 *
 * Layout in the buffer (each table 16-byte aligned):
 *   RSDP (at offset 0) | DSDT | FADT | MADT | XSDT
 * The XSDT comes last only because it is the one table that needs the
 * addresses of the others; the order means nothing to the guest.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "arch/x86_64/platform.h"

#define ACPI_OEM_ID "VIBEVM"          /* 6 bytes */
#define ACPI_OEM_TABLE_ID "VIBEVMM "  /* 8 bytes */
#define ACPI_CREATOR_ID "VIBE"        /* 4 bytes */
#define ACPI_HV_VENDOR_ID "VIBEVMM "  /* FADT hypervisor vendor identity */
#define ACPI_HDR_SIZE 36
#define ACPI_RSDP_SIZE 36
#define ACPI_RSDP_V1_SIZE 20

/* Table revisions: ACPI 6.3 */
#define ACPI_FADT_REVISION 6
#define ACPI_FADT_MINOR_REVISION 3
#define ACPI_MADT_REVISION 5
#define ACPI_DSDT_REVISION 2 /* 2: AML integers are 64 bits */
#define ACPI_XSDT_REVISION 1
#define ACPI_MCFG_REVISION 1

/* FADT IA-PC boot architecture flags */
#define IAPC_8042 (1u << 1)
#define IAPC_VGA_NOT_PRESENT (1u << 2)
#define IAPC_MSI_NOT_SUPPORTED (1u << 3)
#define IAPC_PCIE_ASPM_CONTROLS (1u << 4)
#define IAPC_CMOS_RTC_NOT_PRESENT (1u << 5)
#define ACPI_FADT_OFF_IAPC_BOOT_ARCH 109
#define ACPI_FADT_OFF_MINOR_VERSION 131
#define ACPI_FADT_OFF_HV_VENDOR 268

/* Generic Address Structure */
#define ACPI_GAS_SYSTEM_IO 1
#define ACPI_GAS_ACCESS_BYTE 1

/* MADT entry types and MPS INTI flags */
#define MADT_LOCAL_APIC 0
#define MADT_IO_APIC 1
#define MADT_LOCAL_APIC_NMI 4
#define MADT_LAPIC_ENABLED 1

/* AML opcodes (ACPI spec, chapter 20) */
#define AML_ZERO_OP 0x00
#define AML_ONE_OP 0x01
#define AML_NAME_OP 0x08
#define AML_BYTE_PREFIX 0x0a
#define AML_WORD_PREFIX 0x0b
#define AML_DWORD_PREFIX 0x0c
#define AML_STRING_PREFIX 0x0d
#define AML_QWORD_PREFIX 0x0e
#define AML_SCOPE_OP 0x10
#define AML_BUFFER_OP 0x11
#define AML_PACKAGE_OP 0x12
#define AML_DUAL_NAME_PREFIX 0x2e
#define AML_MULTI_NAME_PREFIX 0x2f
#define AML_EXT_OP_PREFIX 0x5b
#define AML_DEVICE_OP 0x82 /* after AML_EXT_OP_PREFIX */
#define AML_ROOT_CHAR '\\'
#define AML_PARENT_CHAR '^'

/* Resource descriptors (ACPI spec, 6.4) */
#define RES_IO 0x47            /* small, type 8, length 7 */
#define RES_IRQ_NOFLAGS 0x22   /* small, type 4, length 2 */
#define RES_END_TAG 0x79       /* small, type 15, length 1 */
#define RES_MEMORY32_FIXED 0x86
#define RES_EXT_IRQ 0x89
#define RES_DWORD_SPACE 0x87   /* large: DWord Address Space Descriptor */
#define RES_WORD_SPACE 0x88
#define RES_QWORD_SPACE 0x8a
#define RES_SPACE_MEMORY 0
#define RES_SPACE_BUS 2
/* general flags: a bridge's window, produced for the devices below it,
 * its bounds fixed, positive decode */
#define RES_SPACE_PRODUCER_FIXED 0x0c
#define RES_SPACE_MEM_RW 0x01  /* type-specific: read-write, non-cacheable */
#define RES_IO_DECODE16 0x01
#define RES_MEM_READ_WRITE 0x01
#define RES_IRQ_CONSUMER 0x01
#define RES_IRQ_EDGE 0x02

#define VIRTIO_MMIO_HID "LNRO0005"

/* Overflow-safe append buffer; the first error sticks and later writes are
 * dropped, so builders can run to the end and check once. */
struct abuf {
	uint8_t *base;
	size_t len;
	size_t pos;
	int err;
};

uint8_t acpi_sum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint8_t sum = 0;

	while (len--)
		sum = (uint8_t)(sum + *p++);
	return sum;
}

uint8_t acpi_checksum(const void *data, size_t len)
{
	return (uint8_t)(0x100 - acpi_sum(data, len));
}

static void ab_fail(struct abuf *b, int err)
{
	if (!b->err)
		b->err = err;
}

/* Zeroed room for n bytes at the end, or NULL (and a sticky -ENOSPC). */
static uint8_t *ab_reserve(struct abuf *b, size_t n)
{
	uint8_t *p;

	if (b->err)
		return NULL;
	if (n > b->len - b->pos) {
		ab_fail(b, -ENOSPC);
		return NULL;
	}
	p = b->base + b->pos;
	memset(p, 0, n);
	b->pos += n;
	return p;
}

static void ab_put8(struct abuf *b, uint8_t v)
{
	uint8_t *p = ab_reserve(b, 1);

	if (p)
		*p = v;
}

static void ab_put16(struct abuf *b, uint16_t v)
{
	uint8_t *p = ab_reserve(b, 2);

	if (p)
		x86_put_le16(p, v);
}

static void ab_put32(struct abuf *b, uint32_t v)
{
	uint8_t *p = ab_reserve(b, 4);

	if (p)
		x86_put_le32(p, v);
}

static void ab_put64(struct abuf *b, uint64_t v)
{
	uint8_t *p = ab_reserve(b, 8);

	if (p)
		x86_put_le64(p, v);
}

static void ab_put_bytes(struct abuf *b, const void *src, size_t n)
{
	uint8_t *p = ab_reserve(b, n);

	if (p)
		memcpy(p, src, n);
}

static void ab_align(struct abuf *b, size_t align)
{
	size_t pad = (align - b->pos % align) % align;

	ab_reserve(b, pad);
}

/* ---- AML encoder ---- */

size_t acpi_aml_pkglength(size_t body_len, uint8_t out[4])
{
	size_t n, total = 0;

	for (n = 1; n <= 4; n++) {
		total = body_len + n; /* the length counts its own bytes */
		if (total < (n == 1 ? 0x40 : (size_t)1 << (4 + 8 * (n - 1))))
			break;
	}
	if (n > 4)
		return 0;
	if (n == 1) {
		out[0] = (uint8_t)total;
		return 1;
	}
	out[0] = (uint8_t)(((n - 1) << 6) | (total & 0xf));
	for (size_t i = 1; i < n; i++)
		out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	return n;
}

/* Close a package opened at `start` by inserting its PkgLength there; its
 * size depends on the body, so the body moves up to make room. */
static void aml_close(struct abuf *b, size_t start)
{
	uint8_t len[4];
	size_t body, n;
	uint8_t *p;

	if (b->err)
		return;
	body = b->pos - start;
	n = acpi_aml_pkglength(body, len);
	if (n == 0) {
		ab_fail(b, -ENOSPC);
		return;
	}
	if (!ab_reserve(b, n))
		return;
	p = b->base + start;
	memmove(p + n, p, body);
	memcpy(p, len, n);
}

static bool aml_seg_char_ok(char c, bool first)
{
	if (c == '_' || (c >= 'A' && c <= 'Z'))
		return true;
	return !first && c >= '0' && c <= '9';
}

/* One NameSeg of 1-4 characters, padded with '_' as ASL does. */
static void aml_nameseg(struct abuf *b, const char *s, size_t n)
{
	uint8_t seg[4] = { '_', '_', '_', '_' };

	if (n < 1 || n > 4) {
		ab_fail(b, -EINVAL);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (!aml_seg_char_ok(s[i], i == 0)) {
			ab_fail(b, -EINVAL);
			return;
		}
		seg[i] = (uint8_t)s[i];
	}
	ab_put_bytes(b, seg, sizeof(seg));
}

/* A NameString such as "_S5_", "\\_SB_" or "\\_SB_.VR00". */
static void aml_namestring(struct abuf *b, const char *path)
{
	const char *s;
	size_t nseg = 0;

	if (*path == AML_ROOT_CHAR)
		ab_put8(b, (uint8_t)*path++);
	while (*path == AML_PARENT_CHAR)
		ab_put8(b, (uint8_t)*path++);
	if (*path)
		for (s = path, nseg = 1; *s; s++)
			nseg += *s == '.';
	if (nseg == 0) {
		ab_put8(b, 0); /* NullName */
		return;
	}
	if (nseg == 2) {
		ab_put8(b, AML_DUAL_NAME_PREFIX);
	} else if (nseg > 2) {
		if (nseg > 255) {
			ab_fail(b, -EINVAL);
			return;
		}
		ab_put8(b, AML_MULTI_NAME_PREFIX);
		ab_put8(b, (uint8_t)nseg);
	}
	while (*path) {
		size_t n = strcspn(path, ".");

		aml_nameseg(b, path, n);
		path += n;
		if (*path == '.')
			path++;
	}
}

/* An Integer in its shortest encoding. */
static void aml_integer(struct abuf *b, uint64_t v)
{
	if (v == 0) {
		ab_put8(b, AML_ZERO_OP);
	} else if (v == 1) {
		ab_put8(b, AML_ONE_OP);
	} else if (v <= UINT8_MAX) {
		ab_put8(b, AML_BYTE_PREFIX);
		ab_put8(b, (uint8_t)v);
	} else if (v <= UINT16_MAX) {
		ab_put8(b, AML_WORD_PREFIX);
		ab_put16(b, (uint16_t)v);
	} else if (v <= UINT32_MAX) {
		ab_put8(b, AML_DWORD_PREFIX);
		ab_put32(b, (uint32_t)v);
	} else {
		ab_put8(b, AML_QWORD_PREFIX);
		ab_put64(b, v);
	}
}

static void aml_string(struct abuf *b, const char *s)
{
	ab_put8(b, AML_STRING_PREFIX);
	ab_put_bytes(b, s, strlen(s) + 1);
}

/* Name(path, ...): the caller appends the value. */
static void aml_name(struct abuf *b, const char *path)
{
	ab_put8(b, AML_NAME_OP);
	aml_namestring(b, path);
}

/* Package(n){...}: returns the start to pass to aml_close(). */
static size_t aml_package_begin(struct abuf *b, uint8_t nelems)
{
	size_t start;

	ab_put8(b, AML_PACKAGE_OP);
	start = b->pos;
	ab_put8(b, nelems);
	return start;
}

static size_t aml_scope_begin(struct abuf *b, const char *path)
{
	size_t start;

	ab_put8(b, AML_SCOPE_OP);
	start = b->pos;
	aml_namestring(b, path);
	return start;
}

static size_t aml_device_begin(struct abuf *b, const char *path)
{
	size_t start;

	ab_put8(b, AML_EXT_OP_PREFIX);
	ab_put8(b, AML_DEVICE_OP);
	start = b->pos;
	aml_namestring(b, path);
	return start;
}

static void aml_buffer(struct abuf *b, const uint8_t *data, size_t n)
{
	size_t start;

	ab_put8(b, AML_BUFFER_OP);
	start = b->pos;
	aml_integer(b, n);
	ab_put_bytes(b, data, n);
	aml_close(b, start);
}

/* A ResourceTemplate: the descriptors in `res` plus the end tag (its
 * checksum byte 0 means "valid" by definition). */
static void aml_resource_template(struct abuf *b, struct abuf *res)
{
	ab_put8(res, RES_END_TAG);
	ab_put8(res, 0);
	if (res->err) {
		ab_fail(b, res->err);
		return;
	}
	aml_buffer(b, res->base, res->pos);
}

/* ---- DSDT ---- */

uint32_t acpi_eisaid(const char *id)
{
	uint32_t v = 0;

	if (strlen(id) != 7)
		return 0;
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z')
			return 0;
		v = (v << 5) | (uint32_t)(id[i] - 0x40);
	}
	for (int i = 3; i < 7; i++) {
		char c = id[i];
		uint32_t d;

		if (c >= '0' && c <= '9')
			d = (uint32_t)(c - '0');
		else if (c >= 'A' && c <= 'F')
			d = (uint32_t)(c - 'A' + 10);
		else
			return 0;
		v = (v << 4) | d;
	}
	/* The 32-bit id is stored big-endian, so byte-swap it for the AML
	 * little-endian integer. */
	return __builtin_bswap32(v);
}

/* IO(Decode16, port, port, 1, n): n fixed ports at `port`. */
static void res_io(struct abuf *res, uint16_t port, uint8_t n)
{
	ab_put8(res, RES_IO);
	ab_put8(res, RES_IO_DECODE16);
	ab_put16(res, port); /* minimum base */
	ab_put16(res, port); /* maximum base */
	ab_put8(res, 1);     /* alignment */
	ab_put8(res, n);     /* ports */
}

/* IRQNoFlags(){irq}: an ISA interrupt, edge-triggered and active high. */
static void res_isa_irq(struct abuf *res, unsigned irq)
{
	ab_put8(res, RES_IRQ_NOFLAGS);
	ab_put16(res, (uint16_t)(1u << irq));
}

/* Device(name) with _HID (an EISA id like "PNP0501", else a string id),
 * _UID 0 and the _CRS in `res`. */
static void dsdt_device(struct abuf *b, const char *name, const char *hid,
			struct abuf *res)
{
	size_t dev = aml_device_begin(b, name);

	aml_name(b, "_HID");
	if (acpi_eisaid(hid))
		aml_integer(b, acpi_eisaid(hid));
	else
		aml_string(b, hid);
	aml_name(b, "_UID");
	aml_integer(b, 0);
	aml_name(b, "_CRS");
	aml_resource_template(b, res);
	aml_close(b, dev);
}

static void dsdt_com1(struct abuf *b)
{
	uint8_t rbuf[32];
	struct abuf res = { .base = rbuf, .len = sizeof(rbuf) };

	res_io(&res, X86_COM1_PORT, 8);
	res_isa_irq(&res, X86_COM1_IRQ);
	dsdt_device(b, "COM1", "PNP0501", &res);
}

/*
 * The keyboard controller. A hardware-reduced platform has no legacy PIC,
 * so Linux has no ISA IRQ 1 unless firmware describes the device: without
 * this node its i8042 driver probes the ports directly and fails to get
 * IRQ 1 (-EINVAL).
 */
static void dsdt_i8042(struct abuf *b)
{
	uint8_t rbuf[32];
	struct abuf res = { .base = rbuf, .len = sizeof(rbuf) };

	res_io(&res, X86_I8042_DATA_PORT, 1);
	res_io(&res, X86_I8042_PORT, 1);
	res_isa_irq(&res, X86_I8042_IRQ);
	dsdt_device(b, "KBD_", "PNP0303", &res);
}

/* pvpanic at its port: Linux's pvpanic-mmio driver binds to QEMU0001. */
static void dsdt_pvpanic(struct abuf *b)
{
	uint8_t rbuf[16];
	struct abuf res = { .base = rbuf, .len = sizeof(rbuf) };

	res_io(&res, X86_PVPANIC_PORT, 1);
	dsdt_device(b, "PEVT", "QEMU0001", &res);
}

static void dsdt_virtio(struct abuf *b, unsigned idx, uint64_t base,
			uint64_t size, uint32_t gsi)
{
	static const char hex[] = "0123456789ABCDEF";
	char name[5] = { 'V', 'R', hex[(idx >> 4) & 0xf], hex[idx & 0xf], 0 };
	uint8_t rbuf[32];
	struct abuf res = { .base = rbuf, .len = sizeof(rbuf) };
	size_t dev = aml_device_begin(b, name);

	aml_name(b, "_HID");
	aml_string(b, VIRTIO_MMIO_HID);
	aml_name(b, "_UID");
	aml_integer(b, idx);
	ab_put8(&res, RES_MEMORY32_FIXED);
	ab_put16(&res, 9); /* descriptor body length */
	ab_put8(&res, RES_MEM_READ_WRITE);
	ab_put32(&res, (uint32_t)base);
	ab_put32(&res, (uint32_t)size);
	ab_put8(&res, RES_EXT_IRQ);
	ab_put16(&res, 6); /* flags, count and one interrupt */
	ab_put8(&res, RES_IRQ_CONSUMER | RES_IRQ_EDGE); /* active high, exclusive */
	ab_put8(&res, 1);
	ab_put32(&res, gsi);
	aml_name(b, "_CRS");
	aml_resource_template(b, &res);
	aml_close(b, dev);
}

/* ---- PCI: the root bridge of bus 0 ---- */

/* WordBusNumber / DWordMemory / QWordMemory, as produced by a bridge:
 * the range [min, min + len). */
static void res_space16(struct abuf *res, uint8_t type, uint16_t min, uint16_t len)
{
	ab_put8(res, RES_WORD_SPACE);
	ab_put16(res, 13);
	ab_put8(res, type);
	ab_put8(res, RES_SPACE_PRODUCER_FIXED);
	ab_put8(res, 0);
	ab_put16(res, 0);                        /* granularity */
	ab_put16(res, min);
	ab_put16(res, (uint16_t)(min + len - 1)); /* max */
	ab_put16(res, 0);                        /* translation */
	ab_put16(res, len);
}

static void res_memory32(struct abuf *res, uint32_t min, uint32_t len)
{
	ab_put8(res, RES_DWORD_SPACE);
	ab_put16(res, 23);
	ab_put8(res, RES_SPACE_MEMORY);
	ab_put8(res, RES_SPACE_PRODUCER_FIXED);
	ab_put8(res, RES_SPACE_MEM_RW);
	ab_put32(res, 0);
	ab_put32(res, min);
	ab_put32(res, min + len - 1);
	ab_put32(res, 0);
	ab_put32(res, len);
}

static void res_memory64(struct abuf *res, uint64_t min, uint64_t len)
{
	ab_put8(res, RES_QWORD_SPACE);
	ab_put16(res, 43);
	ab_put8(res, RES_SPACE_MEMORY);
	ab_put8(res, RES_SPACE_PRODUCER_FIXED);
	ab_put8(res, RES_SPACE_MEM_RW);
	ab_put64(res, 0);
	ab_put64(res, min);
	ab_put64(res, min + len - 1);
	ab_put64(res, 0);
	ab_put64(res, len);
}

/* Device(PCI0): a PCI Express root bridge (PNP0A08, PNP0A03 for older
 * drivers) of segment 0, bus 0, with the configuration ports and its two
 * memory windows; the bus's interrupts are MSI/MSI-X only (no _PRT). */
static void dsdt_pci_root(struct abuf *b, const struct x86_platform *p)
{
	uint8_t rbuf[128];
	struct abuf res = { .base = rbuf, .len = sizeof(rbuf) };
	size_t dev = aml_device_begin(b, "PCI0");

	aml_name(b, "_HID");
	aml_integer(b, acpi_eisaid("PNP0A08"));
	aml_name(b, "_CID");
	aml_integer(b, acpi_eisaid("PNP0A03"));
	aml_name(b, "_SEG");
	aml_integer(b, 0);
	aml_name(b, "_BBN");
	aml_integer(b, 0);
	aml_name(b, "_UID");
	aml_integer(b, 0);
	res_space16(&res, RES_SPACE_BUS, 0, 1);
	res_io(&res, X86_PCI_CONFIG_PORT, 8);
	res_memory32(&res, (uint32_t)p->pci.mem32_base, (uint32_t)p->pci.mem32_size);
	res_memory64(&res, p->pci.mem64_base, p->pci.mem64_size);
	if (res.err)
		ab_fail(b, res.err);
	aml_name(b, "_CRS");
	aml_resource_template(b, &res);
	aml_close(b, dev);
}

/* ECAM must be reserved for Linux to use it (else it falls back to the
 * ports): a motherboard resource (PNP0C02) holding it. */
static void dsdt_ecam_reservation(struct abuf *b, const struct x86_platform *p)
{
	uint8_t rbuf[16];
	struct abuf res = { .base = rbuf, .len = sizeof(rbuf) };

	ab_put8(&res, RES_MEMORY32_FIXED);
	ab_put16(&res, 9);
	ab_put8(&res, RES_MEM_READ_WRITE);
	ab_put32(&res, (uint32_t)p->pci.ecam_base);
	ab_put32(&res, X86_PCI_ECAM_SIZE);
	dsdt_device(b, "MRES", "PNP0C02", &res);
}

/* Name(_S5_, Package(){5, 0, 0, 0}): SLP_TYPa/b the guest writes to the
 * sleep control register to power off; acpi_pm.c decodes the same value. */
static void dsdt_s5(struct abuf *b)
{
	size_t pkg;

	aml_name(b, "_S5_");
	pkg = aml_package_begin(b, 4);
	aml_integer(b, ACPI_PM_SLP_TYP_S5);
	aml_integer(b, 0);
	aml_integer(b, 0);
	aml_integer(b, 0);
	aml_close(b, pkg);
}

/* ---- tables ---- */

static size_t table_begin(struct abuf *b, const char *sig, uint8_t rev)
{
	uint8_t *h;
	size_t start;

	ab_align(b, 16);
	start = b->pos;
	h = ab_reserve(b, ACPI_HDR_SIZE);
	if (!h)
		return start;
	memcpy(h, sig, 4);
	h[8] = rev;
	memcpy(h + 10, ACPI_OEM_ID, 6);
	memcpy(h + 16, ACPI_OEM_TABLE_ID, 8);
	x86_put_le32(h + 24, 1); /* OEM revision */
	memcpy(h + 28, ACPI_CREATOR_ID, 4);
	x86_put_le32(h + 32, 1); /* creator revision */
	return start;
}

/* Set the length and checksum of the table that runs from start to pos. */
static void table_end(struct abuf *b, size_t start)
{
	uint8_t *h = b->base + start;
	size_t n = b->pos - start;

	if (b->err)
		return;
	x86_put_le32(h + 4, (uint32_t)n);
	h[9] = 0;
	h[9] = acpi_checksum(h, n);
}

static size_t build_dsdt(struct abuf *b, const struct x86_platform *p)
{
	size_t start = table_begin(b, "DSDT", ACPI_DSDT_REVISION);
	size_t sb;

	dsdt_s5(b);
	/* At the root "_SB_" is \_SB_; iasl encodes it the same way. */
	sb = aml_scope_begin(b, "_SB_");
	if (p->flags & X86_PLATFORM_COM1)
		dsdt_com1(b);
	if (p->flags & X86_PLATFORM_I8042)
		dsdt_i8042(b);
	if (p->flags & X86_PLATFORM_PVPANIC)
		dsdt_pvpanic(b);
	for (int i = 0; i < p->nr_virtio; i++)
		dsdt_virtio(b, (unsigned)i, p->virtio[i].base,
			    p->virtio[i].size, p->virtio[i].gsi);
	if (p->flags & X86_PLATFORM_PCI) {
		dsdt_pci_root(b, p);
		dsdt_ecam_reservation(b, p);
	}
	aml_close(b, sb);
	table_end(b, start);
	return start;
}

static void put_gas_io8(uint8_t *g, uint16_t port)
{
	g[0] = ACPI_GAS_SYSTEM_IO;
	g[1] = 8; /* bit width */
	g[2] = 0; /* bit offset */
	g[3] = ACPI_GAS_ACCESS_BYTE;
	x86_put_le64(g + 4, port);
}

static uint16_t iapc_boot_arch(const struct x86_platform *p)
{
	/* No VGA, and the OS must leave ASPM alone. MSI only with the PCI
	 * bus, whose functions interrupt through MSI-X alone (Linux turns
	 * MSI off for good when the flag is there). Without the 8042 flag
	 * Linux skips probing the i8042 (a faster boot); the reset through
	 * port 0x64 works either way. */
	uint16_t v = IAPC_VGA_NOT_PRESENT | IAPC_PCIE_ASPM_CONTROLS;

	if (!(p->flags & X86_PLATFORM_PCI))
		v |= IAPC_MSI_NOT_SUPPORTED;

	if (p->flags & X86_PLATFORM_I8042)
		v |= IAPC_8042;
	if (!(p->flags & X86_PLATFORM_CMOS_RTC))
		v |= IAPC_CMOS_RTC_NOT_PRESENT;
	return v;
}

static size_t build_fadt(struct abuf *b, const struct x86_platform *p,
			 uint64_t dsdt_gpa)
{
	size_t start = table_begin(b, "FACP", ACPI_FADT_REVISION);
	uint8_t *f;

	if (!ab_reserve(b, ACPI_FADT_SIZE - ACPI_HDR_SIZE))
		return start;
	f = b->base + start;
	/* Hardware-reduced: no SCI, PM1 blocks, PM timer, GPEs or FACS. The
	 * 32-bit DSDT field stays 0 because X_DSDT is set. */
	x86_put_le16(f + ACPI_FADT_OFF_IAPC_BOOT_ARCH, iapc_boot_arch(p));
	x86_put_le32(f + ACPI_FADT_OFF_FLAGS,
		     ACPI_FADT_HW_REDUCED | ACPI_FADT_RESET_REG_SUP);
	put_gas_io8(f + ACPI_FADT_OFF_RESET_REG, X86_ACPI_PM_PORT);
	f[ACPI_FADT_OFF_RESET_VALUE] = ACPI_PM_RESET_VALUE;
	f[ACPI_FADT_OFF_MINOR_VERSION] = ACPI_FADT_MINOR_REVISION;
	x86_put_le64(f + ACPI_FADT_OFF_X_DSDT, dsdt_gpa);
	put_gas_io8(f + ACPI_FADT_OFF_SLEEP_CONTROL, X86_ACPI_PM_PORT);
	put_gas_io8(f + ACPI_FADT_OFF_SLEEP_STATUS, X86_ACPI_PM_PORT);
	memcpy(f + ACPI_FADT_OFF_HV_VENDOR, ACPI_HV_VENDOR_ID, 8);
	table_end(b, start);
	return start;
}

static void madt_lapic(struct abuf *b, int cpu)
{
	ab_put8(b, MADT_LOCAL_APIC);
	ab_put8(b, 8);
	ab_put8(b, (uint8_t)cpu); /* ACPI processor UID */
	ab_put8(b, (uint8_t)cpu); /* APIC id */
	ab_put32(b, MADT_LAPIC_ENABLED);
}

static size_t build_madt(struct abuf *b, const struct x86_platform *p)
{
	size_t start = table_begin(b, "APIC", ACPI_MADT_REVISION);

	ab_put32(b, (uint32_t)X86_LAPIC_ADDR);
	ab_put32(b, 0); /* no PCAT_COMPAT: there are no 8259s to mask */
	for (int cpu = 0; cpu < p->nr_cpus; cpu++)
		madt_lapic(b, cpu);

	/* One IOAPIC; its id follows the APIC ids so no id is shared. */
	ab_put8(b, MADT_IO_APIC);
	ab_put8(b, 12);
	ab_put8(b, (uint8_t)p->nr_cpus);
	ab_put8(b, 0);
	ab_put32(b, (uint32_t)X86_IOAPIC_ADDR);
	ab_put32(b, 0); /* GSI base */

	/* No interrupt source override: KVM's default GSI routing puts ISA
	 * IRQ n, the PIT's IRQ 0 included, on IOAPIC pin n, which is what a
	 * MADT without overrides says. */

	/* LINT1 of every processor is the NMI input. */
	ab_put8(b, MADT_LOCAL_APIC_NMI);
	ab_put8(b, 6);
	ab_put8(b, 0xff); /* all processors */
	ab_put16(b, 0);   /* conforms to the bus */
	ab_put8(b, 1);    /* LINT1 */
	table_end(b, start);
	return start;
}

/* MCFG: ECAM of segment 0, buses 0 to 0. */
static size_t build_mcfg(struct abuf *b, const struct x86_platform *p)
{
	size_t start = table_begin(b, "MCFG", ACPI_MCFG_REVISION);

	ab_put64(b, 0); /* reserved */
	ab_put64(b, p->pci.ecam_base);
	ab_put16(b, 0); /* segment */
	ab_put8(b, 0);  /* first bus */
	ab_put8(b, 0);  /* last bus */
	ab_put32(b, 0); /* reserved */
	table_end(b, start);
	return start;
}

/* The XSDT's entries: FADT, MADT, then MCFG when gpa is not 0. */
static size_t build_xsdt(struct abuf *b, uint64_t fadt_gpa, uint64_t madt_gpa,
			 uint64_t mcfg_gpa)
{
	size_t start = table_begin(b, "XSDT", ACPI_XSDT_REVISION);

	ab_put64(b, fadt_gpa);
	ab_put64(b, madt_gpa);
	if (mcfg_gpa)
		ab_put64(b, mcfg_gpa);
	table_end(b, start);
	return start;
}

static void build_rsdp(uint8_t *r, uint64_t xsdt_gpa)
{
	memcpy(r, "RSD PTR ", 8);
	memcpy(r + 9, ACPI_OEM_ID, 6);
	r[15] = 2;                     /* revision: ACPI 2.0+, has the XSDT */
	x86_put_le32(r + 16, 0);       /* no RSDT: every user reads the XSDT */
	x86_put_le32(r + 20, ACPI_RSDP_SIZE);
	x86_put_le64(r + 24, xsdt_gpa);
	r[8] = acpi_checksum(r, ACPI_RSDP_V1_SIZE);
	r[32] = acpi_checksum(r, ACPI_RSDP_SIZE);
}

static int platform_valid(const struct x86_platform *p)
{
	if (p->nr_cpus < 1 || p->nr_cpus > X86_MAX_CPUS)
		return 0;
	if (p->nr_virtio < 0 || p->nr_virtio > X86_VIRTIO_MMIO_MAX)
		return 0;
	if ((p->flags & X86_PLATFORM_PCI) &&
	    (p->pci.ecam_base > UINT32_MAX - X86_PCI_ECAM_SIZE + 1 || !p->pci.mem32_size ||
	     p->pci.mem32_base > UINT32_MAX || p->pci.mem32_size > UINT32_MAX - p->pci.mem32_base ||
	     !p->pci.mem64_size || p->pci.mem64_size > UINT64_MAX - p->pci.mem64_base))
		return 0;
	for (int i = 0; i < p->nr_virtio; i++) {
		uint64_t base = p->virtio[i].base, size = p->virtio[i].size;

		/* Memory32Fixed: the window must lie below 4 GiB. */
		if (size == 0 || base > UINT32_MAX ||
		    size > (uint64_t)UINT32_MAX + 1 - base)
			return 0;
		if (p->virtio[i].gsi >= X86_IOAPIC_PINS)
			return 0;
	}
	return 1;
}

int acpi_build_tables(void *buf, size_t len, uint64_t buf_gpa,
		      const struct x86_platform *p, uint64_t *rsdp_gpa_out)
{
	struct abuf b = { .base = buf, .len = len };
	size_t dsdt, fadt, madt, mcfg = 0, xsdt;
	uint8_t *rsdp;

	if (!buf || !p || !rsdp_gpa_out || !platform_valid(p))
		return -EINVAL;
	/* The kernel's RSDP scan only looks at 16-byte boundaries. */
	if (buf_gpa % 16 || len > UINT64_MAX - buf_gpa)
		return -EINVAL;
	rsdp = ab_reserve(&b, ACPI_RSDP_SIZE);
	dsdt = build_dsdt(&b, p);
	fadt = build_fadt(&b, p, buf_gpa + dsdt);
	madt = build_madt(&b, p);
	if (p->flags & X86_PLATFORM_PCI)
		mcfg = build_mcfg(&b, p);
	xsdt = build_xsdt(&b, buf_gpa + fadt, buf_gpa + madt, mcfg ? buf_gpa + mcfg : 0);
	if (b.err)
		return b.err;
	build_rsdp(rsdp, buf_gpa + xsdt);
	*rsdp_gpa_out = buf_gpa;
	return (int)b.pos;
}
