/* SPDX-License-Identifier: MIT */
/* KVM backend internals shared by kvm_arm64.c and kvm_arm64_state.c. */
#ifndef VIBEVMM_HV_KVM_ARM64_H
#define VIBEVMM_HV_KVM_ARM64_H

#include "vm.h"

/* The vGIC device's fd (kvm_arm64.c keeps it), -1 when there is none. */
int kvm_arm64_gic_fd(struct vm *vm);

#endif
