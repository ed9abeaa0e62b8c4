/*
 * line_echo: the transport baseline for commhost-bench. Reads lines and
 * writes each one back, unchanged, with no JSON work: what the same pipes or
 * socket cost with nothing on the other end but a loop.
 *
 *   line_echo              echo stdin to stdout
 *   line_echo --socket P   listen on the Unix socket P, one thread per connection
 *
 * Like commhost, it writes whatever a read() completed in one write(), so a
 * pipelined client is answered in batches and a ping-pong client at once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Echoes complete lines from `in` to `out` until end of input. */
static void echo_lines(int in, int out) {
    size_t cap = 1 << 16, start = 0, end = 0;
    char *buf = malloc(cap), *outbuf = malloc(cap);
    size_t outcap = cap;
    for (;;) {
        if (cap - end < (1 << 15)) {
            memmove(buf, buf + start, end - start);
            end -= start;
            start = 0;
            if (cap - end < (1 << 15)) {
                cap *= 2;
                buf = realloc(buf, cap);
            }
        }
        ssize_t n = read(in, buf + end, cap - end);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        size_t scan = end;
        end += (size_t)n;
        size_t outlen = 0;
        char *nl;
        while (scan < end && (nl = memchr(buf + scan, '\n', end - scan)) != NULL) {
            size_t stop = (size_t)(nl - buf) + 1, len = stop - start;
            if (outlen + len > outcap) {
                while (outlen + len > outcap) outcap *= 2;
                outbuf = realloc(outbuf, outcap);
            }
            memcpy(outbuf + outlen, buf + start, len);
            outlen += len;
            start = scan = stop;
        }
        if (start == end) start = end = 0;
        if (outlen > 0 && write_all(out, outbuf, outlen) != 0) break;
    }
    free(buf);
    free(outbuf);
}

static void *connection(void *arg) {
    int fd = (int)(intptr_t)arg;
    echo_lines(fd, fd);
    close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc == 3 && strcmp(argv[1], "--socket") == 0) {
        int server = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un addr = { .sun_family = AF_UNIX };
        strncpy(addr.sun_path, argv[2], sizeof addr.sun_path - 1);
        unlink(argv[2]);
        if (server < 0 || bind(server, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(server, 128) != 0) {
            perror("line_echo: socket");
            return 1;
        }
        /* Tells the parent the socket is ready. */
        printf("listening\n");
        fflush(stdout);
        for (;;) {
            int fd = accept4(server, NULL, NULL, SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EINTR) continue;
                return 1;
            }
            pthread_t thread;
            pthread_create(&thread, NULL, connection, (void *)(intptr_t)fd);
            pthread_detach(thread);
        }
    }
    echo_lines(0, 1);
    return 0;
}
