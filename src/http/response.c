/* The response API: how a handler (and access.c's refusals) answers an exchange. Main thread
 * only.
 *
 * An answer is recorded on the exchange: status, headers and a body (copied, rendered JSON, a
 * shared pre-rendered body, or a window of an open file). hv_http_send() marks it answered;
 * server.c writes it out, from the request callback when the answer came during dispatch, else
 * from the next writable callback. Nothing here calls into server.c or the handlers, so every
 * other file of the module can answer without a call cycle.
 */
#include "http-private.h"

#include "core/json.h"

#include <libwebsockets.h>
#include <stdarg.h>
#include <stdlib.h>

void
hv_http_add_header(hv_http_exchange *ex, const char *name, const char *value)
{
    g_ptr_array_add(ex->headers, g_ascii_strdown(name, -1));
    g_ptr_array_add(ex->headers, g_strdup(value));
}

GString *
hv_http_begin(hv_http_exchange *ex, int status, const char *content_type)
{
    g_return_val_if_fail(!ex->responded, NULL);
    ex->status = status;
    ex->content_type = content_type;
    if (ex->body == NULL) {
        ex->body = g_string_sized_new(LWS_PRE + 1024);
    }
    g_string_set_size(ex->body, LWS_PRE); /* headroom lws may use in front of the payload */
    return ex->body;
}

void
hv_http_send(hv_http_exchange *ex)
{
    ex->responded = true;
    /* An answer ready while the request is being dispatched is written by server.c's
     * on_request itself, saving a trip through the poll loop; a later one waits for the socket
     * to be writable. */
    if (ex->wsi != NULL && !ex->in_dispatch) {
        lws_callback_on_writable(ex->wsi);
    }
}

void
hv_http_respond_shared(hv_http_exchange *ex, int status, const char *content_type,
                       hv_http_body *body)
{
    g_return_if_fail(!ex->responded);
    ex->status = status;
    ex->content_type = content_type;
    ex->shared = hv_http_body_ref(body);
    if (hv_http_body_has_gzip(body)) {
        hv_http_add_header(ex, "Vary", "Accept-Encoding");
        if (ex->accepts_gzip) {
            hv_http_add_header(ex, "Content-Encoding", "gzip");
        }
    }
    hv_http_send(ex);
}

hv_http_body_cache *
hv_http_exchange_body_cache(hv_http_exchange *ex)
{
    return ex->srv->bodies;
}

void
hv_http_respond(hv_http_exchange *ex, int status, const char *content_type, const char *body,
                size_t len)
{
    GString *b = hv_http_begin(ex, status, content_type);
    g_string_append_len(b, body, (gssize)len);
    hv_http_send(ex);
}

void
hv_http_respond_json(hv_http_exchange *ex, int status, json_t *json)
{
    GString *b = hv_http_begin(ex, status, "application/json");
    char *text = json_dumps(json, JSON_COMPACT | JSON_REAL_PRECISION(16));
    g_string_append(b, text != NULL ? text : "null");
    free(text);
    json_decref(json);
    hv_http_send(ex);
}

void
hv_http_respond_file(hv_http_exchange *ex, int status, const char *content_type, int fd,
                     int64_t offset, int64_t length)
{
    g_return_if_fail(!ex->responded && ex->file_fd < 0 && fd >= 0 && offset >= 0 && length >= 0);
    ex->status = status;
    ex->content_type = content_type;
    ex->file_fd = fd;
    ex->file_pos = offset;
    ex->file_end = offset + length;
    hv_http_send(ex);
}

void
hv_http_respond_validation(hv_http_exchange *ex, json_t *errors)
{
    hv_http_respond_json(ex, 422, json_pack("{s:o}", "detail", errors));
}

void
hv_http_respond_session_error(hv_http_exchange *ex, int status, const char *message)
{
    hv_http_respond_json(
        ex, status,
        json_pack("{s:b, s:s, s:s}", "success", 0, "error", message, "detail", message));
}

void
hv_http_respond_detail(hv_http_exchange *ex, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *detail = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    hv_http_respond_json(ex, status, json_pack("{s:s}", "detail", detail));
}
