/* static.c: the web player's files (HAVEN_WEB_DIR) for GET requests no API route answers.
 *
 * Only plain relative names are served (letters, digits, '.', '_', '-', '/'; no hidden or ".."
 * segments), and only regular files whose real path is inside the web directory, so neither a
 * crafted path nor a symlink reaches anything else. Files are small (HTML, CSS, JS, images) and
 * read whole; the browser revalidates them (no-cache) so a new version shows at once. */
#include "http-private.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATIC_MAX_BYTES (4 * 1024 * 1024)
#define STATIC_MAX_PATH  256

static const struct {
    const char *ext;
    const char *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".ico", "image/x-icon"},
    {".webp", "image/webp"},
    {".woff2", "font/woff2"},
    {".txt", "text/plain; charset=utf-8"},
    {".md", "text/plain; charset=utf-8"},
};

bool
hv_http_static_path_ok(const char *path)
{
    size_t n = strlen(path);
    if (n < 2 || n > STATIC_MAX_PATH || path[0] != '/') {
        return false;
    }
    for (const char *p = path; *p != '\0'; p++) {
        if (!g_ascii_isalnum(*p) && strchr("._-/", *p) == NULL) {
            return false;
        }
        /* Every segment starts with a letter or digit: no "", ".", "..", hidden files. */
        if (*p == '/' && !g_ascii_isalnum(p[1])) {
            return false;
        }
    }
    return true;
}

static const char *
content_type(const char *path)
{
    for (size_t i = 0; i < G_N_ELEMENTS(types); i++) {
        if (g_str_has_suffix(path, types[i].ext)) {
            return types[i].type;
        }
    }
    return NULL;
}

bool
hv_http_serve_static(hv_http_exchange *ex, const char *rel)
{
    const char *dir = ex->cfg->web_dir;
    const char *type = content_type(rel);
    if (dir == NULL || dir[0] == '\0' || type == NULL || !hv_http_static_path_ok(rel)) {
        return false;
    }
    g_autofree char *path = g_build_filename(dir, rel + 1, NULL);
    int fd = hv_http_open_inside(dir, path);
    if (fd < 0) {
        return false;
    }
    struct stat st;
    g_autofree char *data = NULL;
    ssize_t got = -1;
    if (fstat(fd, &st) == 0 && st.st_size <= STATIC_MAX_BYTES) {
        data = g_malloc((gsize)st.st_size + 1);
        got = pread(fd, data, (size_t)st.st_size, 0);
    }
    close(fd);
    if (got < 0 || got != st.st_size) {
        return false;
    }
    hv_http_add_header(ex, "Cache-Control", "no-cache");
    hv_http_add_header(ex, "X-Content-Type-Options", "nosniff");
    hv_http_respond(ex, 200, type, data, (size_t)got);
    return true;
}
