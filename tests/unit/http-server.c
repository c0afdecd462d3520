/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "http-server.h"
#include "string-util.h"
#include "time-util.h"

#define REQUEST_MAX 8192
#define CHUNK_SIZE (16U * 1024U)
#define IO_TIMEOUT_SEC 10
#define POST_BODY_MAX (64U * 1024U)

typedef struct Worker Worker;

typedef struct PathEntry {
        char *path;
        bool complete;
} PathEntry;

struct HttpServer {
        char *root;
        int listen_fd, stop_fd, wake_fd; /* wake_fd: ends a stall early */
        uint16_t port;
        SSL_CTX *tls;
        pthread_t thread;
        bool running;

        pthread_mutex_t lock; /* guards what follows */
        pthread_cond_t idle;  /* signalled when a connection is done */
        Worker *workers;      /* a thread per connection, joined once done */
        unsigned active;      /* connections being served */
        unsigned stalling;    /* … of which in a stall */
        HttpFaults faults;
        char *faults_match, *faults_redirect;
        unsigned faults_matched;
        uint64_t bytes_sent;
        unsigned requests;
        PathEntry *paths;
        size_t n_paths;
        http_post_handler_t post_handler;
        void *post_userdata;
};

struct Worker {
        HttpServer *server;
        int fd;
        pthread_t thread;
        bool done;
        Worker *next;
};

typedef struct Conn {
        int fd;
        SSL *ssl;
} Conn;

static int conn_write(Conn *c, const void *buf, size_t size) {
        const char *p = buf;

        while (size > 0) {
                ssize_t n;
                if (c->ssl) {
                        int k = SSL_write(c->ssl, p, (int) MIN(size, (size_t) INT32_MAX));
                        n = k > 0 ? k : -1;
                } else
                        n = send(c->fd, p, size, MSG_NOSIGNAL);
                if (n <= 0)
                        return -EPIPE; /* the client went away; nothing to do about it */
                p += n;
                size -= (size_t) n;
        }
        return 0;
}

static ssize_t conn_read(Conn *c, void *buf, size_t size) {
        if (c->ssl) {
                int k = SSL_read(c->ssl, buf, (int) size);
                return k > 0 ? k : -1;
        }
        return recv(c->fd, buf, size, 0);
}

/* Reads up to the end of the request headers (and what came with them of the body); returns how
 * much was read. */
static ssize_t read_request(Conn *c, char *buf, size_t size) {
        size_t n = 0;

        while (n + 1 < size) {
                ssize_t k = conn_read(c, buf + n, size - n - 1);
                if (k <= 0)
                        return -EIO;
                n += (size_t) k;
                buf[n] = 0;
                if (strstr(buf, "\r\n\r\n"))
                        return (ssize_t) n;
        }
        return -E2BIG;
}

static void record(HttpServer *s, const char *path, uint64_t sent, bool complete) {
        pthread_mutex_lock(&s->lock);
        s->bytes_sent += sent;
        s->requests++;
        PathEntry *p = realloc(s->paths, (s->n_paths + 1) * sizeof(PathEntry));
        if (p) {
                s->paths = p;
                s->paths[s->n_paths++] = (PathEntry) { .path = strdup(path), .complete = complete };
        }
        pthread_mutex_unlock(&s->lock);
}

/* The faults for PATH: those set, if PATH matches and the matches to skip are used up. The
 * redirect target is copied to REDIRECT: a test may set other faults meanwhile. */
static HttpFaults faults_for(HttpServer *s, const char *path, char *redirect, size_t size) {
        HttpFaults f = {};

        pthread_mutex_lock(&s->lock);
        if (!s->faults_match || strstr(path, s->faults_match)) {
                if (s->faults_matched >= s->faults.skip)
                        f = s->faults;
                s->faults_matched++;
        }
        f.match = NULL;
        if (f.redirect) {
                snprintf(redirect, size, "%s", f.redirect);
                f.redirect = redirect;
        }
        pthread_mutex_unlock(&s->lock);
        return f;
}

/* Waits USEC, or less if the server is stopped or (with WAKEABLE) its faults are changed meanwhile.
 * A connection that waits counts as idle for the statistics. */
static void stall(HttpServer *s, uint64_t usec, bool wakeable) {
        struct pollfd p[2] = {
                { .fd = s->stop_fd, .events = POLLIN },
                { .fd = s->wake_fd, .events = POLLIN },
        };
        uint64_t n;

        if (wakeable)
                (void) !read(s->wake_fd, &n, sizeof(n)); /* forget changes made before this stall */
        pthread_mutex_lock(&s->lock);
        s->stalling++;
        pthread_cond_broadcast(&s->idle);
        pthread_mutex_unlock(&s->lock);
        if (poll(p, wakeable ? 2 : 1, (int) MIN(usec / 1000, (uint64_t) INT32_MAX)) > 0 && wakeable && p[1].revents)
                (void) !read(s->wake_fd, &n, sizeof(n));
        pthread_mutex_lock(&s->lock);
        s->stalling--;
        pthread_mutex_unlock(&s->lock);
}

static void respond_redirect(Conn *c, const char *location) {
        _cleanup_free_ char *head = NULL;
        int n = asprintf(&head, "HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                         location);
        if (n < 0)
                abort();
        (void) conn_write(c, head, (size_t) n);
}

static void respond_status(Conn *c, unsigned status) {
        char head[256];
        int n = snprintf(head, sizeof(head),
                         "HTTP/1.1 %u %s\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n"
                         "Connection: close\r\n\r\nerror\n",
                         status, status == 404 ? "Not Found" : status == 400 ? "Bad Request" : "Error");
        (void) conn_write(c, head, (size_t) n);
}

/* Sends the body of FD, applying F; returns body bytes sent, *ret_complete whether all of them. */
static uint64_t send_body(HttpServer *s, Conn *c, int fd, uint64_t size, const HttpFaults *f, bool *ret_complete) {
        char buf[CHUNK_SIZE];
        uint64_t sent = 0;
        bool stalled = false;

        *ret_complete = false;
        while (sent < size || (f->endless && size > 0)) {
                size_t want = (size_t) MIN((uint64_t) sizeof(buf), f->endless ? size - sent % size : size - sent);
                if (f->trickle_bps > 0) {
                        /* A tenth of a second's worth, then the rest of that tenth waited for. */
                        want = (size_t) MIN((uint64_t) want, MAX(f->trickle_bps / 10, 1U));
                        if (sent > 0)
                                stall(s, 100 * USEC_PER_MSEC, false);
                }
                if (f->truncate) {
                        if (sent >= f->truncate_after)
                                return sent;
                        want = (size_t) MIN((uint64_t) want, f->truncate_after - sent);
                }
                if (f->stall && !stalled) {
                        if (sent >= f->stall_after) {
                                stall(s, f->stall_usec, true);
                                stalled = true;
                        } else
                                want = (size_t) MIN((uint64_t) want, f->stall_after - sent);
                }
                ssize_t n = pread(fd, buf, want, (off_t) (sent % size));
                if (n <= 0)
                        return sent;
                if (f->chunked) {
                        char head[32];
                        int k = snprintf(head, sizeof(head), "%zx\r\n", (size_t) n);
                        if (conn_write(c, head, (size_t) k) < 0 || conn_write(c, buf, (size_t) n) < 0 ||
                            conn_write(c, "\r\n", 2) < 0)
                                return sent;
                } else if (conn_write(c, buf, (size_t) n) < 0)
                        return sent;
                sent += (uint64_t) n;
        }
        if (f->chunked && conn_write(c, "0\r\n\r\n", 5) < 0)
                return sent;
        *ret_complete = true;
        return sent;
}

static bool path_is_safe(const char *path) {
        /* No way out of the root: no ".." component. */
        for (const char *p = path; (p = strstr(p, "..")); p += 2)
                if ((p == path || p[-1] == '/') && (p[2] == 0 || p[2] == '/'))
                        return false;
        return path[0] == '/';
}

/* The body of a POST, by its Content-Length, part of which read_request() may have read. */
static char *read_body(Conn *c, char *req, size_t n, size_t *ret_size) {
        char *end = strstr(req, "\r\n\r\n"), *body;
        size_t length = 0, have;

        for (char *l = strstr(req, "\r\n"); l && l < end; l = strstr(l + 2, "\r\n"))
                if (strncasecmp(l + 2, "Content-Length:", 15) == 0)
                        length = strtoul(l + 2 + 15, NULL, 10);
        if (length > POST_BODY_MAX)
                return NULL;
        body = malloc(length + 1);
        if (!body)
                return NULL;
        have = MIN(n - (size_t) (end + 4 - req), length);
        memcpy(body, end + 4, have);
        while (have < length) {
                ssize_t k = conn_read(c, body + have, length - have);
                if (k <= 0) {
                        free(body);
                        return NULL;
                }
                have += (size_t) k;
        }
        body[length] = 0;
        *ret_size = length;
        return body;
}

static void serve_post(HttpServer *s, Conn *c, const char *target, char *req, size_t n) {
        _cleanup_free_ char *body = NULL, *reply = NULL, *head = NULL;
        unsigned status = 500;
        size_t size = 0;

        body = read_body(c, req, n, &size);
        if (!body)
                return respond_status(c, 400);
        *strstr(req, "\r\n\r\n") = 0; /* the headers, for the handler */
        /* One request at a time: the handler's state needs no lock of its own. */
        pthread_mutex_lock(&s->lock);
        s->post_handler(target, strchr(req, '\n') + 1, body, size, &status, &reply, s->post_userdata);
        pthread_mutex_unlock(&s->lock);
        int k = asprintf(&head, "HTTP/1.1 %u X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                         "Connection: close\r\n\r\n", status, strlen(strempty(reply)));
        if (k < 0) {
                head = NULL;
                return;
        }
        if (conn_write(c, head, (size_t) k) >= 0)
                (void) conn_write(c, strempty(reply), strlen(strempty(reply)));
        record(s, target, strlen(strempty(reply)), true);
}

static void serve(HttpServer *s, Conn *c) {
        char req[REQUEST_MAX], method[16], target[4096];
        _cleanup_free_ char *file = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        bool complete = false, head;
        uint64_t sent = 0;

        ssize_t got = read_request(c, req, sizeof(req));
        if (got < 0)
                return;
        if (sscanf(req, "%15s %4095s", method, target) != 2)
                return respond_status(c, 400);
        head = streq(method, "HEAD");
        bool post = streq(method, "POST") && s->post_handler;
        if (!head && !post && !streq(method, "GET"))
                return respond_status(c, 400);
        target[strcspn(target, "?#")] = 0;
        if (!path_is_safe(target))
                return respond_status(c, 400);

        char redirect[4096];
        HttpFaults f = faults_for(s, target, redirect, sizeof(redirect));
        if (f.redirect) {
                respond_redirect(c, f.redirect);
                record(s, target, 0, false);
                return;
        }
        if (f.status > 0) {
                respond_status(c, f.status);
                record(s, target, 0, false);
                return;
        }
        if (post)
                return serve_post(s, c, target, req, (size_t) got);

        if (asprintf(&file, "%s%s", s->root, target) < 0) {
                file = NULL;
                return respond_status(c, 500);
        }
        fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                respond_status(c, 404);
                record(s, target, 0, false);
                return;
        }

        char hdr[256];
        int n = f.endless && !f.chunked ? snprintf(hdr, sizeof(hdr),
                                                   "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                                                   "Connection: close\r\n\r\n")
              : f.chunked ? snprintf(hdr, sizeof(hdr),
                                     "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                                     "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
                          : snprintf(hdr, sizeof(hdr),
                                     "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                                     "Content-Length: %" PRIu64 "\r\nConnection: close\r\n\r\n",
                                     (uint64_t) st.st_size);
        if (conn_write(c, hdr, (size_t) n) < 0)
                return;
        if (head)
                complete = true;
        else
                sent = send_body(s, c, fd, (uint64_t) st.st_size, &f, &complete);
        record(s, target, sent, complete);
}

static void handle_connection(HttpServer *s, int fd) {
        struct timeval tv = { .tv_sec = IO_TIMEOUT_SEC };
        Conn c = { .fd = fd };

        /* A client that never sends its request must not hang the server. */
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (s->tls) {
                c.ssl = SSL_new(s->tls);
                if (!c.ssl || SSL_set_fd(c.ssl, fd) != 1 || SSL_accept(c.ssl) != 1) {
                        /* e.g. the client refused our certificate */
                        ERR_clear_error();
                        SSL_free(c.ssl);
                        return;
                }
        }
        serve(s, &c);
        if (c.ssl) {
                (void) SSL_shutdown(c.ssl);
                SSL_free(c.ssl);
                ERR_clear_error();
        }
}

static void *worker_thread(void *userdata) {
        Worker *w = userdata;
        HttpServer *s = w->server;

        handle_connection(s, w->fd);
        close(w->fd);
        pthread_mutex_lock(&s->lock);
        w->done = true;
        s->active--;
        pthread_cond_broadcast(&s->idle);
        pthread_mutex_unlock(&s->lock);
        return NULL;
}

/* Joins the workers that are done (all, with ALL, waiting for them). */
static void reap_workers(HttpServer *s, bool all) {
        Worker *done = NULL;

        pthread_mutex_lock(&s->lock);
        for (Worker **w = &s->workers; *w;) {
                if (all || (*w)->done) {
                        Worker *x = *w;
                        *w = x->next;
                        x->next = done;
                        done = x;
                } else
                        w = &(*w)->next;
        }
        pthread_mutex_unlock(&s->lock);
        while (done) {
                Worker *x = done;
                done = x->next;
                pthread_join(x->thread, NULL);
                free(x);
        }
}

/* Accepts connections, each served by a thread of its own: a stalled response must not hold up
 * the others (libostree fetches up to 8 objects at once). */
static void *server_thread(void *userdata) {
        HttpServer *s = userdata;

        for (;;) {
                struct pollfd p[2] = {
                        { .fd = s->listen_fd, .events = POLLIN },
                        { .fd = s->stop_fd, .events = POLLIN },
                };
                reap_workers(s, false);
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[1].revents)
                        break;
                int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                        continue;
                Worker *w = calloc(1, sizeof(Worker));
                if (!w)
                        abort();
                *w = (Worker) { .server = s, .fd = fd };
                pthread_mutex_lock(&s->lock);
                s->active++;
                if (pthread_create(&w->thread, NULL, worker_thread, w) != 0)
                        abort();
                w->next = s->workers;
                s->workers = w;
                pthread_mutex_unlock(&s->lock);
        }
        return NULL;
}

int http_server_start(const char *root, const char *cert_file, const char *key_file, HttpServer **ret) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        HttpServer *s;
        int r;

        /* SSL_write() goes through write(): a client that hangs up must not kill the test. */
        (void) signal(SIGPIPE, SIG_IGN);

        s = calloc(1, sizeof(HttpServer));
        if (!s)
                return -ENOMEM;
        s->listen_fd = s->stop_fd = s->wake_fd = -EBADF;
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->idle, NULL);
        s->root = strdup(root);
        if (!s->root) {
                r = -ENOMEM;
                goto fail;
        }

        if (cert_file) {
                s->tls = SSL_CTX_new(TLS_server_method());
                if (!s->tls || SSL_CTX_use_certificate_chain_file(s->tls, cert_file) != 1 ||
                    SSL_CTX_use_PrivateKey_file(s->tls, key_file, SSL_FILETYPE_PEM) != 1) {
                        ERR_clear_error();
                        r = -EINVAL;
                        goto fail;
                }
        }

        s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        s->stop_fd = eventfd(0, EFD_CLOEXEC);
        s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->listen_fd < 0 || s->stop_fd < 0 || s->wake_fd < 0 ||
            bind(s->listen_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            listen(s->listen_fd, 64) < 0 || getsockname(s->listen_fd, (struct sockaddr *) &sa, &len) < 0) {
                r = -errno;
                goto fail;
        }
        s->port = ntohs(sa.sin_port);

        r = -pthread_create(&s->thread, NULL, server_thread, s);
        if (r < 0)
                goto fail;
        s->running = true;
        *ret = s;
        return 0;

fail:
        http_server_stop(s);
        return r;
}

void http_server_stop(HttpServer *s) {
        if (!s)
                return;
        if (s->running) {
                uint64_t one = 1;
                /* Ends the accept loop and any stall; the workers then finish soon. */
                (void) !write(s->stop_fd, &one, sizeof(one));
                pthread_join(s->thread, NULL);
                reap_workers(s, true);
        }
        safe_close(s->listen_fd);
        safe_close(s->stop_fd);
        safe_close(s->wake_fd);
        if (s->tls)
                SSL_CTX_free(s->tls);
        http_server_reset_stats(s);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->idle);
        free(s->faults_match);
        free(s->faults_redirect);
        free(s->root);
        free(s);
}

uint16_t http_server_port(HttpServer *s) {
        return s->port;
}

char *http_server_url(HttpServer *s, const char *path) {
        char *url;
        if (asprintf(&url, "%s://127.0.0.1:%u%s%s", s->tls ? "https" : "http", s->port,
                     path[0] == '/' || path[0] == 0 ? "" : "/", path) < 0)
                abort();
        return url;
}

void http_server_set_faults(HttpServer *s, const HttpFaults *f) {
        pthread_mutex_lock(&s->lock);
        free(s->faults_match);
        free(s->faults_redirect);
        s->faults = f ? *f : (HttpFaults) {};
        s->faults_match = s->faults.match ? strdup(s->faults.match) : NULL;
        s->faults_redirect = s->faults.redirect ? strdup(s->faults.redirect) : NULL;
        if ((s->faults.match && !s->faults_match) || (s->faults.redirect && !s->faults_redirect))
                abort();
        s->faults.match = s->faults_match;
        s->faults.redirect = s->faults_redirect;
        s->faults_matched = 0;
        pthread_mutex_unlock(&s->lock);
        uint64_t one = 1;
        (void) !write(s->wake_fd, &one, sizeof(one)); /* a stall in progress ends */
}

/* Takes the lock once the connections being served (if any) are done or stalled: a client may have
 * read the whole response before the server counted it. Gives up waiting after a while. */
static void lock_idle(HttpServer *s) {
        struct timespec deadline;

        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += IO_TIMEOUT_SEC;
        pthread_mutex_lock(&s->lock);
        while (s->active > s->stalling)
                if (pthread_cond_timedwait(&s->idle, &s->lock, &deadline) != 0)
                        break;
}

void http_server_reset_stats(HttpServer *s) {
        lock_idle(s);
        for (size_t i = 0; i < s->n_paths; i++)
                free(s->paths[i].path);
        free(s->paths);
        s->paths = NULL;
        s->n_paths = 0;
        s->bytes_sent = 0;
        s->requests = 0;
        pthread_mutex_unlock(&s->lock);
}

uint64_t http_server_bytes_sent(HttpServer *s) {
        lock_idle(s);
        uint64_t n = s->bytes_sent;
        pthread_mutex_unlock(&s->lock);
        return n;
}

unsigned http_server_requests(HttpServer *s) {
        lock_idle(s);
        unsigned n = s->requests;
        pthread_mutex_unlock(&s->lock);
        return n;
}

char **http_server_paths(HttpServer *s, bool complete_only) {
        char **l = calloc(1, sizeof(char *));

        if (!l)
                abort();
        lock_idle(s);
        for (size_t i = 0; i < s->n_paths; i++)
                if (s->paths[i].path && (!complete_only || s->paths[i].complete) && strv_extend(&l, s->paths[i].path) < 0)
                        abort();
        pthread_mutex_unlock(&s->lock);
        return l;
}

/* A self-signed certificate for 127.0.0.1 in DIR; false without the openssl tool. */
bool http_server_make_certificate(const char *dir, char **ret_cert, char **ret_key) {
        _cleanup_free_ char *cmd = NULL;

        if (asprintf(ret_cert, "%s/cert.pem", dir) < 0 || asprintf(ret_key, "%s/key.pem", dir) < 0 ||
            asprintf(&cmd,
                     "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
                     "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout '%s' -out '%s' "
                     ">/dev/null 2>&1", *ret_key, *ret_cert) < 0)
                abort();
        return system(cmd) == 0;
}

void http_server_set_post_handler(HttpServer *s, http_post_handler_t handler, void *userdata) {
        pthread_mutex_lock(&s->lock);
        s->post_handler = handler;
        s->post_userdata = userdata;
        pthread_mutex_unlock(&s->lock);
}
