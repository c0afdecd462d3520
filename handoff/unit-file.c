/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A service's Type=, ExecStart=, PrivateTmp= and PIDFile= as systemd will load them from disk: for the
 * generator, which runs before systemd loads units and may not ask it, and for the dump, which needs
 * them without the restore drop-in that replaces some for one start. Only what these need: the
 * fragment where systemd finds it first (an instance falls back to its template), then the
 * drop-ins of the unit, its template and all services (service.d), merged by name (an earlier
 * directory hides a later one's file of the same name) and applied in name order. For the
 * generator also the fragment's text without some of its ordering, and whether a unit is a
 * podman quadlet's, from the .container file quadlet makes it of. */

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf-parser.h"
#include "dropin.h"
#include "fileio.h"
#include "macro.h"
#include "string-util.h"
#include "unit-file.h"

/* systemd's system unit search path, as far as an admin or a package puts units there. */
static const char *const unit_dirs[] = {
        "/etc/systemd/system",
        "/run/systemd/system",
        "/usr/local/lib/systemd/system",
        "/usr/lib/systemd/system",
};

void unit_settings_done(UnitSettings *u) {
        u->type = mfree(u->type);
        u->exec_start = strv_free(u->exec_start);
        u->private_tmp = mfree(u->private_tmp);
        u->pid_file = mfree(u->pid_file);
        u->masked = false;
}

/* Applies one file's [Service] Type=, ExecStart=, PrivateTmp= and PIDFile= lines; continuation lines ("\" at the end)
 * are joined as systemd joins them. */
static int apply_file(const char *path, UnitSettings *u) {
        _cleanup_free_ char *text = NULL;
        bool in_service = false;
        int r;

        r = read_file_limited(path, CONFIG_FILE_MAX, &text, NULL);
        if (r < 0)
                return r;
        for (char *p = text, *next; p && *p; p = next) {
                /* The logical line: physical lines joined while one ends in a backslash. */
                char *end = p;
                for (;;) {
                        end = strchr(end, '\n');
                        if (!end || end == p || end[-1] != '\\')
                                break;
                        end[-1] = ' ';
                        *end = ' ';
                }
                next = end ? end + 1 : NULL;
                if (end)
                        *end = 0;

                char *l = strstrip(p);
                if (!*l || *l == '#' || *l == ';')
                        continue;
                if (*l == '[') {
                        in_service = streq(l, "[Service]");
                        continue;
                }
                char *eq = strchr(l, '=');
                if (!in_service || !eq)
                        continue;
                *eq = 0;
                char *key = strstrip(l), *value = strstrip(eq + 1);
                if (streq(key, "Type"))
                        r = free_and_strdup(&u->type, value);
                else if (streq(key, "PrivateTmp"))
                        r = free_and_strdup(&u->private_tmp, value);
                else if (streq(key, "PIDFile"))
                        r = free_and_strdup(&u->pid_file, value);
                else if (streq(key, "ExecStart"))
                        r = isempty(value) ? (u->exec_start = strv_free(u->exec_start), 0) : strv_extend(&u->exec_start, value);
                else
                        continue;
                if (r < 0)
                        return r;
        }
        return 0;
}

/* "foo@bar.service" → "foo@.service"; NULL for a unit that is no instance. */
static char *template_of(const char *unit) {
        const char *at = strchr(unit, '@'), *dot = strrchr(unit, '.');
        if (!at || !dot || dot < at || at + 1 == dot)
                return NULL;
        return strprintf("%.*s%s", (int) (at - unit + 1), unit, dot);
}

/* The fragment systemd loads UNIT from: the first file of the unit's name in the unit directories,
 * else of its template's. *ret NULL when it is masked (linked to /dev/null); -ENOENT when none. */
static int find_fragment(const char *root, const char *unit, const char *template, char **ret) {
        const char *names[] = { unit, template, NULL };

        for (size_t n = 0; names[n]; n++)
                for (size_t d = 0; d < ELEMENTSOF(unit_dirs); d++) {
                        _cleanup_free_ char *path = strprintf("%s%s/%s", strempty(root), unit_dirs[d], names[n]), *target = NULL;
                        if (!path)
                                return -ENOMEM;
                        if (access(path, F_OK) < 0)
                                continue;
                        target = realpath(path, NULL);
                        *ret = target && streq(target, "/dev/null") ? NULL : TAKE_PTR(path);
                        return 0;
                }
        return -ENOENT;
}

int unit_settings_read(const char *root, const char *unit, UnitSettings *ret) {
        _cleanup_free_ char *template = template_of(unit), *fragment = NULL;
        _cleanup_strv_free_ char **dropin_dirs = NULL, **dropins = NULL;
        _cleanup_(unit_settings_done) UnitSettings u = {};
        int r;

        assert(unit);
        root = strempty(root);
        r = find_fragment(root, unit, template, &fragment);
        if (r < 0)
                return r;
        if (!fragment) {
                /* Masked: systemd will not start it, there is nothing to wrap. */
                u.masked = true;
                *ret = u;
                u = (UnitSettings) {};
                return 0;
        }
        r = apply_file(fragment, &u);
        if (r < 0)
                return r;

        /* Per directory, most specific first; the merge keeps the first of each name. */
        for (size_t d = 0; d < ELEMENTSOF(unit_dirs); d++)
                for (size_t n = 0; n < 3; n++) {
                        const char *name = n == 0 ? unit : n == 1 ? template : "service";
                        if (!name)
                                continue;
                        char *dir = strprintf("%s%s/%s.d", root, unit_dirs[d], name);
                        if (!dir || strv_push(&dropin_dirs, dir) < 0)
                                return -ENOMEM;
                }
        r = conf_files_list((const char * const *) dropin_dirs, ".conf", &dropins);
        if (r < 0)
                return r;
        STRV_FOREACH(f, dropins) {
                /* The restore drop-in replaces ExecStart= for one start; it is not the unit's. */
                if (endswith(*f, "/" RESTORE_DROPIN_NAME))
                        continue;
                r = apply_file(*f, &u);
                if (r < 0)
                        return r;
        }
        *ret = u;
        u = (UnitSettings) {};
        return 0;
}

/* TEXT, a unit file, without ordering after the units in DROP ([Unit] After=): 1 and *ret the new
 * text when it had some, 0 otherwise. The rest as written, continuation lines and comments
 * included; an After= line left empty goes; a quoted one is left as it is. */
static int drop_after(const char *text, char * const *drop, char **ret) {
        _cleanup_free_ char *out = NULL;
        bool in_unit = false, changed = false;
        size_t size = 0;
        int r = 0;

        FILE *f = open_memstream(&out, &size);
        if (!f)
                return -ENOMEM;
        for (const char *p = text, *end; *p && r >= 0; p = end) {
                /* The logical line: physical lines while one ends in a backslash. */
                for (const char *q = p;;) {
                        const char *nl = strchr(q, '\n');
                        if (!nl) {
                                end = q + strlen(q);
                                break;
                        }
                        if (nl > p && nl[-1] == '\\') {
                                q = nl + 1;
                                continue;
                        }
                        end = nl + 1;
                        break;
                }
                _cleanup_free_ char *line = strndup(p, end - p);
                _cleanup_strv_free_ char **words = NULL, **kept = NULL;
                if (!line) {
                        r = -ENOMEM;
                        break;
                }
                for (char *c = line; (c = strstr(c, "\\\n"));)
                        c[0] = c[1] = ' ';
                char *l = strstrip(line);
                const char *value = NULL;
                if (*l == '[')
                        in_unit = streq(l, "[Unit]");
                else if (in_unit && (value = startswith(l, "After"))) {
                        value += strspn(value, " \t");
                        value = *value == '=' && !strpbrk(value, "\"'") ? value + 1 : NULL;
                }
                if (value)
                        r = strv_split(value, " \t", &words);
                STRV_FOREACH(w, words)
                        if (r >= 0 && !strv_contains(drop, *w))
                                r = strv_extend(&kept, *w);
                if (r < 0)
                        break;
                if (!value || strv_length(kept) == strv_length(words)) {
                        fwrite(p, 1, end - p, f);
                        continue;
                }
                changed = true;
                if (kept) {
                        _cleanup_free_ char *joined = strv_join(kept, " ");
                        if (!joined)
                                r = -ENOMEM;
                        else
                                fprintf(f, "After=%s\n", joined);
                }
        }
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0 || !changed)
                return r;
        *ret = TAKE_PTR(out);
        return 1;
}

int unit_fragment_drop_after(const char *root, const char *unit, char * const *drop, char **ret_path, char **ret_text) {
        _cleanup_free_ char *template = template_of(unit), *fragment = NULL, *text = NULL, *changed = NULL;
        int r;

        assert(unit && ret_path && ret_text);
        root = strempty(root);
        r = find_fragment(root, unit, template, &fragment);
        if (r < 0 || !fragment)
                return r;
        r = read_file_limited(fragment, CONFIG_FILE_MAX, &text, NULL);
        if (r < 0)
                return r;
        r = drop_after(text, drop, &changed);
        if (r <= 0)
                return r;
        char *path = strdup(fragment + strlen(root));
        if (!path)
                return -ENOMEM;
        *ret_path = path;
        *ret_text = TAKE_PTR(changed);
        return 1;
}

int unit_settings_pid_file(const UnitSettings *u, const char *unit, char **ret) {
        const char *dot = strrchr(unit, '.'), *at = strchr(unit, '@');
        _cleanup_free_ char *out = NULL;
        size_t len = 0;

        assert(u && unit && dot);
        *ret = NULL;
        if (isempty(u->pid_file))
                return 0;
        /* prefix: before "@" (or the suffix); instance: between "@" and the suffix */
        int prefix_len = (int) ((at && at < dot ? at : dot) - unit);
        const char *instance = at && at < dot ? at + 1 : "";
        int instance_len = at && at < dot ? (int) (dot - at - 1) : 0;

        for (const char *p = u->pid_file; *p; p++) {
                _cleanup_free_ char *piece = NULL;
                if (*p != '%')
                        piece = strndup(p, 1);
                else
                        switch (*++p) {
                        case 'i': case 'I': piece = strndup(instance, instance_len); break;
                        case 'n': piece = strdup(unit); break;
                        case 'N': piece = strndup(unit, dot - unit); break;
                        case 'p': case 'P': piece = strndup(unit, prefix_len); break;
                        case 't': piece = strdup("/run"); break;
                        case '%': piece = strdup("%"); break;
                        default: return -EOPNOTSUPP; /* also a "%" at the end */
                        }
                if (!piece)
                        return -ENOMEM;
                size_t n = strlen(piece);
                char *grown = realloc(out, len + n + 1);
                if (!grown)
                        return -ENOMEM;
                out = grown;
                memcpy(out + len, piece, n + 1);
                len += n;
        }
        const char *rest = startswith(out, "/var/run/");
        *ret = rest ? strprintf("/run/%s", rest) : TAKE_PTR(out);
        return *ret ? 0 : -ENOMEM;
}

/* Podman's quadlet generator (podman-systemd.unit(5)) makes NAME.service of NAME.container found in
 * these directories or below them, the first one found winning; /etc's "users" holds rootless users'
 * units. The file is there before any generator runs, unlike the unit quadlet writes from it, which
 * ours may run before. */
static const char *const quadlet_dirs[] = {
        "/run/containers/systemd",
        "/etc/containers/systemd",
        "/usr/share/containers/systemd",
};

/* Calls visit(path on the running system, file name) for each regular file in the quadlet
 * directories, a directory's files before its subdirectories, as quadlet's "first found wins"
 * reads; stops at the first non-zero answer and returns it. Rootless users' units are not ours. */
typedef int (*quadlet_visit_t)(const char *path, const char *name, void *userdata);

static int walk_below(int dir_fd, const char *path, bool top, unsigned depth, quadlet_visit_t visit, void *userdata) {
        int fd = dup(dir_fd);
        if (fd < 0)
                return -errno;
        _cleanup_(closedirp) DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        for (bool files = true;; files = false) {
                rewinddir(d);
                for (struct dirent *de; (de = readdir(d));) {
                        struct stat st;
                        int r = 0;

                        if (de->d_name[0] == '.' || (top && streq(de->d_name, "users")))
                                continue;
                        if (fstatat(dir_fd, de->d_name, &st, 0) < 0)
                                continue;
                        _cleanup_free_ char *sub_path = strprintf("%s/%s", path, de->d_name);
                        if (!sub_path)
                                return -ENOMEM;
                        if (files && S_ISREG(st.st_mode))
                                r = visit(sub_path, de->d_name, userdata);
                        else if (!files && S_ISDIR(st.st_mode) && depth > 0) {
                                _cleanup_close_ int sub = openat(dir_fd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                                if (sub >= 0)
                                        r = walk_below(sub, sub_path, false, depth - 1, visit, userdata);
                        }
                        if (r != 0)
                                return r;
                }
                if (!files)
                        return 0;
        }
}

static int walk_quadlet_files(const char *root, quadlet_visit_t visit, void *userdata) {
        for (size_t d = 0; d < ELEMENTSOF(quadlet_dirs); d++) {
                _cleanup_free_ char *dir = strprintf("%s%s", strempty(root), quadlet_dirs[d]);
                if (!dir)
                        return -ENOMEM;
                _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                int r = walk_below(fd, quadlet_dirs[d], true, 8, visit, userdata);
                if (r != 0)
                        return r;
        }
        return 0;
}

struct find_source {
        const char *name;
        char *path;
};

/* Quadlet takes one file of a name; the same name twice in one tree is an admin's mistake that
 * neither of us resolves. */
static int visit_find(const char *path, const char *name, void *userdata) {
        struct find_source *f = userdata;

        if (!streq(name, f->name))
                return 0;
        f->path = strdup(path);
        return f->path ? 1 : -ENOMEM;
}

int unit_quadlet_source(const char *root, const char *unit, char **ret) {
        _cleanup_free_ char *template = template_of(unit);
        const char *dot = strrchr(unit, '.');

        assert(unit);
        *ret = NULL;
        if (!dot || !streq(dot, ".service"))
                return 0;
        const char *units[] = { unit, template, NULL };
        for (size_t n = 0; units[n]; n++) {
                _cleanup_free_ char *name = strprintf("%.*s.container", (int) (strrchr(units[n], '.') - units[n]), units[n]);
                if (!name)
                        return -ENOMEM;
                struct find_source f = { .name = name };
                int r = walk_quadlet_files(root, visit_find, &f);
                if (r != 0) {
                        *ret = f.path;
                        return r;
                }
        }
        return 0;
}

static int visit_collect(const char *path, const char *name, void *userdata) {
        char ***units = userdata;
        size_t n = strlen(name), k = strlen(".container");

        (void) path;
        if (n <= k || !endswith(name, ".container") || name[n - k - 1] == '@')
                return 0;
        _cleanup_free_ char *unit = strprintf("%.*s.service", (int) (n - k), name);
        if (!unit)
                return -ENOMEM;
        if (!strv_contains(*units, unit) && strv_push(units, TAKE_PTR(unit)) < 0)
                return -ENOMEM;
        return 0;
}

int quadlet_units(const char *root, char ***ret) {
        _cleanup_strv_free_ char **units = NULL;

        int r = walk_quadlet_files(root, visit_collect, &units);
        if (r < 0)
                return r;
        strv_sort(units);
        *ret = TAKE_PTR(units);
        return 0;
}
