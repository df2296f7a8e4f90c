/* SPDX-License-Identifier: MIT */
/*
 * --vfio devices into a VM (see vfio_attach.h). Why one owner device: the
 * container must outlive every function in it and go before guest RAM,
 * and vm_destroy destroys registered devices (newest first) before it
 * frees RAM.
 */
#include <errno.h>
#include <stdlib.h>

#include "arch/machine_common.h"
#include "devices.h"
#include "devices/vfio/vfio.h"
#include "devices/vfio/vfio_attach.h"
#include "devices/vfio/vfio_pci.h"
#include "machine.h"
#include "utils.h"
#include "vm.h"

struct vfio_owner {
	struct device dev;
	struct vfio_container *c;
	struct vfio_pci **fns;
	int nr;
};

static void owner_free(struct vfio_owner *o)
{
	for (int i = o->nr - 1; i >= 0; i--)
		vfio_pci_destroy(o->fns[i]);
	vfio_container_destroy(o->c);
	free(o->fns);
	free(o);
}

static void owner_destroy(struct device *dev)
{
	owner_free(dev->private);
}

/* Device `name` open and on the bus, or the reason in why. */
static int attach_one(struct vfio_owner *o, struct vm *vm, struct pci_bus *bus, const char *name,
		      char *why, size_t why_len)
{
	struct vfio_device *d;
	int err = vfio_device_open(o->c, name, &d, why, why_len);

	if (err)
		return err;
	/* vfio_pci_create owns d from here, closing it on failure too. */
	err = vfio_pci_create(vm, bus, d, &o->fns[o->nr], why, why_len);
	if (!err)
		o->nr++;
	return err;
}

int vfio_attach(struct vm *vm, struct pci_bus *bus, const struct vfio_sys *sys,
		const char *const *names, int n, char *why, size_t why_len)
{
	struct vfio_owner *o;
	int err = 0;

	if (!vm || !bus || n <= 0)
		return -EINVAL;
	o = calloc(1, sizeof(*o));
	if (!o || !(o->fns = calloc((size_t)n, sizeof(*o->fns))) ||
	    !(o->c = vfio_container_create(sys, vm->mem_map))) {
		if (o)
			owner_free(o);
		return -ENOMEM;
	}
	for (int i = 0; i < n && !err; i++)
		err = attach_one(o, vm, bus, names[i], why, why_len);
	o->dev = (struct device){
		.name = "vfio", .private = o, .destroy = owner_destroy, .no_address = true,
	};
	if (!err)
		err = vm_register_device(vm, &o->dev);
	if (err) {
		owner_free(o);
		return err;
	}
	return 0;
}

int machine_add_vfio(struct vm *vm, const char *const *names, int n, char *why, size_t why_len)
{
	struct pci_bus *bus = machine_pci_bus(vm);

	if (!bus) {
		set_why(why, why_len, "VFIO needs the machine's PCI bus (x86_64, a Linux guest)");
		return -EOPNOTSUPP;
	}
	return vfio_attach(vm, bus, NULL, names, n, why, why_len);
}
