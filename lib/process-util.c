/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "process-util.h"
#include "string-util.h"

extern char **environ;

static void format_argv(char *buf, size_t size, const char * const argv[]) {
        size_t n = 0;
        buf[0] = 0;
        for (const char * const *a = argv; *a && n + 1 < size; a++)
                n += (size_t) snprintf(buf + n, size - n, "%s%s", a == argv ? "" : " ", *a);
}

int run_command_input(const char * const argv[], const char *input) {
        posix_spawn_file_actions_t actions;
        int pipefd[2] = { -EBADF, -EBADF }, r, status;
        char cmd[512];
        pid_t pid;

        format_argv(cmd, sizeof(cmd), argv);
        log_debug("Running: %s", cmd);

        r = posix_spawn_file_actions_init(&actions);
        if (r != 0)
                return -r;
        if (input) {
                if (pipe2(pipefd, O_CLOEXEC) < 0) {
                        r = -errno;
                        posix_spawn_file_actions_destroy(&actions);
                        return r;
                }
                posix_spawn_file_actions_adddup2(&actions, pipefd[0], STDIN_FILENO);
        } else
                posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);

        r = posix_spawnp(&pid, argv[0], &actions, NULL, (char * const *) argv, environ);
        posix_spawn_file_actions_destroy(&actions);
        if (pipefd[0] >= 0)
                close(pipefd[0]);
        if (r != 0) {
                safe_close(pipefd[1]);
                return log_error_errno(r, "Failed to run %s: %m", argv[0]);
        }

        if (input) {
                /* A child that exits early must not kill us with SIGPIPE. */
                struct sigaction sa = { .sa_handler = SIG_IGN }, old;
                sigaction(SIGPIPE, &sa, &old);
                (void) loop_write(pipefd[1], input, strlen(input)); /* the exit status tells */
                close(pipefd[1]);
                sigaction(SIGPIPE, &old, NULL);
        }

        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return log_error_errno(errno, "Failed to wait for %s: %m", argv[0]);

        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
        if (WIFEXITED(status))
                return log_error_errno(EPROTO, "'%s' failed with exit status %d.", cmd, WEXITSTATUS(status));
        return log_error_errno(EINTR, "'%s' was killed by signal %s.", cmd, strsignal(WTERMSIG(status)));
}

int run_command(const char * const argv[]) {
        return run_command_input(argv, NULL);
}

int run_command_output(const char * const argv[], size_t max, char **ret_out, char **ret_err) {
        posix_spawn_file_actions_t actions;
        _cleanup_close_ int err_fd = -EBADF;
        int pipefd[2], r, status;
        _cleanup_free_ char *out = NULL, *err = NULL;
        char cmd[512];
        pid_t pid;

        format_argv(cmd, sizeof(cmd), argv);
        log_debug("Running: %s", cmd);
        *ret_out = NULL;
        if (ret_err) {
                *ret_err = NULL;
                /* A file, not a pipe: read after the exit, it cannot block the child while we
                 * read its standard output. */
                err_fd = memfd_create("stderr", MFD_CLOEXEC);
                if (err_fd < 0)
                        return -errno;
        }
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        r = posix_spawn_file_actions_init(&actions);
        if (r != 0) {
                close(pipefd[0]);
                close(pipefd[1]);
                return -r;
        }
        posix_spawn_file_actions_adddup2(&actions, pipefd[1], STDOUT_FILENO);
        if (err_fd >= 0)
                posix_spawn_file_actions_adddup2(&actions, err_fd, STDERR_FILENO);
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        r = posix_spawnp(&pid, argv[0], &actions, NULL, (char * const *) argv, environ);
        posix_spawn_file_actions_destroy(&actions);
        close(pipefd[1]);
        if (r != 0) {
                close(pipefd[0]);
                return -r;
        }
        r = read_fd_limited(pipefd[0], max, &out, NULL);
        if (r == -EFBIG) {
                /* Drain the rest, so that the child is not blocked on a full pipe forever. */
                char buf[4096];
                while (read(pipefd[0], buf, sizeof(buf)) > 0)
                        ;
        }
        close(pipefd[0]);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (r < 0)
                return r;
        if (err_fd >= 0 && lseek(err_fd, 0, SEEK_SET) == 0) {
                int k = read_fd_limited(err_fd, 64 * 1024, &err, NULL);
                if (k == -EFBIG)
                        err = strdup("(more than 64 KiB on standard error)");
                else if (k < 0)
                        err = NULL;
        }
        *ret_out = TAKE_PTR(out);
        if (ret_err)
                *ret_err = TAKE_PTR(err);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
        log_debug("'%s' failed (%s %d).", cmd, WIFEXITED(status) ? "exit status" : "signal",
                  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return WIFEXITED(status) ? -EPROTO : -EINTR;
}
