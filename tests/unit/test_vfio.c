/* SPDX-License-Identifier: MIT */
/*
 * The host side of VFIO (devices/vfio/) against a fake kernel
 * (fake_vfio.h): a sysfs tree in a temporary directory and scripted
 * answers to the container, group and device ioctls. The ioctl sequence,
 * guest RAM's DMA mappings, the region table, every error's one line,
 * devices sharing one container, close undoing everything, and answers
 * no honest kernel gives.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/vfio/vfio.h"
#include "devices/vfio/vfio_internal.h"
#include "unit/fake_vfio.h"

#define MIB (1024ULL * 1024)
#define RAM0_HVA 0x7f0000000000ULL
#define RAM1_HVA 0x7f0000400000ULL
#define WHY_LEN 1024

/* What the happy path logs, from the first open to the device's reset. */
#define OPEN_LOG_CONTAINER "open(/dev/vfio/vfio) API EXT(3)"
#define OPEN_LOG_GROUP7 "open(/dev/vfio/7) STATUS SET_CONTAINER"
#define OPEN_LOG_DMA "SET_IOMMU(3) MAP(0x0+0x100000) MAP(0x100000000+0x200000)"
#define OPEN_LOG_DESCRIBE \
	"INFO REGION(0) REGION(1) REGION(2) REGION(2) REGION(3) REGION(4) REGION(5) " \
	"REGION(6) REGION(7) IRQ_INFO(2) IRQ_INFO(1) RESET"
#define UNMAP_LOG "UNMAP(0x0+0x100000) UNMAP(0x100000000+0x200000)"

struct fx {
	struct fake_vfio *f;
	struct mem_map ram;
	struct vfio_container *c;
	char why[WHY_LEN];
};

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	x->f = fake_vfio_new();
	assert_non_null(x->f);
	/* Guest RAM: 1 MiB at 0 and 2 MiB at 4 GiB (never touched: the fake
	 * kernel only records the addresses). */
	x->ram.slots[0] = (struct mem_slot){ .gpa = 0, .size = MIB,
					     .hva = (uint8_t *)(uintptr_t)RAM0_HVA };
	x->ram.slots[1] = (struct mem_slot){ .gpa = 4ULL << 30, .size = 2 * MIB,
					     .hva = (uint8_t *)(uintptr_t)RAM1_HVA };
	x->ram.nr_slots = 2;
	x->c = vfio_container_create(&x->f->sys, &x->ram);
	assert_non_null(x->c);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;

	vfio_container_destroy(x->c);
	fake_vfio_free(x->f);
	free(x);
	return 0;
}

static void vfio_pci_device(struct fake_vfio *f, const char *addr, int group)
{
	fake_sysfs_device(f, addr, group, "vfio-pci", 0x010802);
}

/* Nothing left behind: every fd closed, all DMA unmapped by us (not
 * dropped with the IOMMU), no BAR mapped, the kernel's rules kept. */
static void assert_all_undone(struct fx *x)
{
	vfio_container_destroy(x->c);
	x->c = NULL;
	assert_int_equal(fake_count_fds(x->f, FAKE_CONTAINER), 0);
	assert_int_equal(fake_count_fds(x->f, FAKE_GROUP), 0);
	assert_int_equal(fake_count_fds(x->f, FAKE_DEVICE), 0);
	assert_int_equal(fake_count_dma(x->f), 0);
	assert_int_equal(x->f->dma_dropped, 0);
	assert_int_equal(x->f->nr_maps, 0);
	assert_int_equal(x->f->errors, 0);
}

/* Open `name` expecting failure `err` with exactly the line `msg`, then
 * check it left nothing open. */
static void expect_fail(struct fx *x, const char *name, int err, const char *msg)
{
	struct vfio_device *d = (void *)1;

	assert_int_equal(vfio_device_open(x->c, name, &d, x->why, sizeof(x->why)), -err);
	assert_null(d);
	assert_string_equal(x->why, msg);
	assert_null(strchr(x->why, '\n'));
	assert_all_undone(x);
}

/* ---- the happy path ---- */

static void test_open_sequence_and_dma(void **state)
{
	struct fx *x = *state;
	struct vfio_device *d;

	vfio_pci_device(x->f, "0000:00:04.0", 7);
	assert_int_equal(vfio_device_open(x->c, "00:04.0", &d, x->why, sizeof(x->why)), 0);
	assert_string_equal(x->f->log, OPEN_LOG_CONTAINER " " OPEN_LOG_GROUP7 " " OPEN_LOG_DMA
				       " GET_DEVICE_FD(0000:00:04.0) " OPEN_LOG_DESCRIBE);
	assert_string_equal(vfio_device_address(d), "0000:00:04.0");
	assert_int_equal(vfio_device_group(d), 7);
	/* iova = guest-physical address, vaddr = the host mapping */
	assert_int_equal(x->f->nr_dma, 2);
	assert_int_equal(x->f->dma[0].iova, 0);
	assert_int_equal(x->f->dma[0].size, MIB);
	assert_int_equal(x->f->dma[0].vaddr, RAM0_HVA);
	assert_int_equal(x->f->dma[1].iova, 4ULL << 30);
	assert_int_equal(x->f->dma[1].size, 2 * MIB);
	assert_int_equal(x->f->dma[1].vaddr, RAM1_HVA);
	assert_int_equal(x->f->iommu, VFIO_TYPE1v2_IOMMU);
	assert_int_equal(x->f->resets, 1);
	assert_int_equal(x->f->errors, 0);
}

static void test_region_table(void **state)
{
	struct fx *x = *state;
	const struct vfio_region *r;
	struct vfio_device *d;

	vfio_pci_device(x->f, "0000:00:04.0", 7);
	assert_int_equal(vfio_device_open(x->c, "0000:00:04.0", &d, x->why, sizeof(x->why)), 0);
	r = vfio_device_region(d, 0); /* mmap-able whole */
	assert_int_equal(r->size, 0x4000);
	assert_int_equal(r->offset, FAKE_REGION_OFFSET(0));
	assert_false(r->sparse);
	assert_int_equal(r->nr_areas, 1);
	assert_int_equal(r->areas[0].offset, 0);
	assert_int_equal(r->areas[0].size, 0x4000);
	r = vfio_device_region(d, 1); /* not implemented */
	assert_int_equal(r->size, 0);
	assert_int_equal(r->nr_areas, 0);
	r = vfio_device_region(d, 2); /* around the MSI-X table */
	assert_int_equal(r->size, 0x10000);
	assert_true(r->sparse);
	assert_int_equal(r->nr_areas, 2);
	assert_int_equal(r->areas[0].offset, 0);
	assert_int_equal(r->areas[0].size, 0x2000);
	assert_int_equal(r->areas[1].offset, 0x3000);
	assert_int_equal(r->areas[1].size, 0xd000);
	r = vfio_device_region(d, VFIO_PCI_CONFIG_REGION_INDEX);
	assert_int_equal(r->size, 0x100);
	assert_int_equal(r->offset, FAKE_REGION_OFFSET(7));
	assert_int_equal(r->nr_areas, 0);
	assert_null(vfio_device_region(d, 8));
	assert_int_equal(vfio_device_msix_count(d), 5);
	assert_true(vfio_device_can_reset(d));
}

static void test_sysfs_path_names(void **state)
{
	struct fx *x = *state;
	struct vfio_device *d;

	vfio_pci_device(x->f, "0000:00:04.0", 7);
	assert_int_equal(vfio_device_open(x->c, "/sys/bus/pci/devices/0000:00:04.0/", &d, x->why,
					  sizeof(x->why)), 0);
	assert_string_equal(vfio_device_address(d), "0000:00:04.0");
	vfio_device_close(d);
	assert_int_equal(vfio_device_open(x->c, "/sys/devices/pci0000:00/0000:00:04.0", &d,
					  x->why, sizeof(x->why)), 0);
	vfio_device_close(d);
	assert_all_undone(x);
}

static void test_parse_address(void **state)
{
	static const char *const good[][2] = {
		{ "0000:00:04.0", "0000:00:04.0" }, { "00:04.0", "0000:00:04.0" },
		{ "0000:AB:1f.7", "0000:ab:1f.7" }, { "10000:01:00.1", "10000:01:00.1" },
		{ "0:0:0.0", "0000:00:00.0" },
		{ "/sys/bus/pci/devices/0000:03:00.0", "0000:03:00.0" },
		{ "/sys/bus/pci/devices/0000:03:00.0//", "0000:03:00.0" },
	};
	static const char *const bad[] = {
		"", "00:20.0", "00:04.8", "00:04", "0000:00:04.0x", "g0:04.0", "000:00:04.0:1",
		"0000:00:04.", "00:004.0", "123456789:00:00.0", "/sys/bus/pci/devices/00:04.0",
		"/", "0000:00:04.0 ", "+0:04.0",
	};
	char addr[VFIO_ADDR_LEN];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(vfio_parse_address(good[i][0], addr), 0);
		assert_string_equal(addr, good[i][1]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(vfio_parse_address(bad[i], addr), -EINVAL);
}

/* ---- one container for every device ---- */

static void test_devices_share_one_container(void **state)
{
	struct fx *x = *state;
	struct vfio_device *a, *b, *c;
	size_t mark;

	vfio_pci_device(x->f, "0000:00:04.0", 7);
	vfio_pci_device(x->f, "0000:00:04.1", 7);
	vfio_pci_device(x->f, "0000:00:05.0", 8);
	assert_int_equal(vfio_device_open(x->c, "00:04.0", &a, x->why, sizeof(x->why)), 0);
	mark = strlen(x->f->log);
	/* Another group joins the same container: no new container, no
	 * second SET_IOMMU, guest RAM not mapped again. */
	assert_int_equal(vfio_device_open(x->c, "00:05.0", &b, x->why, sizeof(x->why)), 0);
	assert_string_equal(x->f->log + mark, " open(/dev/vfio/8) STATUS SET_CONTAINER "
					      "GET_DEVICE_FD(0000:00:05.0) " OPEN_LOG_DESCRIBE);
	mark = strlen(x->f->log);
	/* A second device of group 7 shares its open group. */
	assert_int_equal(vfio_device_open(x->c, "00:04.1", &c, x->why, sizeof(x->why)), 0);
	assert_string_equal(x->f->log + mark, " GET_DEVICE_FD(0000:00:04.1) " OPEN_LOG_DESCRIBE);
	assert_int_equal(fake_count_fds(x->f, FAKE_CONTAINER), 1);
	assert_int_equal(fake_count_fds(x->f, FAKE_GROUP), 2);
	assert_int_equal(fake_count_fds(x->f, FAKE_DEVICE), 3);
	assert_int_equal(x->f->nr_dma, 2);

	/* Group 7 stays while c is in it; group 8 goes with b, guest RAM
	 * stays mapped for group 7. */
	vfio_device_close(a);
	assert_int_equal(fake_count_fds(x->f, FAKE_GROUP), 2);
	mark = strlen(x->f->log);
	vfio_device_close(b);
	assert_string_equal(x->f->log + mark, " RESET close(device) UNSET_CONTAINER close(group)");
	assert_int_equal(fake_count_dma(x->f), 2);
	/* The last group: guest RAM unmapped while the IOMMU is still there. */
	mark = strlen(x->f->log);
	vfio_device_close(c);
	assert_string_equal(x->f->log + mark,
			    " RESET close(device) " UNMAP_LOG " UNSET_CONTAINER close(group)");
	assert_all_undone(x);
}

static void test_reopen_after_all_closed(void **state)
{
	struct fx *x = *state;
	struct vfio_device *d;

	vfio_pci_device(x->f, "0000:00:04.0", 7);
	assert_int_equal(vfio_device_open(x->c, "00:04.0", &d, x->why, sizeof(x->why)), 0);
	vfio_device_close(d);
	/* The IOMMU went with the last group: set and mapped again. */
	assert_int_equal(vfio_device_open(x->c, "00:04.0", &d, x->why, sizeof(x->why)), 0);
	assert_int_equal(fake_count_dma(x->f), 2);
	assert_int_equal(x->f->iommu, VFIO_TYPE1v2_IOMMU);
	assert_all_undone(x);
}

/* ---- close ---- */

static void test_close_undoes_everything(void **state)
{
	struct fx *x = *state;
	const int32_t fds[3] = { 40, 41, -1 };
	struct vfio_device *d;
	size_t mark;

	vfio_pci_device(x->f, "0000:00:04.0", 7);
	assert_int_equal(vfio_device_open(x->c, "00:04.0", &d, x->why, sizeof(x->why)), 0);
	assert_int_equal(vfio_device_map_region(d, 2), 0);
	assert_int_equal(vfio_msix_enable(d, fds, 3), 0);
	assert_int_equal(x->f->nr_maps, 2);
	assert_true(x->f->irq_on);
	mark = strlen(x->f->log);
	vfio_device_close(d);
	assert_string_equal(x->f->log + mark, " SET_IRQS(2,0) RESET close(device) " UNMAP_LOG
					      " UNSET_CONTAINER close(group)");
	assert_false(x->f->irq_on);
	assert_int_equal(x->f->resets, 2);
	assert_int_equal(x->f->nr_maps, 0);
	mark = strlen(x->f->log);
	vfio_container_destroy(x->c);
	x->c = NULL;
	assert_string_equal(x->f->log + mark, " close(container)");
	assert_all_undone(x);
}

static void test_destroy_closes_open_devices(void **state)
{
	struct fx *x = *state;
	struct vfio_device *a, *b;

	vfio_pci_device(x->f, "0000:00:04.0", 7);
	vfio_pci_device(x->f, "0000:00:05.0", 8);
	assert_int_equal(vfio_device_open(x->c, "00:04.0", &a, x->why, sizeof(x->why)), 0);
	assert_int_equal(vfio_device_open(x->c, "00:05.0", &b, x->why, sizeof(x->why)), 0);
	assert_int_equal(vfio_device_map_region(b, 0), 0);
	assert_all_undone(x);
}

/* ---- the helpers the guest-facing side uses ---- */

static void test_map_region(void **state)
{
	struct fx *x = *state;
	const struct vfio_region *r;
	struct vfio_device *d;

	vfio_pci_device(x->f, "0000:00:04.0", 7);
	assert_int_equal(vfio_device_open(x->c, "00:04.0", &d, x->why, sizeof(x->why)), 0);
	assert_int_equal(vfio_device_map_region(d, 2), 0);
	assert_int_equal(vfio_device_map_region(d, 2), -EALREADY);
	assert_int_equal(x->f->nr_maps, 2);
	assert_int_equal(x->f->maps[0].off, FAKE_REGION_OFFSET(2));
	assert_int_equal(x->f->maps[0].len, 0x2000);
	assert_int_equal(x->f->maps[1].off, FAKE_REGION_OFFSET(2) + 0x3000);
	assert_int_equal(x->f->maps[1].len, 0xd000);
	assert_int_equal(x->f->maps[1].prot, PROT_READ | PROT_WRITE);
	r = vfio_device_region(d, 2);
	assert_ptr_equal(r->areas[0].map, x->f->maps[0].addr);
	assert_ptr_equal(r->areas[1].map, x->f->maps[1].addr);
	/* config space and unimplemented BARs are not mmap-able */
	assert_int_equal(vfio_device_map_region(d, VFIO_PCI_CONFIG_REGION_INDEX), -EINVAL);
	assert_int_equal(vfio_device_map_region(d, 1), -EINVAL);
	assert_int_equal(vfio_device_map_region(d, 8), -EINVAL);
	assert_all_undone(x);
}

static void test_map_region_unaligned_area(void **state)
{
	static const uint64_t areas[2][2] = { { 0, 0x1000 }, { 0x1800, 0x800 } };
	struct fx *x = *state;
	struct vfio_device *d;
	uint8_t caps[64] __attribute__((aligned(8)));
	size_t n = fake_sparse_cap(caps, 0, 2, areas);

	fake_region(x->f, 4, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_MMAP, 0x2000, caps, n);
	vfio_pci_device(x->f, "0000:00:04.0", 7);
	assert_int_equal(vfio_device_open(x->c, "00:04.0", &d, x->why, sizeof(x->why)), 0);
	/* all or nothing: the first area is unmapped again */
	assert_int_equal(vfio_device_map_region(d, 4), -EINVAL);
	assert_int_equal(x->f->nr_maps, 0);
	assert_null(vfio_device_region(d, 4)->areas[0].map);
	assert_all_undone(x);
}

static void test_config_space(void **state)
{
	struct fx *x = *state;
	struct vfio_device *d;
	uint32_t id = 0;
	uint16_t cmd = 0x0006;
	uint8_t big[0x100];

	x->f->config[0] = 0x86;
	x->f->config[1] = 0x80;
	x->f->config[2] = 0x34;
	x->f->config[3] = 0x12;
	vfio_pci_device(x->f, "0000:00:04.0", 7);
	assert_int_equal(vfio_device_open(x->c, "00:04.0", &d, x->why, sizeof(x->why)), 0);
	assert_int_equal(vfio_config_read(d, 0, &id, 4), 0);
	assert_int_equal(id, 0x12348086);
	assert_int_equal(vfio_config_write(d, 4, &cmd, 2), 0);
	assert_int_equal(x->f->config[4], 0x06);
	assert_int_equal(x->f->config[5], 0x00);
	assert_int_equal(vfio_config_read(d, 0, big, sizeof(big)), 0);
	assert_int_equal(big[4], 0x06);
	/* past the region's end, or wrapping */
	assert_int_equal(vfio_config_read(d, 0xfe, &id, 4), -EINVAL);
	assert_int_equal(vfio_config_read(d, 0xffffffffu, &id, 4), -EINVAL);
	assert_int_equal(vfio_config_write(d, 0x100, &cmd, 2), -EINVAL);
	/* an unimplemented region */
	assert_int_equal(vfio_region_read(d, 1, 0, &id, 4), -EINVAL);
	assert_int_equal(vfio_region_read(d, 9, 0, &id, 4), -EINVAL);
	assert_int_equal(vfio_region_read(d, 0, 0x3ffc, &id, 4), 0);
	assert_all_undone(x);
}

static void test_msix_eventfds(void **state)
{
	struct fx *x = *state;
	const int32_t fds[6] = { 30, 31, -1, 33, 34, 35 };
	struct vfio_device *d;

	vfio_pci_device(x->f, "0000:00:04.0", 7);
	assert_int_equal(vfio_device_open(x->c, "00:04.0", &d, x->why, sizeof(x->why)), 0);
	assert_int_equal(vfio_msix_enable(d, fds, 6), -EINVAL); /* 5 vectors */
	assert_int_equal(vfio_msix_enable(d, fds, 0), -EINVAL);
	assert_int_equal(vfio_msix_enable(d, NULL, 2), -EINVAL);
	assert_false(x->f->irq_on);
	assert_int_equal(vfio_msix_enable(d, fds, 4), 0);
	assert_true(x->f->irq_on);
	assert_int_equal(x->f->irq_count, 4);
	assert_memory_equal(x->f->irq_fds, fds, 4 * sizeof(int32_t));
	assert_int_equal(vfio_msix_disable(d), 0);
	assert_false(x->f->irq_on);
	assert_int_equal(vfio_msix_enable(d, fds, 5), 0);
	assert_int_equal(x->f->irq_count, 5);
	assert_all_undone(x);
	assert_false(x->f->irq_on);
}

/* MSI: one vector on index 1, not while MSI-X is on, nor without MSI;
 * close turns it off. */
static void test_msi_eventfd(void **state)
{
	struct fx *x = *state;
	const int32_t fds[1] = { 30 };
	struct vfio_device *d;

	x->f->msi_count = 1;
	vfio_pci_device(x->f, "0000:00:04.0", 7);
	assert_int_equal(vfio_device_open(x->c, "00:04.0", &d, x->why, sizeof(x->why)), 0);
	assert_int_equal(vfio_device_msi_count(d), 1);
	assert_int_equal(vfio_msix_enable(d, fds, 1), 0);
	assert_int_equal(vfio_msi_enable(d, 40), -EINVAL);
	assert_int_equal(vfio_msix_disable(d), 0);
	assert_int_equal(vfio_msi_enable(d, 40), 0);
	assert_true(x->f->irq_on);
	assert_int_equal(x->f->irq_index, VFIO_PCI_MSI_IRQ_INDEX);
	assert_int_equal(x->f->irq_count, 1);
	assert_int_equal(x->f->irq_fds[0], 40);
	assert_int_equal(vfio_msi_disable(d), 0);
	assert_false(x->f->irq_on);
	assert_int_equal(vfio_msi_enable(d, 41), 0);
	assert_all_undone(x); /* closed while on */
	assert_false(x->f->irq_on);
	assert_int_equal(x->f->errors, 0);
}

static void test_no_msi_offered(void **state)
{
	struct fx *x = *state;
	struct vfio_device *d;

	x->f->msi_count = 0;
	vfio_pci_device(x->f, "0000:00:04.0", 7);
	assert_int_equal(vfio_device_open(x->c, "00:04.0", &d, x->why, sizeof(x->why)), 0);
	assert_int_equal(vfio_device_msi_count(d), 0);
	assert_int_equal(vfio_msi_enable(d, 40), -EINVAL);
	assert_false(x->f->irq_on);
	assert_all_undone(x);
}

static void test_no_reset_when_not_supported(void **state)
{
	struct fx *x = *state;
	struct vfio_device *d;

	x->f->dev_flags = VFIO_DEVICE_FLAGS_PCI;
	vfio_pci_device(x->f, "0000:00:04.0", 7);
	assert_int_equal(vfio_device_open(x->c, "00:04.0", &d, x->why, sizeof(x->why)), 0);
	assert_false(vfio_device_can_reset(d));
	assert_int_equal(vfio_device_reset(d), -ENOTTY);
	vfio_device_close(d);
	assert_int_equal(x->f->resets, 0);
	assert_all_undone(x);
}

/* ---- group viability ---- */

static void test_group_members_allowed(void **state)
{
	struct fx *x = *state;
	struct vfio_device *d;

	vfio_pci_device(x->f, "0000:00:04.0", 7);
	fake_sysfs_device(x->f, "0000:00:04.1", 7, NULL, 0x040300);          /* no driver */
	fake_sysfs_device(x->f, "0000:00:04.2", 7, "pci-stub", 0x0c0330);
	fake_sysfs_device(x->f, "0000:00:1c.0", 7, "pcieport", 0x060400);
	fake_sysfs_device(x->f, "0000:00:1e.0", 7, "shpchp", 0x060401);    /* a bridge */
	fake_sysfs_device(x->f, "0000:00:04.3", 7, "mlx5_vfio_pci", 0x020000);
	assert_int_equal(vfio_device_open(x->c, "00:04.0", &d, x->why, sizeof(x->why)), 0);
	assert_all_undone(x);
}

static void test_type1_without_v2(void **state)
{
	struct fx *x = *state;
	struct vfio_device *d;

	x->f->type1v2 = false;
	vfio_pci_device(x->f, "0000:00:04.0", 7);
	assert_int_equal(vfio_device_open(x->c, "00:04.0", &d, x->why, sizeof(x->why)), 0);
	assert_int_equal(x->f->iommu, VFIO_TYPE1_IOMMU);
	assert_non_null(strstr(x->f->log, "EXT(3) EXT(1) open(/dev/vfio/7)"));
	assert_all_undone(x);
}

static void test_memlock_enough_or_capable(void **state)
{
	struct fx *x = *state;
	struct vfio_device *d;

	vfio_pci_device(x->f, "0000:00:04.0", 7);
	x->f->memlock = (struct rlimit){ 3 * MIB, 3 * MIB }; /* exactly guest RAM */
	assert_int_equal(vfio_device_open(x->c, "00:04.0", &d, x->why, sizeof(x->why)), 0);
	vfio_device_close(d);
	x->f->memlock = (struct rlimit){ 0, 0 };
	x->f->ipc_lock = true; /* CAP_IPC_LOCK: no limit for VFIO's pins */
	assert_int_equal(vfio_device_open(x->c, "00:04.0", &d, x->why, sizeof(x->why)), 0);
	assert_all_undone(x);
}

/* ---- each error, with its one line ---- */

static void test_err_not_an_address(void **state)
{
	expect_fail(*state, "00:4", EINVAL,
		    "vfio: \"00:4\" is not a PCI address (0000:00:04.0 or 00:04.0) nor a "
		    "/sys/bus/pci/devices/ path");
}

static void test_err_no_such_device(void **state)
{
	expect_fail(*state, "0000:00:09.0", ENOENT,
		    "vfio 0000:00:09.0: no such PCI device (/sys/bus/pci/devices/0000:00:09.0 does "
		    "not exist)");
}

static void test_err_no_iommu_group(void **state)
{
	struct fx *x = *state;

	fake_sysfs_device(x->f, "0000:00:04.0", -1, "nvme", 0x010802);
	expect_fail(x, "00:04.0", ENODEV,
		    "vfio 0000:00:04.0: no IOMMU group: the host's IOMMU is off (enable VT-d or "
		    "AMD-Vi in the firmware and boot with intel_iommu=on or amd_iommu=on)");
}

static void test_err_bound_to_other_driver(void **state)
{
	struct fx *x = *state;

	fake_sysfs_device(x->f, "0000:00:04.0", 7, "nvme", 0x010802);
	expect_fail(x, "00:04.0", ENXIO,
		    "vfio 0000:00:04.0 is bound to nvme, not vfio-pci; rebind it (as root, after "
		    "modprobe vfio-pci): echo vfio-pci > /sys/bus/pci/devices/0000:00:04.0/"
		    "driver_override; echo 0000:00:04.0 > /sys/bus/pci/devices/0000:00:04.0/driver/"
		    "unbind; echo 0000:00:04.0 > /sys/bus/pci/drivers_probe");
	assert_string_equal(x->f->log, ""); /* /dev/vfio never touched */
}

static void test_err_bound_to_no_driver(void **state)
{
	struct fx *x = *state;

	fake_sysfs_device(x->f, "0000:00:04.0", 7, NULL, 0x010802);
	expect_fail(x, "00:04.0", ENXIO,
		    "vfio 0000:00:04.0 is bound to no driver, not vfio-pci; bind it (as root, after "
		    "modprobe vfio-pci): echo vfio-pci > /sys/bus/pci/devices/0000:00:04.0/"
		    "driver_override; echo 0000:00:04.0 > /sys/bus/pci/drivers_probe");
}

static void test_err_group_member_bound_elsewhere(void **state)
{
	struct fx *x = *state;

	vfio_pci_device(x->f, "0000:00:04.0", 7);
	fake_sysfs_device(x->f, "0000:00:1c.0", 7, "pcieport", 0x060400);
	fake_sysfs_device(x->f, "0000:00:04.1", 7, "snd_hda_intel", 0x040300);
	expect_fail(x, "00:04.0", EPERM,
		    "vfio 0000:00:04.0: its IOMMU group 7 also holds 0000:00:04.1, bound to "
		    "snd_hda_intel, not vfio-pci: the group goes to the guest whole, so bind every "
		    "device in /sys/kernel/iommu_groups/7/devices to vfio-pci (or unbind it)");
	assert_string_equal(x->f->log, "");
}

static void test_err_no_dev_vfio(void **state)
{
	struct fx *x = *state;

	x->f->no_container = true;
	vfio_pci_device(x->f, "0000:00:04.0", 7);
	expect_fail(x, "00:04.0", ENODEV,
		    "vfio: /dev/vfio/vfio does not exist: no VFIO or no IOMMU on this host (modprobe "
		    "vfio-pci; enable the IOMMU (VT-d or AMD-Vi in the firmware, and boot with "
		    "intel_iommu=on or amd_iommu=on))");
}

static void test_err_api_version(void **state)
{
	struct fx *x = *state;

	x->f->api_version = 1;
	vfio_pci_device(x->f, "0000:00:04.0", 7);
	expect_fail(x, "00:04.0", EPROTONOSUPPORT,
		    "vfio: /dev/vfio/vfio speaks VFIO API 1, not 0");
}

static void test_err_no_type1(void **state)
{
	struct fx *x = *state;

	x->f->type1v2 = x->f->type1 = false;
	vfio_pci_device(x->f, "0000:00:04.0", 7);
	expect_fail(x, "00:04.0", ENODEV,
		    "vfio: the kernel's VFIO has no type-1 IOMMU backend: enable the IOMMU (VT-d or "
		    "AMD-Vi in the firmware, and boot with intel_iommu=on or amd_iommu=on), and "
		    "modprobe vfio_iommu_type1");
	assert_string_equal(x->f->log, "open(/dev/vfio/vfio) API EXT(3) EXT(1) close(container)");
}

static void test_err_memlock_too_low(void **state)
{
	struct fx *x = *state;

	x->f->memlock = (struct rlimit){ MIB, 4 * MIB };
	vfio_pci_device(x->f, "0000:00:04.0", 7);
	expect_fail(x, "00:04.0", ENOMEM,
		    "vfio 0000:00:04.0: VFIO pins all guest RAM: 3 MiB of locked memory needed, "
		    "RLIMIT_MEMLOCK is 1 MiB (raise it: ulimit -l 3072, or LimitMEMLOCK=3M in the "
		    "systemd unit)");
	assert_string_equal(x->f->log, ""); /* checked before anything is opened */
}

static void test_err_map_dma_enomem(void **state)
{
	struct fx *x = *state;

	/* The limit looks high enough, but the kernel runs out (memory the
	 * process locked already): the second slot's mapping fails. */
	x->f->memlock = (struct rlimit){ 8 * MIB, 8 * MIB };
	x->f->map_err = ENOMEM;
	x->f->map_err_after = 1;
	vfio_pci_device(x->f, "0000:00:04.0", 7);
	expect_fail(x, "00:04.0", ENOMEM,
		    "vfio 0000:00:04.0: VFIO pins all guest RAM: 3 MiB of locked memory needed, "
		    "RLIMIT_MEMLOCK is 8 MiB (raise it: ulimit -l 3072, or LimitMEMLOCK=3M in the "
		    "systemd unit)");
	assert_non_null(strstr(x->f->log, "MAP(0x100000000+0x200000) UNMAP(0x0+0x100000) "
					  "UNSET_CONTAINER close(group)"));
}

static void test_err_map_dma_other(void **state)
{
	struct fx *x = *state;

	x->f->map_err = EINVAL;
	vfio_pci_device(x->f, "0000:00:04.0", 7);
	expect_fail(x, "00:04.0", EINVAL,
		    "vfio 0000:00:04.0: VFIO_IOMMU_MAP_DMA of guest RAM at 0x0 (1 MiB): Invalid "
		    "argument");
}

static void test_err_group_busy(void **state)
{
	struct fx *x = *state;

	x->f->group_open_err = EBUSY;
	vfio_pci_device(x->f, "0000:00:04.0", 7);
	expect_fail(x, "00:04.0", EBUSY,
		    "vfio 0000:00:04.0: IOMMU group 7 (/dev/vfio/7) is busy: another process has it");
}

static void test_err_group_permission(void **state)
{
	struct fx *x = *state;

	x->f->group_open_err = EACCES;
	vfio_pci_device(x->f, "0000:00:04.0", 7);
	expect_fail(x, "00:04.0", EACCES,
		    "vfio 0000:00:04.0: /dev/vfio/7: permission denied (give this user read and "
		    "write access to it, or run as root)");
}

static void test_err_group_not_viable(void **state)
{
	struct fx *x = *state;

	x->f->not_viable = true;
	vfio_pci_device(x->f, "0000:00:04.0", 7);
	expect_fail(x, "00:04.0", EPERM,
		    "vfio 0000:00:04.0: IOMMU group 7 is not viable: bind every device in "
		    "/sys/kernel/iommu_groups/7/devices to vfio-pci");
}

static void test_err_not_pci(void **state)
{
	struct fx *x = *state;

	x->f->dev_flags = VFIO_DEVICE_FLAGS_PLATFORM;
	vfio_pci_device(x->f, "0000:00:04.0", 7);
	expect_fail(x, "00:04.0", ENODEV, "vfio 0000:00:04.0: not a vfio-pci device (flags 0x4)");
}

static void test_err_given_twice(void **state)
{
	struct fx *x = *state;
	struct vfio_device *d, *again = (void *)1;

	vfio_pci_device(x->f, "0000:00:04.0", 7);
	assert_int_equal(vfio_device_open(x->c, "00:04.0", &d, x->why, sizeof(x->why)), 0);
	assert_int_equal(vfio_device_open(x->c, "/sys/bus/pci/devices/0000:00:04.0", &again, x->why,
					  sizeof(x->why)), -EEXIST);
	assert_null(again);
	assert_string_equal(x->why, "vfio 0000:00:04.0: given twice");
	assert_all_undone(x);
}

static void test_err_device_fd(void **state)
{
	struct fx *x = *state;

	x->f->device_fd_err = EBUSY;
	vfio_pci_device(x->f, "0000:00:04.0", 7);
	expect_fail(x, "00:04.0", EBUSY,
		    "vfio 0000:00:04.0: VFIO_GROUP_GET_DEVICE_FD: Device or resource busy");
}

static void test_why_may_be_null_or_short(void **state)
{
	struct fx *x = *state;
	struct vfio_device *d;
	char tiny[8];

	assert_int_equal(vfio_device_open(x->c, "nope", &d, NULL, 0), -EINVAL);
	assert_int_equal(vfio_device_open(x->c, "0000:00:09.0", &d, tiny, sizeof(tiny)), -ENOENT);
	assert_string_equal(tiny, "vfio 00");
	assert_int_equal(vfio_device_open(x->c, NULL, &d, x->why, sizeof(x->why)), -EINVAL);
	assert_all_undone(x);
}

/* ---- answers no honest kernel gives ---- */

static void expect_malformed(struct fx *x, const char *what)
{
	char msg[WHY_LEN];

	vfio_pci_device(x->f, "0000:00:04.0", 7);
	snprintf(msg, sizeof(msg),
		 "vfio 0000:00:04.0: region 2: malformed VFIO_DEVICE_GET_REGION_INFO answer (%s)",
		 what);
	expect_fail(x, "00:04.0", EINVAL, msg);
}

static void test_hostile_cap_loop(void **state)
{
	struct fx *x = *state;
	uint8_t caps[64] __attribute__((aligned(8)));
	size_t n;

	/* The sparse list names itself as the next capability. */
	n = fake_sparse_cap(caps, sizeof(struct vfio_region_info), 0, NULL);
	fake_region(x->f, 2, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_MMAP, 0x10000, caps, n);
	expect_malformed(x, "capability chain goes backwards");
}

static void test_hostile_cap_two_loop(void **state)
{
	struct fx *x = *state;
	struct vfio_info_cap_header caps[2] = {
		{ .id = VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, .version = 1, .next = 32 + 8 },
		{ .id = VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, .version = 1, .next = 32 },
	};

	fake_region(x->f, 2, VFIO_REGION_INFO_FLAG_READ, 0x10000, caps, sizeof(caps));
	expect_malformed(x, "capability chain goes backwards");
}

static void test_hostile_cap_beyond(void **state)
{
	struct fx *x = *state;
	struct vfio_info_cap_header cap = {
		.id = VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, .version = 1, .next = 0x10000,
	};

	fake_region(x->f, 2, VFIO_REGION_INFO_FLAG_READ, 0x10000, &cap, sizeof(cap));
	expect_malformed(x, "capability outside the answer");
}

static void test_hostile_raw_argsz_lies(void **state)
{
	struct fx *x = *state;
	struct vfio_region_info info = {
		.argsz = 0xffffffffu, .flags = VFIO_REGION_INFO_FLAG_CAPS, .index = 2,
		.cap_offset = 0x1000, .size = 0x1000, .offset = FAKE_REGION_OFFSET(2),
	};

	/* argsz far beyond what is believed, a chain past what was written */
	memcpy(x->f->region[2].info, &info, sizeof(info));
	x->f->region[2].len = sizeof(info);
	x->f->region[2].raw = true;
	expect_malformed(x, "capability outside the answer");
}

static void test_hostile_raw_argsz_short(void **state)
{
	struct fx *x = *state;
	struct vfio_region_info info = { .argsz = 4, .index = 2, .size = 0x1000 };

	memcpy(x->f->region[2].info, &info, sizeof(info));
	x->f->region[2].len = sizeof(info);
	x->f->region[2].raw = true;
	expect_malformed(x, "shorter than struct vfio_region_info");
}

static void test_hostile_raw_argsz_grows(void **state)
{
	struct fx *x = *state;
	uint8_t blob[256];
	struct vfio_region_info info = {
		.argsz = 200, .flags = VFIO_REGION_INFO_FLAG_CAPS | VFIO_REGION_INFO_FLAG_READ,
		.index = 2, .cap_offset = 180, .size = 0x1000, .offset = FAKE_REGION_OFFSET(2),
	};

	/* Asks for 200 bytes, then claims a chain starting at 180 with a
	 * header that would end past the 200: only 200 bytes are read. */
	memset(blob, 0xff, sizeof(blob));
	memcpy(blob, &info, sizeof(info));
	memcpy(x->f->region[2].info, blob, sizeof(blob));
	x->f->region[2].len = 196; /* the kernel writes less than it said */
	x->f->region[2].raw = true;
	expect_malformed(x, "capability outside the answer");
}

static void test_hostile_sparse_counts(void **state)
{
	struct fx *x = *state;
	uint8_t caps[64] __attribute__((aligned(8)));
	size_t n = fake_sparse_cap(caps, 0, 0, NULL);
	struct vfio_region_info_cap_sparse_mmap *cap = (void *)caps;

	cap->nr_areas = 1000000;
	fake_region(x->f, 2, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_MMAP, 0x10000, caps, n);
	expect_malformed(x, "too many sparse-mmap areas");
}

static void test_hostile_sparse_areas_cut(void **state)
{
	struct fx *x = *state;
	uint8_t caps[64] __attribute__((aligned(8)));
	size_t n = fake_sparse_cap(caps, 0, 0, NULL);
	struct vfio_region_info_cap_sparse_mmap *cap = (void *)caps;

	cap->nr_areas = 3; /* says three, the answer holds none */
	fake_region(x->f, 2, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_MMAP, 0x10000, caps, n);
	expect_malformed(x, "sparse-mmap areas beyond the answer");
}

static void test_hostile_sparse_area_outside(void **state)
{
	static const uint64_t areas[1][2] = { { 0xf000, 0xffffffffffff2000ULL } };
	struct fx *x = *state;
	uint8_t caps[64] __attribute__((aligned(8)));
	size_t n = fake_sparse_cap(caps, 0, 1, areas);

	fake_region(x->f, 2, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_MMAP, 0x10000, caps, n);
	expect_malformed(x, "sparse-mmap area outside the region");
}

static void test_hostile_region_offset(void **state)
{
	struct fx *x = *state;
	struct vfio_region_info info = {
		.argsz = sizeof(info), .index = 2, .size = 0x1000, .offset = ~0ULL - 0x10,
	};

	memcpy(x->f->region[2].info, &info, sizeof(info));
	x->f->region[2].len = sizeof(info);
	x->f->region[2].raw = true;
	expect_malformed(x, "region beyond the largest file offset");
}

static void test_hostile_irq_and_regions(void **state)
{
	struct fx *x = *state;
	struct vfio_device *d;

	x->f->msix_count = 0xffffffffu;
	vfio_pci_device(x->f, "0000:00:04.0", 7);
	assert_int_equal(vfio_device_open(x->c, "00:04.0", &d, x->why, sizeof(x->why)), 0);
	assert_int_equal(vfio_device_msix_count(d), 2048); /* PCI's most */
	vfio_device_close(d);
	x->f->msix_flags = 0; /* vectors, but no eventfd signalling */
	assert_int_equal(vfio_device_open(x->c, "00:04.0", &d, x->why, sizeof(x->why)), 0);
	assert_int_equal(vfio_device_msix_count(d), 0);
	vfio_device_close(d);
	x->f->num_regions = 3;
	expect_fail(x, "00:04.0", ENODEV,
		    "vfio 0000:00:04.0: the device has 3 regions, a PCI device at least 8");
}

static void test_hostile_positive_returns(void **state)
{
	struct fx *x = *state;
	const int32_t fds[1] = { 7 };
	struct vfio_device *d;

	/* Success is any return that is not negative: a positive one from
	 * an info ioctl is not taken for an error (or returned as one). */
	x->f->ok_ret = 5;
	vfio_pci_device(x->f, "0000:00:04.0", 7);
	assert_int_equal(vfio_device_open(x->c, "00:04.0", &d, x->why, sizeof(x->why)), 0);
	assert_int_equal(vfio_device_region(d, 2)->nr_areas, 2);
	assert_int_equal(vfio_device_reset(d), 0);
	assert_int_equal(vfio_msix_enable(d, fds, 1), 0);
	assert_int_equal(vfio_msix_disable(d), 0);
	assert_all_undone(x);
}

/* ---- the region-info parser alone ---- */

/* An answer: info then caps, into buf; its length. */
static size_t answer(uint8_t *buf, uint32_t flags, uint64_t size, const void *caps,
		     size_t caps_len)
{
	struct vfio_region_info info = {
		.argsz = (uint32_t)(sizeof(info) + caps_len), .flags = flags,
		.cap_offset = caps_len ? sizeof(info) : 0, .size = size, .offset = 0x1000,
	};

	memcpy(buf, &info, sizeof(info));
	memcpy(buf + sizeof(info), caps, caps_len);
	return sizeof(info) + caps_len;
}

static void test_parse_regions(void **state)
{
	static const uint64_t two[2][2] = { { 0, 0x1000 }, { 0x2000, 0x2000 } };
	static const uint64_t overlap[2][2] = { { 0, 0x2000 }, { 0x1000, 0x1000 } };
	static const uint64_t empty_one[2][2] = { { 0, 0 }, { 0x1000, 0x1000 } };
	const uint32_t mm = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_MMAP |
			    VFIO_REGION_INFO_FLAG_CAPS;
	uint8_t caps[256] __attribute__((aligned(8))), buf[512] __attribute__((aligned(8)));
	struct vfio_region_info_cap_sparse_mmap *sp = (void *)caps;
	struct vfio_info_cap_header *h;
	struct vfio_region r;
	const char *bad = NULL;
	size_t n, len;

	/* sparse, then MSIX_MAPPABLE */
	n = fake_sparse_cap(caps, 32 + 48, 2, two);
	h = (void *)(caps + n);
	*h = (struct vfio_info_cap_header){ .id = VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, .version = 1 };
	len = answer(buf, mm, 0x4000, caps, n + sizeof(*h));
	assert_int_equal(vfio_region_parse(buf, len, &r, &bad), 0);
	assert_true(r.sparse && r.msix_mappable);
	assert_int_equal(r.nr_areas, 2);
	assert_int_equal(r.areas[1].offset, 0x2000);
	assert_int_equal(r.offset, 0x1000);
	vfio_region_free(&r);
	/* the same answer cut one byte short of the last capability */
	assert_int_equal(vfio_region_parse(buf, len - 1, &r, &bad), -EINVAL);
	assert_string_equal(bad, "capability outside the answer");
	assert_null(r.areas);
	/* sparse list of a region that may not be mmap'ed: no areas */
	n = fake_sparse_cap(caps, 0, 2, two);
	len = answer(buf, VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_CAPS, 0x4000, caps, n);
	assert_int_equal(vfio_region_parse(buf, len, &r, &bad), 0);
	assert_int_equal(r.nr_areas, 0);
	vfio_region_free(&r);
	/* an empty area is dropped */
	n = fake_sparse_cap(caps, 0, 2, empty_one);
	len = answer(buf, mm, 0x4000, caps, n);
	assert_int_equal(vfio_region_parse(buf, len, &r, &bad), 0);
	assert_int_equal(r.nr_areas, 1);
	assert_int_equal(r.areas[0].offset, 0x1000);
	vfio_region_free(&r);
	/* a sparse list of another version: nothing is mmap'ed */
	n = fake_sparse_cap(caps, 0, 2, two);
	sp->header.version = 2;
	len = answer(buf, mm, 0x4000, caps, n);
	assert_int_equal(vfio_region_parse(buf, len, &r, &bad), 0);
	assert_int_equal(r.nr_areas, 0);
	assert_false(r.sparse);
	vfio_region_free(&r);
	/* overlapping areas */
	n = fake_sparse_cap(caps, 0, 2, overlap);
	len = answer(buf, mm, 0x4000, caps, n);
	assert_int_equal(vfio_region_parse(buf, len, &r, &bad), -EINVAL);
	assert_string_equal(bad, "sparse-mmap areas overlap");
	/* two sparse lists */
	n = fake_sparse_cap(caps, 32 + 48, 2, two);
	fake_sparse_cap(caps + n, 0, 2, two);
	len = answer(buf, mm, 0x4000, caps, 2 * n);
	assert_int_equal(vfio_region_parse(buf, len, &r, &bad), -EINVAL);
	assert_string_equal(bad, "two sparse-mmap capabilities");
	/* an unknown capability is stepped over */
	h = (void *)caps;
	*h = (struct vfio_info_cap_header){ .id = 99, .version = 7, .next = 32 + 16 };
	fake_sparse_cap(caps + 16, 0, 2, two);
	len = answer(buf, mm, 0x4000, caps, 16 + n);
	assert_int_equal(vfio_region_parse(buf, len, &r, &bad), 0);
	assert_int_equal(r.nr_areas, 2);
	vfio_region_free(&r);
	/* a capability inside the fixed part */
	len = answer(buf, mm, 0x4000, caps, n);
	((struct vfio_region_info *)buf)->cap_offset = 8;
	assert_int_equal(vfio_region_parse(buf, len, &r, &bad), -EINVAL);
	assert_string_equal(bad, "capability outside the answer");
	/* too short, NULL */
	assert_int_equal(vfio_region_parse(buf, 31, &r, &bad), -EINVAL);
	assert_int_equal(vfio_region_parse(NULL, 64, &r, NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_address),
		cmocka_unit_test(test_parse_regions),
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_open_sequence_and_dma),
		T(test_region_table),
		T(test_sysfs_path_names),
		T(test_devices_share_one_container),
		T(test_reopen_after_all_closed),
		T(test_close_undoes_everything),
		T(test_destroy_closes_open_devices),
		T(test_map_region),
		T(test_map_region_unaligned_area),
		T(test_config_space),
		T(test_msix_eventfds),
		T(test_msi_eventfd),
		T(test_no_msi_offered),
		T(test_no_reset_when_not_supported),
		T(test_group_members_allowed),
		T(test_type1_without_v2),
		T(test_memlock_enough_or_capable),
		T(test_err_not_an_address),
		T(test_err_no_such_device),
		T(test_err_no_iommu_group),
		T(test_err_bound_to_other_driver),
		T(test_err_bound_to_no_driver),
		T(test_err_group_member_bound_elsewhere),
		T(test_err_no_dev_vfio),
		T(test_err_api_version),
		T(test_err_no_type1),
		T(test_err_memlock_too_low),
		T(test_err_map_dma_enomem),
		T(test_err_map_dma_other),
		T(test_err_group_busy),
		T(test_err_group_permission),
		T(test_err_group_not_viable),
		T(test_err_not_pci),
		T(test_err_given_twice),
		T(test_err_device_fd),
		T(test_why_may_be_null_or_short),
		T(test_hostile_cap_loop),
		T(test_hostile_cap_two_loop),
		T(test_hostile_cap_beyond),
		T(test_hostile_raw_argsz_lies),
		T(test_hostile_raw_argsz_short),
		T(test_hostile_raw_argsz_grows),
		T(test_hostile_sparse_counts),
		T(test_hostile_sparse_areas_cut),
		T(test_hostile_sparse_area_outside),
		T(test_hostile_region_offset),
		T(test_hostile_irq_and_regions),
		T(test_hostile_positive_returns),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
