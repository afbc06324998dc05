/*
 * Minimal pod sandbox process for the local test cluster's pause image.
 *
 * It holds the pod's namespaces open: it sleeps until told to stop, reaps any
 * children that get re-parented to it (it is PID 1 in the pod's PID
 * namespace), and exits 0 on SIGINT or SIGTERM.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_stop(int sig) { (void)sig; stop = 1; }

static void on_child(int sig)
{
    int saved = errno;
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    errno = saved;
}

static int install(int sig, void (*fn)(int), int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    return sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        static const char msg[] = "conveyor-pause 1.0\n";
        return write(STDOUT_FILENO, msg, sizeof msg - 1) < 0;
    }
    if (install(SIGINT, on_stop, 0) || install(SIGTERM, on_stop, 0) ||
        install(SIGCHLD, on_child, SA_NOCLDSTOP | SA_RESTART))
        return 1;
    /* Block the signals outside sigsuspend() so a stop request cannot slip in
     * between the check and the wait. */
    sigset_t block, wait_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &block, &wait_mask))
        return 1;
    sigdelset(&wait_mask, SIGINT);
    sigdelset(&wait_mask, SIGTERM);
    sigdelset(&wait_mask, SIGCHLD);
    while (!stop)
        sigsuspend(&wait_mask);
    return 0;
}
