/* SPDX-License-Identifier: MIT */
/* The operations tables of the backends; which exist depends on the host. */
#ifndef VIBEVMM_HV_BACKENDS_H
#define VIBEVMM_HV_BACKENDS_H

#include "hypervisor.h"

extern const struct hypervisor_ops kvm_ops;

#endif
