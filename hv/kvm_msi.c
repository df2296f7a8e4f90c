/* SPDX-License-Identifier: MIT */
/*
 * Linux KVM backend: MSI routes (hypervisor_ops.msi_route). KVM_SET_GSI_ROUTING
 * replaces the VM's whole routing table, so the backend keeps it: the
 * arch's default routes (x86: the PICs' and the IOAPIC's pins, as
 * KVM_CREATE_IRQCHIP made them), then one MSI route per GSI the VMM gave
 * a message. An irqfd on such a GSI then delivers the message; a GSI
 * without a route (its vector masked) delivers nothing.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hv/kvm.h"
#include "utils.h"

#define KVM_MAX_MSI_ROUTES 1024

struct kvm_msi_routes {
	pthread_mutex_t lock;
	int nr;
	struct kvm_irq_routing_entry msi[KVM_MAX_MSI_ROUTES];
};

static struct kvm_msi_routes *routes_of(struct vm *vm, int *err)
{
	struct kvm_vm *k = kvm_of(vm);

	if (!k->msi) {
		k->msi = calloc(1, sizeof(*k->msi));
		if (!k->msi) {
			*err = -ENOMEM;
			return NULL;
		}
		pthread_mutex_init(&k->msi->lock, NULL);
	}
	return k->msi;
}

void kvm_msi_routes_free(struct vm *vm)
{
	struct kvm_vm *k = kvm_of(vm);

	if (!k->msi)
		return;
	pthread_mutex_destroy(&k->msi->lock);
	free(k->msi);
	k->msi = NULL;
}

/* The whole table to KVM: the defaults, then the MSI routes. Lock held. */
static int commit(struct vm *vm, const struct kvm_msi_routes *r)
{
	int max = KVM_ARCH_DEFAULT_ROUTES + r->nr;
	struct kvm_irq_routing *t = calloc(1, sizeof(*t) + (size_t)max * sizeof(t->entries[0]));
	int n, err;

	if (!t)
		return -ENOMEM;
	n = kvm_arch_default_routes(vm, t->entries, KVM_ARCH_DEFAULT_ROUTES);
	if (n < 0) {
		free(t);
		return n;
	}
	memcpy(&t->entries[n], r->msi, (size_t)r->nr * sizeof(r->msi[0]));
	t->nr = (uint32_t)(n + r->nr);
	err = kvm_ioctl(kvm_of(vm)->vm_fd, KVM_SET_GSI_ROUTING, t);
	free(t);
	return err < 0 ? err : 0;
}

static int find(const struct kvm_msi_routes *r, uint32_t gsi)
{
	for (int i = 0; i < r->nr; i++)
		if (r->msi[i].gsi == gsi)
			return i;
	return -1;
}

int kvm_msi_route(struct vm *vm, uint32_t gsi, bool usable, uint64_t addr, uint32_t data)
{
	struct kvm_msi_routes *r;
	int err = 0, i;

	if (kvm_arch_msi_gsi_base() == UINT32_MAX)
		return -EOPNOTSUPP;
	if (gsi < kvm_arch_msi_gsi_base())
		return -EINVAL; /* the pins' GSIs are the irqchip's */
	r = routes_of(vm, &err);
	if (!r)
		return err;
	pthread_mutex_lock(&r->lock);
	i = find(r, gsi);
	if (!usable && i >= 0)
		r->msi[i] = r->msi[--r->nr];
	if (usable && i < 0 && r->nr == KVM_MAX_MSI_ROUTES)
		err = -ENOSPC;
	if (usable && !err) {
		if (i < 0)
			i = r->nr++;
		r->msi[i] = (struct kvm_irq_routing_entry){
			.gsi = gsi, .type = KVM_IRQ_ROUTING_MSI,
			.u.msi = { .address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32),
				   .data = data },
		};
	}
	if (!err && (usable || i >= 0))
		err = commit(vm, r);
	pthread_mutex_unlock(&r->lock);
	return err;
}
