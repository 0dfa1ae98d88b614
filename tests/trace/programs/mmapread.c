/* Reads its input only through mmap, writes the bytes with write(). */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void)
{
	struct stat st;
	int in = open("mapped.txt", O_RDONLY);
	if (in < 0 || fstat(in, &st))
		return 1;
	char *p = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, in, 0);
	if (p == MAP_FAILED)
		return 2;
	int out = open("copy.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	return write(out, p, st.st_size) == st.st_size ? 0 : 3;
}
