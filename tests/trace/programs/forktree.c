/* A tree of N processes (binary fan-out); every one writes out/<index>. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static int total;

static void node(int index)
{
	char name[64];
	snprintf(name, sizeof name, "out/%d", index);
	int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, name, 4) != 4)
		_exit(1);
	close(fd);
	pid_t kids[2];
	int n = 0;
	for (int c = 2 * index + 1; c <= 2 * index + 2 && c < total; c++) {
		kids[n] = fork();
		if (kids[n] == 0) {
			node(c);
			_exit(0);
		}
		n++;
	}
	for (int i = 0; i < n; i++)
		waitpid(kids[i], NULL, 0);
}

int main(int argc, char **argv)
{
	total = argc > 1 ? atoi(argv[1]) : 200;
	node(0);
	return 0;
}
