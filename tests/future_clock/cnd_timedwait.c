/* glibc's C11 cnd_timedwait with its deadline moved back by the shift of the wall clock, for
 * `make test-future-clock` (preloaded after libfaketime). librdkafka waits on cnd_timedwait with
 * a deadline on the wall clock (TIME_UTC), which libfaketime shifts; glibc waits until the real
 * clock reaches it, so without this every timed wait of a Kafka client lasts as long as the shift.
 * libfaketime translates pthread_cond_timedwait (FAKE_PTHREAD) but not the C11 call, and its
 * translation slowed the JVM's monotonic waits several times over, so it is built without it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/syscall.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>

#define NS 1000000000L

int cnd_timedwait(cnd_t *restrict cond, mtx_t *restrict mutex,
                  const struct timespec *restrict time_point) {
    static int (*glibc)(cnd_t *, mtx_t *, const struct timespec *);
    struct timespec shifted, real;
    if (glibc == NULL)
        *(void **)&glibc = dlsym(RTLD_NEXT, "cnd_timedwait");
    clock_gettime(CLOCK_REALTIME, &shifted);          /* libfaketime's */
    syscall(SYS_clock_gettime, CLOCK_REALTIME, &real); /* the kernel's */
    long ns = (time_point->tv_sec - (shifted.tv_sec - real.tv_sec)) * NS + time_point->tv_nsec -
              (shifted.tv_nsec - real.tv_nsec);
    struct timespec deadline = {.tv_sec = ns / NS, .tv_nsec = ns % NS};
    return glibc(cond, mutex, &deadline);
}
