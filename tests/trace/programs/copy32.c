/* A 32-bit (ia32) program: copies in32.txt to out32.txt, then makes a
 * getrusage call whose edi holds the fd of keep32.txt, a file it never reads
 * or writes (getrusage's ia32 number is ftruncate's x86_64 one). */
#include <fcntl.h>
#include <unistd.h>

int main(void)
{
	char buf[64], usage[256];
	long ret;
	int in = open("in32.txt", O_RDONLY);
	ssize_t n = read(in, buf, sizeof buf);
	int out = open("out32.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (in < 0 || n <= 0 || out < 0 || write(out, buf, n) != n)
		return 1;
	int keep = open("keep32.txt", O_RDONLY);
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(77), "b"(0), "c"(usage), "D"(keep) : "memory");
	return keep < 0 || ret != 0;
}
