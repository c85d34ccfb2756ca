/* vimport: scope-bound ownership, in the style of nbdkit's CLEANUP_FREE.
 *
 * A variable declared with one of these attributes is released when it goes out of
 * scope, so a buffer's owner and lifetime are visible where it is declared. To hand
 * ownership on, set the variable to NULL (or -1 for fds) after giving it away.
 * This is the project's one ownership idiom; functions do not mix it with exit labels.
 */
#ifndef VIMPORT_CORE_CLEANUP_H
#define VIMPORT_CORE_CLEANUP_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void cleanup_free_ptr(void *p) { free(*(void **)p); }
static inline void cleanup_close_fd(int *fd)
{
  if (*fd >= 0)
    close(*fd);
}
static inline void cleanup_fclose_ptr(FILE **f)
{
  if (*f != NULL)
    fclose(*f);
}

#define CLEANUP_FREE __attribute__((cleanup(cleanup_free_ptr)))
#define CLEANUP_CLOSE __attribute__((cleanup(cleanup_close_fd)))
#define CLEANUP_FCLOSE __attribute__((cleanup(cleanup_fclose_ptr)))

/* Give away ownership: returns the value and leaves the variable empty. */
#define TAKE_PTR(p) ({ __typeof__(p) taken_ = (p); (p) = NULL; taken_; })
#define TAKE_FD(fd) ({ int taken_ = (fd); (fd) = -1; taken_; })

#endif
