#ifndef PORTIER_CHECK_H
#define PORTIER_CHECK_H
/* A minimal unit-test harness: CHECK() records failures with file:line and
 * CHECK_DONE() prints "N passed, N failed" and returns the exit status. */
#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (cond) {                                                  \
			check_passed++;                                      \
		} else {                                                     \
			check_failed++;                                      \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, \
			        __LINE__, #cond);                             \
		}                                                            \
	} while (0)

#define CHECK_STR(a, b)                                                      \
	do {                                                                 \
		const char *check_a_ = (a), *check_b_ = (b);                 \
		if (check_a_ && check_b_ && strcmp(check_a_, check_b_) == 0) { \
			check_passed++;                                      \
		} else {                                                     \
			check_failed++;                                      \
			fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__,  \
			        __LINE__, check_a_ ? check_a_ : "(null)",      \
			        check_b_ ? check_b_ : "(null)");               \
		}                                                            \
	} while (0)

/* A test that ran no check at all proves nothing: it fails. */
#define CHECK_DONE()                                                         \
	(printf("%d passed, %d failed\n", check_passed, check_failed),       \
	 check_failed || check_passed == 0 ? 1 : 0)

#endif
