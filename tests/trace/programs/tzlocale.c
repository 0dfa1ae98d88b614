/* Never calls getenv itself: setlocale and localtime read LC_ALL, LANG and TZ inside libc. */
#include <locale.h>
#include <stdio.h>
#include <time.h>

int main(void)
{
	time_t t = 0;
	setlocale(LC_ALL, "");
	struct tm *tm = localtime(&t);
	printf("%d\n", tm ? tm->tm_hour : -1);
	return 0;
}
