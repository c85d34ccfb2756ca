/* pkg/core goflag: Go's flag syntax as CDI's Go programs are called with it. */
#include <criterion/criterion.h>
#include <string.h>

#include "core/goflag.h"

static void quiet_usage(FILE *out) { (void)out; }

struct server_flags {
  const char *dir;
  const char *ready;
  long port;
};

static int parse(struct server_flags *v, int argc, char **argv, int *next)
{
  v->dir = ".";
  v->ready = "/shared/ready";
  v->port = 8100;
  const struct goflag flags[] = {
    { .name = "image-dir", .str = &v->dir },
    { .name = "ready-file", .str = &v->ready },
    { .name = "p", .num = &v->port },
  };
  return goflag_parse(argc, argv, flags, 3, quiet_usage, next);
}

Test(goflag, every_form_go_accepts)
{
  char *argv[] = { "server", "-p", "8200", "--image-dir", "/disk", "-ready-file=/s/r", NULL };
  struct server_flags v;
  int next = 0;
  cr_assert_eq(parse(&v, 6, argv, &next), GOFLAG_CONTINUE);
  cr_assert_eq(v.port, 8200);
  cr_assert_str_eq(v.dir, "/disk");
  cr_assert_str_eq(v.ready, "/s/r");
  cr_assert_eq(next, 6);
}

Test(goflag, defaults_stay_when_not_given)
{
  char *argv[] = { "server", NULL };
  struct server_flags v;
  int next = 0;
  cr_assert_eq(parse(&v, 1, argv, &next), GOFLAG_CONTINUE);
  cr_assert_eq(v.port, 8100);
  cr_assert_str_eq(v.dir, ".");
  cr_assert_eq(next, 1);
}

Test(goflag, stops_at_the_first_non_flag_and_after_double_dash)
{
  char *a1[] = { "server", "-p=1", "disk", "-image-dir", "x", NULL };
  struct server_flags v;
  int next = 0;
  cr_assert_eq(parse(&v, 5, a1, &next), GOFLAG_CONTINUE);
  cr_assert_eq(next, 2);
  cr_assert_str_eq(v.dir, ".");
  char *a2[] = { "server", "--", "-p", "3", NULL };
  cr_assert_eq(parse(&v, 4, a2, &next), GOFLAG_CONTINUE);
  cr_assert_eq(next, 2);
  cr_assert_eq(v.port, 8100);
  char *a3[] = { "server", "-", NULL };
  cr_assert_eq(parse(&v, 2, a3, &next), GOFLAG_CONTINUE);
  cr_assert_eq(next, 1);
}

Test(goflag, a_value_may_start_with_a_dash)
{
  char *argv[] = { "server", "-image-dir", "-odd", NULL };
  struct server_flags v;
  int next = 0;
  cr_assert_eq(parse(&v, 3, argv, &next), GOFLAG_CONTINUE);
  cr_assert_str_eq(v.dir, "-odd");
}

Test(goflag, help_is_exit_0)
{
  struct server_flags v;
  int next = 0;
  char *a1[] = { "server", "-h", NULL };
  char *a2[] = { "server", "--help", NULL };
  char *a3[] = { "server", "-p", "1", "-help", NULL };
  cr_assert_eq(parse(&v, 2, a1, &next), 0);
  cr_assert_eq(parse(&v, 2, a2, &next), 0);
  cr_assert_eq(parse(&v, 4, a3, &next), 0);
}

Test(goflag, bad_flags_are_exit_2)
{
  struct server_flags v;
  int next = 0;
  char *unknown[] = { "server", "-x", NULL };
  char *missing[] = { "server", "-image-dir", NULL };
  char *not_int[] = { "server", "-p", "80a", NULL };
  char *empty_int[] = { "server", "-p=", NULL };
  char *huge_int[] = { "server", "-p", "99999999999999999999999", NULL };
  char *syntax[] = { "server", "---p", "1", NULL };
  char *eq_only[] = { "server", "-=1", NULL };
  cr_assert_eq(parse(&v, 2, unknown, &next), 2);
  cr_assert_eq(parse(&v, 2, missing, &next), 2);
  cr_assert_eq(parse(&v, 3, not_int, &next), 2);
  cr_assert_eq(parse(&v, 2, empty_int, &next), 2);
  cr_assert_eq(parse(&v, 3, huge_int, &next), 2);
  cr_assert_eq(parse(&v, 3, syntax, &next), 2);
  cr_assert_eq(parse(&v, 2, eq_only, &next), 2);
}

Test(goflag, a_prefix_of_a_name_is_not_that_flag)
{
  struct server_flags v;
  int next = 0;
  char *argv[] = { "server", "-image", "x", NULL };
  cr_assert_eq(parse(&v, 3, argv, &next), 2);
}
