/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The installed interface description (org.dreamlink.Updater1.xml, what clients and busctl's
 * users read) says what updaterd really serves: the daemon's vtable is served on a private
 * peer-to-peer connection, introspected as any client would, and both descriptions are
 * compared member by member: names, argument names, types, directions, property access. */
#include <sys/socket.h>
#include <systemd/sd-bus.h>

#include "tests.h"
#include "manager.h"

#define OBJECT "/org/dreamlink/Updater1"
#define INTERFACE "org.dreamlink.Updater1"

/* Appends the attribute's value, or "-" when the element has none. */
static void append_attribute(char **line, const char *element, const char *attribute) {
        _cleanup_free_ char *key = NULL;
        assert_true(asprintf(&key, "%s=\"", attribute) > 0);
        const char *end = strchr(element, '>');
        const char *v = strstr(element, key);
        size_t n = 1;
        if (v && (!end || v < end)) {
                v += strlen(key);
                const char *q = strchr(v, '"');
                assert_non_null(q);
                n = q - v;
        } else
                v = "-";
        char *s = NULL;
        assert_true(asprintf(&s, "%s %.*s", *line, (int) n, v) > 0);
        free(*line);
        *line = s;
}

/* One line per member and argument of INTERFACE in an introspection document, in document
 * order: "method Stage", "  arg version s in", "property Step s read". Annotations, comments
 * and the other interfaces (sd-bus adds the standard ones) are left out. */
static char *interface_lines(const char *xml) {
        _cleanup_free_ char *out = strdup("");
        bool inside = false;
        assert_non_null(out);
        for (const char *p = strchr(xml, '<'); p; p = strchr(p + 1, '<')) {
                if (startswith(p, "<!--")) {
                        p = strstr(p, "-->");
                        assert_non_null(p);
                        continue;
                }
                if (startswith(p, "<interface ")) {
                        _cleanup_free_ char *name = strdup("");
                        append_attribute(&name, p, "name");
                        inside = streq(name, " " INTERFACE);
                        continue;
                }
                if (startswith(p, "</interface>")) {
                        inside = false;
                        continue;
                }
                if (!inside)
                        continue;
                _cleanup_free_ char *line = NULL;
                if (startswith(p, "<method ") || startswith(p, "<method>")) {
                        line = strdup("method");
                        append_attribute(&line, p, "name");
                } else if (startswith(p, "<signal ")) {
                        line = strdup("signal");
                        append_attribute(&line, p, "name");
                } else if (startswith(p, "<property ")) {
                        line = strdup("property");
                        append_attribute(&line, p, "name");
                        append_attribute(&line, p, "type");
                        append_attribute(&line, p, "access");
                } else if (startswith(p, "<arg ")) {
                        line = strdup("  arg");
                        append_attribute(&line, p, "name");
                        append_attribute(&line, p, "type");
                        append_attribute(&line, p, "direction");
                } else
                        continue;
                char *s = NULL;
                assert_true(asprintf(&s, "%s%s\n", out, line) > 0);
                free(out);
                out = s;
        }
        return TAKE_PTR(out);
}

/* What a client sees: the vtable on one end of a socket pair, Introspect from the other. */
static char *introspect_vtable(void) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *server = NULL, *client = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        sd_id128_t id;
        int fds[2];

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        assert_int_equal(sd_id128_randomize(&id), 0);
        assert_int_equal(sd_bus_new(&server), 0);
        assert_int_equal(sd_bus_set_fd(server, fds[0], fds[0]), 0);
        assert_int_equal(sd_bus_set_server(server, 1, id), 0);
        assert_int_equal(sd_bus_set_anonymous(server, 1), 0);
        assert_true(sd_bus_add_object_vtable(server, NULL, OBJECT, INTERFACE, manager_vtable, NULL) >= 0);
        assert_int_equal(sd_bus_start(server), 0);
        assert_int_equal(sd_bus_new(&client), 0);
        assert_int_equal(sd_bus_set_fd(client, fds[1], fds[1]), 0);
        assert_int_equal(sd_bus_set_anonymous(client, 1), 0);
        assert_int_equal(sd_bus_start(client), 0);

        assert_int_equal(sd_bus_message_new_method_call(client, &call, NULL, OBJECT,
                                                        "org.freedesktop.DBus.Introspectable", "Introspect"), 0);
        uint64_t cookie;
        assert_int_equal(sd_bus_send(client, call, &cookie), 1);
        /* One process, two ends: turn the crank on both until the reply is in. The count
         * bounds a protocol mistake, it is no timeout. */
        for (unsigned i = 0; !reply && i < 10000; i++) {
                int r = sd_bus_process(server, NULL);
                assert_true(r >= 0);
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                int k = sd_bus_process(client, &m);
                assert_true(k >= 0);
                uint64_t c;
                if (m && sd_bus_message_get_reply_cookie(m, &c) >= 0 && c == cookie)
                        reply = sd_bus_message_ref(m);
                if (r == 0 && k == 0)
                        assert_true(sd_bus_wait(server, 1000) >= 0);
        }
        assert_non_null(reply);
        assert_false(sd_bus_message_is_method_error(reply, NULL));
        const char *xml;
        assert_int_equal(sd_bus_message_read(reply, "s", &xml), 1);
        return strdup(xml);
}

static void test_installed_xml_matches_vtable(void **state) {
        _cleanup_free_ char *file = NULL, *served = NULL, *documented = NULL, *actual = NULL;
        (void) state;

        assert_int_equal(read_file_limited(INTERFACE_XML, 1 << 20, &file, NULL), 0);
        documented = interface_lines(file);
        served = introspect_vtable();
        actual = interface_lines(served);
        assert_non_null(strstr(actual, "method Stage"));
        if (!streq(documented, actual))
                fail_msg("%s does not describe what updaterd serves.\n-- documented:\n%s-- served:\n%s",
                         INTERFACE_XML, documented, actual);
}

/* The comparison itself catches a difference (so a broken parser cannot pass by seeing
 * nothing on either side). */
static void test_difference_is_seen(void **state) {
        _cleanup_free_ char *a = NULL, *b = NULL;
        (void) state;
        a = interface_lines("<node><interface name=\"" INTERFACE "\"><method name=\"Stage\">"
                            "<arg name=\"version\" type=\"s\" direction=\"in\"/></method>"
                            "<!-- <method name=\"Hidden\"/> --></interface>"
                            "<interface name=\"other\"><method name=\"X\"/></interface></node>");
        b = interface_lines("<node><interface name=\"" INTERFACE "\"><method name=\"Stage\">"
                            "<arg name=\"version\" type=\"t\" direction=\"in\"/></method></interface></node>");
        assert_string_equal(a, "method Stage\n  arg version s in\n");
        assert_string_not_equal(a, b);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_installed_xml_matches_vtable),
                cmocka_unit_test(test_difference_is_seen),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
