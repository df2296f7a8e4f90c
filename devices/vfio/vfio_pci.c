/* SPDX-License-Identifier: MIT */
/*
 * An assigned device as a PCI function (see vfio_pci.h for what the guest
 * sees). What is emulated and why:
 * - BARs: the guest must be able to size and place them in this VM's
 *   windows, which have nothing to do with where the host put them.
 * - MSI-X: a vector's message is a guest address and data; the host's
 *   interrupt remapping knows nothing of it. The guest's table becomes KVM
 *   MSI routes, and VFIO signals an eventfd per vector that an irqfd turns
 *   into the route's interrupt, without passing through this process.
 *   While the guest masks a vector, VFIO signals a second eventfd, which
 *   the I/O thread turns into the vector's pending bit: the interrupt goes
 *   out when the guest unmasks it, not lost on a GSI without a route.
 * - MSI, for a device without MSI-X: the same with one vector, which
 *   cannot be masked (msi.h), so its route is there whenever MSI is on.
 *   A device with both gets MSI-X only: one mechanism to route.
 * - Capabilities: the device's list, at the device's offsets, less MSI
 *   when it has MSI-X. Their registers (power management, PCI Express,
 *   vendor-specific ones) are the device's: reads and writes go to it
 *   through VFIO, which filters what a guest may change. Only the list's
 *   links are this file's, and MSI-X or MSI. INTx is not offered (it would
 *   need an interrupt line of its own, and a level to follow).
 * Everything else the guest touches goes to the device.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/pci/msi.h"
#include "devices/pci/msix.h"
#include "devices/vfio/vfio_pci.h"
#include "utils.h"
#include "vm.h"

#define PCI_HEADER_TYPE_MASK 0x7f
#define PCI_ROM_ADDRESS 0x30
#define PCI_CAP_FLAGS 2        /* a capability's own registers start here */
#define CONFIG_BYTES 256       /* the part of configuration space read */
#define MAX_CAPS 48            /* more than fit in 192 bytes: a loop */
/* Device-memory mappings of one BAR: its mmap-able areas, each cut in up
 * to three around the MSI-X table's and PBA's pages. */
#define MAX_BAR_MAPS (VFIO_REGION_MAX_AREAS + 4)

struct vfio_pci {
	struct pci_function f;
	struct pci_msix msix;
	struct pci_msi msi;                              /* without MSI-X only */
	bool uses_msi;                                   /* MSI, not MSI-X */
	struct vm *vm;
	struct vfio_device *dev;
	pthread_mutex_t lock;                            /* maps, msix_on, routed */
	int maps[PCI_NR_BARS][MAX_BAR_MAPS];             /* devmem handles; -1: none */
	uint16_t nr_vectors;
	uint32_t gsi_base;                               /* vector i: GSI gsi_base + i */
	int32_t *vector_fd;                              /* an irqfd on the vector's GSI */
	int32_t *held_fd;                                /* masked: interrupts come here */
	int held_epoll;                                  /* every held_fd; -1: none */
	bool held_watched;                               /* by the I/O thread */
	bool config_write_failed;                        /* and said so */
	bool *routed;                                    /* the vector has a route */
	bool msix_on, msi_on;                            /* in VFIO */
	uint8_t passthrough[CONFIG_BYTES / 8];           /* config bytes that are the device's */
};

static struct vfio_pci *of(struct pci_function *f)
{
	return f->opaque;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)le16(p) | (uint32_t)le16(p + 2) << 16;
}

/* ---- BAR accesses and mappings ---- */

static int bar_read(struct pci_function *f, int bar, uint64_t off, void *data, size_t size)
{
	struct vfio_pci *p = of(f);

	if (bar == p->msix.bar && pci_msix_owns(&p->msix, off)) {
		pci_msix_bar_read(&p->msix, off, data, size);
		return 0;
	}
	return vfio_region_read(p->dev, (unsigned)bar, off, data, size);
}

static int bar_write(struct pci_function *f, int bar, uint64_t off, const void *data,
		     size_t size)
{
	struct vfio_pci *p = of(f);

	if (bar == p->msix.bar && pci_msix_owns(&p->msix, off)) {
		pci_msix_bar_write(&p->msix, off, data, size);
		return 0;
	}
	return vfio_region_write(p->dev, (unsigned)bar, off, data, size);
}

/* BAR `bar`'s device memory out of the guest (lock held). */
static void unmap_bar(struct vfio_pci *p, int bar)
{
	for (int i = 0; i < MAX_BAR_MAPS; i++) {
		if (p->maps[bar][i] < 0)
			continue;
		vm_unmap_device_memory(p->vm, p->maps[bar][i]);
		p->maps[bar][i] = -1;
	}
}

/* One piece of device memory for BAR `bar`: [off, end) of the BAR, host
 * mapping hva for off, into the next free handle (lock held). A piece that
 * cannot be mapped is left to bar_read/bar_write: slower, still right. */
static void map_piece(struct vfio_pci *p, int bar, uint64_t addr, uint64_t off, uint64_t end,
		      uint8_t *hva)
{
	int h, i;

	if (end <= off)
		return;
	for (i = 0; i < MAX_BAR_MAPS && p->maps[bar][i] >= 0; i++)
		;
	h = i < MAX_BAR_MAPS ? vm_map_device_memory(p->vm, addr + off, hva, end - off) : -ENOSPC;
	if (h < 0) {
		vm_warn(p->vm, "vfio %s: BAR %d at 0x%llx: not mapped (%s), its accesses trap",
			vfio_device_address(p->dev), bar, (unsigned long long)(addr + off),
			strerror(-h));
		return;
	}
	p->maps[bar][i] = h;
}

/* The pages of BAR `bar` that must trap: the MSI-X table's and PBA's,
 * which the guest programs with its own messages (VFIO may let them be
 * mapped, when the host remaps interrupts, but then the guest's writes
 * would reach the device's real table). Up to two [start, end). */
static int trapped_pages(const struct vfio_pci *p, int bar, uint64_t page, uint64_t (*hole)[2])
{
	const struct pci_msix *m = &p->msix;
	uint64_t t0 = ALIGN_DOWN((uint64_t)m->table_off, page),
		 t1 = ALIGN_UP((uint64_t)m->table_off + m->nr * PCI_MSIX_ENTRY_SIZE, page),
		 b0 = ALIGN_DOWN((uint64_t)m->pba_off, page),
		 b1 = ALIGN_UP((uint64_t)m->pba_off + ALIGN_UP(m->nr, 64u) / 8, page);

	if (bar != m->bar || !m->nr)
		return 0;
	if (b0 < t0) { /* in order */
		uint64_t x0 = t0, x1 = t1;

		t0 = b0, t1 = b1, b0 = x0, b1 = x1;
	}
	if (b0 <= t1) { /* touching or overlapping: one hole */
		hole[0][0] = t0, hole[0][1] = MAX(t1, b1);
		return 1;
	}
	hole[0][0] = t0, hole[0][1] = t1, hole[1][0] = b0, hole[1][1] = b1;
	return 2;
}

/* The mmap-able parts of BAR `bar`'s region at `addr` in the guest, less
 * the trapped pages (lock held). */
static void map_bar(struct vfio_pci *p, int bar, uint64_t addr)
{
	const struct vfio_region *r = vfio_device_region(p->dev, (unsigned)bar);
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), hole[2][2];
	int holes = trapped_pages(p, bar, page, hole);

	for (uint32_t i = 0; r && i < r->nr_areas; i++) {
		const struct vfio_mmap_area *a = &r->areas[i];
		uint64_t off = a->offset, end = a->offset + a->size;

		if (!a->map || (a->offset | a->size) & (page - 1))
			continue;
		for (int h = 0; h < holes; h++) {
			if (hole[h][1] <= off || hole[h][0] >= end)
				continue;
			map_piece(p, bar, addr, off, hole[h][0], (uint8_t *)a->map + (off - a->offset));
			off = MAX(off, hole[h][1]);
		}
		map_piece(p, bar, addr, off, end, (uint8_t *)a->map + (off - a->offset));
	}
}

static void bar_moved(struct pci_function *f, int bar, uint64_t addr, bool enabled)
{
	struct vfio_pci *p = of(f);

	pthread_mutex_lock(&p->lock);
	unmap_bar(p, bar);
	if (enabled)
		map_bar(p, bar, addr);
	pthread_mutex_unlock(&p->lock);
}

/* ---- MSI-X ---- */

static void msix_fire(struct pci_msix *m, uint16_t vec)
{
	struct vfio_pci *p = m->opaque;
	uint64_t one = 1;

	/* Only fails when the counter would overflow: it is raised already. */
	if (vec < p->nr_vectors && write(p->vector_fd[vec], &one, sizeof(one)) < 0)
		return;
}

/* The eventfd VFIO signals for vector vec: the irqfd when routed. */
static int32_t trigger_fd(const struct vfio_pci *p, uint16_t vec)
{
	return p->routed[vec] ? p->vector_fd[vec] : p->held_fd[vec];
}

/* I/O thread: the device raised masked vectors; they become pending
 * (or go out, if the guest unmasked one meanwhile). */
static int held_ready(void *opaque)
{
	struct vfio_pci *p = opaque;
	struct epoll_event ev[16];
	int n = epoll_wait(p->held_epoll, ev, 16, 0);
	uint64_t count;

	for (int i = 0; i < n; i++) {
		uint16_t vec = (uint16_t)ev[i].data.u32;

		if (read(p->held_fd[vec], &count, sizeof(count)) == sizeof(count))
			pci_msix_raise(&p->msix, vec);
	}
	return VM_WATCH_KEEP; /* more than 16: the epoll fd stays readable */
}

/* VFIO's eventfd for vec follows its route (p->lock held). Masking: VFIO
 * is moved off the irqfd before the route goes, so nothing reaches a GSI
 * without one; unmasking: after the route is there (pci_msix then sends
 * what is pending). */
static void follow_route(struct vfio_pci *p, uint16_t vec, bool usable)
{
	int err;

	if (p->routed[vec] == usable)
		return;
	p->routed[vec] = usable;
	if (!p->msix_on)
		return;
	err = vfio_msix_set_vector(p->dev, vec, trigger_fd(p, vec));
	if (err)
		vm_warn(p->vm, "vfio %s: MSI-X vector %u %s: %s", vfio_device_address(p->dev), vec,
			usable ? "unmasked" : "masked", strerror(-err));
}

static void msix_route(struct pci_msix *m, uint16_t vec, bool usable, uint64_t addr,
		       uint32_t data)
{
	struct vfio_pci *p = m->opaque;
	int err = 0;

	if (vec >= p->nr_vectors)
		return;
	pthread_mutex_lock(&p->lock);
	if (usable)
		err = vm_msi_route(p->vm, p->gsi_base + vec, true, addr, data);
	follow_route(p, vec, usable);
	if (!usable)
		err = vm_msi_route(p->vm, p->gsi_base + vec, false, addr, data);
	pthread_mutex_unlock(&p->lock);
	if (err)
		vm_warn(p->vm, "vfio %s: MSI-X vector %u: no route (%s)",
			vfio_device_address(p->dev), vec, strerror(-err));
}

static const struct pci_msix_ops msix_ops = { .route = msix_route, .fire = msix_fire };

/* ---- MSI ---- */

/* The route first, then VFIO's MSI on (signalling the irqfd); off in the
 * other order: VFIO never signals the GSI while it has no route. */
static void msi_route(struct pci_msi *m, bool usable, uint64_t addr, uint32_t data)
{
	struct vfio_pci *p = m->opaque;
	int err = 0;

	pthread_mutex_lock(&p->lock);
	if (usable) {
		err = vm_msi_route(p->vm, p->gsi_base, true, addr, data);
		if (!err && !p->msi_on) {
			err = vfio_msi_enable(p->dev, p->vector_fd[0]);
			p->msi_on = !err;
		}
	} else {
		if (p->msi_on)
			vfio_msi_disable(p->dev);
		p->msi_on = false;
		err = vm_msi_route(p->vm, p->gsi_base, false, addr, data);
	}
	pthread_mutex_unlock(&p->lock);
	if (err)
		vm_warn(p->vm, "vfio %s: MSI %s: %s", vfio_device_address(p->dev),
			usable ? "on" : "off", strerror(-err));
}

static const struct pci_msi_ops msi_ops = { .route = msi_route };

/* VFIO's MSI-X follows the guest's enable bit (lock held). */
static void follow_msix_enable(struct vfio_pci *p)
{
	bool on = pci_cfg_get16(&p->f, p->msix.cap + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_ENABLE;
	int32_t *fds = NULL;
	int err;

	if (on == p->msix_on)
		return;
	if (on) {
		fds = malloc(p->nr_vectors * sizeof(*fds));
		if (!fds) {
			vm_warn(p->vm, "vfio %s: MSI-X on: out of memory", vfio_device_address(p->dev));
			return;
		}
		for (uint16_t i = 0; i < p->nr_vectors; i++)
			fds[i] = trigger_fd(p, i);
	}
	err = on ? vfio_msix_enable(p->dev, fds, p->nr_vectors) : vfio_msix_disable(p->dev);
	free(fds);
	if (err) {
		vm_warn(p->vm, "vfio %s: MSI-X %s: %s", vfio_device_address(p->dev),
			on ? "on" : "off", strerror(-err));
		return;
	}
	p->msix_on = on;
}

/* ---- configuration space ---- */

static bool touches(uint32_t off, uint32_t size, uint32_t reg, uint32_t reg_size)
{
	return off < reg + reg_size && reg < off + size;
}

/* The guest's memory and bus-master bits to the device (bus mastering is
 * its DMA); INTx stays off, nothing routes it. */
static void follow_command(struct vfio_pci *p)
{
	uint16_t mine = pci_cfg_get16(&p->f, PCI_COMMAND), dev;
	const uint16_t follow = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;

	if (vfio_config_read(p->dev, PCI_COMMAND, &dev, sizeof(dev)))
		return;
	dev = (uint16_t)((dev & ~follow) | (mine & follow) | PCI_COMMAND_INTX_DISABLE);
	if (vfio_config_write(p->dev, PCI_COMMAND, &dev, sizeof(dev)))
		vm_warn(p->vm, "vfio %s: cannot write its command register",
			vfio_device_address(p->dev));
}

/* Configuration space here is 4 KiB; the device's part is in the first 256. */
static bool passes(const struct vfio_pci *p, uint32_t off)
{
	return off < CONFIG_BYTES && (p->passthrough[off / 8] >> (off % 8)) & 1;
}

/* The device's own bytes in [off, off + size), in *v. */
static void config_read(struct pci_function *f, uint32_t off, uint32_t size, uint32_t *v)
{
	struct vfio_pci *p = of(f);
	uint8_t dev[4];
	bool any = false;

	for (uint32_t i = 0; i < size; i++)
		any |= passes(p, off + i);
	if (!any)
		return;
	if (vfio_config_read(p->dev, off, dev, size))
		return; /* the emulated bytes (zeros) then */
	for (uint32_t i = 0; i < size; i++)
		if (passes(p, off + i)) {
			*v &= ~(0xffu << (8 * i));
			*v |= (uint32_t)dev[i] << (8 * i);
		}
}

/* The guest's bytes in [off, off + size) that are the device's, to it,
 * a run of them in one write (a register written whole). */
static void pass_write(struct vfio_pci *p, uint32_t off, uint32_t size)
{
	for (uint32_t i = off, run; i < off + size; i += run ? run : 1) {
		for (run = 0; i + run < off + size && passes(p, i + run); run++)
			;
		if (run && vfio_config_write(p->dev, i, &p->f.cfg[i], run) &&
		    !p->config_write_failed) {
			/* once: a guest repeating it must not flood the log */
			p->config_write_failed = true;
			vm_warn(p->vm, "vfio %s: cannot write its configuration at 0x%x "
				"(further failures not reported)", vfio_device_address(p->dev), i);
		}
	}
}

static void config_write(struct pci_function *f, uint32_t off, uint32_t size)
{
	struct vfio_pci *p = of(f);

	if (touches(off, size, PCI_COMMAND, 2))
		follow_command(p);
	pass_write(p, off, size);
	if (p->uses_msi) {
		pci_msi_config_written(&p->msi, off, size);
		return;
	}
	if (touches(off, size, p->msix.cap, PCI_MSIX_CAP_SIZE)) {
		pci_msix_config_written(&p->msix, off, size);
		pthread_mutex_lock(&p->lock);
		follow_msix_enable(p);
		pthread_mutex_unlock(&p->lock);
	}
}

static const struct pci_function_ops function_ops = {
	.bar_read = bar_read, .bar_write = bar_write, .config_read = config_read,
	.config_write = config_write, .bar_moved = bar_moved,
};

/* ---- creation ---- */

/* The device's header: a type-0 function, its identity copied. */
static int init_header(struct vfio_pci *p, const uint8_t *cfg, char *why, size_t len)
{
	uint32_t class_code = (uint32_t)cfg[PCI_CLASS_DEVICE + 1] << 16 |
			      (uint32_t)cfg[PCI_CLASS_DEVICE] << 8 | cfg[PCI_CLASS_PROG];

	if ((cfg[PCI_HEADER_TYPE] & PCI_HEADER_TYPE_MASK) != 0) {
		set_why(why, len, "vfio %s: a bridge (header type %u), not an endpoint",
			vfio_device_address(p->dev), cfg[PCI_HEADER_TYPE] & PCI_HEADER_TYPE_MASK);
		return -EOPNOTSUPP;
	}
	pci_function_init(&p->f, le16(cfg + PCI_VENDOR_ID), le16(cfg + PCI_DEVICE_ID), class_code,
			  le16(cfg + PCI_SUBSYSTEM_VENDOR_ID), le16(cfg + PCI_SUBSYSTEM_ID));
	pci_cfg_set8(&p->f, PCI_REVISION_ID, cfg[PCI_REVISION_ID]);
	p->f.ops = &function_ops;
	p->f.opaque = p;
	return 0;
}

static uint64_t bar_size(uint64_t region_size)
{
	uint64_t size = 4096;

	while (size < region_size && size)
		size <<= 1;
	return size;
}

/* A BAR for each memory BAR of the device, of its kind (the register's
 * type bits, as vfio-pci shows them) and region size. */
static int init_bars(struct vfio_pci *p, struct pci_bus *bus, const uint8_t *cfg, char *why,
		     size_t len)
{
	for (int i = 0; i < PCI_NR_BARS; i++) {
		const struct vfio_region *r = vfio_device_region(p->dev, (unsigned)i);
		uint32_t reg = le32(cfg + PCI_BASE_ADDRESS_0 + 4 * i);
		bool is64 = (reg & 0x6) == PCI_BAR_MEM_64;
		int err;

		if (!r || !r->size)
			continue;
		if (reg & PCI_BAR_IO) {
			vm_warn(p->vm, "vfio %s: BAR %d is I/O space, not offered to the guest",
				vfio_device_address(p->dev), i);
			continue;
		}
		if (is64 && i == PCI_NR_BARS - 1)
			return fail_why(EINVAL, why, len, "vfio %s: a 64-bit BAR 5",
					vfio_device_address(p->dev));
		err = pci_function_add_bar(bus, &p->f, i, is64 ? PCI_BAR_MEM64 : PCI_BAR_MEM32,
					   bar_size(r->size), reg & PCI_BAR_PREFETCH);
		if (err)
			return fail_why(-err, why, len, "vfio %s: BAR %d (%llu bytes): %s",
					vfio_device_address(p->dev), i, (unsigned long long)r->size,
					err == -ENOSPC ? "no room in the PCI windows" : strerror(-err));
		i += is64;
	}
	return 0;
}

/* The device's capabilities in list order: their offsets; how many. */
static int device_caps(const uint8_t *cfg, uint8_t caps[MAX_CAPS])
{
	uint8_t off = (cfg[PCI_STATUS] & PCI_STATUS_CAP_LIST) ? cfg[PCI_CAPABILITY_LIST] : 0;
	bool seen[CONFIG_BYTES / 4] = { false };
	int n = 0;

	for (; off >= PCI_STD_HEADER_SIZE && n < MAX_CAPS; off = cfg[off + 1]) {
		off &= ~3;
		if (seen[off / 4]) /* a loop: the list ends here */
			break;
		seen[off / 4] = true;
		caps[n++] = off;
	}
	return n;
}

/* The bytes of MSI's capability, by its flags (PCI Local Bus 3.0, 6.8.1). */
static uint32_t msi_cap_size(const uint8_t *cfg, uint8_t cap)
{
	uint16_t flags = le16(cfg + cap + PCI_CAP_FLAGS);

	return 10u + (flags & PCI_MSI_FLAGS_64BIT ? 4u : 0u) +
	       (flags & PCI_MSI_FLAGS_MASKBIT ? 10u : 0u);
}

static void set_passthrough(struct vfio_pci *p, uint32_t from, uint32_t to, bool on)
{
	for (uint32_t i = from; i < to && i < CONFIG_BYTES; i++) {
		if (on)
			p->passthrough[i / 8] |= (uint8_t)(1u << (i % 8));
		else
			p->passthrough[i / 8] &= (uint8_t)~(1u << (i % 8));
		/* the guest's value lands in cfg, to be written to the device;
		 * the rest is read-only unless its owner says otherwise */
		p->f.wmask[i] = on ? 0xff : 0;
	}
}

/* MSI-X as the device has it, at its offset: table size, table and PBA
 * in one BAR. */
static int init_msix(struct vfio_pci *p, const uint8_t *cfg, uint8_t cap, char *why, size_t len)
{
	uint32_t table, pba, nr;
	int err;

	pci_function_next_cap_at(&p->f, cap);
	nr = (le16(cfg + cap + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_QSIZE) + 1u;
	table = le32(cfg + cap + PCI_MSIX_TABLE);
	pba = le32(cfg + cap + PCI_MSIX_PBA);
	if ((table & 7) != (pba & 7))
		return fail_why(EOPNOTSUPP, why, len,
				"vfio %s: MSI-X table and PBA in different BARs",
				vfio_device_address(p->dev));
	if (p->f.bars[table & 7].kind == PCI_BAR_NONE)
		return fail_why(EOPNOTSUPP, why, len,
				"vfio %s: MSI-X table in BAR %u, which is not offered",
				vfio_device_address(p->dev), table & 7);
	nr = MIN(nr, vfio_device_msix_count(p->dev));
	if (!nr)
		return fail_why(EOPNOTSUPP, why, len, "vfio %s: VFIO offers no MSI-X vectors",
				vfio_device_address(p->dev));
	err = pci_msix_init(&p->msix, &p->f, (uint16_t)nr, (int)(table & 7), table & ~7u,
			    pba & ~7u, &msix_ops, p);
	if (err)
		return fail_why(-err, why, len, "vfio %s: its MSI-X table: %s",
				vfio_device_address(p->dev), strerror(-err));
	p->nr_vectors = (uint16_t)nr;
	return 0;
}

/* MSI as the device has it (64-bit address or not), at its offset, with
 * one vector; the rest of the device's capability (mask bits) hidden. */
static int init_msi(struct vfio_pci *p, const uint8_t *cfg, uint8_t cap, char *why, size_t len)
{
	bool is64 = le16(cfg + cap + PCI_CAP_FLAGS) & PCI_MSI_FLAGS_64BIT;

	if (!vfio_device_msi_count(p->dev))
		return fail_why(EOPNOTSUPP, why, len, "vfio %s: VFIO offers no MSI vector",
				vfio_device_address(p->dev));
	pci_function_next_cap_at(&p->f, cap);
	if (pci_msi_init(&p->msi, &p->f, is64, &msi_ops, p))
		return fail_why(EINVAL, why, len, "vfio %s: MSI at 0x%02x overlaps another capability",
				vfio_device_address(p->dev), cap);
	p->uses_msi = true;
	p->nr_vectors = 1;
	return 0;
}

static bool has_cap(const uint8_t *cfg, const uint8_t *caps, int n, uint8_t id)
{
	for (int i = 0; i < n; i++)
		if (cfg[caps[i]] == id)
			return true;
	return false;
}

/* The device's capability list at its offsets: MSI-X emulated (MSI then
 * hidden), or MSI emulated when there is no MSI-X; the others' registers
 * passed through (everything after the header but the links and the
 * interrupt capabilities). */
static int init_caps(struct vfio_pci *p, const uint8_t *cfg, char *why, size_t len)
{
	uint8_t caps[MAX_CAPS];
	int n = device_caps(cfg, caps), err = 0;
	bool want_msix = has_cap(cfg, caps, n, PCI_CAP_ID_MSIX), interrupts = false;

	set_passthrough(p, PCI_STD_HEADER_SIZE, CONFIG_BYTES, true);
	for (int i = 0; i < n && !err; i++) {
		uint8_t off = caps[i], id = cfg[off];

		if (id == PCI_CAP_ID_MSIX) {
			set_passthrough(p, off, off + PCI_MSIX_CAP_SIZE, false);
			if (!interrupts) /* a second one: hidden too */
				err = init_msix(p, cfg, off, why, len);
			interrupts = true;
		} else if (id == PCI_CAP_ID_MSI) {
			set_passthrough(p, off, off + msi_cap_size(cfg, off), false);
			if (!want_msix && !interrupts)
				err = init_msi(p, cfg, off, why, len);
			interrupts |= !want_msix;
		} else {
			pci_function_next_cap_at(&p->f, off);
			if (pci_function_add_cap(&p->f, id, PCI_CAP_FLAGS) != off)
				return fail_why(EINVAL, why, len,
						"vfio %s: capability 0x%02x at 0x%02x overlaps another",
						vfio_device_address(p->dev), id, off);
			set_passthrough(p, off + 1, off + 2, false); /* the link is ours */
		}
	}
	if (!err && !interrupts)
		return fail_why(EOPNOTSUPP, why, len,
				"vfio %s: no MSI-X or MSI (a device with INTx only cannot be assigned)",
				vfio_device_address(p->dev));
	return err;
}

/* n descriptors, all -1 (none yet). */
static int32_t *fd_array(uint16_t n)
{
	int32_t *fds = malloc(n * sizeof(*fds));

	for (uint16_t i = 0; fds && i < n; i++)
		fds[i] = -1;
	return fds;
}

/* Vector vec's eventfds: the irqfd's, and (MSI-X, which can be masked)
 * the one for while it is masked, in the epoll set the I/O thread
 * watches. */
static int wire_vector(struct vfio_pci *p, uint16_t vec)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = vec };

	p->vector_fd[vec] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (p->vector_fd[vec] < 0)
		return -errno;
	if (!p->uses_msi) {
		p->held_fd[vec] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (p->held_fd[vec] < 0 ||
		    epoll_ctl(p->held_epoll, EPOLL_CTL_ADD, p->held_fd[vec], &ev))
			return -errno;
	}
	return vm_add_irqfd(p->vm, p->gsi_base + vec, p->vector_fd[vec]);
}

/* An eventfd per vector with an irqfd on its GSI, and (MSI-X) one for
 * its interrupts while masked. */
static int wire_vectors(struct vfio_pci *p, struct pci_bus *bus, char *why, size_t len)
{
	const char *kind = p->uses_msi ? "MSI" : "MSI-X";
	int err;

	p->vector_fd = fd_array(p->nr_vectors);
	p->held_fd = fd_array(p->nr_vectors);
	p->routed = calloc(p->nr_vectors, sizeof(*p->routed));
	if (!p->vector_fd || !p->held_fd || !p->routed)
		return -ENOMEM;
	err = pci_bus_alloc_msi_gsis(bus, p->nr_vectors, &p->gsi_base);
	if (err)
		return fail_why(-err, why, len, "vfio %s: no GSIs left for %u %s vectors",
				vfio_device_address(p->dev), p->nr_vectors, kind);
	if (!p->uses_msi) {
		p->held_epoll = epoll_create1(EPOLL_CLOEXEC);
		if (p->held_epoll < 0)
			return fail_why(errno, why, len, "vfio %s: epoll_create1: %s",
					vfio_device_address(p->dev), strerror(errno));
	}
	for (unsigned i = 0; i < p->nr_vectors; i++) {
		err = wire_vector(p, (uint16_t)i);
		if (err)
			return fail_why(-err, why, len, "vfio %s: %s vector %u: %s",
					vfio_device_address(p->dev), kind, i, strerror(-err));
	}
	if (p->uses_msi)
		return 0;
	/* one watch for all: a device may have hundreds of vectors */
	err = vm_watch_fd(p->vm, p->held_epoll, held_ready, p);
	if (err)
		return fail_why(-err, why, len, "vfio %s: cannot watch its masked vectors: %s",
				vfio_device_address(p->dev), strerror(-err));
	p->held_watched = true;
	return 0;
}

/* The mmap-able parts of every BAR mapped into this process (the guest
 * gets them when it turns decoding on). */
static int map_regions(struct vfio_pci *p, char *why, size_t len)
{
	for (int i = 0; i < PCI_NR_BARS; i++) {
		const struct vfio_region *r = vfio_device_region(p->dev, (unsigned)i);
		int err;

		if (p->f.bars[i].kind == PCI_BAR_NONE || !r || !r->nr_areas)
			continue;
		err = vfio_device_map_region(p->dev, (unsigned)i);
		if (err)
			return fail_why(-err, why, len, "vfio %s: cannot map BAR %d: %s",
					vfio_device_address(p->dev), i,
					strerror(-err));
	}
	return 0;
}

int vfio_pci_create(struct vm *vm, struct pci_bus *bus, struct vfio_device *d,
		    struct vfio_pci **out, char *why, size_t why_len)
{
	struct vfio_pci *p = calloc(1, sizeof(*p));
	uint8_t cfg[CONFIG_BYTES];
	int err;

	if (!p) {
		vfio_device_close(d);
		return -ENOMEM;
	}
	p->vm = vm;
	p->dev = d;
	pthread_mutex_init(&p->lock, NULL);
	memset(p->maps, 0xff, sizeof(p->maps)); /* all -1 */
	p->held_epoll = -1;
	err = vfio_config_read(d, 0, cfg, sizeof(cfg));
	if (err)
		set_why(why, why_len, "vfio %s: cannot read its configuration space: %s",
			vfio_device_address(d), strerror(-err));
	if (!err)
		err = init_header(p, cfg, why, why_len);
	if (!err)
		err = init_bars(p, bus, cfg, why, why_len);
	if (!err)
		err = init_caps(p, cfg, why, why_len);
	if (!err)
		err = wire_vectors(p, bus, why, why_len);
	if (!err)
		err = map_regions(p, why, why_len);
	if (!err && pci_bus_add(bus, &p->f) < 0) {
		err = -ENOSPC;
		set_why(why, why_len, "vfio %s: no free slot on the PCI bus", vfio_device_address(d));
	}
	if (err) {
		vfio_pci_destroy(p);
		return err;
	}
	*out = p;
	return 0;
}

void vfio_pci_destroy(struct vfio_pci *p)
{
	if (!p)
		return;
	if (p->f.bus) /* off the bus first: nothing reaches it while it goes */
		pci_bus_remove(p->f.bus, &p->f);
	if (p->msix_on)
		vfio_msix_disable(p->dev);
	if (p->msi_on)
		vfio_msi_disable(p->dev);
	for (int i = 0; i < PCI_NR_BARS; i++)
		unmap_bar(p, i);
	vfio_device_close(p->dev);
	for (unsigned i = 0; p->vector_fd && i < p->nr_vectors; i++)
		if (p->vector_fd[i] >= 0)
			close(p->vector_fd[i]);
	if (p->held_watched) /* the VM ended (or never started): no I/O thread */
		vm_unwatch_fd(p->vm, p->held_epoll);
	if (p->held_epoll >= 0)
		close(p->held_epoll);
	for (unsigned i = 0; p->held_fd && i < p->nr_vectors; i++)
		if (p->held_fd[i] >= 0)
			close(p->held_fd[i]);
	free(p->vector_fd);
	free(p->held_fd);
	free(p->routed);
	pci_msix_free(&p->msix);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

struct pci_function *vfio_pci_function(struct vfio_pci *p)
{
	return &p->f;
}
