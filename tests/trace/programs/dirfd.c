/* openat() relative to a directory fd, and renameat() between two dirfds. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	char buf[64];
	int dir = open("sub", O_RDONLY | O_DIRECTORY);
	int in = openat(dir, "in.txt", O_RDONLY);
	int n = read(in, buf, sizeof buf);
	int out = openat(dir, "tmp.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (dir < 0 || in < 0 || n < 0 || out < 0 || write(out, buf, n) != n)
		return 1;
	close(out);
	return renameat(dir, "tmp.txt", AT_FDCWD, "moved.txt") ? 2 : 0;
}
