#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

// Swaps two paths in one step (Linux renameat2 with RENAME_EXCHANGE), so that a directory being replaced is whole
// under its name at every instant. glibc declares renameat2 only under _GNU_SOURCE, which Swift's Glibc module does
// not set; the system call itself is always there (Linux 3.15+). Returns 0, or -1 with errno set (EINVAL where the
// file system cannot exchange).
static inline int graft_exchange_paths(const char *a, const char *b) {
#ifdef SYS_renameat2
    return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, 2 /* RENAME_EXCHANGE */);
#else
    errno = ENOSYS;
    return -1;
#endif
}
