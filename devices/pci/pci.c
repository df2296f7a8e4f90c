/* SPDX-License-Identifier: MIT */
/* The PCI bus: configuration space, BARs, capabilities; see pci.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/snapfile.h"
#include "devices/pci/pci.h"
#include "utils.h"
#include "vm.h"

#define CONFIG_ADDRESS_ENABLE 0x80000000u
#define PCI_VENDOR_REDHAT 0x1b36      /* QEMU's generic devices' vendor ... */
#define PCI_DEVICE_REDHAT_HOST 0x0008 /* ... and its PCIe host bridge */
#define PCI_CLASS_HOST_BRIDGE 0x060000

/* ---- config space bytes ---- */

void pci_cfg_set8(struct pci_function *f, uint32_t off, uint8_t v)
{
	f->cfg[off] = v;
}

void pci_cfg_set16(struct pci_function *f, uint32_t off, uint16_t v)
{
	f->cfg[off] = (uint8_t)v;
	f->cfg[off + 1] = (uint8_t)(v >> 8);
}

void pci_cfg_set32(struct pci_function *f, uint32_t off, uint32_t v)
{
	pci_cfg_set16(f, off, (uint16_t)v);
	pci_cfg_set16(f, off + 2, (uint16_t)(v >> 16));
}

uint16_t pci_cfg_get16(const struct pci_function *f, uint32_t off)
{
	return (uint16_t)(f->cfg[off] | f->cfg[off + 1] << 8);
}

uint32_t pci_cfg_get32(const struct pci_function *f, uint32_t off)
{
	return pci_cfg_get16(f, off) | (uint32_t)pci_cfg_get16(f, off + 2) << 16;
}

static void set_wmask32(struct pci_function *f, uint32_t off, uint32_t mask)
{
	for (int i = 0; i < 4; i++)
		f->wmask[off + i] = (uint8_t)(mask >> (8 * i));
}

void pci_function_init(struct pci_function *f, uint16_t vendor, uint16_t device,
		       uint32_t class_code, uint16_t subsys_vendor, uint16_t subsys)
{
	memset(f, 0, sizeof(*f));
	pci_cfg_set16(f, PCI_VENDOR_ID, vendor);
	pci_cfg_set16(f, PCI_DEVICE_ID, device);
	pci_cfg_set8(f, PCI_CLASS_PROG, (uint8_t)class_code);
	pci_cfg_set16(f, PCI_CLASS_DEVICE, (uint16_t)(class_code >> 8));
	pci_cfg_set16(f, PCI_SUBSYSTEM_VENDOR_ID, subsys_vendor);
	pci_cfg_set16(f, PCI_SUBSYSTEM_ID, subsys);
	/* The guest may switch decoding, bus mastering and INTx; the status
	 * register's error bits are write-1-to-clear (none is ever set). */
	f->wmask[PCI_COMMAND] = PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	f->wmask[PCI_COMMAND + 1] = PCI_COMMAND_INTX_DISABLE >> 8;
	f->w1cmask[PCI_STATUS + 1] = 0xf9;
	f->wmask[PCI_INTERRUPT_LINE] = 0xff;
	f->next_cap_free = PCI_STD_HEADER_SIZE;
	f->last_cap_next = &f->cfg[PCI_CAPABILITY_LIST];
}

/* ---- BARs ---- */

static struct pci_window *window_of(struct pci_bus *bus, enum pci_bar_kind kind)
{
	return kind == PCI_BAR_MEM64 ? &bus->mem64 : &bus->mem32;
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* The BAR register(s) as firmware leaves them: the address, the type bits
 * read-only, the bits below the size read-only zero (that is what sizing
 * reads back). */
static void write_bar_registers(struct pci_function *f, int bar)
{
	const struct pci_bar *b = &f->bars[bar];
	uint32_t off = PCI_BASE_ADDRESS_0 + 4 * (uint32_t)bar;
	uint32_t flags = (b->kind == PCI_BAR_MEM64 ? PCI_BAR_MEM_64 : 0) |
			 (b->prefetch ? PCI_BAR_PREFETCH : 0);
	uint64_t mask = ~(b->size - 1);

	pci_cfg_set32(f, off, (uint32_t)b->addr | flags);
	set_wmask32(f, off, (uint32_t)mask & ~0xfu);
	if (b->kind == PCI_BAR_MEM64) {
		pci_cfg_set32(f, off + 4, (uint32_t)(b->addr >> 32));
		set_wmask32(f, off + 4, (uint32_t)(mask >> 32));
	}
}

int pci_function_add_bar(struct pci_bus *bus, struct pci_function *f, int bar,
			 enum pci_bar_kind kind, uint64_t size, bool prefetch)
{
	struct pci_window *w = window_of(bus, kind);
	uint64_t addr;

	if (bar < 0 || bar >= PCI_NR_BARS || (kind == PCI_BAR_MEM64 && bar == PCI_NR_BARS - 1) ||
	    (kind != PCI_BAR_MEM32 && kind != PCI_BAR_MEM64) || !is_pow2(size) || size < 4096 ||
	    (kind == PCI_BAR_MEM32 && size > (1ULL << 31)) || f->bars[bar].kind != PCI_BAR_NONE ||
	    (bar > 0 && f->bars[bar - 1].kind == PCI_BAR_MEM64))
		return -EINVAL;
	addr = ALIGN_UP(w->next, size);
	if (addr < w->next || addr - w->base > w->size || w->size - (addr - w->base) < size)
		return -ENOSPC;
	w->next = addr + size;
	f->bars[bar] = (struct pci_bar){ .kind = kind, .size = size, .prefetch = prefetch,
					 .addr = addr };
	write_bar_registers(f, bar);
	return 0;
}

/* What BAR `bar`'s register(s) say now. */
static uint64_t bar_address(const struct pci_function *f, int bar)
{
	uint32_t off = PCI_BASE_ADDRESS_0 + 4 * (uint32_t)bar;
	uint64_t addr = pci_cfg_get32(f, off) & ~0xfu;

	if (f->bars[bar].kind == PCI_BAR_MEM64)
		addr |= (uint64_t)pci_cfg_get32(f, off + 4) << 32;
	return addr;
}

static bool memory_decoding(const struct pci_function *f)
{
	return pci_cfg_get16(f, PCI_COMMAND) & PCI_COMMAND_MEMORY;
}

/* Whether the BAR lies wholly in its window: not while it is being sized
 * (all ones written: an address past any window). */
static bool bar_in_window(const struct pci_bar *b, const struct pci_window *w)
{
	return b->kind != PCI_BAR_NONE && b->addr >= w->base && b->addr - w->base < w->size &&
	       w->size - (b->addr - w->base) >= b->size;
}

/* A BAR decodes when memory decoding is on and it lies in its window. */
static bool bar_decodes(const struct pci_function *f, int bar, const struct pci_window *w)
{
	return memory_decoding(f) && bar_in_window(&f->bars[bar], w);
}

/* ---- capabilities ---- */

void pci_function_next_cap_at(struct pci_function *f, uint8_t off)
{
	f->next_cap_free = off >= PCI_STD_HEADER_SIZE ? (uint8_t)(off & ~3) : 0;
}

uint8_t pci_function_add_cap(struct pci_function *f, uint8_t id, uint8_t len)
{
	uint8_t off = f->next_cap_free;

	if (len < 2 || off < PCI_STD_HEADER_SIZE || 0x100 - off < len)
		return 0;
	f->cfg[off] = id;
	f->cfg[off + 1] = 0; /* the end of the list, for now */
	*f->last_cap_next = off;
	f->last_cap_next = &f->cfg[off + 1];
	f->next_cap_free = (uint8_t)ALIGN_UP((unsigned)off + len, 4);
	if (f->next_cap_free < off) /* wrapped: the list is full */
		f->next_cap_free = 0;
	f->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	return off;
}

/* ---- configuration access ---- */

static struct pci_function *function_at(struct pci_bus *bus, unsigned slot, unsigned fn)
{
	return slot < PCI_SLOTS && fn == 0 ? bus->slots[slot] : NULL;
}

static bool access_ok(uint32_t off, unsigned size)
{
	return (size == 1 || size == 2 || size == 4) && !(off & (size - 1)) &&
	       off + size <= PCI_CFG_SIZE;
}

uint32_t pci_config_read(struct pci_bus *bus, unsigned slot, unsigned fn, uint32_t off,
			 unsigned size)
{
	struct pci_function *f;
	uint32_t v = 0;

	if (!access_ok(off, size))
		return ~0u;
	pthread_mutex_lock(&bus->lock);
	f = function_at(bus, slot, fn);
	for (unsigned i = 0; f && i < size; i++)
		v |= (uint32_t)f->cfg[off + i] << (8 * i);
	if (f && f->ops && f->ops->config_read)
		f->ops->config_read(f, off, size, &v);
	pthread_mutex_unlock(&bus->lock);
	if (!f)
		return size == 4 ? ~0u : (1u << (8 * size)) - 1;
	return v;
}

/* BARs after a config write: addresses and decoding re-read, the function
 * told of each change. Bus lock held. */
static void update_bars(struct pci_bus *bus, struct pci_function *f, bool was_decoding)
{
	for (int i = 0; i < PCI_NR_BARS; i++) {
		struct pci_bar *b = &f->bars[i];
		const struct pci_window *w = window_of(bus, b->kind);
		bool before, after;
		uint64_t addr;

		if (b->kind == PCI_BAR_NONE)
			continue;
		before = was_decoding && bar_in_window(b, w);
		addr = bar_address(f, i);
		if (addr == b->addr && was_decoding == memory_decoding(f))
			continue;
		b->addr = addr;
		after = bar_decodes(f, i, w);
		if ((before || after) && f->ops && f->ops->bar_moved)
			f->ops->bar_moved(f, i, after ? addr : 0, after);
	}
}

void pci_config_write(struct pci_bus *bus, unsigned slot, unsigned fn, uint32_t off,
		      unsigned size, uint32_t value)
{
	struct pci_function *f;
	bool was_decoding;

	if (!access_ok(off, size))
		return;
	pthread_mutex_lock(&bus->lock);
	f = function_at(bus, slot, fn);
	if (f) {
		was_decoding = memory_decoding(f);
		for (unsigned i = 0; i < size; i++) {
			uint8_t v = (uint8_t)(value >> (8 * i)), m = f->wmask[off + i];

			f->cfg[off + i] = (uint8_t)((f->cfg[off + i] & ~m) | (v & m));
			f->cfg[off + i] &= (uint8_t)~(v & f->w1cmask[off + i]);
		}
		update_bars(bus, f, was_decoding);
		if (f->ops && f->ops->config_write)
			f->ops->config_write(f, off, size);
	}
	pthread_mutex_unlock(&bus->lock);
}

/* ---- the port pair 0xcf8 (CONFIG_ADDRESS) / 0xcfc (CONFIG_DATA) ---- */

#define PCI_PORTS_BASE 0xcf8
#define PCI_PORTS_SIZE 8
#define CONFIG_DATA_OFF 4

/* The latched address: (slot, function, register) or false when disabled
 * or on another bus. */
static bool latched(const struct pci_bus *bus, unsigned *slot, unsigned *fn, uint32_t *reg)
{
	uint32_t a = bus->config_address;

	if (!(a & CONFIG_ADDRESS_ENABLE) || ((a >> 16) & 0xff) != 0)
		return false;
	*slot = (a >> 11) & 0x1f;
	*fn = (a >> 8) & 7;
	*reg = a & 0xfc;
	return true;
}

static int ports_read(struct device *dev, uint64_t off, void *data, size_t size)
{
	struct pci_bus *bus = dev->private;
	unsigned slot, fn;
	uint32_t reg, v = ~0u;

	if (off == 0 && size == 4)
		v = bus->config_address;
	else if (off >= CONFIG_DATA_OFF && latched(bus, &slot, &fn, &reg))
		v = pci_config_read(bus, slot, fn, reg + (uint32_t)(off - CONFIG_DATA_OFF),
				    (unsigned)size);
	memcpy(data, &v, MIN(size, sizeof(v)));
	return 0;
}

static int ports_write(struct device *dev, uint64_t off, void *data, size_t size)
{
	struct pci_bus *bus = dev->private;
	unsigned slot, fn;
	uint32_t reg, v = 0;

	memcpy(&v, data, MIN(size, sizeof(v)));
	if (off == 0 && size == 4)
		bus->config_address = v & 0x80fffffc;
	else if (off >= CONFIG_DATA_OFF && latched(bus, &slot, &fn, &reg))
		pci_config_write(bus, slot, fn, reg + (uint32_t)(off - CONFIG_DATA_OFF),
				 (unsigned)size, v);
	return 0; /* other bytes of 0xcf8 (0xcf9's reset control): ignored */
}

/* ---- ECAM: bus 0, 32 KiB per slot, 4 KiB per function ---- */

static int ecam_read(struct device *dev, uint64_t off, void *data, size_t size)
{
	uint32_t v = pci_config_read(dev->private, (unsigned)(off >> 15) & 0x1f,
				     (unsigned)(off >> 12) & 7, (uint32_t)(off & 0xfff),
				     (unsigned)size);

	memcpy(data, &v, MIN(size, sizeof(v)));
	return 0;
}

static int ecam_write(struct device *dev, uint64_t off, void *data, size_t size)
{
	uint32_t v = 0;

	memcpy(&v, data, MIN(size, sizeof(v)));
	pci_config_write(dev->private, (unsigned)(off >> 15) & 0x1f, (unsigned)(off >> 12) & 7,
			 (uint32_t)(off & 0xfff), (unsigned)size, v);
	return 0;
}

/* ---- the BAR windows ---- */

/* The function and BAR decoding `addr` (bus lock taken and released). */
static struct pci_function *bar_at(struct pci_bus *bus, const struct pci_window *w,
				   uint64_t addr, int *bar, uint64_t *off)
{
	struct pci_function *found = NULL;

	pthread_mutex_lock(&bus->lock);
	for (unsigned s = 0; !found && s < PCI_SLOTS; s++) {
		struct pci_function *f = bus->slots[s];

		for (int i = 0; f && !found && i < PCI_NR_BARS; i++) {
			const struct pci_bar *b = &f->bars[i];

			if (window_of(bus, b->kind) == w && bar_decodes(f, i, w) &&
			    addr >= b->addr && addr - b->addr < b->size) {
				found = f;
				*bar = i;
				*off = addr - b->addr;
			}
		}
	}
	pthread_mutex_unlock(&bus->lock);
	return found;
}

static struct pci_window *window_of_device(struct pci_bus *bus, struct device *dev)
{
	return dev == &bus->win64 ? &bus->mem64 : &bus->mem32;
}

static int window_read(struct device *dev, uint64_t off, void *data, size_t size)
{
	struct pci_bus *bus = dev->private;
	struct pci_window *w = window_of_device(bus, dev);
	uint64_t bar_off;
	int bar;
	struct pci_function *f = bar_at(bus, w, w->base + off, &bar, &bar_off);

	if (!f || !f->ops || !f->ops->bar_read)
		return -ENODEV;
	return f->ops->bar_read(f, bar, bar_off, data, size);
}

static int window_write(struct device *dev, uint64_t off, void *data, size_t size)
{
	struct pci_bus *bus = dev->private;
	struct pci_window *w = window_of_device(bus, dev);
	uint64_t bar_off;
	int bar;
	struct pci_function *f = bar_at(bus, w, w->base + off, &bar, &bar_off);

	if (!f || !f->ops || !f->ops->bar_write)
		return -ENODEV;
	return f->ops->bar_write(f, bar, bar_off, data, size);
}

/* ---- the bus ---- */

int pci_bus_add(struct pci_bus *bus, struct pci_function *f)
{
	for (unsigned s = 1; s < PCI_SLOTS; s++) {
		if (bus->slots[s])
			continue;
		f->bus = bus;
		f->slot = (uint8_t)s;
		bus->slots[s] = f;
		return (int)s;
	}
	return -ENOSPC;
}

void pci_bus_remove(struct pci_bus *bus, struct pci_function *f)
{
	pthread_mutex_lock(&bus->lock);
	if (f->slot && f->slot < PCI_SLOTS && bus->slots[f->slot] == f)
		bus->slots[f->slot] = NULL;
	pthread_mutex_unlock(&bus->lock);
}

int pci_bus_alloc_msi_gsis(struct pci_bus *bus, uint32_t n, uint32_t *first)
{
	int err = -ENOSPC;

	pthread_mutex_lock(&bus->lock);
	if (n && bus->msi_gsi_next < bus->msi_gsi_end && bus->msi_gsi_end - bus->msi_gsi_next >= n) {
		*first = bus->msi_gsi_next;
		bus->msi_gsi_next += n;
		err = 0;
	}
	pthread_mutex_unlock(&bus->lock);
	return err;
}

/* ---- snapshots ----
 *
 * Payload (the ports device's; little-endian): u32 "VPCB", u32 the 0xcf8
 * latch, then per slot 0..31 u8 present and, if present, the function's
 * first 256 configuration bytes. Loading checks that the same functions
 * are in the same slots with the same read-only bytes (a VM built the
 * same way) and puts the guest's bytes back: BARs placed and decoding as
 * they were (ops->bar_moved follows). Capabilities with state of their
 * own (MSI-X's table) are their function's device's to restore.
 */

#define SNAP_MAGIC_BUS 0x42435056u /* "VPCB" */
#define SNAP_CFG_BYTES 256

static int bus_save(struct device *dev, struct snap_buf *out)
{
	struct pci_bus *bus = dev->private;

	pthread_mutex_lock(&bus->lock);
	snap_put_u32(out, SNAP_MAGIC_BUS);
	snap_put_u32(out, bus->config_address);
	for (unsigned s = 0; s < PCI_SLOTS; s++) {
		snap_put_u8(out, bus->slots[s] != NULL);
		if (bus->slots[s])
			snap_put_bytes(out, bus->slots[s]->cfg, SNAP_CFG_BYTES);
	}
	pthread_mutex_unlock(&bus->lock);
	return out->failed ? -ENOMEM : 0;
}

/* Saved bytes that only the guest can have changed differ; the rest not. */
static bool same_function(const struct pci_function *f, const uint8_t *cfg)
{
	for (unsigned i = 0; i < SNAP_CFG_BYTES; i++)
		if ((cfg[i] ^ f->cfg[i]) & ~(f->wmask[i] | f->w1cmask[i]))
			return false;
	return true;
}

static int bus_parse(struct pci_bus *bus, struct snap_cursor *in, uint32_t *latch,
		     uint8_t (*cfg)[SNAP_CFG_BYTES])
{
	if (snap_get_u32(in) != SNAP_MAGIC_BUS)
		return -EINVAL;
	*latch = snap_get_u32(in); /* any value is one the guest could write */
	for (unsigned s = 0; s < PCI_SLOTS; s++) {
		uint8_t present = snap_get_u8(in);

		if (in->bad || present != (bus->slots[s] != NULL))
			return -EINVAL;
		if (!present)
			continue;
		snap_get_bytes(in, cfg[s], SNAP_CFG_BYTES);
		if (in->bad || !same_function(bus->slots[s], cfg[s]))
			return -EINVAL;
	}
	return snap_cursor_done(in) ? 0 : -EINVAL;
}

static int bus_load(struct device *dev, struct snap_cursor *in)
{
	struct pci_bus *bus = dev->private;
	uint8_t (*cfg)[SNAP_CFG_BYTES] = calloc(PCI_SLOTS, SNAP_CFG_BYTES);
	uint32_t latch;
	int err;

	if (!cfg)
		return -ENOMEM;
	pthread_mutex_lock(&bus->lock);
	err = bus_parse(bus, in, &latch, cfg);
	if (!err) {
		bus->config_address = latch;
		for (unsigned s = 0; s < PCI_SLOTS; s++) {
			struct pci_function *f = bus->slots[s];
			bool was_decoding;

			if (!f)
				continue;
			was_decoding = memory_decoding(f);
			memcpy(f->cfg, cfg[s], SNAP_CFG_BYTES);
			update_bars(bus, f, was_decoding);
		}
	}
	pthread_mutex_unlock(&bus->lock);
	free(cfg);
	return err;
}

static void bus_destroy(struct device *dev)
{
	struct pci_bus *bus = dev->private;

	pthread_mutex_destroy(&bus->lock);
	free(bus);
}

static void init_device(struct device *d, const char *name, enum device_space space,
			uint64_t base, uint64_t size, struct pci_bus *bus,
			int (*rd)(struct device *, uint64_t, void *, size_t),
			int (*wr)(struct device *, uint64_t, void *, size_t))
{
	*d = (struct device){ .name = name, .base = base, .size = size, .private = bus,
			      .read = rd, .write = wr, .space = space };
}

/* The four devices, the ports first: once registered, they own the bus
 * (vm_destroy frees it through them), whatever fails after. */
static int register_all(struct vm *vm, struct pci_bus *bus)
{
	int err = vm_register_device(vm, &bus->ports);

	if (err) {
		bus_destroy(&bus->ports);
		return err;
	}
	err = vm_register_device(vm, &bus->ecam);
	if (!err && bus->mem32.size)
		err = vm_register_device(vm, &bus->win32);
	if (!err && bus->mem64.size)
		err = vm_register_device(vm, &bus->win64);
	return err;
}

struct pci_bus *pci_bus_create(struct vm *vm, uint64_t ecam_base, uint64_t mem32_base,
			       uint64_t mem32_size, uint64_t mem64_base, uint64_t mem64_size)
{
	struct pci_bus *bus = calloc(1, sizeof(*bus));
	int err;

	if (!bus)
		return NULL;
	bus->vm = vm;
	pthread_mutex_init(&bus->lock, NULL);
	bus->mem32 = (struct pci_window){ mem32_base, mem32_size, mem32_base };
	bus->mem64 = (struct pci_window){ mem64_base, mem64_size, mem64_base };
	init_device(&bus->ports, "pci-config-ports", DEVICE_PIO, PCI_PORTS_BASE, PCI_PORTS_SIZE,
		    bus, ports_read, ports_write);
	bus->ports.destroy = bus_destroy;
	bus->ports.save = bus_save;
	bus->ports.load = bus_load;
	init_device(&bus->ecam, "pci-ecam", DEVICE_MMIO, ecam_base, PCI_ECAM_SIZE, bus,
		    ecam_read, ecam_write);
	init_device(&bus->win32, "pci-mem32", DEVICE_MMIO, mem32_base, mem32_size, bus,
		    window_read, window_write);
	init_device(&bus->win64, "pci-mem64", DEVICE_MMIO, mem64_base, mem64_size, bus,
		    window_read, window_write);
	/* their state is the bus's, saved with the ports */
	bus->ecam.stateless = bus->win32.stateless = bus->win64.stateless = true;
	pci_function_init(&bus->host, PCI_VENDOR_REDHAT, PCI_DEVICE_REDHAT_HOST,
			  PCI_CLASS_HOST_BRIDGE, 0, 0);
	bus->host.bus = bus;
	bus->slots[0] = &bus->host;
	err = register_all(vm, bus);
	if (err) {
		errno = -err;
		return NULL;
	}
	return bus;
}
