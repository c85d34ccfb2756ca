#include "stream.h"

#include <stdlib.h>

ssize_t vreader_read_full(struct vreader *r, void *buf, size_t len, struct verr *err)
{
  size_t done = 0;
  while (done < len) {
    ssize_t n = r->ops->read(r, (char *)buf + done, len - done, err);
    if (n < 0)
      return -1;
    if (n == 0)
      break;
    done += (size_t)n;
  }
  return (ssize_t)done;
}

void vreader_close(struct vreader *r)
{
  if (r == NULL)
    return;
  if (r->ops->close != NULL)
    r->ops->close(r);
  else
    free(r);
}
