/* SPDX-License-Identifier: MIT */
/* Shared by the CRIU layer's files: import (images → snapshot) and attach. */
#ifndef THAW_RESTORE_CRIU_PRIV_H
#define THAW_RESTORE_CRIU_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "thaw.h"
#include "criu/criu_image.h"

/*
 * A task's regions are recorded at its address with the task's pstree index
 * in the bits above: tasks share addresses, a snapshot's regions may not.
 */
#define THAW__CRIU_TASK_SHIFT 48
#define THAW__CRIU_ADDR_MASK  ((1ull << THAW__CRIU_TASK_SHIFT) - 1)

/* CRIU's vma_entry_can_be_lazy(): what the restorer registers with the task's uffd. */
bool thaw__criu_vma_lazy(uint32_t flags, uint32_t status);

#endif
