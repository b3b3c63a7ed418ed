/* The store's nodes and session leases (src/store/cluster.c) on a throwaway PostgreSQL
 * (tests/pg): heartbeats, placement on the least loaded live node, claims, takeovers of a
 * silent node's leases with the recording they continue, a clean leave, node-scoped recovery,
 * and SQLite's refusal. Several "nodes" here are several hv_store connections to one database,
 * as several havens would be.
 */
#include "../pg/pg_server.h"
#include "core/error.h"
#include "store/store.h"

#include <string.h>

static hv_test_pg *pg_server;

#define LEASE_MS 10000
#define NODE_AGE 10000
#define MINT_FMT "Mint%02dxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxpump"
#define N_SPREAD 12
#define N_NODES  3

static char *
fresh_target(void)
{
    static int n;
    g_autofree char *name = g_strdup_printf("cluster_%d", ++n);
    return hv_test_pg_new_schema(pg_server, name);
}

static hv_store *
open_store(const char *target, const char *node_id)
{
    g_autoptr(GError) error = NULL;
    hv_store *s = hv_store_open(target, &error);
    g_assert_no_error(error);
    g_assert_nonnull(s);
    g_assert_true(hv_store_is_shared(s));
    hv_store_set_node_id(s, node_id);
    return s;
}

static void
beat(hv_store *s, const char *node, int64_t sessions, int64_t viewers)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *url = g_strdup_printf("http://127.0.0.1:1/%s", node);
    g_assert_true(hv_store_node_heartbeat(s, node, url, sessions, viewers, LEASE_MS, &error));
    g_assert_no_error(error);
}

/* Three nodes; twelve placements from one of them spread 4/4/4, and a mint placed again stays
 * where it is. */
static void
test_place_spreads(void)
{
    g_autofree char *target = fresh_target();
    g_autoptr(hv_store) a = open_store(target, "a");
    g_autoptr(hv_store) b = open_store(target, "b");
    g_autoptr(hv_store) c = open_store(target, "c");
    beat(a, "a", 0, 0);
    beat(b, "b", 0, 0);
    beat(c, "c", 0, 0);
    g_autoptr(GHashTable) count = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (int i = 0; i < N_SPREAD; i++) {
        g_autofree char *mint = g_strdup_printf(MINT_FMT, i);
        g_autoptr(GError) error = NULL;
        g_autoptr(hv_store_lease) l =
            hv_store_lease_place(a, mint, i == 0, NODE_AGE, LEASE_MS, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(l->state, ==, "assigned");
        g_assert_false(l->expired);
        g_assert_cmpint(l->record, ==, i == 0);
        g_assert_nonnull(l->owner_url);
        int n = GPOINTER_TO_INT(g_hash_table_lookup(count, l->owner));
        g_hash_table_replace(count, g_strdup(l->owner), GINT_TO_POINTER(n + 1));
    }
    g_assert_cmpint(GPOINTER_TO_INT(g_hash_table_lookup(count, "a")), ==, N_SPREAD / N_NODES);
    g_assert_cmpint(GPOINTER_TO_INT(g_hash_table_lookup(count, "b")), ==, N_SPREAD / N_NODES);
    g_assert_cmpint(GPOINTER_TO_INT(g_hash_table_lookup(count, "c")), ==, N_SPREAD / N_NODES);
    g_autofree char *mint0 = g_strdup_printf(MINT_FMT, 0);
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_store_lease) first = hv_store_lease_get(a, mint0, &error);
    g_autoptr(hv_store_lease) again =
        hv_store_lease_place(b, mint0, false, NODE_AGE, LEASE_MS, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(again->owner, ==, first->owner);
    g_assert_true(again->record); /* a second start never turns a recording off */
    g_autoptr(GPtrArray) nodes = hv_store_live_nodes(a, NODE_AGE, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(nodes->len, ==, N_NODES);
    for (guint i = 0; i < nodes->len; i++) {
        g_assert_cmpint(((hv_store_node *)g_ptr_array_index(nodes, i))->leases, ==, 4);
    }
}

/* Viewers break ties between nodes with as many leases. */
static void
test_place_by_viewers(void)
{
    g_autofree char *target = fresh_target();
    g_autoptr(hv_store) a = open_store(target, "a");
    beat(a, "a", 0, 50);
    beat(a, "b", 0, 3);
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_store_lease) l = hv_store_lease_place(
        a, "ViewerTieMintxxxxxxxxxxxxxxxxxxxxxxxxpump", false, NODE_AGE, LEASE_MS, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(l->owner, ==, "b");
}

/* No live node: HV_EAGAIN; SQLite: HV_EINVAL. */
static void
test_place_without_nodes_and_sqlite(void)
{
    g_autofree char *target = fresh_target();
    g_autoptr(hv_store) a = open_store(target, "a");
    g_autoptr(GError) error = NULL;
    g_assert_null(hv_store_lease_place(a, "NoNodeMintxxxxxxxxxxxxxxxxxxxxxxxxxxxxpump", false,
                                       NODE_AGE, LEASE_MS, &error));
    g_assert_error(error, HV_ERROR, HV_EAGAIN);
    g_clear_error(&error);

    g_autoptr(hv_store) lite = hv_store_open(":memory:", &error);
    g_assert_no_error(error);
    g_assert_false(hv_store_is_shared(lite));
    g_assert_false(hv_store_node_heartbeat(lite, "a", "http://x", 0, 0, LEASE_MS, &error));
    g_assert_error(error, HV_ERROR, HV_EINVAL);
    g_clear_error(&error);
    g_assert_null(hv_store_leases(lite, NULL, &error));
    g_assert_error(error, HV_ERROR, HV_EINVAL);
}

/* A claim takes a free or expired mint, and answers the other node's lease otherwise. */
static void
test_claim(void)
{
    g_autofree char *target = fresh_target();
    g_autoptr(hv_store) a = open_store(target, "a");
    g_autoptr(hv_store) b = open_store(target, "b");
    beat(a, "a", 0, 0);
    beat(b, "b", 0, 0);
    const char *mint = "ClaimMintxxxxxxxxxxxxxxxxxxxxxxxxxxxxxpump";
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_store_lease) mine = hv_store_lease_claim(a, mint, "a", true, LEASE_MS, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(mine->owner, ==, "a");
    g_assert_cmpstr(mine->state, ==, "running");
    g_autoptr(hv_store_lease) theirs = hv_store_lease_claim(b, mint, "b", false, LEASE_MS, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(theirs->owner, ==, "a");
    /* a's lease runs out (a 1 ms lease): b may take it. */
    g_assert_true(hv_store_node_heartbeat(a, "a", "http://a", 1, 0, 1, &error));
    g_usleep(20000);
    g_autoptr(hv_store_lease) taken = hv_store_lease_claim(b, mint, "b", false, LEASE_MS, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(taken->owner, ==, "b");
    /* update and release only work for the owner */
    g_assert_true(hv_store_lease_update(b, mint, "b", "running", "{\"x\":1}", 7, 0, NULL, &error));
    g_autoptr(hv_store_lease) got = hv_store_lease_get(a, mint, &error);
    g_assert_cmpstr(got->report, ==, "{\"x\":1}");
    g_assert_cmpint(got->recording_id, ==, 7);
    g_assert_false(hv_store_lease_release(a, mint, "a", &error));
    g_assert_no_error(error);
    g_assert_true(hv_store_lease_release(a, mint, "b", &error));
    g_autoptr(hv_store_lease) none = hv_store_lease_get(a, mint, &error);
    g_assert_null(none);
    g_assert_no_error(error);
}

/* A node that stops beating loses its leases to the least loaded live node, with the recording
 * it was writing as the one the new owner's file continues; a failed start is left alone. */
static void
test_take_over(void)
{
    g_autofree char *target = fresh_target();
    g_autoptr(hv_store) a = open_store(target, "a");
    g_autoptr(hv_store) b = open_store(target, "b");
    g_autoptr(hv_store) c = open_store(target, "c");
    beat(a, "a", 0, 0);
    const char *m1 = "TakeOneMintxxxxxxxxxxxxxxxxxxxxxxxxxxxpump";
    const char *m2 = "TakeTwoMintxxxxxxxxxxxxxxxxxxxxxxxxxxxpump";
    const char *m3 = "TakeBadMintxxxxxxxxxxxxxxxxxxxxxxxxxxxpump";
    g_autoptr(GError) error = NULL;
    hv_store_lease_free(hv_store_lease_claim(a, m1, "a", true, LEASE_MS, &error));
    hv_store_lease_free(hv_store_lease_claim(a, m2, "a", false, LEASE_MS, &error));
    hv_store_lease_free(hv_store_lease_claim(a, m3, "a", false, LEASE_MS, &error));
    g_assert_true(hv_store_lease_update(a, m1, "a", "running", NULL, 42, 0, NULL, &error));
    g_assert_true(
        hv_store_lease_update(a, m3, "a", "failed", NULL, 0, HV_ENOTFOUND, "not live", &error));
    g_assert_no_error(error);
    /* Nothing has expired yet. */
    beat(b, "b", 0, 0);
    beat(c, "c", 0, 0);
    g_assert_cmpint(hv_store_leases_take_over(b, NODE_AGE, LEASE_MS, &error), ==, 0);
    /* a goes silent: its heartbeat and leases age past the node timeout. */
    g_assert_true(hv_store_node_heartbeat(a, "a", "http://a", 3, 0, 1, &error));
    g_usleep(60000);
    beat(b, "b", 0, 0);
    beat(c, "c", 0, 0);
    g_assert_cmpint(hv_store_leases_take_over(b, 40, LEASE_MS, &error), ==, 2);
    g_assert_no_error(error);
    g_autoptr(hv_store_lease) l1 = hv_store_lease_get(b, m1, &error);
    g_autoptr(hv_store_lease) l2 = hv_store_lease_get(b, m2, &error);
    g_autoptr(hv_store_lease) l3 = hv_store_lease_get(b, m3, &error);
    g_assert_cmpstr(l1->state, ==, "assigned");
    g_assert_cmpint(l1->takeovers, ==, 1);
    g_assert_cmpint(l1->continues_recording, ==, 42);
    g_assert_cmpint(l1->recording_id, ==, 0);
    g_assert_true(l1->record);
    g_assert_cmpint(l2->continues_recording, ==, 0);
    /* spread over the two live nodes, never back to a */
    g_assert_cmpstr(l1->owner, !=, "a");
    g_assert_cmpstr(l2->owner, !=, "a");
    g_assert_cmpstr(l1->owner, !=, l2->owner);
    g_assert_cmpstr(l3->owner, ==, "a");
    g_assert_cmpstr(l3->state, ==, "failed");
    /* A second pass finds nothing left. */
    g_assert_cmpint(hv_store_leases_take_over(c, 40, LEASE_MS, &error), ==, 0);
}

/* A clean leave: the row goes and the leases end at once. */
static void
test_leave(void)
{
    g_autofree char *target = fresh_target();
    g_autoptr(hv_store) a = open_store(target, "a");
    g_autoptr(hv_store) b = open_store(target, "b");
    beat(a, "a", 0, 0);
    beat(b, "b", 0, 0);
    const char *mint = "LeaveMintxxxxxxxxxxxxxxxxxxxxxxxxxxxxxpump";
    g_autoptr(GError) error = NULL;
    hv_store_lease_free(hv_store_lease_claim(a, mint, "a", false, LEASE_MS, &error));
    g_assert_true(hv_store_node_leave(a, "a", &error));
    g_autoptr(GPtrArray) nodes = hv_store_live_nodes(b, NODE_AGE, &error);
    g_assert_cmpuint(nodes->len, ==, 1);
    g_autoptr(hv_store_lease) l = hv_store_lease_get(b, mint, &error);
    g_assert_true(l->expired);
    g_assert_null(l->owner_url);
    g_assert_cmpint(hv_store_leases_take_over(b, NODE_AGE, LEASE_MS, &error), ==, 1);
    g_autoptr(hv_store_lease) moved = hv_store_lease_get(b, mint, &error);
    g_assert_cmpstr(moved->owner, ==, "b");
}

/* Rows carry their node; startup recovery of one node leaves the other's alone. */
static void
test_node_scoped_rows(void)
{
    g_autofree char *target = fresh_target();
    g_autoptr(hv_store) a = open_store(target, "a");
    g_autoptr(hv_store) b = open_store(target, "b");
    g_autoptr(GError) error = NULL;
    hv_store_session_row row = {.mint_id = "ScopeMintxxxxxxxxxxxxxxxxxxxxxxxxxxxxxpump"};
    g_assert_cmpint(hv_store_insert_live_session(a, &row, 1000, &error), >, 0);
    g_assert_cmpint(hv_store_insert_live_session(b, &row, 1000, &error), >, 0);
    g_assert_cmpint(hv_store_recover_live_sessions(a, 2000, &error), ==, 1);
    g_assert_cmpint(hv_store_recover_live_sessions(b, 2000, &error), ==, 1);

    hv_store_recording r = {
        .mint_id = (char *)row.mint_id, .status = (char *)"recording", .start_ms = 1000};
    int64_t ra = hv_store_insert_recording(a, &r, &error);
    r.continuation_of = ra;
    int64_t rb = hv_store_insert_recording(b, &r, &error);
    g_assert_no_error(error);
    g_autoptr(GPtrArray) mine = hv_store_list_unfinished_recordings(a, &error);
    g_assert_cmpuint(mine->len, ==, 1);
    hv_store_recording *got = g_ptr_array_index(mine, 0);
    g_assert_cmpint(got->id, ==, ra);
    g_assert_cmpstr(got->node_id, ==, "a");
    hv_store_recording other = {0};
    g_assert_true(hv_store_get_recording(a, rb, &other, &error));
    g_assert_cmpstr(other.node_id, ==, "b");
    g_assert_cmpint(other.continuation_of, ==, ra);
    hv_store_recording_clear(&other);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_autoptr(GError) error = NULL;
    pg_server = hv_test_pg_start(&error);
    if (pg_server == NULL) {
        g_printerr("%s\n", error->message);
        g_auto(GStrv) lines = g_strsplit(error->message, "\n", 2);
        printf("Bail out! %s\n", lines[0]);
        return 1;
    }
    g_test_add_func("/cluster-store/place-spreads", test_place_spreads);
    g_test_add_func("/cluster-store/place-by-viewers", test_place_by_viewers);
    g_test_add_func("/cluster-store/place-without-nodes-and-sqlite",
                    test_place_without_nodes_and_sqlite);
    g_test_add_func("/cluster-store/claim", test_claim);
    g_test_add_func("/cluster-store/take-over", test_take_over);
    g_test_add_func("/cluster-store/leave", test_leave);
    g_test_add_func("/cluster-store/node-scoped-rows", test_node_scoped_rows);
    int rc = g_test_run();
    hv_test_pg_stop(pg_server);
    return rc;
}
