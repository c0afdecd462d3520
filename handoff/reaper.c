/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* `dreamlink-handoff reap CMD...`: the ExecStart= of an opted-in Type=forking service, put
 * there by the generator. CRIU takes one process tree, but a start script that launches several
 * daemons (FRR's frrinit.sh: watchfrr, zebra, mgmtd, staticd) leaves as many trees, each
 * daemon reparented to PID 1. A child subreaper above the script collects them into one tree.
 *
 * Three processes: this one (P) is what systemd forks and waits for; it forks the reaper (R),
 * which forks and execs CMD (C). When C exits, R tells P its status, and P exits with it: to
 * systemd the start looks as without us. R stays only if C left more than one daemon behind;
 * with one or none it exits before P does, so that the daemon is reparented to PID 1 as
 * always and systemd's guess of the main process is unchanged. */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fileio.h"
#include "handoff-internal.h"
#include "log.h"
#include "string-util.h"

/* Our children, from /proc (CONFIG_PROC_CHILDREN: Debian's kernels have it); R is single-threaded. */
static int children(char ***ret) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        int r;

        if (asprintf(&path, "/proc/self/task/" PID_FMT "/children", getpid()) < 0)
                return -ENOMEM;
        r = read_file_limited(path, 1U << 20, &text, NULL);
        if (r < 0)
                return r;
        return strv_split(text, " \n", ret);
}

/* What a unit's ExecReload= or KillMode=mixed sends to $MAINPID, which is R when the unit has no
 * PIDFile=: passed on to R's children, the daemons. R itself ends with the last of them. */
static const int forwarded[] = { SIGHUP, SIGUSR1, SIGUSR2, SIGTERM, SIGINT };

static void reaper_signals(sigset_t *mask) {
        sigemptyset(mask);
        sigaddset(mask, SIGCHLD);
        for (size_t i = 0; i < ELEMENTSOF(forwarded); i++)
                sigaddset(mask, forwarded[i]);
}

/* R's whole life after C: reaps until no child is left, passes signals on. Signals are taken
 * synchronously (blocked since before the start was reported, so none is lost), and passing
 * them on needs nothing a handler may not do. */
static _Noreturn void reap_forever(void) {
        sigset_t mask;

        reaper_signals(&mask);
        for (;;) {
                for (;;) {
                        pid_t pid = waitpid(-1, NULL, WNOHANG);
                        if (pid < 0 && errno == ECHILD)
                                _exit(EXIT_SUCCESS);
                        if (pid <= 0)
                                break;
                }
                int sig = sigwaitinfo(&mask, NULL);
                if (sig > 0 && sig != SIGCHLD) {
                        _cleanup_strv_free_ char **kids = NULL;
                        if (children(&kids) >= 0)
                                STRV_FOREACH(k, kids) {
                                        unsigned pid;
                                        if (parse_unsigned(*k, &pid) >= 0 && pid > 0)
                                                (void) kill((pid_t) pid, sig);
                                }
                }
        }
}

static _Noreturn void run_reaper(char **argv, int report_fd) {
        int status = 0;
        pid_t cmd;

        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
                log_error_errno(errno, "Failed to become the subreaper of %s: %m", argv[0]);
                _exit(EXIT_FAILURE);
        }
        cmd = fork();
        if (cmd < 0) {
                log_error_errno(errno, "Failed to fork for %s: %m", argv[0]);
                _exit(EXIT_FAILURE);
        }
        if (cmd == 0) {
                (void) close(report_fd);
                execvp(argv[0], argv);
                log_error_errno(errno, "Failed to execute %s: %m", argv[0]);
                _exit(EXIT_FAILURE);
        }
        /* Orphans of C may end meanwhile: only C's status is C's. */
        while (waitpid(cmd, &status, 0) < 0)
                if (errno != EINTR) {
                        status = EXIT_FAILURE << 8;
                        break;
                }

        _cleanup_strv_free_ char **kids = NULL;
        bool stay = children(&kids) >= 0 && strv_length(kids) > 1;
        char reply = stay ? 's' : 'l';
        if (stay) {
                sigset_t mask;
                reaper_signals(&mask);
                (void) sigprocmask(SIG_BLOCK, &mask, NULL);
        }
        if (write(report_fd, &status, sizeof(status)) != sizeof(status) || write(report_fd, &reply, 1) != 1)
                _exit(EXIT_FAILURE);
        if (!stay)
                _exit(EXIT_SUCCESS); /* before P: see the top of this file */
        (void) close(report_fd);
        reap_forever();
}

int handoff_reap(char **argv) {
        int fds[2], status;
        char reply = 0;
        pid_t reaper;

        if (!argv || !argv[0])
                return log_error_errno(EINVAL, "reap needs a command to run.");
        if (pipe2(fds, O_CLOEXEC) < 0)
                return log_error_errno(errno, "Failed to create a pipe: %m");
        reaper = fork();
        if (reaper < 0)
                return log_error_errno(errno, "Failed to fork the reaper of %s: %m", argv[0]);
        if (reaper == 0) {
                (void) close(fds[0]);
                run_reaper(argv, fds[1]);
        }
        (void) close(fds[1]);
        ssize_t a = loop_read(fds[0], &status, sizeof(status)), b = loop_read(fds[0], &reply, 1);
        (void) close(fds[0]);
        if (a != sizeof(status) || b != 1)
                return log_error_errno(EIO, "The reaper of %s ended before %s did.", argv[0], argv[0]);
        if (reply == 'l')
                (void) waitpid(reaper, NULL, 0);
        if (WIFSIGNALED(status)) {
                (void) signal(WTERMSIG(status), SIG_DFL);
                (void) raise(WTERMSIG(status));
        }
        exit(WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_FAILURE);
}
