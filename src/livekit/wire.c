/* wire.c: thins out the participant lists of big rooms before protobuf-c decodes them.
 *
 * A JoinResponse lists every non-hidden participant of the room (spec Appendix A.14): about
 * 100 bytes each on the wire, so 2 MB for a stream with 20,000 viewers, and protobuf-c would
 * turn each into a ParticipantInfo with its strings and sub-messages: several times that in
 * small allocations that glibc keeps after they are freed. haven needs only the publishers
 * (and the participants it already knows, whose DISCONNECTED snapshot matters). So the raw
 * SignalResponse is walked once at the wire level, and a copy without the other
 * ParticipantInfo entries is what gets decoded. Only join (JoinResponse.other_participants,
 * field 3) and update (ParticipantUpdate.participants, field 1) carry such lists.
 *
 * The walker reads protobuf's wire format only as far as it needs (tags, varints, lengths);
 * anything it does not understand makes it give up, and the message is decoded as it came.
 */
#include "livekit-private.h"

#include <string.h>

/* Messages below this size are decoded as they are: filtering cannot save anything there. */
#define WIRE_FILTER_MIN_BYTES (64 * 1024)

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

typedef struct {
    const uint8_t *p, *end;
} cursor;

static bool
read_varint(cursor *c, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (c->p >= c->end) {
            return false;
        }
        uint8_t b = *c->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* Reads one field's tag and, for LEN fields, its payload; *payload spans the field's value. */
static bool
read_field(cursor *c, uint32_t *number, int *wire_type, cursor *payload)
{
    uint64_t tag = 0;
    if (!read_varint(c, &tag) || (tag >> 3) == 0 || (tag >> 3) > UINT32_MAX) {
        return false;
    }
    *number = (uint32_t)(tag >> 3);
    *wire_type = (int)(tag & 7);
    payload->p = c->p;
    uint64_t n = 0;
    switch (*wire_type) {
    case WT_VARINT:
        if (!read_varint(c, &n)) {
            return false;
        }
        break;
    case WT_I64:
        if (c->end - c->p < 8) {
            return false;
        }
        c->p += 8;
        break;
    case WT_I32:
        if (c->end - c->p < 4) {
            return false;
        }
        c->p += 4;
        break;
    case WT_LEN:
        if (!read_varint(c, &n) || n > (uint64_t)(c->end - c->p)) {
            return false;
        }
        payload->p = c->p;
        c->p += n;
        break;
    default:
        return false;
    }
    payload->end = c->p;
    return true;
}

static void
append_varint(GByteArray *out, uint64_t v)
{
    uint8_t buf[10];
    size_t n = 0;
    do {
        buf[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v != 0) {
            buf[n] |= 0x80;
        }
        n++;
    } while (v != 0);
    g_byte_array_append(out, buf, (guint)n);
}

static void
append_len_field(GByteArray *out, uint32_t number, const uint8_t *data, size_t len)
{
    append_varint(out, ((uint64_t)number << 3) | WT_LEN);
    append_varint(out, len);
    g_byte_array_append(out, data, (guint)len);
}

/* Whether a serialized ParticipantInfo is worth decoding: it publishes (field 4, tracks), or
 * its identity (field 2) is one keep() knows. */
static bool
participant_wanted(cursor info, hv_lk_wire_keep_fn keep, void *data, bool *ok)
{
    const char *identity = NULL;
    size_t identity_len = 0;
    bool tracks = false;
    while (info.p < info.end) {
        uint32_t number = 0;
        int wt = 0;
        cursor v;
        if (!read_field(&info, &number, &wt, &v)) {
            *ok = false;
            return true;
        }
        if (number == 4 && wt == WT_LEN) {
            tracks = true;
        } else if (number == 2 && wt == WT_LEN) {
            identity = (const char *)v.p;
            identity_len = (size_t)(v.end - v.p);
        }
    }
    if (tracks) {
        return true;
    }
    if (identity == NULL || keep == NULL) {
        return false;
    }
    g_autofree char *id = g_strndup(identity, identity_len);
    return keep(id, data);
}

/* Copies a JoinResponse or ParticipantUpdate, leaving out the unwanted entries of the
 * repeated ParticipantInfo field list_field. */
static bool
filter_list(cursor msg, uint32_t list_field, hv_lk_wire_keep_fn keep, void *data, GByteArray *out,
            size_t *dropped)
{
    while (msg.p < msg.end) {
        const uint8_t *start = msg.p;
        uint32_t number = 0;
        int wt = 0;
        cursor v;
        if (!read_field(&msg, &number, &wt, &v)) {
            return false;
        }
        if (number == list_field && wt == WT_LEN) {
            bool ok = true;
            bool wanted = participant_wanted(v, keep, data, &ok);
            if (!ok) {
                return false;
            }
            if (!wanted) {
                (*dropped)++;
                continue;
            }
        }
        g_byte_array_append(out, start, (guint)(msg.p - start));
    }
    return true;
}

GBytes *
hv_lk_wire_filter_participants(const uint8_t *buf, size_t len, hv_lk_wire_keep_fn keep, void *data,
                               size_t *dropped)
{
    *dropped = 0;
    if (len < WIRE_FILTER_MIN_BYTES) {
        return NULL;
    }
    cursor c = {buf, buf + len};
    GByteArray *out = g_byte_array_sized_new((guint)MIN(len, (size_t)64 * 1024));
    bool filtered = false;
    while (c.p < c.end) {
        const uint8_t *start = c.p;
        uint32_t number = 0;
        int wt = 0;
        cursor v;
        if (!read_field(&c, &number, &wt, &v)) {
            g_byte_array_unref(out);
            return NULL;
        }
        /* SignalResponse.join = 1 (JoinResponse.other_participants = 3),
         * SignalResponse.update = 5 (ParticipantUpdate.participants = 1). */
        uint32_t list = number == 1 ? 3 : number == 5 ? 1 : 0;
        if (list != 0 && wt == WT_LEN) {
            GByteArray *inner = g_byte_array_new();
            if (!filter_list(v, list, keep, data, inner, dropped)) {
                g_byte_array_unref(inner);
                g_byte_array_unref(out);
                return NULL;
            }
            append_len_field(out, number, inner->data, inner->len);
            g_byte_array_unref(inner);
            filtered = true;
        } else {
            g_byte_array_append(out, start, (guint)(c.p - start));
        }
    }
    if (!filtered || *dropped == 0) {
        g_byte_array_unref(out);
        return NULL;
    }
    return g_byte_array_free_to_bytes(out);
}
