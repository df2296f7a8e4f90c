/* SPDX-License-Identifier: MIT */
/* The arch tag of this build's snapshots (core/snapfile.h): a snapshot is
 * restored only on the arch that saved it. */
#include "core/snapfile.h"

enum snap_arch arch_snapshot_id(void)
{
	return SNAP_ARCH_X86_64;
}
