#ifndef MEDIASPOOL_CLINUX_SHIM_H
#define MEDIASPOOL_CLINUX_SHIM_H
// Linux system calls that Swift cannot reach through Glibc: syscall(2) is
// variadic, and glibc 2.36 has no openat2 wrapper.
#include <fcntl.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <sys/xattr.h>   // fgetxattr/fsetxattr: not in Swift's Glibc module

/// openat2(2) relative to the current directory. Returns the fd or -1/errno.
static inline int ms_openat2(const char *path, uint64_t flags, uint64_t resolve) {
    struct open_how how = { .flags = flags, .mode = 0, .resolve = resolve };
    return (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
}

/// renameat2(2) relative to the current directory (RENAME_NOREPLACE and
/// friends); glibc's wrapper needs _GNU_SOURCE, which Swift's Glibc lacks.
static inline int ms_renameat2(const char *from, const char *to, unsigned int flags) {
    return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, flags);
}

/// renameat2(2) between two open directories.
static inline int ms_renameat2_at(int fromdir, const char *from, int todir, const char *to, unsigned int flags) {
    return (int)syscall(SYS_renameat2, fromdir, from, todir, to, flags);
}

#include <sys/vfs.h>  // statfs(2): not in Swift's Glibc module

/// statfs(2)'s f_type of the file system holding `path` (its magic number,
/// linux/magic.h) in `*type`. Returns 0, or -1/errno.
static inline int ms_statfs_type(const char *path, uint64_t *type) {
    struct statfs s;
    int r = statfs(path, &s);
    if (r == 0) *type = (uint64_t)(unsigned long)s.f_type;
    return r;
}
#endif
