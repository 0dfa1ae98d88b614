/* Workload (a) of scripts/bench_tracer.py: N x (openat + read + close) of one
 * small file. Prints the loop's own elapsed time, so that a tracer's fixed
 * start/stop cost is not counted, and its CPU time (user + system, which is
 * where in-kernel tracing costs land, and which other processes competing
 * for the CPUs do not inflate): "elapsed_ns=<n> cpu_ns=<n>" on stdout.
 * usage: openloop N FILE */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: openloop N FILE\n");
		return 2;
	}
	long n = atol(argv[1]);
	const char *path = argv[2];
	char buf[64];
	struct timespec t0, t1, c0, c1;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++) {
		int fd = openat(AT_FDCWD, path, O_RDONLY);
		if (fd < 0) {
			perror(path);
			return 1;
		}
		if (read(fd, buf, sizeof buf) < 0) {
			perror("read");
			return 1;
		}
		close(fd);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	printf("elapsed_ns=%lld cpu_ns=%lld\n",
	       (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec),
	       (long long)(c1.tv_sec - c0.tv_sec) * 1000000000LL + (c1.tv_nsec - c0.tv_nsec));
	return 0;
}
