/* Child runs and delta debugging; see property_shrink.h. */
#define _GNU_SOURCE
#include "property_shrink.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "property_model.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t *field(prop_result *r, size_t i)
{
    return (size_t *)((char *)r + prop_result_fields[i].offset);
}

static void parse_stats(const char *out, prop_result *r)
{
    const char *s = out ? strstr(out, "property-stats:") : NULL;
    if (!s)
        return;
    for (size_t i = 0; i < prop_result_nfields; i++) {
        char key[64];
        snprintf(key, sizeof key, " %s=", prop_result_fields[i].name);
        const char *k = strstr(s, key);
        if (k)
            *field(r, i) = strtoull(k + strlen(key), NULL, 10);
    }
}

void prop_run_child(const prop_prog *p, const prop_cfg *cfg, unsigned timeout_s, int capture,
                    prop_child *out)
{
    memset(out, 0, sizeof *out);
    int fds[2] = {-1, -1};
    fflush(stdout);
    fflush(stderr);
    if (capture && pipe(fds) != 0) {
        perror("property: pipe");
        exit(2);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("property: fork");
        exit(2);
    }
    if (pid == 0) {
        if (capture) {
            close(fds[0]);
            dup2(fds[1], 2);
            close(fds[1]);
        }
        signal(SIGALRM, SIG_DFL);
        alarm(timeout_s);
        prop_result r;
        prop_run(p, cfg, &r);
        fprintf(stderr, "property-stats:");
        for (size_t i = 0; i < prop_result_nfields; i++)
            fprintf(stderr, " %s=%zu", prop_result_fields[i].name, *field(&r, i));
        fputc('\n', stderr);
        fflush(stderr);
        exit(0); /* not _exit: LeakSanitizer checks the child at exit */
    }
    size_t cap = 0, len = 0;
    if (capture) {
        close(fds[1]);
        cap = 1 << 16;
        out->output = malloc(cap + 1);
        char buf[4096];
        for (;;) {
            ssize_t k = read(fds[0], buf, sizeof buf);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                break;
            size_t take = (size_t)k < cap - len ? (size_t)k : cap - len;
            memcpy(out->output + len, buf, take);
            len += take;
        }
        close(fds[0]);
        out->output[len] = '\0';
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            perror("property: waitpid");
            exit(2);
        }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        parse_stats(out->output, &out->res);
        return;
    }
    out->failed = 1;
    const char *f = out->output ? strstr(out->output, "property: FAIL [") : NULL;
    if (f) {
        f += strlen("property: FAIL [");
        size_t n = strcspn(f, "]");
        if (n >= sizeof out->sig)
            n = sizeof out->sig - 1;
        memcpy(out->sig, f, n);
        out->sig[n] = '\0';
    } else if (WIFSIGNALED(status)) {
        if (WTERMSIG(status) == SIGALRM)
            snprintf(out->sig, sizeof out->sig, "timeout");
        else
            snprintf(out->sig, sizeof out->sig, "signal %d", WTERMSIG(status));
    } else {
        snprintf(out->sig, sizeof out->sig, "exit %d", WEXITSTATUS(status));
    }
}

typedef struct shrink_ctx {
    prop_cfg *cfg;
    const char *sig;
    unsigned tries, timeout_s;
    size_t runs;
} shrink_ctx;

static int still_fails(shrink_ctx *s, const prop_prog *p)
{
    for (unsigned i = 0; i < s->tries; i++) {
        prop_child c;
        prop_run_child(p, s->cfg, s->timeout_s, 1, &c);
        s->runs++;
        int same = c.failed && strcmp(c.sig, s->sig) == 0;
        free(c.output);
        if (same)
            return 1;
    }
    return 0;
}

static void without(prop_prog *dst, const prop_prog *src, size_t from, size_t to)
{
    prop_prog_init(dst, src->threads);
    for (size_t i = 0; i < src->n; i++)
        if (i < from || i >= to)
            prop_prog_push(dst, src->ops[i]);
}

size_t prop_shrink(prop_prog *p, prop_cfg *cfg, const char *sig, unsigned tries, unsigned timeout_s,
                   double max_seconds)
{
    shrink_ctx s = {cfg, sig, tries ? tries : 1, timeout_s, 0};
    double deadline = now_s() + max_seconds;
    prop_prog cand;
    /* ddmin over complements */
    size_t parts = 2;
    while (p->n >= 2 && now_s() < deadline) {
        size_t chunk = (p->n + parts - 1) / parts;
        int reduced = 0;
        for (size_t i = 0; i * chunk < p->n && now_s() < deadline; i++) {
            without(&cand, p, i * chunk, (i + 1) * chunk);
            if (still_fails(&s, &cand)) {
                prop_prog_free(p);
                *p = cand;
                parts = parts > 2 ? parts - 1 : 2;
                reduced = 1;
                break;
            }
            prop_prog_free(&cand);
        }
        if (!reduced) {
            if (parts >= p->n)
                break;
            parts = parts * 2 < p->n ? parts * 2 : p->n;
        }
    }
    /* one operation at a time, from the end (later ops depend on earlier) */
    for (size_t i = p->n; i-- > 0 && now_s() < deadline;) {
        without(&cand, p, i, i + 1);
        if (still_fails(&s, &cand)) {
            prop_prog_free(p);
            *p = cand;
        } else {
            prop_prog_free(&cand);
        }
    }
    /* fewer threads: renumber the ones still used */
    unsigned used[PROP_MAX_THREADS] = {0}, map[PROP_MAX_THREADS], k = 0;
    for (size_t i = 0; i < p->n; i++)
        if (!prop_op_is_global(&p->ops[i]))
            used[p->ops[i].thread] = 1;
    for (unsigned t = 0; t < p->threads; t++)
        map[t] = used[t] ? k++ : 0;
    if (k == 0)
        k = 1;
    if (k < p->threads && now_s() < deadline) {
        prop_prog_init(&cand, k);
        for (size_t i = 0; i < p->n; i++) {
            prop_op op = p->ops[i];
            if (!prop_op_is_global(&op))
                op.thread = (uint8_t)map[op.thread];
            prop_prog_push(&cand, op);
        }
        if (still_fails(&s, &cand)) {
            prop_prog_free(p);
            *p = cand;
        } else {
            prop_prog_free(&cand);
        }
    }
    /* and simpler operands, so the reproducer reads more easily */
    for (size_t i = 0; i < p->n && now_s() < deadline; i++) {
        for (int field = 0; field < 3; field++) {
            prop_op op = p->ops[i];
            uint8_t *v = field == 0 ? &op.a : field == 1 ? &op.b : &op.c;
            if (*v == 0 || op.kind == P_NEW)
                continue;
            *v = 0;
            prop_prog_copy(&cand, p);
            cand.ops[i] = op;
            if (still_fails(&s, &cand)) {
                prop_prog_free(p);
                *p = cand;
            } else {
                prop_prog_free(&cand);
            }
        }
    }
    return s.runs;
}
