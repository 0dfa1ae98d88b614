/* Built with -static: no dynamic loader, raw syscalls only. */
#include <fcntl.h>
#include <unistd.h>

int main(void)
{
	char buf[256];
	int in = open("s_in.txt", O_RDONLY);
	int out = open("s_out.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int n = read(in, buf, sizeof buf);
	return in < 0 || out < 0 || n < 0 || write(out, buf, n) != n;
}
