/* GET /openapi.json: the OpenAPI 3.1 description of the REST API. Main thread only.
 *
 * The document is src/http/openapi.json, hand-written and embedded at build time by
 * tools/embed.py (hv_http_openapi_json). The first request parses it, fills in info.version
 * (the file holds a placeholder) and renders it once, compact, with a gzip copy; every later
 * request shares that body. A weak ETag (the same for both encodings) lets clients revalidate:
 * If-None-Match with it gets 304. tests/integration/test_openapi.py checks the document
 * against the running server's answers, and tests/unit/test-http.c that it names every route.
 */
#include "http-private.h"

#include "core/json.h"

#include <string.h>

/* The rendered document and its ETag; made by the first request, kept until exit. */
static hv_http_body *openapi_body;
static char openapi_etag[48];

json_t *
hv_http_openapi_load(const char *version, char *error, size_t error_len)
{
    json_error_t jerr;
    json_t *doc = json_loadb(hv_http_openapi_json, hv_http_openapi_json_len, 0, &jerr);
    json_t *info = json_object_get(doc, "info");
    if (doc == NULL || !json_is_object(info) || !json_is_object(json_object_get(doc, "paths"))) {
        g_snprintf(error, error_len, "openapi.json line %d: %s", jerr.line,
                   doc == NULL ? jerr.text : "no info or paths object");
        json_decref(doc);
        return NULL;
    }
    json_object_set_new(info, "version", json_string(version != NULL ? version : HAVEN_VERSION));
    return doc;
}

/* Whether an If-None-Match value (a list of entity tags, or "*") names etag, compared weakly
 * (RFC 9110 section 13.1.2: the W/ prefixes are ignored). */
static bool
etag_listed(const char *if_none_match, const char *etag)
{
    const char *opaque = g_str_has_prefix(etag, "W/") ? etag + 2 : etag;
    g_auto(GStrv) tags = g_strsplit(if_none_match, ",", -1);
    for (char **t = tags; *t != NULL; t++) {
        const char *tag = g_strstrip(*t);
        if (strcmp(tag, "*") == 0) {
            return true;
        }
        if (g_str_has_prefix(tag, "W/")) {
            tag += 2;
        }
        if (strcmp(tag, opaque) == 0) {
            return true;
        }
    }
    return false;
}

/* Renders the document once; false (and a 500 answered) when it does not parse, which the unit
 * test rules out for every build. */
static bool
render(hv_http_exchange *ex)
{
    if (openapi_body != NULL) {
        return true;
    }
    char error[200];
    g_autoptr(json_t) doc = hv_http_openapi_load(ex->deps->version, error, sizeof(error));
    if (doc == NULL) {
        g_message("cannot serve /openapi.json: %s", error);
        hv_http_respond_detail(ex, 500, "The API description is broken: %s", error);
        return false;
    }
    char *text = json_dumps(doc, JSON_COMPACT);
    size_t len = strlen(text);
    g_autofree char *sum =
        g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)text, len);
    g_snprintf(openapi_etag, sizeof(openapi_etag), "W/\"%.32s\"", sum);
    openapi_body = hv_http_body_new(text, len, true);
    free(text);
    return true;
}

void
hv_http_handle_openapi(hv_http_exchange *ex)
{
    if (!render(ex)) {
        return;
    }
    hv_http_add_header(ex, "ETag", openapi_etag);
    hv_http_add_header(ex, "Cache-Control", "no-cache");
    if (ex->if_none_match != NULL && etag_listed(ex->if_none_match, openapi_etag)) {
        hv_http_respond(ex, 304, NULL, "", 0);
        return;
    }
    hv_http_respond_shared(ex, 200, "application/json", openapi_body);
}
