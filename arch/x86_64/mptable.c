/* SPDX-License-Identifier: MIT */
/*
 * Intel MultiProcessor Specification 1.4 tables: the floating pointer the
 * kernel scans for in the last KiB of base memory, and the configuration
 * table after it. Kernels built without ACPI (or booted with acpi=off) find
 * their CPUs and the IOAPIC here; with ACPI the MADT wins.
 *
 * Layout: floating pointer (16 bytes) | config header (44) | processors (20
 * each) | bus | IOAPIC | 15 I/O interrupts (ISA IRQs but the cascade) |
 * LINT0, LINT1 (8 bytes each).
 */
#include <errno.h>
#include <string.h>

#include "arch/x86_64/platform.h"

#define MPF_SIZE 16
#define MPC_HDR_SIZE 44
#define MPC_CPU_SIZE 20
#define MPC_ENTRY_SIZE 8 /* bus, IOAPIC, I/O and local interrupt entries */
#define MP_SPEC_REV 4     /* 1.4 */
#define MP_ISA_IRQS 16

enum mpc_entry_type {
	MP_PROCESSOR = 0,
	MP_BUS = 1,
	MP_IOAPIC = 2,
	MP_INTSRC = 3,
	MP_LINTSRC = 4,
};

enum mp_irq_type {
	MP_INT = 0,
	MP_NMI = 1,
	MP_EXTINT = 3,
};

#define MP_CPU_ENABLED 0x01
#define MP_CPU_BSP 0x02
#define MP_APIC_VERSION 0x14   /* integrated local APIC, as KVM's */
#define MP_IOAPIC_VERSION 0x11 /* as KVM's IOAPIC */
#define MP_IOAPIC_ENABLED 0x01
/* Family 6 signature and FPU + APIC feature bits: Linux only reads the
 * APIC id and flags, but the spec wants something plausible here. */
#define MP_CPU_SIGNATURE 0x600
#define MP_CPU_FEATURES ((1u << 0) | (1u << 9))
#define MP_ISA_BUS_ID 0
#define MP_ALL_LAPICS 0xff
#define MP_CASCADE_IRQ 2

static size_t mpc_entries(int nr_cpus)
{
	/* ISA IRQ 2 is the 8259 cascade, never a device interrupt. */
	return (size_t)nr_cpus + 1 /* bus */ + 1 /* IOAPIC */ +
	       (MP_ISA_IRQS - 1) + 2 /* LINT0, LINT1 */;
}

size_t mptable_size(int nr_cpus)
{
	if (nr_cpus < 1 || nr_cpus > X86_MAX_CPUS)
		return 0;
	return MPF_SIZE + MPC_HDR_SIZE + (size_t)nr_cpus * MPC_CPU_SIZE +
	       (mpc_entries(nr_cpus) - (size_t)nr_cpus) * MPC_ENTRY_SIZE;
}

static uint8_t mp_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum = (uint8_t)(sum + *p++);
	return (uint8_t)(0x100 - sum);
}

static uint8_t *mp_cpu(uint8_t *e, int cpu)
{
	e[0] = MP_PROCESSOR;
	e[1] = (uint8_t)cpu; /* local APIC id */
	e[2] = MP_APIC_VERSION;
	e[3] = MP_CPU_ENABLED | (cpu == 0 ? MP_CPU_BSP : 0);
	x86_put_le32(e + 4, MP_CPU_SIGNATURE);
	x86_put_le32(e + 8, MP_CPU_FEATURES);
	return e + MPC_CPU_SIZE;
}

static uint8_t *mp_bus_isa(uint8_t *e)
{
	e[0] = MP_BUS;
	e[1] = MP_ISA_BUS_ID;
	memcpy(e + 2, "ISA   ", 6);
	return e + MPC_ENTRY_SIZE;
}

static uint8_t *mp_ioapic(uint8_t *e, uint8_t id)
{
	e[0] = MP_IOAPIC;
	e[1] = id;
	e[2] = MP_IOAPIC_VERSION;
	e[3] = MP_IOAPIC_ENABLED;
	x86_put_le32(e + 4, (uint32_t)X86_IOAPIC_ADDR);
	return e + MPC_ENTRY_SIZE;
}

/* Flags 0: polarity and trigger conform to the bus (ISA: high, edge). */
static uint8_t *mp_intsrc(uint8_t *e, uint8_t irq, uint8_t ioapic, uint8_t pin)
{
	e[0] = MP_INTSRC;
	e[1] = MP_INT;
	x86_put_le16(e + 2, 0);
	e[4] = MP_ISA_BUS_ID;
	e[5] = irq;
	e[6] = ioapic;
	e[7] = pin;
	return e + MPC_ENTRY_SIZE;
}

static uint8_t *mp_lintsrc(uint8_t *e, uint8_t type, uint8_t lint)
{
	e[0] = MP_LINTSRC;
	e[1] = type;
	x86_put_le16(e + 2, 0);
	e[4] = MP_ISA_BUS_ID;
	e[5] = 0;
	e[6] = MP_ALL_LAPICS;
	e[7] = lint;
	return e + MPC_ENTRY_SIZE;
}

static void mpc_header(uint8_t *h, size_t len, int nr_cpus)
{
	memcpy(h, "PCMP", 4);
	x86_put_le16(h + 4, (uint16_t)len);
	h[6] = MP_SPEC_REV;
	memcpy(h + 8, "VIBEVMM ", 8);          /* OEM id */
	memcpy(h + 16, "VIBEVMM     ", 12);    /* product id */
	x86_put_le16(h + 34, (uint16_t)mpc_entries(nr_cpus));
	x86_put_le32(h + 36, (uint32_t)X86_LAPIC_ADDR);
	h[7] = mp_checksum(h, len);
}

static void mpf(uint8_t *f, uint64_t mpc_gpa)
{
	memcpy(f, "_MP_", 4);
	x86_put_le32(f + 4, (uint32_t)mpc_gpa);
	f[8] = 1; /* length in 16-byte units */
	f[9] = MP_SPEC_REV;
	/* Feature bytes 0: a configuration table is present, and the IMCR is
	 * absent (virtual wire mode). */
	f[10] = mp_checksum(f, MPF_SIZE);
}

int mptable_build(void *buf, size_t len, uint64_t buf_gpa, int nr_cpus)
{
	size_t size = mptable_size(nr_cpus), mpc_len;
	uint8_t *f = buf, *e;
	uint8_t ioapic_id = (uint8_t)nr_cpus;

	if (!buf || size == 0)
		return -EINVAL;
	/* The floating pointer is found on a 16-byte boundary and holds a
	 * 32-bit table address. */
	if (buf_gpa % 16 || buf_gpa + size > (uint64_t)UINT32_MAX + 1)
		return -EINVAL;
	if (len < size)
		return -ENOSPC;
	memset(buf, 0, size);
	e = f + MPF_SIZE + MPC_HDR_SIZE;
	for (int cpu = 0; cpu < nr_cpus; cpu++)
		e = mp_cpu(e, cpu);
	e = mp_bus_isa(e);
	e = mp_ioapic(e, ioapic_id);
	for (uint8_t irq = 0; irq < MP_ISA_IRQS; irq++) {
		if (irq == MP_CASCADE_IRQ)
			continue;
		/* ISA IRQ n on pin n, as KVM's default GSI routing wires
		 * them: the PIT's IRQ 0 arrives at pin 0, not pin 2. */
		e = mp_intsrc(e, irq, ioapic_id, irq);
	}
	e = mp_lintsrc(e, MP_EXTINT, 0);
	e = mp_lintsrc(e, MP_NMI, 1);
	mpc_len = (size_t)(e - (f + MPF_SIZE));
	mpc_header(f + MPF_SIZE, mpc_len, nr_cpus);
	mpf(f, buf_gpa + MPF_SIZE);
	return (int)size;
}
