/* Files confined to a directory: a file is opened only when its real path lies inside a root
 * (the recordings directory for downloads, HAVEN_WEB_DIR for the web player's files), so
 * neither a crafted path, a bad database row nor a symlink reaches anything else. Used by
 * recordings.c (which also applies hv_http_path_inside() before deleting) and static.c; calls
 * nothing else in the module.
 */
#include "http-private.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool
hv_http_path_inside(const char *root, const char *real)
{
    size_t n = strlen(root);
    if (n == 1 && root[0] == '/') {
        return real[0] == '/' && real[1] != '\0';
    }
    return strncmp(real, root, n) == 0 && real[n] == '/' && real[n + 1] != '\0';
}

int
hv_http_open_inside(const char *root, const char *path)
{
    if (root == NULL || path == NULL || *root == '\0' || *path == '\0') {
        errno = ENOENT;
        return -1;
    }
    char real_root[PATH_MAX];
    char real[PATH_MAX];
    if (realpath(root, real_root) == NULL || realpath(path, real) == NULL) {
        return -1;
    }
    if (!hv_http_path_inside(real_root, real)) {
        errno = EACCES;
        return -1;
    }
    /* O_NOFOLLOW and O_NONBLOCK: whatever replaced the file since realpath() (a symlink, a
     * FIFO) is refused rather than followed or waited on. */
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        errno = EACCES;
        return -1;
    }
    return fd;
}
