/* SPDX-License-Identifier: MIT */
/*
 * Every guest-physical address and interrupt number of the arm64 machine.
 *
 * The map follows the x86 one (arch/x86_64/layout.h): RAM from 0, an MMIO
 * window in the top 2 GiB below 4 GiB, RAM beyond it from 4 GiB. So the
 * seed's arm64 programs (`--binary prog.raw --entry 0x10000 --mem 128M`,
 * printing to the debug console at 0x90000000) keep working, and the
 * debug console and virtio windows sit where they do on x86.
 *
 *   0x0000_0000   RAM
 *   0x0001_0000   raw binaries (--binary) by default
 *   0x0020_0000   Linux Image: 2 MiB-aligned base, the image at + text_offset
 *   ...           initrd: page-aligned, just below the DTB
 *   low end-2 MiB DTB: the last 2 MiB-aligned 2 MiB of low RAM
 *   0x8000_0000   MMIO window (to 4 GiB):
 *     0x8000_0000   GIC distributor (64 KiB)
 *     0x8001_0000   GICv2 CPU interface (8 KiB; 64 KiB reserved) - v2 only
 *     0x8002_0000   GICv3 redistributors, 128 KiB per vCPU (32 MiB)
 *     0x9000_0000   MMIO debug console (a byte written at offset 0 is printed)
 *     0x9000_1000   exit register (a 32-bit write = exit status)
 *     0x9000_2000   16550 UART (8 byte-wide registers)
 *     0x9000_3000   PL031 RTC
 *     0xd000_0000   virtio-mmio windows, 4 KiB each
 *   0x1_0000_0000 RAM above 4 GiB, when --mem exceeds the 2 GiB of low RAM
 *
 * Interrupts (GIC INTIDs): SGIs 0-15, PPIs 16-31 (INTID = 16 + PPI), SPIs
 * from 32 (INTID = 32 + SPI). The device tree names SPIs and PPIs by their
 * number within their class, as below; KVM's irq lines and irqfds take the
 * SPI's INTID (ARM64_SPI_INTID).
 */
#ifndef VIBEVMM_ARM64_LAYOUT_H
#define VIBEVMM_ARM64_LAYOUT_H

/* ---- RAM ---- */

#define ARM64_RAM_BASE 0x0ULL
/* Low RAM ends where the MMIO window starts: at most 2 GiB below 4 GiB. */
#define ARM64_LOW_RAM_END ARM64_MMIO_START
#define ARM64_HIGH_RAM_START 0x100000000ULL
/*
 * End of the guest-physical space: KVM's default 40-bit IPA size (what a VM
 * gets without asking for another through KVM_CAP_ARM_VM_IPA_SIZE), so RAM
 * reaches at most 1 TiB - 2 GiB.
 */
#define ARM64_MAX_GPA (1ULL << 40)

/*
 * Raw binaries (--binary): RAM starts at 0 and nothing of the platform
 * lives in it, so any RAM address works; the seed's programs use 0x10000.
 */
#define ARM64_RAW_DEFAULT_ADDR 0x10000ULL

/* ---- Linux boot (Documentation/arch/arm64/booting.rst) ---- */

/*
 * The Image goes at a 2 MiB-aligned base plus its header's text_offset,
 * with image_size bytes reserved from there. The base is 2 MiB, not 0:
 * Image flags bit 3 clear means RAM below the base is lost to the linear
 * map, which costs 2 MiB here; and the first 2 MiB stay free for raw
 * programs' conventions (0x10000), as Raspberry Pi firmware does for
 * text_offset 0 kernels.
 */
#define ARM64_KERNEL_ALIGN 0x200000ULL
#define ARM64_KERNEL_BASE 0x200000ULL
/*
 * The DTB: 8-byte aligned, at most 2 MiB. It is given a whole 2 MiB-aligned
 * 2 MiB slot at the top of low RAM, because the kernel maps it with blocks
 * of up to 2 MiB and nothing else may share that mapping.
 */
#define ARM64_DTB_ALIGN 8ULL
#define ARM64_DTB_MAX_SIZE 0x200000ULL
#define ARM64_DTB_SLOT_ALIGN 0x200000ULL
/*
 * The initrd: anywhere in one 1 GiB-aligned window of at most 32 GiB that
 * also covers the kernel Image. Low RAM (< 2 GiB) is inside the window
 * [0, 32 GiB) that holds ARM64_KERNEL_BASE, so the initrd goes just below
 * the DTB, page-aligned.
 */
#define ARM64_INITRD_WINDOW_ALIGN 0x40000000ULL
#define ARM64_INITRD_WINDOW_SIZE 0x800000000ULL
#define ARM64_INITRD_ALIGN 0x1000ULL
/* Linux's arm64 COMMAND_LINE_SIZE, NUL included. */
#define ARM64_CMDLINE_MAX 2048

/* ---- MMIO window ---- */

#define ARM64_MMIO_START 0x80000000ULL
#define ARM64_MMIO_END 0x100000000ULL

/*
 * GIC. KVM wants the distributor and redistributor bases 64 KiB aligned.
 * The GICv2 CPU interface is 8 KiB; its 64 KiB slot keeps it alone in a
 * page on a host with 64 KiB pages.
 */
#define ARM64_GIC_DIST_BASE 0x80000000ULL
#define ARM64_GIC_DIST_SIZE 0x10000ULL
#define ARM64_GIC_CPU_BASE 0x80010000ULL
#define ARM64_GIC_CPU_SIZE 0x2000ULL
#define ARM64_GIC_REDIST_BASE 0x80020000ULL
#define ARM64_GIC_REDIST_STRIDE 0x20000ULL /* RD_base + SGI_base frames */
/*
 * Largest vCPU count of the machine: 256 redistributors fill a 32 MiB
 * region (ending at 0x8202_0000, far below the devices at 0x9000_0000).
 * KVM's vGICv3 allows 512; 256 is Debian's arm64 NR_CPUS, and with KVM's
 * default MPIDRs (Aff0 = id % 16) it is 16 full clusters. GICv2 addresses
 * at most 8 CPUs.
 */
#define ARM64_MAX_CPUS 256
#define ARM64_GICV2_MAX_CPUS 8
#define ARM64_GIC_REDIST_SIZE (ARM64_GIC_REDIST_STRIDE * ARM64_MAX_CPUS)
/*
 * Interrupt lines the vGIC is sized for (KVM_DEV_ARM_VGIC_GRP_NR_IRQS takes
 * a multiple of 32, SGIs and PPIs included): enough for every SPI below.
 */
#define ARM64_GIC_NR_IRQS 128
#define ARM64_GIC_NR_SPIS (ARM64_GIC_NR_IRQS - 32)
#define ARM64_SPI_INTID(spi) (32u + (spi))
#define ARM64_PPI_INTID(ppi) (16u + (ppi))

/* The seed's MMIO debug console (devices/debugcon.c), as on x86. */
#define ARM64_DEBUGCON_ADDR 0x90000000ULL
/*
 * Guest exit register, the arm64 counterpart of x86's port 0xf4: a 32-bit
 * store at offset 0 ends the VM with the stored value as its exit status.
 * (PSCI SYSTEM_OFF ends it with status 0.)
 */
#define ARM64_EXIT_ADDR 0x90001000ULL
#define ARM64_EXIT_SIZE 0x1000ULL

/* 16550A UART: byte-wide registers one byte apart (reg-shift 0). */
#define ARM64_UART_ADDR 0x90002000ULL
#define ARM64_UART_SIZE 0x8ULL
#define ARM64_UART_SPI 1
#define ARM64_UART_CLOCK_HZ 1843200u /* the PC UART's crystal: 115200 * 16 */

/* PL031 real-time clock (a primecell: ID registers at 0xfe0-0xfff). */
#define ARM64_RTC_ADDR 0x90003000ULL
#define ARM64_RTC_SIZE 0x1000ULL
#define ARM64_RTC_SPI 2
/* The APB clock primecells name in the DT (a fixed-clock node). */
#define ARM64_APB_CLOCK_HZ 24000000u

/* virtio-mmio: slot i at BASE + i * SIZE, on SPI VIRTIO_SPI_BASE + i. */
#define ARM64_VIRTIO_MMIO_BASE 0xd0000000ULL
#define ARM64_VIRTIO_MMIO_SIZE 0x1000ULL
#define ARM64_VIRTIO_MMIO_MAX 32
#define ARM64_VIRTIO_SPI_BASE 16

/*
 * Architected timer PPIs (the order of the DT's "interrupts": secure
 * physical, non-secure physical, virtual, hypervisor physical), as every
 * KVM arm64 VM wires them.
 */
#define ARM64_TIMER_PPI_SEC_PHYS 13
#define ARM64_TIMER_PPI_PHYS 14
#define ARM64_TIMER_PPI_VIRT 11
#define ARM64_TIMER_PPI_HYP 10

#endif
