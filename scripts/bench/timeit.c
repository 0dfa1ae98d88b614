/* Times a command from inside the (possibly traced) process tree, so that a
 * tracer's fixed start/stop cost is not counted. Runs CMD, then prints
 * "elapsed_ns=<n> cpu_ns=<n>" on stdout (after everything CMD printed) and
 * exits with CMD's status. cpu_ns is the user + system time of CMD and of the
 * descendants it waited for (wait4): where in-kernel tracing costs land, and
 * not inflated by other processes competing for the CPUs.
 * Used by scripts/bench_tracer.py for dd and make.
 * usage: timeit CMD [ARGS...] */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long tv_ns(struct timeval tv)
{
	return (long long)tv.tv_sec * 1000000000LL + (long long)tv.tv_usec * 1000LL;
}

int main(int argc, char **argv)
{
	struct timespec t0, t1;
	struct rusage ru;
	int status;
	pid_t pid;

	if (argc < 2) {
		fprintf(stderr, "usage: timeit CMD [ARGS...]\n");
		return 2;
	}
	fflush(NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 125;
	}
	if (pid == 0) {
		execvp(argv[1], argv + 1);
		perror(argv[1]);
		_exit(127);
	}
	if (wait4(pid, &status, 0, &ru) < 0) {
		perror("wait4");
		return 125;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("elapsed_ns=%lld cpu_ns=%lld\n",
	       (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec),
	       tv_ns(ru.ru_utime) + tv_ns(ru.ru_stime));
	fflush(stdout);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}
