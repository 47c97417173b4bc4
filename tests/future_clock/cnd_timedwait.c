/* glibc's C11 cnd_timedwait, sent through pthread_cond_timedwait (a cnd_t is a pthread_cond_t in
 * glibc), so that libfaketime, which intercepts the pthread call but not the C11 one, turns the
 * shifted wall-clock deadline back into a real one. librdkafka waits on cnd_timedwait: without
 * this every timed wait of a Kafka client under a shifted clock lasts as long as the shift.
 * Built and preloaded after libfaketime by `make test-future-clock`. */
#include <errno.h>
#include <pthread.h>
#include <threads.h>

int cnd_timedwait(cnd_t *restrict cond, mtx_t *restrict mutex,
                  const struct timespec *restrict time_point) {
    switch (pthread_cond_timedwait((pthread_cond_t *)cond, (pthread_mutex_t *)mutex, time_point)) {
    case 0:
        return thrd_success;
    case ETIMEDOUT:
        return thrd_timedout;
    default:
        return thrd_error;
    }
}
