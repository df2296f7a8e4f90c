/* SPDX-License-Identifier: MIT */
/*
 * Every guest-physical address and port the x86_64 platform uses lives here.
 *
 *   0x0000_0000  real-mode IVT/BDA (left alone)
 *   0x0000_0500  boot GDT
 *   0x0000_6000  PVH start info, module list, memory map
 *   0x0000_7000  zero page (struct boot_params)
 *   0x0000_9000  boot page tables: PML4, PDPT, 4 PDs (identity map of 4 GiB)
 *   0x0001_0000  raw binaries: per-vCPU stacks
 *   0x0002_0000  kernel command line
 *   0x0009_fc00  MP table (last KiB of base memory), reserved
 *   0x000e_0000  ACPI: RSDP then the tables, reserved
 *   0x000f_fff0  reset vector (F000:FFF0): vibevmm's reset stub, reserved
 *   0x0010_0000  raw binaries / bzImage protected-mode code by default
 *   ...          RAM up to MMIO_HOLE_START
 *   0x8000_0000  MMIO hole (debug console, virtio-mmio, IOAPIC, LAPIC)
 *   0x1_0000_0000 RAM above the hole
 */
#ifndef VIBEVMM_X86_64_LAYOUT_H
#define VIBEVMM_X86_64_LAYOUT_H

#define X86_BOOT_GDT_ADDR 0x500ULL
#define X86_PVH_INFO_ADDR 0x6000ULL
#define X86_PVH_INFO_SIZE 0x1000ULL
#define X86_ZERO_PAGE_ADDR 0x7000ULL
#define X86_PML4_ADDR 0x9000ULL
#define X86_PDPT_ADDR 0xa000ULL
#define X86_PD_ADDR 0xb000ULL /* 4 pages: 0xb000-0xefff */
#define X86_BOOT_TABLES_END 0xf000ULL
#define X86_CMDLINE_ADDR 0x20000ULL
#define X86_CMDLINE_MAX 0x10000ULL
/* Raw binaries: one 1 KiB stack per vCPU in [0x10000, 0x20000). */
#define X86_RAW_STACKS_BASE 0x10000ULL
#define X86_RAW_STACK_SIZE 0x400ULL

#define X86_EBDA_START 0x9fc00ULL
#define X86_MPTABLE_ADDR X86_EBDA_START
/* The MP table may run past the EBDA's KiB (more than 40 vCPUs): everything
 * up to the ACPI area is reserved in the e820 map and otherwise unused. */
#define X86_MPTABLE_MAX_SIZE (X86_BIOS_START - X86_MPTABLE_ADDR)
#define X86_BIOS_START 0xe0000ULL
#define X86_ACPI_RSDP_ADDR X86_BIOS_START
#define X86_ACPI_TABLES_ADDR (X86_BIOS_START + 0x1000ULL)
/* Where a CPU starts after reset and where Linux's last-resort reboot
 * (the real-mode BIOS restart) jumps: vibevmm puts a stub there that asks
 * the i8042 for a reset, so every reboot path ends the VM. */
#define X86_RESET_VECTOR_ADDR 0xffff0ULL
#define X86_BIOS_END 0x100000ULL
#define X86_HIGH_MEMORY_START 0x100000ULL /* 1 MiB */

/* Lowest address a raw binary may be loaded at (above the boot tables). */
#define X86_RAW_MIN_ADDR 0x20000ULL
#define X86_RAW_DEFAULT_ADDR X86_HIGH_MEMORY_START

#define X86_MMIO_HOLE_START 0x80000000ULL
#define X86_MMIO_HOLE_END 0x100000000ULL
#define X86_HIGH_RAM_START X86_MMIO_HOLE_END

#define X86_DEBUGCON_ADDR 0x90000000ULL
#define X86_VIRTIO_MMIO_BASE 0xd0000000ULL
#define X86_VIRTIO_MMIO_SIZE 0x1000ULL
#define X86_VIRTIO_MMIO_MAX 32
/* PCI (devices/pci/): ECAM for bus 0 (1 MiB), the window 32-bit BARs are
 * placed in, and the one for 64-bit BARs: after the top of RAM, at the
 * next X86_PCI_MEM64_ALIGN (low, so that CPUs with few physical address
 * bits still reach it). */
#define X86_PCI_ECAM_BASE 0xe0000000ULL
#define X86_PCI_ECAM_SIZE 0x100000ULL
#define X86_PCI_CONFIG_PORT 0xcf8 /* CONFIG_ADDRESS, then CONFIG_DATA at 0xcfc */
#define X86_PCI_MEM32_BASE 0xc0000000ULL
#define X86_PCI_MEM32_SIZE 0x10000000ULL
#define X86_PCI_MEM64_ALIGN 0x40000000ULL  /* 1 GiB */
#define X86_PCI_MEM64_SIZE 0x1000000000ULL  /* 64 GiB */
#define X86_IOAPIC_ADDR 0xfec00000ULL
#define X86_LAPIC_ADDR 0xfee00000ULL
#define X86_IDENTITY_MAP_ADDR 0xfeffc000ULL /* KVM_SET_IDENTITY_MAP_ADDR */
#define X86_TSS_ADDR 0xfeffd000ULL          /* KVM_SET_TSS_ADDR, 3 pages */

/* Port I/O */
#define X86_I8042_PORT 0x64
#define X86_I8042_DATA_PORT 0x60
#define X86_I8042_IRQ 1
#define X86_PVPANIC_PORT 0x505 /* QEMU's pvpanic port: the guest reports a panic */
#define X86_EXIT_PORT 0xf4 /* guest exit: the value written is the status */
#define X86_COM1_PORT 0x3f8
#define X86_COM1_IRQ 4
#define X86_ACPI_PM_PORT 0x600 /* reset + sleep control/status */

/* First GSI for virtio-mmio devices; one each. */
#define X86_VIRTIO_GSI_BASE 5
#define X86_IOAPIC_PINS 24
/* GSIs for MSI-X vectors (virtio-pci): after the IOAPIC's pins, as many
 * as KVM's routing table holds MSI routes (hv/kvm_msi.c). */
#define X86_MSI_GSI_BASE X86_IOAPIC_PINS
#define X86_MSI_GSI_COUNT 1024

#endif
