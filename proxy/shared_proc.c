/*
 * Share rows (struct shared_proc in shared.h): which worker owns which
 * row. The master takes a free row before it forks a worker, names the
 * child's pid in it after, and frees it once it has reaped that worker and
 * given back what it held; the worker knows its row as its own from the
 * fork on. Only the master claims and frees rows, so claims never race.
 */

#include "shared.h"

static int self = -1;

int shared_proc_reserve(struct shared *sh)
{
	if (sh == NULL)
		return -1;
	for (int k = 0; k < SHARED_PROCS; k++) {
		int32_t free_ = 0;
		if (atomic_compare_exchange_strong(&sh->proc_pid[k], &free_, -1))
			return k;
	}
	return -1;
}

void shared_proc_own(struct shared *sh, int k, pid_t pid)
{
	if (sh != NULL && k >= 0 && k < SHARED_PROCS)
		atomic_store(&sh->proc_pid[k], (int32_t)pid);
}

void shared_proc_enter(int k)
{
	self = k >= 0 && k < SHARED_PROCS ? k : -1;
}

int shared_proc_self(void)
{
	return self;
}

int shared_proc_of(struct shared *sh, pid_t pid)
{
	if (sh == NULL || pid <= 0)
		return -1;
	for (int k = 0; k < SHARED_PROCS; k++)
		if (atomic_load(&sh->proc_pid[k]) == (int32_t)pid)
			return k;
	return -1;
}

void shared_proc_free(struct shared *sh, int k)
{
	struct shared_proc *p;

	if (sh == NULL || k < 0 || k >= SHARED_PROCS)
		return;
	p = &sh->procs[k];
	for (size_t i = 0; i < SHARED_SLOTS; i++)
		atomic_store_explicit(&p->active[i], 0, memory_order_relaxed);
	/* held[] was emptied by limit_proc_gone(), which read it. */
	/* Release: the next owner sees a clean row. */
	atomic_store_explicit(&sh->proc_pid[k], 0, memory_order_release);
}
