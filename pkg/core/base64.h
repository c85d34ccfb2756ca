/* vimport core: the standard base64 alphabet (RFC 4648 section 4), for the decoders of
 * OpenPGP armor (pkg/openpgp) and of base64 detached signatures (pkg/trust). Each keeps
 * its own rules for padding and whitespace; this is only the table they share. */
#ifndef VIMPORT_CORE_BASE64_H
#define VIMPORT_CORE_BASE64_H

/* The 6-bit value of base64 digit `c`, or -1 for anything else ('=' included). */
static inline int base64_digit_value(unsigned char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  return c == '+' ? 62 : c == '/' ? 63 : -1;
}

#endif
